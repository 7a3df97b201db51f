"""Wiring: the gRPC server with health and reflection, the roster, the journal."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from omniroute.feeds import SnapshotBoard, SnapshotReader
from omniroute.kafka import EventProducer
from omniroute.metrics import WorkspaceLabel
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, task_pb2
from omniroute_agent_state.auth import Authenticator
from omniroute_agent_state.checkpoint import Checkpointer
from omniroute_agent_state.journal import Journal, recover
from omniroute_agent_state.metrics import AgentStateMetrics
from omniroute_agent_state.outbox import Outbox
from omniroute_agent_state.records import unusable
from omniroute_agent_state.repair import repair
from omniroute_agent_state.roster import Changes, Policy, Roster
from omniroute_agent_state.servicer import AgentStateServicer
from omniroute_agent_state.settings import AgentStateSettings

log = logging.getLogger("omniroute.agent_state")
SERVICE_NAME = agent_state_pb2.DESCRIPTOR.services_by_name["AgentState"].full_name


@dataclass
class AgentStateServer:
    """The running service: stop it with `stop()`."""

    server: grpc.aio.Server
    servicer: AgentStateServicer
    producer: EventProducer
    health: health.aio.HealthServicer
    expiry: asyncio.Task[None]
    port: int
    checkpointer: Checkpointer
    checkpoints: asyncio.Task[None]
    snapshots: SnapshotReader

    async def stop(self, grace_s: float) -> None:
        """Stop taking calls, let in-flight ones finish, send what is left, stop the producer."""
        await self.health.enter_graceful_shutdown()
        self.expiry.cancel()
        self.checkpoints.cancel()
        await asyncio.gather(self.checkpoints, return_exceptions=True)
        await self.snapshots.stop()
        await self.server.stop(grace_s)
        if not await self.servicer.outbox.drain(grace_s):
            log.error(
                "stopping with changes the broker has not acknowledged",
                extra={"batches": self.servicer.outbox.pending},
            )
        await self.servicer.outbox.close()
        await self.producer.stop()


async def create_server(
    settings: AgentStateSettings, registry: CollectorRegistry
) -> AgentStateServer:
    """Rebuild the roster from Kafka, then serve gRPC on the configured address."""
    policy = Policy(
        offer_ttl_s=settings.offer_ttl_s,
        offer_ttl_by_channel=settings.offer_ttl_by_channel,
        wrap_up_by_channel=settings.wrap_up_by_channel,
        away_on_missed_offer=settings.away_on_missed_offer,
        away_reasons=frozenset(settings.away_reasons),
        session_timeout_s=settings.session_timeout_s,
        event_retention_s=settings.event_retention_s,
    )
    roster = Roster(policy)
    producer = EventProducer(settings, client_id="omniroute-agent-state")
    await producer.start()
    journal = Journal(settings, producer)
    await journal.prepare()
    metrics = AgentStateMetrics(registry, roster, WorkspaceLabel(settings.metrics_workspaces))
    started = time.monotonic()
    recovered = await recover(settings)
    journal.cover(recovered.ends)
    refused = roster.restore(
        usable_records(recovered.agents, metrics),
        time.time(),
        time.monotonic(),
        fences=recovered.fences,
        task_events=recovered.task_events,
    )
    for reason in refused:
        log.error("agent record refused at restore", extra={"reason": reason})
    metrics.recovery_seconds.set(time.monotonic() - started)
    for source, read in recovered.records_read.items():
        metrics.recovery_records.labels(source.value).set(read)
    log.info(
        "roster restored",
        extra={
            "agents": len(roster.agents),
            "records": len(recovered.agents),
            "records_read": {source.value: n for source, n in recovered.records_read.items()},
            "from_checkpoint": recovered.checkpoint is not None,
            "seconds": round(time.monotonic() - started, 3),
            "open_reservations": len(roster.holder),
            "held_contents": len(recovered.contents),
            "fences": len(roster.fences),
            "recent_inquiries": len(roster.last_events),
            "authentication": authenticator_enabled(settings),
            "tls": bool(settings.agent_state_tls_cert_file),
        },
    )

    authenticator = Authenticator(
        settings.agent_state_admin_tokens,
        settings.agent_state_desktop_tokens,
        allow_anonymous=settings.agent_state_allow_anonymous,
    )

    def outbox_for(on_durable: Callable[[Changes], None]) -> Outbox:
        return Outbox(
            journal,
            on_durable,
            on_failed_send=metrics.publish_errors.inc,
            on_round=metrics.write_round_records.observe,
        )

    # The router's queues of each workspace (for transfers to a queue), from
    # its snapshots: what it routes by, also after a reload.
    board = SnapshotBoard()
    snapshots = SnapshotReader(settings, board, client_id="omniroute-agent-state-queues")
    snapshots.start()
    servicer = AgentStateServicer(
        roster,
        outbox_for,
        metrics,
        authenticator,
        watch_queue_max=settings.watch_queue_max,
        publish_wait_s=settings.publish_wait_s,
        queues=functools.partial(queue_names, board),
        sizes=settings.sizes,
    )
    metrics.watch_outbox(servicer.outbox)
    # What the desks are shown for the reservations still held; the rest is forgotten.
    forgotten = servicer.content.restore(recovered.contents.values(), roster.agents)
    if forgotten:
        servicer.outbox.put(Changes(contents=forgotten))
    await publish_repair(servicer, recovered.task_events, metrics, settings.publish_wait_s)
    # gRPC shares a port between servers by default (SO_REUSEPORT); a second
    # agent-state on the same address must fail to start, not take half the calls.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    agent_state_pb2_grpc.add_AgentStateServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{settings.agent_state_host}:{settings.agent_state_port}"
    credentials = server_credentials(settings)
    if credentials is not None:
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    await server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING

    async def report(healthy: bool) -> None:
        """Health follows the expiry loop: a loop failing or dead is NOT_SERVING."""
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, serving if healthy else not_serving)

    await report(True)
    expiry = asyncio.create_task(servicer.expire_forever(settings.expiry_check_s, report))

    def expiry_ended(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        log.error("the expiry loop stopped", exc_info=task.exception())
        metrics.expiry_healthy.set(0)
        asyncio.get_running_loop().create_task(report(False))

    expiry.add_done_callback(expiry_ended)
    checkpointer = Checkpointer(
        settings,
        producer,
        journal,
        servicer.outbox,
        roster,
        previous_manifest_offset=(
            recovered.checkpoint.manifest_offset if recovered.checkpoint is not None else -1
        ),
        records_behind=recovered.tail_records,
        content=servicer.content,
    )

    def checkpointed(written: bool) -> None:
        metrics.checkpoints.labels("written" if written else "failed").inc()

    checkpoints = asyncio.create_task(
        checkpointer.run_forever(settings.checkpoint_check_s, settings.publish_wait_s, checkpointed)
    )
    return AgentStateServer(
        server,
        servicer,
        producer,
        health_servicer,
        expiry,
        port,
        checkpointer,
        checkpoints,
        snapshots,
    )


def queue_names(board: SnapshotBoard, workspace: str) -> Mapping[str, bool] | None:
    """The workspace's queues in the router's latest snapshot, each with whether it
    accepts transfers; None when no snapshot of the workspace was seen."""
    snapshot = board.latest.get(workspace)
    if snapshot is None:
        return None
    return {queue.name: not queue.refuses_transfers for queue in snapshot.queues}


async def publish_repair(
    servicer: AgentStateServicer,
    task_events: list[task_pb2.TaskEvent],
    metrics: AgentStateMetrics,
    wait_s: float,
) -> None:
    """Publish the task events the recovered records imply but the topic lacks (repair.py).

    Put in the outbox before the first call is served, so every answer waits
    for them too; gaps the records cannot repair are logged (ids only) and counted.
    """
    now, mono = time.time(), time.monotonic()
    found = repair(servicer.roster.agents.values(), task_events, now)
    for gap in found.unrepaired:
        metrics.recovery_gaps.labels(gap.gap.value).inc()
        log.warning(
            "recovered records and task events disagree; left to the router's reconciliation",
            extra={
                "gap": gap.gap.value,
                "workspace": gap.workspace,
                "inquiry_id": gap.inquiry_id,
                "agent_id": gap.agent_id,
                "reservation_id": gap.reservation_id,
            },
        )
    for release in found.released:
        # The transfer's event is on the topic; its agent record was lost: free the slot.
        metrics.recovery_gaps.labels("released").inc()
        log.warning(
            "releasing a reservation whose transfer was published before a restart",
            extra={
                "workspace": servicer.roster.get(release.agent_id).workspace,
                "inquiry_id": release.inquiry_id,
                "agent_id": release.agent_id,
                "reservation_id": release.reservation_id,
            },
        )
        found.changes.add(
            servicer.roster.release_recovered(
                release.agent_id, release.reservation_id, "transferred", now
            )
        )
    if not found.changes:
        return
    for event in found.changes.task_events:
        metrics.recovery_gaps.labels("repaired").inc()
        log.warning(
            "publishing a task event lost before a restart",
            extra={
                "type": task_pb2.TaskEvent.Type.Name(event.type),
                "workspace": event.workspace,
                "inquiry_id": event.inquiry_id,
                "agent_id": event.agent_id,
                "reservation_id": event.reservation_id,
                "event_id": event.event_id,
            },
        )
    servicer.roster.remember(found.changes.task_events, mono)
    servicer.put(found.changes)  # with the tombstones of the released content
    if not await servicer.outbox.drain(wait_s):
        log.warning("repaired task events not acknowledged yet; the outbox keeps re-sending")


def usable_records(
    records: list[agent_pb2.Agent], metrics: AgentStateMetrics
) -> list[agent_pb2.Agent]:
    """The recovered records the roster can take; the others logged (ids only) and counted."""
    usable = []
    for record in records:
        reason = unusable(record)
        if reason is None:
            usable.append(record)
            continue
        metrics.records_skipped.labels(reason).inc()
        log.error(
            "recovered agent record skipped",
            extra={
                "agent_id": record.id,
                "workspace": record.workspace,
                "version": record.version,
                "reason": reason.value,
            },
        )
    return usable


def authenticator_enabled(settings: AgentStateSettings) -> bool:
    """Whether callers must present a bearer token (always, unless anonymous on loopback)."""
    tokens = settings.agent_state_admin_tokens or settings.agent_state_desktop_tokens
    return bool(tokens) or not settings.agent_state_allow_anonymous


def server_credentials(settings: AgentStateSettings) -> grpc.ServerCredentials | None:
    """TLS credentials when a certificate and key are configured (read once at start)."""
    if not (settings.agent_state_tls_cert_file and settings.agent_state_tls_key_file):
        return None
    key = Path(settings.agent_state_tls_key_file).read_bytes()
    chain = Path(settings.agent_state_tls_cert_file).read_bytes()
    return grpc.ssl_server_credentials([(key, chain)])

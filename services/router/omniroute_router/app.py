"""The router's Faust app: a thin adapter between Kafka and the routing core.

One stream reads the inquiries, agent-events and task-events topics and the
router's own tick topic, all keyed by workspace and partitioned alike, so one
worker owns a workspace and sees its events in order. For each event the
adapter decodes, updates the workspace's `WorkspaceRouter`, lets it plan,
reserves the chosen agents at agent-state, publishes the assignments and
writes what changed to Faust tables (changelog topics), from which a worker
that takes the partition over rebuilds the state.

Anything undecodable or invalid goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable
from typing import Any

import faust
from faust.types import EventT

from omniroute.codec import InvalidEvent, decode, encode, seconds, timestamp
from omniroute.kafka import compacted
from omniroute.metrics import OTHER_WORKSPACE, WorkspaceLabel
from omniroute.settings import CommonSettings
from omniroute.v1 import agent_pb2, dead_letter_pb2, inquiry_pb2, task_pb2
from omniroute_router.config import RoutingConfig
from omniroute_router.contents import InquiryContents
from omniroute_router.convert import agent_from_proto, channel_value, inquiry_from_proto
from omniroute_router.lag import LagExporter
from omniroute_router.metrics import RouterMetrics
from omniroute_router.model import AgentView, InquiryState, QueuedInquiry
from omniroute_router.reservations import (
    AgentStateClient,
    AgentStateUnavailable,
    ReservationRefused,
    Reserved,
)
from omniroute_router.routing import Offer, WorkspaceRouter
from omniroute_router.settings import RouterSettings
from omniroute_router.snapshots import QueueSnapshots
from omniroute_router.transport import app_class

log = logging.getLogger("omniroute.router")

Clock = Callable[[], float]

#: Escalation reasons the ladder itself gives (label values besides "agent").
_LADDER_REASONS = frozenset({"wait", "failed_offers"})


def ticks_topic_name(settings: RouterSettings) -> str:
    """The router's internal topic of clock ticks, one per owned partition per tick."""
    return f"{settings.router_app_id}-ticks"


def input_topics(settings: CommonSettings) -> list[str]:
    """The public topics the router consumes."""
    return [settings.topic_inquiries, settings.topic_agent_events, settings.topic_task_events]


class Router:
    """The routing state of the partitions this worker owns, and how events change it."""

    def __init__(
        self,
        settings: RouterSettings,
        config: RoutingConfig,
        metrics: RouterMetrics,
        agent_state: AgentStateClient,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.config = config
        self.metrics = metrics
        self.agent_state = agent_state
        self.clock = clock
        self.workspaces: dict[str, WorkspaceRouter] = {}
        # The workspace label: configured workspaces by name, the rest as "other".
        self.workspace_label = WorkspaceLabel([*settings.metrics_workspaces, *config.workspaces])
        self._other_queues: dict[str, tuple[dict[str, int], dict[str, float], int]] = {}
        # Bound by `bind()` once the Faust app and its tables exist.
        self.inquiry_table: Any = None
        self.agent_table: Any = None
        self.thread_table: Any = None
        self.workspace_table: Any = None
        self.assignments: Any = None
        self.dead_letters: Any = None
        self.inquiries_topic: Any = None
        # The inquiries' content for the offers, and the wallboard's snapshots.
        self.contents = InquiryContents()
        self.snapshots = QueueSnapshots()
        self.topic_input = {
            settings.topic_inquiries: "inquiries",
            settings.topic_agent_events: "agent-events",
            settings.topic_task_events: "task-events",
            ticks_topic_name(settings): "ticks",
        }

    def forget_all(self) -> None:
        """Drop the in-memory state; it is rebuilt from the tables when next needed."""
        self.workspaces.clear()
        self._other_queues.clear()

    # -- event handling -------------------------------------------------------

    async def handle(self, event: EventT) -> None:
        """Process one record from any input topic; never raises for bad input."""
        message = event.message
        source = self.topic_input.get(message.topic, message.topic)
        now = self.clock()
        try:
            if source == "ticks":
                await self._on_tick(message.partition, now)
                return
            if source == "inquiries":
                outcome = await self._on_inquiry(message.key, event.value, message.partition, now)
            elif source == "agent-events":
                outcome = await self._on_agent_event(event.value, message.partition, now)
            else:
                outcome = await self._on_task_event(event.value, message.partition, now)
            self.metrics.events.labels(source, outcome).inc()
        except InvalidEvent as exc:
            await self._dead_letter(event, source, str(exc))

    async def _on_inquiry(self, key: bytes | None, value: bytes, partition: int, now: float) -> str:
        proto = decode(inquiry_pb2.Inquiry, value)
        inquiry = inquiry_from_proto(proto, now)
        if key != proto.workspace.encode():
            # Keyed wrongly by its publisher: it may sit on another workspace's
            # partition. Re-publish keyed by workspace so its owner gets it.
            await self.inquiries_topic.send(key=proto.workspace.encode(), value=value)
            log.warning("inquiry re-keyed by workspace", extra={"inquiry_id": proto.id})
            return "processed"
        router = self._router(proto.workspace, partition)
        if not router.admit(inquiry, now):
            return "duplicate"
        self.contents.keep(proto.workspace, proto.id, value)
        log.info(
            "inquiry queued",
            extra={
                "inquiry_id": inquiry.id,
                "workspace": inquiry.workspace,
                "queue": inquiry.queue,
            },
        )
        await self._route(router, now, inquiry_ids=[inquiry.id])
        return "processed"

    async def _on_agent_event(self, value: bytes, partition: int, now: float) -> str:
        event = decode(agent_pb2.AgentEvent, value)
        if not event.agent.id or not event.agent.workspace:
            raise InvalidEvent("AgentEvent.agent.id and .workspace are required")
        router = self._router(event.agent.workspace, partition)
        if event.change == agent_pb2.AgentEvent.CHANGE_REMOVED:
            router.remove_agent(event.agent.id)
        elif not router.update_agent(agent_from_proto(event.agent)):
            return "duplicate"
        # Only an agent with a free slot can change what gets routed.
        if event.agent.id in router.free_agents:
            await self._route(router, now, agent_ids=[event.agent.id])
        else:
            self._persist(router)
        return "processed"

    async def _on_task_event(self, value: bytes, partition: int, now: float) -> str:
        event = decode(task_pb2.TaskEvent, value)
        if not event.inquiry_id or not event.workspace:
            raise InvalidEvent("TaskEvent.inquiry_id and .workspace are required")
        router = self._router(event.workspace, partition)
        kind = event.type
        changed = False
        if kind in _OFFER_FAILURES:
            changed = router.offer_failed(
                event.inquiry_id, event.agent_id, event.reservation_id, _OFFER_FAILURES[kind], now
            )
            if changed:
                self.metrics.offer_failures.labels(_OFFER_FAILURES[kind]).inc()
        elif kind == task_pb2.TaskEvent.TYPE_ACCEPTED:
            inquiry = router.inquiries.get(event.inquiry_id)
            wait = router.accepted(event.inquiry_id, event.agent_id, now)
            changed = inquiry is not None
            if inquiry is not None and wait is not None:
                self._count_answer(router, inquiry, wait, now)
        elif kind == task_pb2.TaskEvent.TYPE_COMPLETED:
            changed = self._on_completed(router, event, now)
        elif kind == task_pb2.TaskEvent.TYPE_ABANDONED:
            changed = router.abandoned(event.inquiry_id, now) is not None
        elif kind == task_pb2.TaskEvent.TYPE_TRANSFERRED:
            inquiry = router.inquiries.get(event.inquiry_id)
            if inquiry is not None and event.target_agent_id:
                inquiry.agent_id = event.target_agent_id
                router.changed_inquiries.add(inquiry.id)
                changed = True
        if not changed:
            return "duplicate" if kind != task_pb2.TaskEvent.TYPE_OFFERED else "processed"
        inquiry = router.inquiries.get(event.inquiry_id)
        if inquiry is not None and inquiry.state is InquiryState.WAITING:
            # Back in the queue (declined, missed, withdrawn, escalated): route it again.
            await self._route(router, now, inquiry_ids=[inquiry.id])
        else:
            self._notices(router)
            self._persist(router)
        return "processed"

    def _on_completed(self, router: WorkspaceRouter, event: task_pb2.TaskEvent, now: float) -> bool:
        resolution = event.resolution
        if resolution == task_pb2.RESOLUTION_FOLLOW_UP:
            due = seconds(event.follow_up.due_at) if event.follow_up.HasField("due_at") else now
            return router.follow_up(event.inquiry_id, event.agent_id, due, now)
        if resolution == task_pb2.RESOLUTION_ESCALATED:
            return router.escalated(
                event.inquiry_id,
                event.agent_id,
                int(event.escalation.target_tier),
                event.escalation.target_skill,
                event.escalation.reason,
                now,
            )
        return router.resolved(event.inquiry_id, event.agent_id, now)

    async def _on_tick(self, partition: int, now: float) -> None:
        # Every workspace ever seen on this partition, loaded or not: after a
        # restart, waiting inquiries must climb their ladders without new events.
        for workspace, owner in list(self.workspace_table.items()):
            if owner == partition and self.config.for_workspace(workspace) is not None:
                router = self._router(workspace, partition)
                router.housekeeping(now)
                await self._route(router, now)
                self._observe_queues(router, now)
        self.metrics.events.labels("ticks", "processed").inc()

    # -- routing ----------------------------------------------------------------

    async def _route(
        self,
        router: WorkspaceRouter,
        now: float,
        inquiry_ids: list[str] | None = None,
        agent_ids: list[str] | None = None,
    ) -> None:
        """Plan offers (narrowed to what changed), reserve the agents, publish, persist."""
        for _ in range(3):  # re-plan after refusals, a few times at most
            started = time.perf_counter()
            offers = router.plan(now, inquiry_ids, agent_ids)
            self.metrics.decision.observe(time.perf_counter() - started)
            refused = unavailable = False
            # One plan's reservations go out together: agent-state decides each
            # atomically, and the round trips overlap instead of adding up.
            planned = [(offer, router.inquiries[offer.inquiry_id]) for offer in offers]
            assignments = [
                self._assignment(inquiry, offer.agent_id, offer, now) for offer, inquiry in planned
            ]
            results = await asyncio.gather(
                *(self.agent_state.reserve(a) for a in assignments), return_exceptions=True
            )
            for (offer, inquiry), assignment, result in zip(planned, assignments, results, strict=True):  # fmt: skip
                if isinstance(result, ReservationRefused):
                    self.metrics.reservations_refused.inc()
                    # Take agent-state's record when it sent one; otherwise keep
                    # the agent out of planning until its next event.
                    if result.agent is None or not router.update_agent(agent_from_proto(result.agent)):  # fmt: skip
                        router.reservation_refused(inquiry.id, offer.agent_id)
                    refused = True
                    continue
                if isinstance(result, AgentStateUnavailable):
                    self.metrics.agent_state_errors.inc()
                    log.warning(
                        "agent-state unavailable; retrying on the next tick",
                        extra={"error": str(result)},
                    )
                    unavailable = True
                    continue
                if isinstance(result, BaseException):
                    raise result
                await self._offered(router, inquiry, offer, assignment, result, now)
            if unavailable:
                break
            if not refused:
                break
        self._notices(router)
        self._persist(router)

    async def _offered(
        self,
        router: WorkspaceRouter,
        inquiry: QueuedInquiry,
        offer: Offer,
        assignment: task_pb2.Assignment,
        reserved: Reserved,
        now: float,
    ) -> None:
        """agent-state holds the reservation: record the offer and publish it."""
        router.update_agent(agent_from_proto(reserved.agent))
        holder = reserved.reservation.agent_id
        if reserved.already_reserved and holder != offer.agent_id:
            # A worker before us reserved it and died: adopt its offer.
            assignment = self._assignment(inquiry, holder, offer, now)
        assignment.reservation_id = reserved.reservation.reservation_id
        assignment.offer_expires_at.CopyFrom(reserved.reservation.expires_at)
        router.offer_made(inquiry.id, holder, assignment.reservation_id, now)
        if reserved.reservation.accepted:
            # Accepted while the previous owner's state was lost: in work already.
            router.accepted(inquiry.id, holder, now)
        assignment.attempt = inquiry.attempts
        await self.assignments.send(key=router.workspace.encode(), value=encode(assignment))
        self.metrics.assignments.labels(str(offer.tier), offer.strategy).inc()
        if inquiry.attempts == 1:
            self.metrics.routing_latency.observe(max(0.0, now - inquiry.arrived_at))
        log.info(
            "inquiry offered",
            extra={
                "inquiry_id": inquiry.id,
                "agent_id": holder,
                "queue": inquiry.queue,
                "attempt": inquiry.attempts,
                "step": offer.step,
            },
        )

    def _assignment(
        self, inquiry: QueuedInquiry, agent_id: str, offer: Any, now: float
    ) -> task_pb2.Assignment:
        agent = self.workspaces[inquiry.workspace].agents.get(agent_id)
        assignment = task_pb2.Assignment(
            inquiry_id=inquiry.id,
            workspace=inquiry.workspace,
            agent_id=agent_id,
            tier=agent.tier if agent else offer.tier,  # type: ignore[arg-type]
            queue=inquiry.queue,
            attempt=inquiry.attempts + 1,
            channel=channel_value(inquiry.channel),  # type: ignore[arg-type]
            assigned_at=timestamp(now),
            escalation_step=offer.step,
            history=inquiry.history,
        )
        self.contents.attach(assignment)
        return assignment

    def _count_answer(
        self, router: WorkspaceRouter, inquiry: QueuedInquiry, wait: float, now: float
    ) -> None:
        target = router.config.service_levels.get(inquiry.channel)
        within = "unknown" if target is None else ("yes" if wait <= target else "no")
        self.snapshots.answered(
            router.workspace, inquiry.queue, None if target is None else wait <= target, now
        )
        self.metrics.wait.labels(inquiry.queue, inquiry.channel).observe(wait)
        self.metrics.answered.labels(inquiry.queue, inquiry.channel, within).inc()

    def _notices(self, router: WorkspaceRouter) -> None:
        for notice in router.drain_notices():
            if notice.kind == "escalated":
                # The ladder's own reasons, or "agent": an agent's words (free text,
                # possibly personal) are never a label value and never logged.
                reason = notice.reason if notice.reason in _LADDER_REASONS else "agent"
                self.metrics.escalations.labels(str(notice.step), reason).inc()
                log.info(
                    "inquiry escalated",
                    extra={"inquiry_id": notice.inquiry_id, "step": notice.step, "reason": reason},
                )
            elif notice.kind == "abandoned":
                self.metrics.abandoned.labels(notice.queue, notice.channel).inc()
            elif notice.kind == "follow_up_scheduled":
                self.metrics.follow_ups.labels("scheduled").inc()
            elif notice.kind == "follow_up_due":
                self.metrics.follow_ups.labels("due").inc()

    def _observe_queues(self, router: WorkspaceRouter, now: float) -> None:
        """The queue gauges, and the same figures on the snapshot topic for the wallboard."""
        snapshot = self.snapshots.publish(router, now)
        depth = {queue.name: queue.waiting for queue in snapshot.queues}
        oldest = {queue.name: queue.oldest_wait_s for queue in snapshot.queues}
        offered = sum(queue.offered for queue in snapshot.queues)
        label = self.workspace_label(router.workspace)
        if label == OTHER_WORKSPACE:
            # Unconfigured workspaces share one series: sum (max for the oldest
            # wait) over all of them this worker has observed.
            self._other_queues[router.workspace] = (depth, oldest, offered)
            depth, oldest, offered = {}, {}, 0
            for w_depth, w_oldest, w_offered in self._other_queues.values():
                for queue, count in w_depth.items():
                    depth[queue] = depth.get(queue, 0) + count
                    oldest[queue] = max(oldest.get(queue, 0.0), w_oldest[queue])
                offered += w_offered
        for queue in depth:
            self.metrics.queue_depth.labels(label, queue).set(depth[queue])
            self.metrics.oldest_wait.labels(label, queue).set(oldest[queue])
        self.metrics.offers_open.labels(label).set(offered)

    # -- state --------------------------------------------------------------------

    def _router(self, workspace: str, partition: int) -> WorkspaceRouter:
        """The workspace's router, rebuilt from the tables on first use after a rebalance."""
        router = self.workspaces.get(workspace)
        if router is not None:
            return router
        config = self.config.for_workspace(workspace)
        if config is None:
            raise InvalidEvent(f"unknown workspace {workspace!r}: not in the routing configuration")
        router = WorkspaceRouter(workspace, config)
        for key, value in self.inquiry_table.items():
            if value.get("workspace") != workspace:
                continue
            if "finished_at" in value:
                router.finished[key] = value["finished_at"]
            else:
                inquiry = QueuedInquiry.from_dict(value)
                if inquiry.queue not in router.queues:  # the configuration changed
                    inquiry.queue = router.queue_for(inquiry).name
                router.restore_inquiry(inquiry)
        for value in self.agent_table.values():
            if value.get("workspace") == workspace:
                router.restore_agent(AgentView.from_dict(value))
        prefix = workspace + "/"
        for key, value in self.thread_table.items():
            if key.startswith(prefix):
                router.threads[key[len(prefix) :]] = (value[0], value[1])
        self.workspaces[workspace] = router
        if self.workspace_table.get(workspace) != partition:
            self.workspace_table[workspace] = partition
        if router.inquiries:
            log.info(
                "workspace state restored",
                extra={
                    "workspace": workspace,
                    "inquiries": len(router.inquiries),
                    "agents": len(router.agents),
                },
            )
        return router

    def _persist(self, router: WorkspaceRouter) -> None:
        """Write what changed to the tables (inside the event, so on its partition)."""
        for inquiry_id in router.changed_inquiries:
            inquiry = router.inquiries.get(inquiry_id)
            if inquiry is not None:
                self.inquiry_table[inquiry_id] = inquiry.to_dict()
            elif inquiry_id in router.finished:
                self.inquiry_table[inquiry_id] = {
                    "workspace": router.workspace,
                    "finished_at": router.finished[inquiry_id],
                }
            else:
                self.inquiry_table.pop(inquiry_id, None)
        for agent_id in router.changed_agents:
            agent = router.agents.get(agent_id)
            if agent is None:
                self.agent_table.pop(agent_id, None)
            else:
                self.agent_table[agent_id] = agent.to_dict()
        for thread in router.changed_threads:
            key = f"{router.workspace}/{thread}"
            if thread in router.threads:
                self.thread_table[key] = list(router.threads[thread])
            else:
                self.thread_table.pop(key, None)
        self.contents.forget(
            router.workspace, [i for i in router.changed_inquiries if i not in router.inquiries]
        )
        router.changed_inquiries.clear()
        router.changed_agents.clear()
        router.changed_threads.clear()

    async def _dead_letter(self, event: EventT, source: str, reason: str) -> None:
        message = event.message
        letter = dead_letter_pb2.DeadLetter(
            source_topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key or b"",
            value=message.value or b"",
            reason=reason,
            service="router",
            failed_at=timestamp(self.clock()),
        )
        await self.dead_letters.send(key=message.key, value=encode(letter))
        self.metrics.events.labels(source, "dead_letter").inc()
        self.metrics.dead_letters.labels(source).inc()
        log.warning(
            "event dead-lettered",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "reason": reason,
            },
        )


_OFFER_FAILURES = {
    task_pb2.TaskEvent.TYPE_DECLINED: "declined",
    task_pb2.TaskEvent.TYPE_OFFER_TIMEOUT: "offer_timeout",
    task_pb2.TaskEvent.TYPE_WITHDRAWN: "withdrawn",
}


def create_app(settings: RouterSettings, router: Router) -> faust.App:
    """The Faust app: topics, tables, the routing agent and the tick timer."""
    app = app_class(settings)(
        settings.router_app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        datadir=settings.router_data_dir or tempfile.mkdtemp(prefix="omniroute-router-"),
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        table_standby_replicas=settings.router_standby_replicas,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_s,
        broker_rebalance_timeout=settings.kafka_session_timeout_s,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    ticks = app.topic(ticks_topic_name(settings), partitions=settings.kafka_partitions, **raw)
    inputs = app.topic(*input_topics(settings), ticks_topic_name(settings), **raw)
    router.assignments = app.topic(settings.topic_assignments, **raw)
    router.dead_letters = app.topic(settings.topic_dead_letters, **raw)
    router.inquiries_topic = app.topic(settings.topic_inquiries, **raw)
    # Values are JSON (the app's default serializer): the core's plain dicts.
    # Changelogs are compacted (Faust's default) within the maximum compaction lag.
    table: dict[str, Any] = {
        "partitions": settings.kafka_partitions,
        "key_type": str,
        "extra_topic_configs": compacted(settings),
    }
    router.inquiry_table = app.Table("inquiries", default=None, **table)
    router.agent_table = app.Table("agents", default=None, **table)
    router.thread_table = app.Table("threads", default=None, **table)
    router.workspace_table = app.Table("workspaces", default=None, **table)
    router.contents.table = app.Table("contents", default=None, **table)
    router.snapshots.table = app.Table("answered", default=None, **table)
    router.snapshots.topic = app.topic(settings.topic_queue_snapshots, **raw)

    @app.agent(inputs)
    async def route(stream: Any) -> None:
        async for event in stream.events():
            await router.handle(event)

    @app.timer(interval=settings.router_tick_s)
    async def tick() -> None:
        # One tick per owned partition, so time-driven work happens inside a
        # stream event on that partition, in order with everything else.
        now = encode_tick(router.clock())
        for tp in app.consumer.assignment():
            if tp.topic == ticks.get_topic_name():
                await ticks.send(key=b"tick", value=now, partition=tp.partition)

    lag = LagExporter(router.metrics.consumer_lag, router.topic_input)

    @app.timer(interval=settings.router_tick_s)
    async def measure_lag() -> None:
        lag.update(app.consumer)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Partitions may move to another worker; rebuild from the tables when
        # next needed rather than risk acting on a copy that went stale.
        router.forget_all()
        # Per-workspace gauges too: a workspace that moved would otherwise show its
        # last depth and oldest wait here forever (and fire alerts); its new
        # owner sets them on its next tick.
        router.metrics.forget_workspaces()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        owned = [tp for tp in assigned if tp.topic == ticks.get_topic_name()]
        router.metrics.partitions.set(len(owned))

    return app


def encode_tick(now: float) -> bytes:
    """A tick's payload: the sender's time (for logs; the handler uses its own clock)."""
    return str(now).encode()

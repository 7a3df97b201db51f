"""The router's Faust app: a thin adapter between Kafka and the routing core.

One stream reads the inquiries, agent-events and task-events topics and the
router's own tick topic, all keyed by workspace and partitioned alike, so one
worker owns a workspace and sees its events in order. It takes the records
available as one batch: it decodes each and applies it to its workspace's
`WorkspaceRouter`; then each workspace touched takes one step: the core
plans once, the adapter reserves every chosen agent at agent-state in one
call, publishes the assignments, and writes what the core says changed to
Faust tables (changelog topics, through `tables.py`), from which a worker
that takes the partition over rebuilds the state. The adapter reads the core
but never changes it other than through its methods.

Anything undecodable or invalid goes to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
from faust.types import EventT

from omniroute.codec import InvalidEvent, decode, encode, seconds, timestamp
from omniroute.kafka import compacted
from omniroute.metrics import OTHER_WORKSPACE, WorkspaceLabel
from omniroute.settings import CommonSettings
from omniroute.sizes import fit_assignment
from omniroute.v1 import agent_pb2, agent_state_pb2, dead_letter_pb2, inquiry_pb2, task_pb2
from omniroute_router.callbacks import CallbackOutcome
from omniroute_router.config import RoutingConfig, WorkspaceConfig
from omniroute_router.contents import InquiryContents
from omniroute_router.conversations import Conversations
from omniroute_router.convert import (
    agent_from_proto,
    authority_from_proto,
    callback_channel,
    callback_number,
    callback_proto,
    channel_value,
    held_from_proto,
    inquiry_from_proto,
)
from omniroute_router.decisions import Notice, NoticeKind, Offer, Reconciled, Withdrawal
from omniroute_router.lag import LagExporter
from omniroute_router.metrics import RouterMetrics
from omniroute_router.model import InquiryState, QueuedInquiry
from omniroute_router.reservations import (
    MAX_CALL_RESERVATIONS,
    AgentStateClient,
    AgentStateUnavailable,
    Fenced,
    ReservationRefused,
    Reserved,
)
from omniroute_router.routing import REMEMBER_FINISHED_S, WorkspaceRouter
from omniroute_router.settings import RouterSettings
from omniroute_router.snapshots import QueueSnapshots
from omniroute_router.sweep import SweepRead, TopicReader
from omniroute_router.tables import RoutingTables
from omniroute_router.transport import acting_on, app_class, batches, group_generation

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
        monotonic: Clock = time.monotonic,
        reader: TopicReader | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.metrics = metrics
        self.agent_state = agent_state
        self.clock = clock
        # Intervals (sweeps, workspace reconciliation) are durations: a wall
        # clock that steps must not make them all fall due at once.
        self.monotonic = monotonic
        self.reader = reader or TopicReader(settings.kafka_bootstrap, settings.topic_inquiries)
        self.workspaces: dict[str, WorkspaceRouter] = {}
        # The partitions this worker owns, with the consumer-group generation it
        # joined them in: the fence sent with every reservation and withdrawal.
        self.owned: dict[int, int] = {}
        # When (wall clock) it was given each: inquiries published before then
        # may have been routed by the previous owner, whose state may be lost.
        self.taken_over_at: dict[int, float] = {}
        # The group generation the consumer is in now (None: unknown); set by create_app.
        self.live_generation: Callable[[], int | None] = lambda: None
        self.partition_of: dict[str, int] = {}
        # Last inquiries offset the stream processed per partition: the sweep's limit.
        self.stream_offsets: dict[int, int] = {}
        # Consumer lag per owned input partition, as last measured (0: all
        # committed), and the inquiries partitions' high watermarks.
        self.lags: dict[tuple[str, int], int] = {}
        self.highwaters: dict[int, int] = {}
        self._swept_at: dict[int, float] = {}
        # The sweep's re-read under way per partition, with the generation it began in.
        self._sweep_reads: dict[int, tuple[int, asyncio.Future[SweepRead | None]]] = {}
        self._listed_at: dict[str, float] = {}
        # Faust tables bound by `create_app` (plain dicts in unit tests).
        self.tables = RoutingTables()
        # The workspace label: configured workspaces by name, the rest as "other".
        self.workspace_label = WorkspaceLabel([*settings.metrics_workspaces, *config.workspaces])
        metrics.prepare_workspaces(config.workspaces, self.workspace_label)
        self._other_queues: dict[str, tuple[dict[str, int], dict[str, float], int]] = {}
        self.assignments: Any = None
        self.dead_letters: Any = None
        self.inquiries_topic: Any = None
        # The inquiries' content for the offers, and the wallboard's snapshots.
        self.contents = InquiryContents(sizes=settings.sizes)
        # Messages joining their conversation's open inquiry (conversations.py).
        self.conversations = Conversations(agent_state, self.contents, metrics)
        self.snapshots = QueueSnapshots(
            positions_limit=settings.router_positions_limit,
            rate_window_s=settings.router_rate_window_s,
        )
        self.topic_input = {
            settings.topic_inquiries: "inquiries",
            settings.topic_agent_events: "agent-events",
            settings.topic_task_events: "task-events",
            ticks_topic_name(settings): "ticks",
        }

    def reload(self, config: RoutingConfig) -> None:
        """A new routing configuration (SIGHUP): in force for every workspace from now.

        Each workspace's core takes it inside that workspace's next event
        (`_router`), so what it changes is written to the tables on the
        workspace's partition like any other change.
        """
        self.config = config
        self.workspace_label = WorkspaceLabel(
            [*self.settings.metrics_workspaces, *config.workspaces]
        )

    def forget_all(self) -> None:
        """Drop the in-memory state; it is rebuilt from the tables when next needed."""
        self.workspaces.clear()
        self._other_queues.clear()
        self.partition_of.clear()
        self.stream_offsets.clear()
        self._listed_at.clear()

    def assigned(self, partitions: Any, generation: int) -> None:
        """The group gave this worker `partitions` in `generation`."""
        self.owned = dict.fromkeys(partitions, generation)
        self.taken_over_at = dict.fromkeys(partitions, self.clock())

    def revoked(self) -> None:
        """The partitions may move: own none until the next assignment."""
        self.owned = {}
        self.forget_all()

    def owns(self, partition: int) -> bool:
        """Whether this worker may still act for `partition`.

        It must have been given the partition, and its consumer must still be
        in that generation of the group: one expelled (paused past its
        session) or rejoining acts for nothing until it is assigned again.
        """
        given = self.owned.get(partition)
        if given is None:
            return False
        live = self.live_generation()
        return live is None or live == given

    def fence(self, partition: int) -> agent_state_pb2.RouterFence:
        """Who is acting: agent-state refuses an older generation for the partition."""
        return agent_state_pb2.RouterFence(
            group=self.settings.router_app_id,
            partition=partition,
            generation=self.owned.get(partition, -1),
        )

    def lose(self, partition: int) -> None:
        """agent-state says a newer owner acted: stop acting for `partition` at once."""
        if self.owned.pop(partition, None) is None:
            return
        self.metrics.fenced.inc()
        for workspace, owner in list(self.partition_of.items()):
            if owner == partition:
                self.workspaces.pop(workspace, None)
                del self.partition_of[workspace]
        self.metrics.partitions.set(len(self.owned))
        log.warning("partition lost to a newer owner", extra={"partition": partition})

    # -- event handling -------------------------------------------------------

    def owns_event(self, message: Any) -> bool:
        """Whether this worker may act on a record: its partition is owned, and it
        was fetched in the generation the partition was given in (Faust skips a
        record of an older generation too; one waiting in a batch while the
        group rebalanced is fetched again from the committed offset)."""
        if not self.owns(message.partition):
            return False
        fetched_in = getattr(message, "generation_id", None)
        return fetched_in is None or fetched_in == self.owned.get(message.partition)

    async def handle(self, event: EventT) -> None:
        """Process one record from any input topic (a batch of one)."""
        await self.handle_batch([event])

    async def handle_batch(self, events: Sequence[EventT]) -> None:
        """Process the records available, in order; never raises for bad input.

        Every change is applied to its workspace's core first, in the order
        the records came (per partition, the order of the topic). Then each
        workspace touched takes one step: plan once, reserve every chosen
        agent in one call, publish the offers, write the tables once. A tick
        makes its partition's step the full one (time-driven work,
        reconciliation, a plan over everything waiting). The workspaces' steps
        run at the same time (their calls to agent-state overlap); each one's
        state is its own.
        """
        now = self.clock()
        self.metrics.batch_events.observe(len(events))
        # The workspaces to step, with their partition, and the partitions ticked.
        touched: dict[str, int] = {}
        ticked: dict[int, EventT] = {}
        # One record per partition in this batch: table writes are placed on its partition.
        acting: dict[int, EventT] = {}
        # Inquiries published before this worker took their partition over, per
        # workspace: checked with agent-state before they may be offered.
        checks: dict[str, list[str]] = {}
        for event in events:
            message = event.message
            source = self.topic_input.get(message.topic, message.topic)
            if not self.owns_event(message):
                # Fenced out, or fetched before a rebalance took it: not ours to act on.
                self.metrics.events.labels(source, "not_owned").inc()
                continue
            acting_on(event)
            acting[message.partition] = event
            if source == "ticks":
                ticked[message.partition] = event
                continue
            try:
                workspace, outcome = await self._apply(source, event, now, checks)
            except InvalidEvent as exc:
                await self._dead_letter(event, source, str(exc))
                continue
            self.metrics.events.labels(source, outcome).inc()
            if workspace:
                # The partition the workspace lives on (the first record's, even
                # when a publisher keyed a later one wrongly): its fence.
                touched.setdefault(workspace, self.partition_of.get(workspace, message.partition))
        full: set[str] = set()
        swept: dict[int, int] = {}
        for partition, tick in ticked.items():
            if not self.owns(partition):
                continue  # fenced out by an earlier call
            acting_on(tick)
            checkpoint = await self._sweep(partition, now)
            if checkpoint is not None:
                swept[partition] = checkpoint
            # Every workspace ever seen on this partition, loaded or not: after a
            # restart, waiting inquiries must climb their ladders without new events.
            for workspace in self.tables.workspaces_on(partition):
                if self.config.for_workspace(workspace) is not None:
                    full.add(workspace)
                    touched.setdefault(workspace, partition)
            self.metrics.events.labels("ticks", "processed").inc()
        last = events[-1]
        steps = [
            self._step(
                workspace,
                partition,
                workspace in full,
                checks.get(workspace, []),
                acting.get(partition, last),
                now,
            )
            for workspace, partition in touched.items()
        ]
        failed = [r for r in await asyncio.gather(*steps, return_exceptions=True) if r is not None]
        if failed:
            raise failed[0]
        # The sweep's checkpoint moves on once what it admitted was written.
        for partition, checkpoint in swept.items():
            if self.owns(partition):
                acting_on(ticked[partition])
                self.tables.set_sweep_checkpoint(partition, checkpoint)

    async def _apply(
        self, source: str, event: EventT, now: float, checks: dict[str, list[str]]
    ) -> tuple[str, str]:
        """Apply one record to its workspace's core: (the workspace, the outcome label)."""
        message = event.message
        if source == "inquiries":
            self.stream_offsets[message.partition] = message.offset
            workspace, outcome, check = await self._on_inquiry(
                message.key, event.value, message.partition, now, message.timestamp
            )
            if check:
                checks.setdefault(workspace, []).append(check)
            return workspace, outcome
        if source == "agent-events":
            return self._on_agent_event(event.value, message.partition)
        return self._on_task_event(event.value, message.partition, now)

    async def _on_inquiry(
        self,
        key: bytes | None,
        value: bytes,
        partition: int,
        now: float,
        published_at: float | None = None,
    ) -> tuple[str, str, str]:
        """(the workspace, the outcome label, the inquiry's id when it is to be checked
        with agent-state before it may be offered)."""
        too_large = self.settings.sizes.inquiry_problem(len(value or b""))
        if too_large is not None:
            # Its copy in the contents table and its assignments could not be written.
            raise InvalidEvent(too_large)
        proto = decode(inquiry_pb2.Inquiry, value)
        inquiry = inquiry_from_proto(proto, now)
        if key != proto.workspace.encode():
            # Keyed wrongly by its publisher: it may sit on another workspace's
            # partition. Re-publish keyed by workspace so its owner gets it.
            await self.inquiries_topic.send(key=proto.workspace.encode(), value=value)
            log.warning("inquiry re-keyed by workspace", extra={"inquiry_id": proto.id})
            return "", "processed", ""
        router = self._router(proto.workspace, partition)
        if router.is_new(inquiry.id) and await self.conversations.join(router, proto, inquiry, now):
            return proto.workspace, "processed", ""  # joined its conversation's open inquiry
        # Published before this worker took the partition over: the owner before
        # it may have offered or even finished it and died before its state was
        # durable. Offered only once agent-state has had its word.
        verify = (published_at or now) < self.taken_over_at.get(partition, 0.0)
        if not router.admit(inquiry, now, verify=verify):
            return proto.workspace, "duplicate", ""
        self.conversations.opened(router, inquiry, now)
        self.contents.keep(proto.workspace, proto.id, value)
        log.info(
            "inquiry queued",
            extra={
                "inquiry_id": inquiry.id,
                "workspace": inquiry.workspace,
                "queue": inquiry.queue,
            },
        )
        return proto.workspace, "processed", inquiry.id if verify else ""

    def _on_agent_event(self, value: bytes, partition: int) -> tuple[str, str]:
        event = decode(agent_pb2.AgentEvent, value)
        if not event.agent.id or not event.agent.workspace:
            raise InvalidEvent("AgentEvent.agent.id and .workspace are required")
        router = self._router(event.agent.workspace, partition)
        if event.change == agent_pb2.AgentEvent.CHANGE_REMOVED:
            router.remove_agent(event.agent.id)
            return router.workspace, "processed"
        held = router.agents.get(event.agent.id)
        if held is not None and held.version == event.agent.version:
            # The record the router already took from agent-state's answer
            # (the reservation it made): nothing to apply, nothing to plan.
            return router.workspace, "echo"
        if not router.update_agent(agent_from_proto(event.agent)):
            return router.workspace, "duplicate"
        return router.workspace, "processed"

    def _on_task_event(self, value: bytes, partition: int, now: float) -> tuple[str, str]:
        event = decode(task_pb2.TaskEvent, value)
        if not event.inquiry_id or not event.workspace:
            raise InvalidEvent("TaskEvent.inquiry_id and .workspace are required")
        router = self._router(event.workspace, partition)
        if event.type == task_pb2.TaskEvent.TYPE_OFFERED:
            # agent-state's record of a reservation: this router's own offer (an
            # echo), or one a worker before it made, which reconciliation adopts.
            inquiry = router.inquiries.get(event.inquiry_id)
            mine = inquiry is not None and inquiry.reservation_id == event.reservation_id
            return router.workspace, "echo" if mine else "processed"
        if event.type == task_pb2.TaskEvent.TYPE_CALLBACK_REQUESTED:
            # From ingest, not agent-state: the customer asked to be called back.
            outcome = router.callback_requested(
                event.inquiry_id, callback_number(event), now, callback_channel(event)
            )
            changed = outcome is CallbackOutcome.REQUESTED
            return router.workspace, "processed" if changed else "duplicate"
        if not self._apply_task_event(router, event, now):
            return router.workspace, "duplicate"
        return router.workspace, "processed"

    def _apply_task_event(
        self, router: WorkspaceRouter, event: task_pb2.TaskEvent, now: float
    ) -> bool:
        """Apply one task event to the core; the same path for consumed and reconciled ones."""
        kind = event.type
        if kind in _OFFER_FAILURES:
            changed = router.offer_failed(
                event.inquiry_id, event.agent_id, event.reservation_id, _OFFER_FAILURES[kind], now
            )
            if changed:
                self.metrics.offer_failures.labels(_OFFER_FAILURES[kind]).inc()
            return changed
        if kind == task_pb2.TaskEvent.TYPE_ACCEPTED:
            known = event.inquiry_id in router.inquiries
            router.accepted(event.inquiry_id, event.agent_id, now)
            return known
        if kind == task_pb2.TaskEvent.TYPE_COMPLETED:
            return self._on_completed(router, event, now)
        if kind == task_pb2.TaskEvent.TYPE_ABANDONED:
            return router.abandoned(event.inquiry_id, now)
        if kind == task_pb2.TaskEvent.TYPE_TRANSFERRED and event.target_queue:
            return router.transferred_to_queue(
                event.inquiry_id,
                event.agent_id,
                event.reservation_id,
                event.target_queue,
                event.note,
                now,
            )
        if kind == task_pb2.TaskEvent.TYPE_TRANSFERRED:
            return router.transferred(event.inquiry_id, event.target_agent_id, event.reservation_id)
        return False

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
                target_queue=event.escalation.target_queue,
            )
        return router.resolved(event.inquiry_id, event.agent_id, now)

    async def _step(
        self,
        workspace: str,
        partition: int,
        full: bool,
        checks: list[str],
        acting: EventT,
        now: float,
    ) -> None:
        """One workspace's step after a batch: plan, reserve, publish, write, withdraw.

        `checks`: inquiries to check with agent-state first (published before
        this worker took the partition over). `full` (its partition ticked):
        first the time-driven work and the checks with agent-state, then a plan
        over everything waiting; otherwise a plan for what the batch changed.
        """
        acting_on(acting)  # this step's table writes go to the workspace's partition
        if not self.owns(partition):
            return
        router = self._router(workspace, partition)
        await self._check(router, partition, checks, "takeover", now)
        if full:
            router.housekeeping(now)
            await self._reconcile_workspace(router, partition, now)
            await self._check_overdue(router, partition, now)
            if self.owns(partition):  # messages whose delivery failed, tried again
                await self.conversations.redeliver(router, self.settings.router_checks_per_tick)
        await self._route(router, partition, now, full)
        await self._settle(router, partition, now)
        if full and self.owns(partition):
            self._observe_queues(router, now)

    # -- reconciliation -----------------------------------------------------------

    async def _check_overdue(self, router: WorkspaceRouter, partition: int, now: float) -> None:
        """Ask agent-state about offers and tasks whose next event is overdue, and swept inquiries."""
        due = router.overdue(
            now,
            self.settings.router_offer_grace_s,
            self.settings.router_task_silence_s,
            self.settings.router_checks_per_tick,
        )
        swept = [inquiry_id for inquiry_id in due if router.unverified(inquiry_id)]
        overdue = [inquiry_id for inquiry_id in due if not router.unverified(inquiry_id)]
        await self._check(router, partition, swept, "swept", now)
        await self._check(router, partition, overdue, "overdue", now)

    async def _check(
        self,
        router: WorkspaceRouter,
        partition: int,
        inquiry_ids: list[str],
        trigger: str,
        now: float,
    ) -> None:
        """GetReservation for each inquiry; the core makes the pictures agree."""
        if not inquiry_ids:
            return
        answers = await asyncio.gather(
            *(self.agent_state.get_reservation(router.workspace, i) for i in inquiry_ids),
            return_exceptions=True,
        )
        for inquiry_id, answer in zip(inquiry_ids, answers, strict=True):
            if isinstance(answer, AgentStateUnavailable):
                self.metrics.agent_state_errors.inc()
                continue  # still overdue: asked again on a later tick
            if isinstance(answer, BaseException):
                raise answer
            before = router.inquiries.get(inquiry_id)
            was_waiting = before is not None and before.state is InquiryState.WAITING
            outcome = router.reconcile(inquiry_id, authority_from_proto(answer), now)
            self.metrics.reconciliations.labels(trigger, outcome.value).inc()
            if outcome is Reconciled.APPLY_EVENT:
                # The event agent-state published and we never applied (lost):
                # through the same path as a consumed one.
                self._apply_task_event(router, answer.last_event, now)
            elif outcome is Reconciled.ADOPTED and was_waiting and not answer.reservation.accepted:
                # An offer made (by a worker before us) but never published:
                # publish it now, so every offer is on the assignments topic.
                await self._publish_adopted(router, router.inquiries[inquiry_id], answer, now)
            if outcome is not Reconciled.AGREED:
                log.info(
                    "inquiry reconciled with agent-state",
                    extra={"inquiry_id": inquiry_id, "outcome": outcome.value, "trigger": trigger},
                )

    async def _publish_adopted(
        self,
        router: WorkspaceRouter,
        inquiry: QueuedInquiry,
        answer: agent_state_pb2.GetReservationResponse,
        now: float,
    ) -> None:
        if not self.owns(self.partition_of.get(router.workspace, -1)):
            return
        reservation = answer.reservation
        agent = router.agents.get(reservation.agent_id)
        assignment = task_pb2.Assignment(
            inquiry_id=inquiry.id,
            workspace=inquiry.workspace,
            agent_id=reservation.agent_id,
            tier=agent.tier if agent else inquiry.min_tier,  # type: ignore[arg-type]
            queue=inquiry.queue,
            attempt=inquiry.attempts,
            channel=channel_value(inquiry.channel),  # type: ignore[arg-type]
            assigned_at=timestamp(now),
            escalation_step=inquiry.step,
            history=inquiry.history,
            reservation_id=reservation.reservation_id,
            offer_expires_at=reservation.expires_at,
            callback=callback_proto(inquiry),
        )
        self.contents.attach(assignment)
        await self.assignments.send(key=router.workspace.encode(), value=encode(assignment))

    async def _reconcile_workspace(
        self, router: WorkspaceRouter, partition: int, now: float
    ) -> None:
        """Every `router_reconcile_interval_s`, compare the workspace with agent-state's."""
        at = self.monotonic()
        last = self._listed_at.get(router.workspace)
        if last is not None and at - last < self.settings.router_reconcile_interval_s:
            return
        self._listed_at[router.workspace] = at
        try:
            listed = await self.agent_state.list_reservations(router.workspace)
        except AgentStateUnavailable:
            self.metrics.agent_state_errors.inc()
            return
        held = {r.inquiry_id: held_from_proto(r) for r in listed.reservations}
        await self._check(router, partition, router.reconcile_workspace(held), "workspace", now)
        # The agents too: a worker that died after consuming an agent's events
        # but before its table writes were durable leaves a stale picture (e.g.
        # a slot still taken) that no further event of an idle agent corrects.
        try:
            agents = await self.agent_state.list_agents(router.workspace)
        except AgentStateUnavailable:
            self.metrics.agent_state_errors.inc()
            return
        for agent in agents:
            router.update_agent(agent_from_proto(agent))

    async def _withdraw(
        self, router: WorkspaceRouter, partition: int, withdrawals: Sequence[Withdrawal]
    ) -> None:
        """Take back at agent-state the offers the core gave up (abandoned, finished)."""
        if not withdrawals:
            return
        fence = self.fence(partition)
        answers = await asyncio.gather(
            *(
                self.agent_state.withdraw(
                    router.workspace, w.inquiry_id, w.reservation_id, w.reason, fence
                )
                for w in withdrawals
            ),
            return_exceptions=True,
        )
        for withdrawal, answer in zip(withdrawals, answers, strict=True):
            if isinstance(answer, Fenced):
                self.lose(partition)
            elif isinstance(answer, AgentStateUnavailable):
                # The offer times out at agent-state anyway; the periodic
                # reconciliation withdraws it when agent-state is back.
                self.metrics.agent_state_errors.inc()
                log.warning("withdrawal failed", extra={"error": str(answer)})
            elif isinstance(answer, BaseException):
                raise answer
            else:
                self.metrics.withdrawals.labels(withdrawal.reason).inc()

    async def _sweep(self, partition: int, now: float) -> int | None:
        """Admit the inquiries a finished re-read of the partition found never seen;
        start the next re-read when one is due.

        The reading (a consumer of its own, `sweep.py`) runs beside the stream,
        never inside a batch: a batch that waited for it waited for the
        broker's fetch wait, and everything in the batch with it (0.25-0.8 s on
        the embedded broker, every `router_sweep_interval_s`). What it read is
        admitted at a tick of the partition after it finished, by the worker
        that started it, in the generation it started in (a read begun for an
        earlier ownership is dropped). Admitted inquiries wait for
        agent-state's word (`verify`) before they are offered, so one that was
        finished long ago is not offered again. Returns the new checkpoint,
        written once the step wrote what was admitted.
        """
        pending = self._sweep_reads.get(partition)
        if pending is not None:
            generation, reading = pending
            if not reading.done():
                return None  # still reading: the stream does not wait for it
            del self._sweep_reads[partition]
            if generation != self.owned.get(partition):
                if not reading.cancelled():
                    reading.exception()  # retrieved: a read for an ended ownership is moot
                return None
            swept = reading.result()
            if swept is None:
                return None
            checkpoint = self._admit_swept(partition, swept.records, now)
            if swept.behind:
                # Not caught up (a batch at a time): go on at once rather than
                # after the interval, so the sweep keeps up with any arrival rate;
                # from where this one ended (its checkpoint is written after the step).
                self._start_sweep(partition, now, checkpoint)
            return checkpoint
        at = self.monotonic()
        last = self._swept_at.get(partition)
        if last is not None and at - last < self.settings.router_sweep_interval_s:
            return None
        self._swept_at[partition] = at
        self._start_sweep(partition, now)
        return None

    def _start_sweep(self, partition: int, now: float, start: int | None = None) -> None:
        """Start re-reading the partition's inquiries since the checkpoint, beside the stream.

        Reads up to the last record the stream processed here, so what the
        stream is about to read is not read twice; once the group has
        committed everything on the partition (no lag), to its end, so a
        skipped record at the very end is found too. From `start`, else the
        partition's checkpoint.
        """
        highwater = self.highwaters.get(partition)
        caught_up = (
            self.lags.get((self.settings.topic_inquiries, partition)) == 0 and highwater is not None
        )
        upto = self.stream_offsets.get(partition)
        if upto is None and not caught_up:
            return
        limit = highwater if caught_up and highwater is not None else (upto or 0) + 1
        reading = asyncio.ensure_future(
            self._read_sweep(
                partition,
                self.tables.sweep_checkpoint(partition) if start is None else start,
                limit,
                now,
            )
        )
        self._sweep_reads[partition] = (self.owned.get(partition, -1), reading)

    async def _read_sweep(
        self, partition: int, start: int | None, limit: int, now: float
    ) -> SweepRead | None:
        """The records of [start, limit), at most `router_sweep_batch` of them (None: none)."""
        if start is None:
            start = await self.reader.offset_at(partition, now - REMEMBER_FINISHED_S)
        end = min(start + self.settings.router_sweep_batch, limit)
        if start >= end:
            return None
        records = await self.reader.read(partition, start, end)
        return SweepRead(records, behind=bool(records) and end < limit)

    def _admit_swept(self, partition: int, records: Sequence[Any], now: float) -> int | None:
        """Admit the swept inquiries never seen here; the checkpoint after them."""
        found = 0
        for record in records:
            if self.settings.sizes.inquiry_problem(len(record.value or b"")) is not None:
                continue  # the stream dead-lettered it
            try:
                proto = decode(inquiry_pb2.Inquiry, record.value)
                inquiry = inquiry_from_proto(proto, now)
                if record.key != proto.workspace.encode():
                    continue  # re-published keyed by workspace; that copy counts
                router = self._router(proto.workspace, partition)
            except InvalidEvent:
                continue  # the stream dead-lettered it
            if router.is_new(inquiry.id) and router.admit(inquiry, now, verify=True):
                found += 1
                self.contents.keep(proto.workspace, proto.id, record.value)
                log.warning(
                    "inquiry found by the sweep",
                    extra={"inquiry_id": inquiry.id, "offset": record.offset},
                )
        if found:
            self.metrics.swept.inc(found)
        return records[-1].offset + 1 if records else None

    def stop_sweeps(self) -> None:
        """Cancel the re-reads under way (the worker stops)."""
        for _, reading in self._sweep_reads.values():
            reading.cancel()
        self._sweep_reads.clear()

    # -- routing ----------------------------------------------------------------

    async def _route(self, router: WorkspaceRouter, partition: int, now: float, full: bool) -> None:
        """Plan offers, reserve every chosen agent in one call, publish the offers.

        The plan covers what changed since the last one (`full`: everything
        waiting). A large plan (agents back from a break, a burst) is reserved
        `MAX_CALL_RESERVATIONS` at a time, each call answered and its offers
        published before the next, so no call outgrows its deadline. Refused
        reservations are planned again, a few times at most.
        """
        started = time.perf_counter()
        offers = router.plan(now) if full else router.plan_changed(now)
        self.metrics.decision.observe(time.perf_counter() - started)
        for _ in range(3):  # re-plan after refusals, a few times at most
            refused: list[str] = []
            for start in range(0, len(offers), MAX_CALL_RESERVATIONS):
                chunk = offers[start : start + MAX_CALL_RESERVATIONS]
                if not await self._reserve(router, partition, chunk, refused, now):
                    return
            if not refused:
                return
            offers = router.plan(now) if full else router.plan(now, inquiry_ids=refused)

    async def _reserve(
        self,
        router: WorkspaceRouter,
        partition: int,
        offers: list[Offer],
        refused: list[str],
        now: float,
    ) -> bool:
        """Reserve the offers' agents in one call; record and publish what agent-state
        reserved, add the refused inquiries to `refused`. False: stop routing for now
        (fenced, agent-state unavailable, the partition lost)."""
        if not self.owns(partition):
            return False
        planned = [(offer, router.inquiries[offer.inquiry_id]) for offer in offers]
        assignments = [
            self._assignment(inquiry, offer.agent_id, offer, now) for offer, inquiry in planned
        ]
        try:
            results = await self.agent_state.reserve_all(assignments, self.fence(partition))
        except Fenced:
            # A newer owner acted for the partition: publish nothing, forget it.
            self.lose(partition)
            return False
        except AgentStateUnavailable as exc:
            self.metrics.agent_state_errors.inc()
            log.warning(
                "agent-state unavailable; retrying on the next tick", extra={"error": str(exc)}
            )
            return False
        if not self.owns(partition):
            return False  # lost the partition while the reservations were out
        available = True
        offered: list[task_pb2.Assignment] = []
        resolved: list[str] = []
        for (offer, inquiry), assignment, result in zip(planned, assignments, results, strict=True):
            if isinstance(result, ReservationRefused) and result.last_event is not None:
                # Resolved already (its record lost here, e.g. with a killed
                # worker's unwritten state): the check applies agent-state's
                # events as if consumed, so it is closed, not planned again.
                self.metrics.reservations_refused.inc()
                resolved.append(inquiry.id)
            elif isinstance(result, ReservationRefused):
                self.metrics.reservations_refused.inc()
                # Take agent-state's record when it sent one; otherwise keep
                # the agent out of planning until its next event.
                if result.agent is None or not router.update_agent(agent_from_proto(result.agent)):  # fmt: skip
                    router.reservation_refused(inquiry.id, offer.agent_id)
                refused.append(inquiry.id)
            elif isinstance(result, AgentStateUnavailable):
                self.metrics.agent_state_errors.inc()
                log.warning(
                    "agent-state unavailable; retrying on the next tick",
                    extra={"error": str(result)},
                )
                available = False
            else:
                offered.append(self._offered(router, inquiry, offer, assignment, result, now))
        for assignment in offered:
            await self.assignments.send(key=router.workspace.encode(), value=encode(assignment))
        await self._check(router, partition, resolved, "refused", now)
        return available

    def _offered(
        self,
        router: WorkspaceRouter,
        inquiry: QueuedInquiry,
        offer: Offer,
        assignment: task_pb2.Assignment,
        reserved: Reserved,
        now: float,
    ) -> task_pb2.Assignment:
        """agent-state holds the reservation: record the offer; the assignment to publish."""
        holder = reserved.reservation.agent_id
        if reserved.already_reserved and holder != offer.agent_id:
            # A worker before us reserved it and died: adopt its offer.
            assignment = self._assignment(inquiry, holder, offer, now)
        assignment.reservation_id = reserved.reservation.reservation_id
        assignment.offer_expires_at.CopyFrom(reserved.reservation.expires_at)
        router.offer_made(
            inquiry.id,
            holder,
            assignment.reservation_id,
            now,
            seconds(reserved.reservation.expires_at),
            agent=agent_from_proto(reserved.agent),
        )
        if reserved.reservation.accepted:
            # Accepted while the previous owner's state was lost: in work already.
            router.accepted(inquiry.id, holder, now)
        assignment.attempt = inquiry.attempts
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
        return assignment

    async def _settle(self, router: WorkspaceRouter, partition: int, now: float) -> None:
        """Act on what the core decided in this step: count and log it, write the
        tables, take back the offers it gave up."""
        step = router.take_step()
        self._notices(router, step.notices, now)
        if not self.owns(partition):
            return  # a worker that lost the partition writes nothing for it
        self.tables.persist(router, step.changes)
        self.contents.forget(
            router.workspace, [i for i in step.changes.inquiries if i not in router.inquiries]
        )
        await self._withdraw(router, partition, step.withdrawals)

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
            callback=callback_proto(inquiry),
        )
        self.contents.attach(assignment)
        if fit_assignment(assignment, self.settings.sizes.assignment_bytes):
            # A long history or a conversation grown past what one record carries.
            log.warning(
                "assignment cut to fit the record size",
                extra={"inquiry_id": inquiry.id, "bytes": assignment.ByteSize()},
            )
        return assignment

    def _notices(self, router: WorkspaceRouter, notices: Sequence[Notice], now: float) -> None:
        for notice in notices:
            match notice.kind:
                case NoticeKind.ESCALATED:
                    # The ladder's own reasons, or "agent": an agent's words (free
                    # text, possibly personal) are never a label value and never logged.
                    reason = notice.reason if notice.reason in _LADDER_REASONS else "agent"
                    self.metrics.escalations.labels(str(notice.step), reason).inc()
                    log.info(
                        "inquiry escalated",
                        extra={
                            "inquiry_id": notice.inquiry_id,
                            "step": notice.step,
                            "reason": reason,
                        },
                    )
                case NoticeKind.ABANDONED:
                    # A miss where the channel has a target (README, "Service level").
                    missed = "no" if notice.channel in router.config.service_levels else "unknown"
                    workspace = self.workspace_label(router.workspace)
                    self.metrics.abandoned.labels(
                        workspace, notice.queue, notice.channel, missed
                    ).inc()
                case NoticeKind.FOLLOW_UP_SCHEDULED:
                    self.metrics.follow_ups.labels("scheduled").inc()
                case NoticeKind.FOLLOW_UP_DUE:
                    self.metrics.follow_ups.labels("due").inc()
                case NoticeKind.ANSWERED:
                    self._count_answer(router, notice, now)
                case NoticeKind.CLOSED_ARRIVAL:
                    self.metrics.closed_arrivals.labels(notice.queue, notice.reason).inc()
                    log.info(
                        "inquiry arrived while its queue was closed",
                        extra={
                            "inquiry_id": notice.inquiry_id,
                            "queue": notice.queue,
                            "policy": notice.reason,
                        },
                    )
                case NoticeKind.TRANSFERRED:
                    # The agent's note is in the inquiry's history only: never logged.
                    self.metrics.transfers.labels(notice.queue, notice.to_queue).inc()
                    log.info(
                        "inquiry transferred to a queue",
                        extra={
                            "inquiry_id": notice.inquiry_id,
                            "queue": notice.queue,
                            "to_queue": notice.to_queue,
                            "agent_excluded": notice.reason == "excluded",
                        },
                    )
                case NoticeKind.CALLBACK:
                    self.metrics.callbacks.labels(notice.reason).inc()
                    log.info(  # ids and the outcome only: the number is personal data
                        "callback requested",
                        extra={
                            "inquiry_id": notice.inquiry_id,
                            "queue": notice.queue,
                            "outcome": notice.reason,
                        },
                    )
                case NoticeKind.OVERFLOWED:
                    self.metrics.overflows.labels(
                        notice.queue, notice.to_queue, notice.reason
                    ).inc()
                    log.info(
                        "inquiry overflowed",
                        extra={
                            "inquiry_id": notice.inquiry_id,
                            "queue": notice.queue,
                            "to_queue": notice.to_queue,
                            "trigger": notice.reason,
                        },
                    )

    def _count_answer(self, router: WorkspaceRouter, notice: Notice, now: float) -> None:
        target = router.config.service_levels.get(notice.channel)
        within = None if target is None else notice.wait_s <= target
        self.snapshots.answered(router.workspace, notice.queue, within, now)
        label = "unknown" if within is None else ("yes" if within else "no")
        self.metrics.wait.labels(notice.queue, notice.channel).observe(notice.wait_s)
        workspace = self.workspace_label(router.workspace)
        self.metrics.answered.labels(workspace, notice.queue, notice.channel, label).inc()

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
        config = self.config.for_workspace(workspace)
        if config is None:
            # Not configured (or removed by a reload): its state stays in the
            # tables until a configuration names the workspace again.
            self.workspaces.pop(workspace, None)
            raise InvalidEvent(f"unknown workspace {workspace!r}: not in the routing configuration")
        if router is not None:
            if router.config is not config:
                router = self._reconfigure(router, config)
            return router
        router = self.tables.load(workspace, config)
        self.workspaces[workspace] = router
        self.partition_of[workspace] = partition
        self.tables.place(workspace, partition)
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

    def _reconfigure(self, router: WorkspaceRouter, config: WorkspaceConfig) -> WorkspaceRouter:
        """A loaded workspace's core under a reloaded configuration (it replaces the old)."""
        fresh = router.reconfigured(config, self.clock())
        self.workspaces[router.workspace] = fresh
        log.info(
            "workspace reconfigured",
            extra={
                "workspace": router.workspace,
                "inquiries_moved": len(fresh.changed_inquiries - router.changed_inquiries),
            },
        )
        return fresh

    async def _dead_letter(self, event: EventT, source: str, reason: str) -> None:
        message = event.message
        value = message.value or b""
        if len(value) + len(reason) + 1024 > self.settings.sizes.record_bytes:
            # The letter must fit one record too: the record stays where it is.
            reason = (
                f"{reason}; its value ({len(value)} bytes) is not copied here: "
                "read it at the source topic, partition and offset"
            )
            value = b""
        letter = dead_letter_pb2.DeadLetter(
            source_topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key or b"",
            value=value,
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
        # A step writes many table records and offers at once: a few
        # milliseconds' linger sends them in a few requests, not one each.
        producer_linger=0.005,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # The one record size limit of every producer (omniroute.sizes); Faust's own is lower.
        producer_max_request_size=settings.kafka_max_request_bytes,
        recovery_consistency_check=settings.router_recovery_consistency_check,
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
    router.tables.inquiries = app.Table("inquiries", default=None, **table)
    router.tables.agents = app.Table("agents", default=None, **table)
    router.tables.threads = app.Table("threads", default=None, **table)
    router.tables.workspaces = app.Table("workspaces", default=None, **table)
    # The sweep's checkpoint per partition (key: the partition number).
    router.tables.sweeps = app.Table("sweeps", default=None, **table)
    router.live_generation = lambda: group_generation(app)
    router.contents.table = app.Table("contents", default=None, **table)
    router.snapshots.table = app.Table("answered", default=None, **table)
    router.snapshots.topic = app.topic(settings.topic_queue_snapshots, **raw)

    @app.agent(inputs)
    async def route(stream: Any) -> None:
        async for events in batches(
            stream, settings.router_batch_max, settings.router_batch_wait_s
        ):
            await router.handle_batch(events)

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
        router.lags = lag.update(app.consumer)
        router.highwaters = inquiry_highwaters(app.consumer, settings.topic_inquiries)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_clients(sender: Any, **kwargs: Any) -> None:
        router.stop_sweeps()
        await router.reader.close()
        await router.agent_state.close()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Partitions may move to another worker; rebuild from the tables when
        # next needed rather than risk acting on a copy that went stale.
        router.revoked()
        # Per-workspace gauges too: a workspace that moved would otherwise show its
        # last depth and oldest wait here forever (and fire alerts); its new
        # owner sets them on its next tick.
        router.metrics.forget_workspaces()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        owned = [tp.partition for tp in assigned if tp.topic == ticks.get_topic_name()]
        # Faust records the generation the consumer joined in before this signal.
        router.assigned(owned, int(getattr(app, "consumer_generation_id", 0) or 0))
        router.metrics.partitions.set(len(owned))

    return app


def inquiry_highwaters(consumer: Any, topic: str) -> dict[int, int]:
    """The high watermark of each owned partition of the inquiries topic (from fetches;
    the embedded broker's ListOffsets can be short of it)."""
    found: dict[int, int] = {}
    for tp in consumer.assignment():
        if tp.topic == topic:
            try:
                found[tp.partition] = int(consumer.highwater(tp))
            except Exception:  # the consumer is (re)starting; measured next time
                continue
    return found


def encode_tick(now: float) -> bytes:
    """A tick's payload: the sender's time (for logs; the handler uses its own clock)."""
    return str(now).encode()

"""The AgentState gRPC service: a thin adapter between calls and the roster.

Each call is authenticated, validated, applied to the roster (atomically: the
roster never awaits), its events put in the outbox, and answered only once the
broker has acknowledged them, so what a caller was told has happened is on the
broker. A call whose deadline comes first is answered UNAVAILABLE; its change
is kept and published, and a retry (same request id, or the natural key) gets
the first answer once it is durable. Errors map to status codes:
INVALID_ARGUMENT (names the field), NOT_FOUND, FAILED_PRECONDITION, ABORTED
(fenced: an older router generation), UNAUTHENTICATED, PERMISSION_DENIED,
UNAVAILABLE (broker), INTERNAL (a bug; logged, never a crash).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from omniroute.grpc_client import AGENT_RECORD_METADATA, LAST_EVENT_METADATA
from omniroute.kafka import BrokerUnavailable
from omniroute.sizes import SizeBudget
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, task_pb2
from omniroute_agent_state.auth import Authenticator, Caller, PermissionDenied, Unauthenticated
from omniroute_agent_state.content import DeskContent
from omniroute_agent_state.metrics import AgentStateMetrics
from omniroute_agent_state.outbox import Outbox
from omniroute_agent_state.retries import RequestLog
from omniroute_agent_state.roster import (
    Changes,
    Fenced,
    Finished,
    InvalidRequest,
    NotPossible,
    Refused,
    Reserved,
    ReserveRequest,
    Roster,
    RosterError,
    UnknownAgent,
)

log = logging.getLogger("omniroute.agent_state")
R = TypeVar("R")
E = TypeVar("E")
M = TypeVar("M", bound=Message)
Offer = agent_state_pb2.Offer
TaskEvent = task_pb2.TaskEvent

_TASK_TYPES = {
    task_pb2.TaskEvent.TYPE_OFFERED: "offered",
    task_pb2.TaskEvent.TYPE_ACCEPTED: "accepted",
    task_pb2.TaskEvent.TYPE_DECLINED: "declined",
    task_pb2.TaskEvent.TYPE_OFFER_TIMEOUT: "offer_timeout",
    task_pb2.TaskEvent.TYPE_WITHDRAWN: "withdrawn",
    task_pb2.TaskEvent.TYPE_COMPLETED: "completed",
    task_pb2.TaskEvent.TYPE_TRANSFERRED: "transferred",
}

_CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownAgent, grpc.StatusCode.NOT_FOUND),
    (NotPossible, grpc.StatusCode.FAILED_PRECONDITION),
    (Fenced, grpc.StatusCode.ABORTED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
]


class QueuesUnknown(Exception):
    """A transfer to a queue before the router's queues of the workspace were seen."""


def _status_of(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message a refused or failed call answers with."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code, str(exc)
    if isinstance(exc, BrokerUnavailable | QueuesUnknown):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    return grpc.StatusCode.INTERNAL, "internal error; see the service log"


def rpc(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Time and count a unary call; turn refusals and failures into gRPC status codes."""
    name = method.__name__

    @functools.wraps(method)
    async def handle(
        self: AgentStateServicer, request: Any, context: grpc.aio.ServicerContext
    ) -> R:
        started = time.perf_counter()
        code, message = grpc.StatusCode.OK, ""
        try:
            return await method(self, request, context)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            code, message = _status_of(exc)
            self._log_failure(name, code, exc)
        finally:
            self.metrics.observe_rpc(name, code.name, time.perf_counter() - started)
        await context.abort(code, message)
        raise AssertionError("unreachable: abort raises")

    return handle


@dataclass(eq=False)  # identity hash: each client is its own entry in a set
class _Watch(Generic[E]):
    """One streaming client's buffer; a client that falls too far behind is cut off."""

    queue: asyncio.Queue[E]
    overflowed: bool = False

    def push(self, item: E) -> None:
        """Buffer `item` for the client, or mark it overflowed when its buffer is full."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


@dataclass
class _Watchers(Generic[E]):
    """Streaming clients by key (agent id or workspace)."""

    by_key: dict[str, set[_Watch[E]]] = field(default_factory=dict)

    def add(self, key: str, maxsize: int) -> _Watch[E]:
        """Register a new client for `key`."""
        watch: _Watch[E] = _Watch(asyncio.Queue(maxsize))
        self.by_key.setdefault(key, set()).add(watch)
        return watch

    def remove(self, key: str, watch: _Watch[E]) -> None:
        """Forget a client that hung up."""
        watches = self.by_key.get(key)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self.by_key[key]

    def push(self, key: str, item: E) -> None:
        """Send `item` to every client of `key`."""
        for watch in self.by_key.get(key, ()):
            watch.push(item)


class AgentStateServicer(agent_state_pb2_grpc.AgentStateServicer):
    """agent-state's gRPC API over one roster."""

    def __init__(
        self,
        roster: Roster,
        outbox_for: Callable[[Callable[[Changes], None]], Outbox],
        metrics: AgentStateMetrics,
        authenticator: Authenticator | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        watch_queue_max: int = 10_000,
        publish_wait_s: float = 10.0,
        requests: RequestLog | None = None,
        queues: Callable[[str], Mapping[str, bool] | None] = lambda workspace: None,
        sizes: SizeBudget | None = None,
    ) -> None:
        self.roster = roster
        # A workspace's queues as the router last published them, each with
        # whether it accepts transfers (None: no snapshot seen yet).
        self.queues = queues
        self.outbox = outbox_for(self.durable)
        self.metrics = metrics
        self.auth = authenticator or Authenticator({}, {})
        self.clock = clock
        self.monotonic = monotonic
        self.watch_queue_max = watch_queue_max
        self.publish_wait_s = publish_wait_s
        self.requests = requests or RequestLog()
        self.offer_watchers: _Watchers[Offer] = _Watchers()
        self.agent_watchers: _Watchers[agent_pb2.AgentEvent] = _Watchers()
        self.undurable_offers: set[str] = set()  # reservation ids not yet acknowledged
        # Agents with an open WatchOffers stream: the stream keeps their session alive.
        self.open_desks: Counter[str] = Counter()
        self.failing_expiry: dict[str, str] = {}  # agent id -> why its expiry fails
        # What desks are shown for each reservation held (assignment, messages), durably.
        self.content = DeskContent(sizes=sizes)

    # -- plumbing -------------------------------------------------------------

    def caller(self, context: Any, method: str, agent_id: str | None) -> Caller:
        """Authenticate the call and check that the caller may do this to `agent_id`."""
        caller = self.auth.identify(context.invocation_metadata() or (), _peer(context))
        self.auth.authorize(caller, method, agent_id)
        return caller

    def now(self) -> tuple[float, float]:
        """Wall time (for the wire) and monotonic time (for durations)."""
        return self.clock(), self.monotonic()

    async def commit(
        self,
        method: str,
        request: Message,
        context: Any,
        apply: Callable[[float, float], tuple[M, Changes]],
    ) -> M:
        """Apply a change, answer once its events are durable; a retry gets the first answer.

        `apply(now, mono)` changes the roster and returns the answer and the
        changes. With a request id, a retry is answered from the request log;
        without, the roster answers by the natural key. Either way the answer
        waits until everything the change implies is acknowledged.
        """
        remembered = self.requests.find(method, request, self.monotonic())
        if remembered is not None:
            await self._durable(remembered.seq, context)
            answer = type(remembered.answer)()
            answer.CopyFrom(remembered.answer)
            return answer  # type: ignore[return-value]
        now, mono = self.now()
        answer, changes = apply(now, mono)
        seq = self.put(changes)
        self.requests.remember(method, request, answer, seq, mono)
        await self._durable(seq, context)
        return answer

    def put(self, changes: Changes) -> int:
        """Queue `changes` for the broker, with the tombstones of the content they ended.

        Every reservation that ends changes its agent's record, so the agents
        the changes name are the only ones whose content can have ended.
        """
        for agent_id in dict.fromkeys(e.agent.id for e in changes.agent_events):
            changes.contents += self.content.prune(agent_id, self.roster.agents.get(agent_id))
        return self.outbox.put(changes)

    async def _durable(self, seq: int, context: Any) -> None:
        """Wait for batch `seq`, within the caller's deadline (else `publish_wait_s`)."""
        remaining = context.time_remaining()
        # Answer a little before the caller gives up, so it learns the outcome.
        wait = self.publish_wait_s if remaining is None else max(0.0, remaining - 0.05)
        await self.outbox.wait(seq, wait)

    def durable(self, changes: Changes) -> None:
        """The broker acknowledged `changes`: count, log, tell the watchers and desks."""
        for event in changes.task_events:
            self.metrics.task_events.labels(_TASK_TYPES.get(event.type, "other")).inc()
            log.info(
                "task event",
                extra={
                    "type": _TASK_TYPES.get(event.type, "other"),
                    "inquiry_id": event.inquiry_id,
                    "agent_id": event.agent_id,
                    "workspace": event.workspace,
                },
            )
            self._tell_desk(event)
        for agent_event in changes.agent_events:
            self.agent_watchers.push(agent_event.agent.workspace, agent_event)
        for content in changes.contents:
            if content.value is not None and content.value.HasField("message"):
                self._tell_message(content.value.message)

    def _tell_message(self, message: task_pb2.ConversationMessage) -> None:
        """Push a durable customer message to the desk of the agent still holding it."""
        held = self.roster.reservation(message.workspace, message.inquiry_id)
        if held is not None and held[0].agent_id == message.agent_id:
            self.offer_watchers.push(message.agent_id, self._message_offer(held[0], message))

    def _tell_desk(self, event: task_pb2.TaskEvent) -> None:
        """Push what a durable task event means to the agent's desk (WatchOffers)."""
        match event.type:
            case TaskEvent.TYPE_OFFERED:
                self.undurable_offers.discard(event.reservation_id)
                held = self.roster.reservation(event.workspace, event.inquiry_id)
                if held is not None and held[0].reservation_id == event.reservation_id:
                    if not held[0].accepted:  # still open: the desk gets it now
                        self.offer_watchers.push(event.agent_id, self._offer(held[0]))
            case TaskEvent.TYPE_WITHDRAWN | TaskEvent.TYPE_OFFER_TIMEOUT:
                offer = self._offer(_reservation_of(event))
                offer.status = (
                    Offer.STATUS_WITHDRAWN
                    if event.type == TaskEvent.TYPE_WITHDRAWN
                    else Offer.STATUS_TIMED_OUT
                )
                offer.reason = event.reason or _TASK_TYPES[event.type]
                self.offer_watchers.push(event.agent_id, offer)
            case TaskEvent.TYPE_TRANSFERRED:  # the target's desktop learns of its new task
                held = self.roster.reservation(event.workspace, event.inquiry_id)
                if held is not None and held[0].reservation_id == event.reservation_id:
                    self.offer_watchers.push(event.target_agent_id, self._offer(held[0]))

    def on_failed_send(self) -> None:
        """The outbox will re-send: count it."""
        self.metrics.publish_errors.inc()

    def _log_failure(self, method: str, code: grpc.StatusCode, exc: Exception) -> None:
        if code == grpc.StatusCode.INTERNAL:
            log.error("unexpected error", exc_info=exc, extra={"method": method})
        elif code == grpc.StatusCode.UNAVAILABLE:
            log.warning("change not yet acknowledged when answering", extra={"method": method})
        elif code == grpc.StatusCode.ABORTED:
            log.warning("fenced call refused", extra={"method": method, "reason": str(exc)})

    # -- profile and presence -------------------------------------------------

    @rpc
    async def UpsertAgent(
        self, request: agent_state_pb2.UpsertAgentRequest, context: Any
    ) -> agent_pb2.Agent:
        caller = self.caller(context, "UpsertAgent", request.agent.id)

        def apply(now: float, mono: float) -> tuple[agent_pb2.Agent, Changes]:
            changes = self.roster.upsert(request.agent, caller.actor, now, mono)
            return _copy(self.roster.get(request.agent.id)), changes

        return await self.commit("UpsertAgent", request, context, apply)

    @rpc
    async def GetAgent(
        self, request: agent_state_pb2.GetAgentRequest, context: Any
    ) -> agent_pb2.Agent:
        self.caller(context, "GetAgent", request.agent_id)
        _require(request.agent_id, "agent_id")
        return self.roster.get(request.agent_id)

    @rpc
    async def ListAgents(
        self, request: agent_state_pb2.ListAgentsRequest, context: Any
    ) -> agent_state_pb2.ListAgentsResponse:
        self.caller(context, "ListAgents", None)
        _require(request.workspace, "workspace")
        if not 0 <= request.min_proficiency <= 5:
            raise InvalidRequest("min_proficiency must be 0-5")
        agents = self.roster.list(
            request.workspace,
            status=request.status,
            skill=request.skill,
            min_proficiency=request.min_proficiency,
            language=request.language,
            tier=request.tier,
            free_on_channel=request.free_on_channel,
        )
        return agent_state_pb2.ListAgentsResponse(agents=agents)

    @rpc
    async def SetStatus(
        self, request: agent_state_pb2.SetStatusRequest, context: Any
    ) -> agent_pb2.Agent:
        caller = self.caller(context, "SetStatus", request.agent_id)
        _require(request.agent_id, "agent_id")

        def apply(now: float, mono: float) -> tuple[agent_pb2.Agent, Changes]:
            changes = self.roster.set_status(
                request.agent_id, request.status, request.reason, caller.actor, now, mono
            )
            return _copy(self.roster.get(request.agent_id)), changes

        return await self.commit("SetStatus", request, context, apply)

    @rpc
    async def Heartbeat(
        self, request: agent_state_pb2.HeartbeatRequest, context: Any
    ) -> agent_state_pb2.HeartbeatResponse:
        self.caller(context, "Heartbeat", request.agent_id)
        _require(request.agent_id, "agent_id")

        def apply(now: float, mono: float) -> tuple[agent_state_pb2.HeartbeatResponse, Changes]:
            lapses_at, changes = self.roster.heartbeat(request.agent_id, now, mono)
            response = agent_state_pb2.HeartbeatResponse()
            if lapses_at:
                response.session_expires_at.FromNanoseconds(int(lapses_at * 1e9))
            return response, changes

        return await self.commit("Heartbeat", request, context, apply)

    # -- offers and tasks -----------------------------------------------------

    @rpc
    async def ReserveAgent(
        self, request: agent_state_pb2.ReserveAgentRequest, context: Any
    ) -> agent_state_pb2.ReserveAgentResponse:
        self.caller(context, "ReserveAgent", request.agent_id)
        self._fence(request)

        def apply(now: float, mono: float) -> tuple[agent_state_pb2.ReserveAgentResponse, Changes]:
            try:
                reservation, agent, already, changes = self.roster.reserve(
                    request.agent_id,
                    request.inquiry_id,
                    request.channel,
                    request.workspace,
                    now,
                    mono,
                )
            except Finished as finished:
                self.metrics.reservations.labels("refused").inc()
                # Why: the event that resolved it, so the router closes it too.
                context.set_trailing_metadata(
                    ((LAST_EVENT_METADATA, finished.last_event.SerializeToString()),)
                )
                raise
            except NotPossible:
                self.metrics.reservations.labels("refused").inc()
                refused = self.roster.agents.get(request.agent_id)
                if refused is not None:
                    # The caller's picture of the agent was stale: send the true one.
                    context.set_trailing_metadata(
                        ((AGENT_RECORD_METADATA, refused.SerializeToString()),)
                    )
                raise
            answer = self._reserved(request, Reserved(reservation, agent, already), changes)
            return answer, changes

        return await self.commit("ReserveAgent", request, context, apply)

    @rpc
    async def ReserveAgents(
        self, request: agent_state_pb2.ReserveAgentsRequest, context: Any
    ) -> agent_state_pb2.ReserveAgentsResponse:
        """Each reservation decided as ReserveAgent decides it, in order; answered when durable.

        The batch is checked first (size; one workspace, one fence; request
        ids distinct) and the fence once, for the whole call (ABORTED). Then
        each reservation is answered from the request log when its id was
        seen, else decided by the roster; a refusal is that reservation's
        result. Every change goes to the outbox as one batch and the call
        waits until it (and every remembered answer's batch) is durable.
        """
        self.caller(context, "ReserveAgents", None)
        asked = list(request.reservations)
        _check_batch(asked)
        if asked:
            self._fence(asked[0])
        now, mono = self.now()
        results: list[agent_state_pb2.ReserveAgentResult | None] = [None] * len(asked)
        undecided: list[int] = []
        for i, one in enumerate(asked):
            try:
                remembered = self.requests.find("ReserveAgent", one, mono)
            except InvalidRequest as exc:
                results[i] = _refusal(Refused(exc))
                continue
            if remembered is None:
                undecided.append(i)
            else:
                answer = agent_state_pb2.ReserveAgentResponse()
                answer.CopyFrom(remembered.answer)
                results[i] = agent_state_pb2.ReserveAgentResult(reserved=answer)
        decided, changes = self.roster.reserve_many(
            (
                ReserveRequest(
                    asked[i].agent_id, asked[i].inquiry_id, asked[i].channel, asked[i].workspace
                )
                for i in undecided
            ),
            now,
            mono,
        )
        answers: list[tuple[int, agent_state_pb2.ReserveAgentResponse]] = []
        for i, outcome in zip(undecided, decided, strict=True):
            if isinstance(outcome, Refused):
                self.metrics.reservations.labels("refused").inc()
                results[i] = _refusal(outcome)
                continue
            answers.append((i, self._reserved(asked[i], outcome, changes)))
        seq = self.put(changes)
        for i, answer in answers:
            self.requests.remember("ReserveAgent", asked[i], answer, seq, mono)
            results[i] = agent_state_pb2.ReserveAgentResult(reserved=answer)
        await self._durable(self.outbox.last_seq, context)
        return agent_state_pb2.ReserveAgentsResponse(results=[r for r in results if r is not None])

    def _reserved(
        self, request: agent_state_pb2.ReserveAgentRequest, reserved: Reserved, changes: Changes
    ) -> agent_state_pb2.ReserveAgentResponse:
        """Count a reservation made or found; a new one's offer waits for its durability.

        A new one's assignment is kept (and written with `changes`) for the desks.
        """
        self.metrics.reservations.labels("existing" if reserved.already else "reserved").inc()
        if not reserved.already:
            made = reserved.reservation
            changes.contents += self.content.offered(
                made.agent_id, made.reservation_id, request.assignment
            )
            self.undurable_offers.add(made.reservation_id)
        return agent_state_pb2.ReserveAgentResponse(
            reservation=reserved.reservation,
            agent=reserved.agent,
            already_reserved=reserved.already,
        )

    @rpc
    async def WithdrawOffer(
        self, request: agent_state_pb2.WithdrawOfferRequest, context: Any
    ) -> agent_state_pb2.WithdrawOfferResponse:
        self.caller(context, "WithdrawOffer", None)
        self._fence(request)

        def apply(now: float, mono: float) -> tuple[agent_state_pb2.WithdrawOfferResponse, Changes]:
            withdrawn, agent, changes = self.roster.withdraw(
                request.workspace, request.inquiry_id, request.reason, now, mono
            )
            answer = agent_state_pb2.WithdrawOfferResponse()
            if withdrawn is not None:
                answer.withdrawn.CopyFrom(withdrawn)
            if agent is not None:
                answer.agent.CopyFrom(agent)
            return answer, changes

        return await self.commit("WithdrawOffer", request, context, apply)

    @rpc
    async def GetReservation(
        self, request: agent_state_pb2.GetReservationRequest, context: Any
    ) -> agent_state_pb2.GetReservationResponse:
        self.caller(context, "GetReservation", None)
        answer = agent_state_pb2.GetReservationResponse()
        held = self.roster.reservation(request.workspace, request.inquiry_id)
        if held is not None:
            answer.reservation.CopyFrom(held[0])
        last = self.roster.last_event(request.workspace, request.inquiry_id)
        if last is not None:
            answer.last_event.CopyFrom(last)
        # What is answered is durable: wait for whatever is still on its way.
        await self._durable(self.outbox.last_seq, context)
        return answer

    @rpc
    async def ListReservations(
        self, request: agent_state_pb2.ListReservationsRequest, context: Any
    ) -> agent_state_pb2.ListReservationsResponse:
        self.caller(context, "ListReservations", None)
        answer = agent_state_pb2.ListReservationsResponse(
            reservations=self.roster.reservations(request.workspace)
        )
        answer.as_of.FromNanoseconds(int(self.clock() * 1e9))
        await self._durable(self.outbox.last_seq, context)
        return answer

    @rpc
    async def AcceptTask(
        self, request: agent_state_pb2.TaskRequest, context: Any
    ) -> agent_pb2.Agent:
        self.caller(context, "AcceptTask", request.agent_id)

        def apply(now: float, mono: float) -> tuple[agent_pb2.Agent, Changes]:
            changes = self.roster.accept(
                request.agent_id, request.inquiry_id, now, mono, request.reservation_id
            )
            return _copy(self.roster.get(request.agent_id)), changes

        return await self.commit("AcceptTask", request, context, apply)

    @rpc
    async def DeclineTask(
        self, request: agent_state_pb2.TaskRequest, context: Any
    ) -> agent_pb2.Agent:
        self.caller(context, "DeclineTask", request.agent_id)

        def apply(now: float, mono: float) -> tuple[agent_pb2.Agent, Changes]:
            changes = self.roster.decline(
                request.agent_id,
                request.inquiry_id,
                request.reason,
                now,
                mono,
                request.reservation_id,
            )
            return _copy(self.roster.get(request.agent_id)), changes

        return await self.commit("DeclineTask", request, context, apply)

    @rpc
    async def CompleteTask(
        self, request: agent_state_pb2.CompleteTaskRequest, context: Any
    ) -> agent_pb2.Agent:
        self.caller(context, "CompleteTask", request.agent_id)
        if request.resolution not in task_pb2.Resolution.values():
            raise InvalidRequest(f"resolution: unknown value {request.resolution}")
        outcome = task_pb2.TaskEvent(resolution=request.resolution)
        if request.HasField("follow_up"):
            outcome.follow_up.CopyFrom(request.follow_up)
        if request.HasField("escalation"):
            outcome.escalation.CopyFrom(request.escalation)

        def apply(now: float, mono: float) -> tuple[agent_pb2.Agent, Changes]:
            changes = self.roster.complete(request.agent_id, request.inquiry_id, outcome, now, mono)
            return _copy(self.roster.get(request.agent_id)), changes

        return await self.commit("CompleteTask", request, context, apply)

    @rpc
    async def TransferTask(
        self, request: agent_state_pb2.TransferTaskRequest, context: Any
    ) -> agent_state_pb2.TransferTaskResponse:
        self.caller(context, "TransferTask", request.agent_id)
        if request.target_queue or request.note:
            return await self._transfer_to_queue(request, context)

        def apply(now: float, mono: float) -> tuple[agent_state_pb2.TransferTaskResponse, Changes]:
            source = self.roster.agents.get(request.agent_id)
            held_here = next(
                (
                    r.reservation_id
                    for r in (source.reservations if source is not None else ())
                    if r.inquiry_id == request.inquiry_id
                ),
                "",
            )
            reservation, changes = self.roster.transfer(
                request.agent_id,
                request.inquiry_id,
                request.target_agent_id,
                request.reason,
                now,
                mono,
            )
            if changes and held_here:  # the target's desk gets the task with its content
                changes.contents += self.content.moved(held_here, reservation)
            answer = agent_state_pb2.TransferTaskResponse(
                reservation=reservation,
                agent=self.roster.get(request.agent_id),
                target=self.roster.get(request.target_agent_id),
            )
            return answer, changes

        return await self.commit("TransferTask", request, context, apply)

    async def _transfer_to_queue(
        self, request: agent_state_pb2.TransferTaskRequest, context: Any
    ) -> agent_state_pb2.TransferTaskResponse:
        """TransferTask with target_queue: validated against the router's queues of the workspace."""
        if request.target_agent_id:
            raise InvalidRequest("target_agent_id and target_queue: give one, not both")
        if not request.target_queue:
            raise InvalidRequest("target_queue is required with a note")
        workspace = self.roster.get(request.agent_id).workspace
        queues = self.queues(workspace)
        if queues is None:
            raise QueuesUnknown(
                f"target_queue: the queues of workspace {workspace!r} are not known yet "
                "(the router publishes them on queue-snapshots every tick); retry"
            )

        def apply(now: float, mono: float) -> tuple[agent_state_pb2.TransferTaskResponse, Changes]:
            changes = self.roster.transfer_to_queue(
                request.agent_id,
                request.inquiry_id,
                request.target_queue,
                request.note,
                queues,
                now,
                mono,
            )
            return agent_state_pb2.TransferTaskResponse(
                agent=self.roster.get(request.agent_id)
            ), changes

        return await self.commit("TransferTask", request, context, apply)

    @rpc
    async def DeliverMessage(
        self, request: agent_state_pb2.DeliverMessageRequest, context: Any
    ) -> agent_state_pb2.DeliverMessageResponse:
        """Push a customer's new message to the agent holding its inquiry."""
        self.caller(context, "DeliverMessage", None)
        message = request.message
        for value, name in (
            (message.workspace, "message.workspace"),
            (message.inquiry_id, "message.inquiry_id"),
            (message.agent_id, "message.agent_id"),
            (message.message.id, "message.message.id"),
        ):
            _require(value, name)

        def apply(
            now: float, mono: float
        ) -> tuple[agent_state_pb2.DeliverMessageResponse, Changes]:
            held = self.roster.reservation(message.workspace, message.inquiry_id)
            if held is None or held[0].agent_id != message.agent_id:
                raise NotPossible(f"message.agent_id: {message.agent_id} holds no reservation of the inquiry")  # fmt: skip
            # A message id delivered already changes nothing (a retry): answered once durable.
            kept = self.content.deliver(message.agent_id, held[0].reservation_id, message)
            answer = agent_state_pb2.DeliverMessageResponse(
                watched=self.open_desks[message.agent_id] > 0
            )
            return answer, Changes(contents=kept)

        return await self.commit("DeliverMessage", request, context, apply)

    def _message_offer(
        self, reservation: agent_pb2.Reservation, message: task_pb2.ConversationMessage
    ) -> Offer:
        offer = self._offer(reservation)
        offer.status = Offer.STATUS_MESSAGE
        offer.message.CopyFrom(message)
        return offer

    def _fence(
        self, request: agent_state_pb2.ReserveAgentRequest | agent_state_pb2.WithdrawOfferRequest
    ) -> None:
        """Refuse a router worker of an older generation (ABORTED); journal a newer one.

        A newer generation is journaled with the call's own changes (the
        outbox keeps order), so it is durable before the call is answered.
        """
        fence = request.fence if request.HasField("fence") else None
        self.put(self.roster.fence(fence))

    # -- streams --------------------------------------------------------------

    async def WatchOffers(
        self, request: agent_state_pb2.WatchOffersRequest, context: Any
    ) -> AsyncIterator[Offer]:
        """The agent's offers and tasks, then every new one and every withdrawal, until hang-up.

        Open offers come first, then accepted tasks (`reservation.accepted`),
        each with the router's assignment, then the customer messages
        delivered on them, so a desktop that (re)connects misses nothing, also
        after a restart of agent-state (content.py keeps them durably);
        an offer is pushed once it is durable (so also when the call that made
        it was cut off), and once more when it is withdrawn or times out
        (`status`, `reason`). Each (offer, status) is sent once even when it is
        made while the stream opens. While the stream is open it keeps the
        agent's desktop session alive.
        """
        await self._open_stream("WatchOffers", context, request.agent_id, "agent_id")
        watch = self.offer_watchers.add(request.agent_id, self.watch_queue_max)
        self.open_desks[request.agent_id] += 1
        sent: set[tuple[str, int, str]] = set()
        try:
            held = [
                r
                for r in self.roster.get(request.agent_id).reservations
                if r.reservation_id not in self.undurable_offers
            ]
            for reservation in sorted(held, key=lambda r: r.accepted):
                watch.push(self._offer(reservation))
            for reservation in held:
                for message in self.content.messages(reservation.reservation_id):
                    watch.push(self._message_offer(reservation, message))
            while True:
                offer = await watch.queue.get()
                if watch.overflowed:
                    await self._overflowed("WatchOffers", context)
                # A message has an id of its own: each is sent once, however many come.
                key = (offer.reservation.reservation_id, offer.status, offer.message.message.id)
                if key not in sent:
                    sent.add(key)
                    yield offer
        finally:
            self.offer_watchers.remove(request.agent_id, watch)
            self.open_desks[request.agent_id] -= 1
            if self.open_desks[request.agent_id] <= 0:
                del self.open_desks[request.agent_id]

    async def WatchAgents(
        self, request: agent_state_pb2.WatchAgentsRequest, context: Any
    ) -> AsyncIterator[agent_pb2.AgentEvent]:
        """Every (durable) change to the agents of one workspace from now on."""
        await self._open_stream("WatchAgents", context, request.workspace, "workspace")
        watch = self.agent_watchers.add(request.workspace, self.watch_queue_max)
        try:
            while True:
                event = await watch.queue.get()
                if watch.overflowed:
                    await self._overflowed("WatchAgents", context)
                yield event
        finally:
            self.agent_watchers.remove(request.workspace, watch)

    async def _open_stream(self, method: str, context: Any, key: str, field_name: str) -> None:
        """Authenticate and validate a stream before it starts; counted like a unary call."""
        try:
            self.caller(context, method, key if method == "WatchOffers" else None)
            _require(key, field_name)
            if method == "WatchOffers":
                self.roster.get(key)
        except (RosterError, Unauthenticated, PermissionDenied) as exc:
            code, message = _status_of(exc)
            self.metrics.observe_rpc(method, code.name, 0.0)
            await context.abort(code, message)
        self.metrics.observe_rpc(method, "OK", 0.0)

    async def _overflowed(self, method: str, context: Any) -> None:
        log.warning("slow stream client cut off", extra={"method": method})
        self.metrics.observe_rpc(method, "RESOURCE_EXHAUSTED", 0.0)
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED, "client fell too far behind; reconnect"
        )

    def _offer(self, reservation: agent_pb2.Reservation) -> Offer:
        """The offer for a reservation, with the router's assignment when known."""
        assignment = task_pb2.Assignment()
        known = self.content.assignment(reservation.reservation_id)
        if known is not None:
            assignment.CopyFrom(known)
        else:  # reserved without one (a tool), or already ended: rebuilt from the reservation
            assignment.inquiry_id = reservation.inquiry_id
            assignment.workspace = reservation.workspace
            assignment.agent_id = reservation.agent_id
            assignment.channel = reservation.channel
        assignment.reservation_id = reservation.reservation_id
        if reservation.HasField("expires_at"):
            assignment.offer_expires_at.CopyFrom(reservation.expires_at)
        offer = Offer(reservation=reservation, assignment=assignment)
        offer.offered_at.FromNanoseconds(int(self.clock() * 1e9))
        return offer

    # -- timers ---------------------------------------------------------------

    def expire_once(self) -> bool:
        """One round: keep streaming desktops' sessions alive; expire offers, wrap-ups, sessions.

        The roster decides; this only supplies the time and queues the
        changes (the outbox re-sends them until acknowledged). Returns whether
        every agent could be expired (a failing agent is reported, the others
        are expired all the same).
        """
        now, mono = self.now()
        changes = Changes()
        for agent_id in list(self.open_desks):
            agent = self.roster.agents.get(agent_id)
            if agent is not None and agent.status != agent_pb2.AGENT_STATUS_OFFLINE:
                changes = changes.then(self.roster.heartbeat(agent_id, now, mono)[1])
        result = self.roster.expire(now, mono)
        self.put(changes.then(result.changes))
        for agent_id, why in result.failed.items():
            self.metrics.expiry_failures.inc()
            if agent_id not in self.failing_expiry:  # logged when it starts failing
                log.error("expiry failed for an agent", extra={"agent_id": agent_id, "error": why})
        self.failing_expiry = result.failed
        return not result.failed

    async def expire_forever(
        self, interval_s: float, report: Callable[[bool], Awaitable[None]]
    ) -> None:
        """Run `expire_once` every `interval_s` until cancelled; `report` whether it is healthy.

        A round that raises is reported unhealthy and the loop carries on.
        """
        healthy: bool | None = None
        while True:
            await asyncio.sleep(interval_s)
            try:
                ok = self.expire_once()
            except Exception:  # the timer must outlive any bug in one round
                log.exception("expiry round failed")
                self.metrics.expiry_failures.inc()
                ok = False
            if ok != healthy:
                healthy = ok
                self.metrics.expiry_healthy.set(1 if ok else 0)
                await report(ok)


def _copy(agent: agent_pb2.Agent) -> agent_pb2.Agent:
    """A copy of a roster record: the record changes while the answer waits."""
    copy = agent_pb2.Agent()
    copy.CopyFrom(agent)
    return copy


def _reservation_of(event: task_pb2.TaskEvent) -> agent_pb2.Reservation:
    """The reservation a task event is about, as far as the event tells."""
    return agent_pb2.Reservation(
        reservation_id=event.reservation_id,
        agent_id=event.agent_id,
        inquiry_id=event.inquiry_id,
        channel=event.channel,
        workspace=event.workspace,
    )


# The most reservations one ReserveAgents call may carry (its answer, a record
# per reservation, stays well under gRPC's 4 MB default message limit).
MAX_BATCH = 1000


def _check_batch(asked: list[agent_state_pb2.ReserveAgentRequest]) -> None:
    """Refuse a batch as a whole (INVALID_ARGUMENT naming the field) before deciding any of it."""
    if len(asked) > MAX_BATCH:
        raise InvalidRequest(f"reservations: at most {MAX_BATCH} per call, got {len(asked)}")
    ids: set[str] = set()
    for i, one in enumerate(asked):
        if one.workspace != asked[0].workspace:
            raise InvalidRequest(
                f"reservations[{i}].workspace: every reservation of a call names the same "
                f"workspace ({asked[0].workspace!r})"
            )
        if one.fence != asked[0].fence:
            raise InvalidRequest(
                f"reservations[{i}].fence: every reservation of a call carries the same fence"
            )
        if one.request_id:
            if one.request_id in ids:
                raise InvalidRequest(
                    f"reservations[{i}].request_id: {one.request_id!r} is used twice in one call"
                )
            ids.add(one.request_id)


def _refusal(refused: Refused) -> agent_state_pb2.ReserveAgentResult:
    """A refused reservation's result: the code and message ReserveAgent would answer."""
    code, message = _status_of(refused.error)
    refusal = agent_state_pb2.ReserveRefusal(code=code.value[0], message=message)
    if isinstance(refused.error, Finished):
        refusal.last_event.CopyFrom(refused.error.last_event)  # resolved: the caller closes it
    elif isinstance(refused.error, NotPossible) and refused.agent is not None:
        refusal.agent.CopyFrom(refused.agent)  # the caller's picture was stale
    return agent_state_pb2.ReserveAgentResult(refused=refusal)


def _require(value: str, name: str) -> None:
    if not value:
        raise InvalidRequest(f"{name} is required")


def _peer(context: Any) -> str:
    """The caller's network address, the actor when authentication is off."""
    try:
        return str(context.peer())
    except Exception:  # a context without a peer: still record something
        return "unknown"

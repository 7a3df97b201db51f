"""The AgentState gRPC service: a thin adapter between calls and the roster.

Each call is authenticated, validated, applied to the roster (atomically: the
roster never awaits), journaled to Kafka, and only then answered, so what a
caller was told has happened is on the broker. Errors map to status codes:
INVALID_ARGUMENT (names the field), NOT_FOUND, FAILED_PRECONDITION,
UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE (broker), INTERNAL (a bug;
logged, never a crash).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc

from omniroute.kafka import BrokerUnavailable
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, task_pb2
from omniroute_agent_state.auth import Authenticator, Caller, PermissionDenied, Unauthenticated
from omniroute_agent_state.journal import Journal
from omniroute_agent_state.metrics import AgentStateMetrics
from omniroute_agent_state.roster import (
    Changes,
    InvalidRequest,
    NotPossible,
    Roster,
    RosterError,
    UnknownAgent,
)

log = logging.getLogger("omniroute.agent_state")
R = TypeVar("R")
E = TypeVar("E")

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
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
]


def _status_of(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message a refused or failed call answers with."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code, str(exc)
    if isinstance(exc, BrokerUnavailable):
        return grpc.StatusCode.UNAVAILABLE, "the broker did not acknowledge the change; retry"
    return grpc.StatusCode.INTERNAL, "internal error; see the service log"


# Trailing metadata of a refused ReserveAgent: the agent's record as it is now.
AGENT_RECORD_METADATA = "omniroute-agent-bin"


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
        journal: Journal,
        metrics: AgentStateMetrics,
        authenticator: Authenticator | None = None,
        clock: Callable[[], float] = time.time,
        watch_queue_max: int = 10_000,
    ) -> None:
        self.roster = roster
        self.journal = journal
        self.metrics = metrics
        self.auth = authenticator or Authenticator({}, {})
        self.clock = clock
        self.watch_queue_max = watch_queue_max
        self.offer_watchers: _Watchers[agent_state_pb2.Offer] = _Watchers()
        self.agent_watchers: _Watchers[agent_pb2.AgentEvent] = _Watchers()
        self.pending_offers: dict[str, task_pb2.Assignment] = {}  # reservation id -> assignment
        # Agents with an open WatchOffers stream: the stream keeps their session alive.
        self.open_desks: Counter[str] = Counter()

    # -- plumbing -------------------------------------------------------------

    def caller(self, context: Any, method: str, agent_id: str | None) -> Caller:
        """Authenticate the call and check that the caller may do this to `agent_id`."""
        caller = self.auth.identify(context.invocation_metadata() or (), _peer(context))
        self.auth.authorize(caller, method, agent_id)
        return caller

    async def publish(self, changes: Changes) -> None:
        """Journal the changes (wait for the broker), then tell the watchers."""
        if not changes.agent_events and not changes.task_events:
            return
        await self.journal.record(changes)
        for event in changes.task_events:
            self.metrics.task_events.labels(_TASK_TYPES.get(event.type, "other")).inc()
            if event.type != task_pb2.TaskEvent.TYPE_OFFERED:
                self.pending_offers.pop(event.reservation_id, None)  # no longer an open offer
            log.info(
                "task event",
                extra={
                    "type": _TASK_TYPES.get(event.type, "other"),
                    "inquiry_id": event.inquiry_id,
                    "agent_id": event.agent_id,
                    "workspace": event.workspace,
                },
            )
        for agent_event in changes.agent_events:
            self.agent_watchers.push(agent_event.agent.workspace, agent_event)

    def _log_failure(self, method: str, code: grpc.StatusCode, exc: Exception) -> None:
        if code == grpc.StatusCode.INTERNAL:
            log.error("unexpected error", exc_info=exc, extra={"method": method})
        elif code == grpc.StatusCode.UNAVAILABLE:
            self.metrics.publish_errors.inc()
            log.error("broker did not acknowledge a change", extra={"method": method})

    # -- profile and presence -------------------------------------------------

    @rpc
    async def UpsertAgent(
        self, request: agent_state_pb2.UpsertAgentRequest, context: Any
    ) -> agent_pb2.Agent:
        caller = self.caller(context, "UpsertAgent", request.agent.id)
        await self.publish(self.roster.upsert(request.agent, caller.actor, self.clock()))
        return self.roster.get(request.agent.id)

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
        changes = self.roster.set_status(
            request.agent_id, request.status, request.reason, caller.actor, self.clock()
        )
        await self.publish(changes)
        return self.roster.get(request.agent_id)

    @rpc
    async def Heartbeat(
        self, request: agent_state_pb2.HeartbeatRequest, context: Any
    ) -> agent_state_pb2.HeartbeatResponse:
        self.caller(context, "Heartbeat", request.agent_id)
        _require(request.agent_id, "agent_id")
        lapses_at, changes = self.roster.heartbeat(request.agent_id, self.clock())
        await self.publish(changes)
        response = agent_state_pb2.HeartbeatResponse()
        if lapses_at:
            response.session_expires_at.FromNanoseconds(int(lapses_at * 1e9))
        return response

    # -- offers and tasks -----------------------------------------------------

    @rpc
    async def ReserveAgent(
        self, request: agent_state_pb2.ReserveAgentRequest, context: Any
    ) -> agent_state_pb2.ReserveAgentResponse:
        self.caller(context, "ReserveAgent", request.agent_id)
        try:
            reservation, agent, already, changes = self.roster.reserve(
                request.agent_id,
                request.inquiry_id,
                request.channel,
                request.workspace,
                self.clock(),
            )
        except NotPossible:
            self.metrics.reservations.labels("refused").inc()
            refused = self.roster.agents.get(request.agent_id)
            if refused is not None:
                # The caller's picture of the agent was stale: send the true one.
                context.set_trailing_metadata(
                    ((AGENT_RECORD_METADATA, refused.SerializeToString()),)
                )
            raise
        # Copies now: the roster's records change while the journal is awaited.
        answer = agent_state_pb2.ReserveAgentResponse(
            reservation=reservation, agent=agent, already_reserved=already
        )
        self.metrics.reservations.labels("existing" if already else "reserved").inc()
        if not already:
            self.pending_offers[reservation.reservation_id] = request.assignment
            offer = self._offer(answer.reservation)
            offer.offered_at.GetCurrentTime()
            await self.publish(changes)
            self.offer_watchers.push(agent.id, offer)
        return answer

    @rpc
    async def AcceptTask(
        self, request: agent_state_pb2.TaskRequest, context: Any
    ) -> agent_pb2.Agent:
        self.caller(context, "AcceptTask", request.agent_id)
        await self.publish(self.roster.accept(request.agent_id, request.inquiry_id, self.clock()))
        return self.roster.get(request.agent_id)

    @rpc
    async def DeclineTask(
        self, request: agent_state_pb2.TaskRequest, context: Any
    ) -> agent_pb2.Agent:
        self.caller(context, "DeclineTask", request.agent_id)
        await self.publish(
            self.roster.decline(request.agent_id, request.inquiry_id, request.reason, self.clock())
        )
        return self.roster.get(request.agent_id)

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
        await self.publish(
            self.roster.complete(request.agent_id, request.inquiry_id, outcome, self.clock())
        )
        return self.roster.get(request.agent_id)

    @rpc
    async def TransferTask(
        self, request: agent_state_pb2.TransferTaskRequest, context: Any
    ) -> agent_state_pb2.TransferTaskResponse:
        self.caller(context, "TransferTask", request.agent_id)
        reservation, changes = self.roster.transfer(
            request.agent_id,
            request.inquiry_id,
            request.target_agent_id,
            request.reason,
            self.clock(),
        )
        answer = agent_state_pb2.TransferTaskResponse(
            reservation=reservation,
            agent=self.roster.get(request.agent_id),
            target=self.roster.get(request.target_agent_id),
        )
        await self.publish(changes)
        offer = self._offer(answer.reservation)  # the target's desktop learns of its new task
        offer.offered_at.GetCurrentTime()
        self.offer_watchers.push(request.target_agent_id, offer)
        return answer

    # -- streams --------------------------------------------------------------

    async def WatchOffers(
        self, request: agent_state_pb2.WatchOffersRequest, context: Any
    ) -> AsyncIterator[agent_state_pb2.Offer]:
        """The agent's open offers, then every new one, until the caller hangs up.

        Open offers come first so a desktop that (re)connects misses nothing;
        each offer is sent once even when it is made while the stream opens.
        While the stream is open it keeps the agent's desktop session alive.
        """
        await self._open_stream("WatchOffers", context, request.agent_id, "agent_id")
        watch = self.offer_watchers.add(request.agent_id, self.watch_queue_max)
        self.open_desks[request.agent_id] += 1
        sent: set[str] = set()
        try:
            for reservation in self.roster.get(request.agent_id).reservations:
                if not reservation.accepted:
                    watch.push(self._offer(reservation))
            while True:
                offer = await watch.queue.get()
                if watch.overflowed:
                    await self._overflowed("WatchOffers", context)
                if offer.reservation.reservation_id not in sent:
                    sent.add(offer.reservation.reservation_id)
                    yield offer
        finally:
            self.offer_watchers.remove(request.agent_id, watch)
            self.open_desks[request.agent_id] -= 1
            if self.open_desks[request.agent_id] <= 0:
                del self.open_desks[request.agent_id]

    async def WatchAgents(
        self, request: agent_state_pb2.WatchAgentsRequest, context: Any
    ) -> AsyncIterator[agent_pb2.AgentEvent]:
        """Every change to the agents of one workspace from now on."""
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

    def _offer(self, reservation: agent_pb2.Reservation) -> agent_state_pb2.Offer:
        """The offer for a reservation, with the router's assignment when known."""
        assignment = task_pb2.Assignment()
        known = self.pending_offers.get(reservation.reservation_id)
        if known is not None:
            assignment.CopyFrom(known)
        else:  # made before a restart, or a transfer: rebuilt from the reservation
            assignment.inquiry_id = reservation.inquiry_id
            assignment.agent_id = reservation.agent_id
            assignment.channel = reservation.channel
        assignment.reservation_id = reservation.reservation_id
        assignment.offer_expires_at.CopyFrom(reservation.expires_at)
        return agent_state_pb2.Offer(reservation=reservation, assignment=assignment)

    # -- timers ---------------------------------------------------------------

    async def expire_forever(self, interval_s: float) -> None:
        """Keep streaming desktops' sessions alive; expire offers, wrap-ups and sessions.

        Runs until cancelled; the roster decides, this loop only supplies the time.
        """
        while True:
            await asyncio.sleep(interval_s)
            now = self.clock()
            changes = Changes()
            for agent_id in list(self.open_desks):
                agent = self.roster.agents.get(agent_id)
                if agent is not None and agent.status != agent_pb2.AGENT_STATUS_OFFLINE:
                    changes = changes.then(self.roster.heartbeat(agent_id, now)[1])
            changes = changes.then(self.roster.expire(now))
            try:
                await self.publish(changes)
            except BrokerUnavailable:
                self.metrics.publish_errors.inc()
                log.error("could not publish expiries; they are in the next snapshot")
            except Exception:  # the timer must outlive any bug in one round
                log.exception("expiry round failed")


def _require(value: str, name: str) -> None:
    if not value:
        raise InvalidRequest(f"{name} is required")


def _peer(context: Any) -> str:
    """The caller's network address, the actor when authentication is off."""
    try:
        return str(context.peer())
    except Exception:  # a context without a peer: still record something
        return "unknown"

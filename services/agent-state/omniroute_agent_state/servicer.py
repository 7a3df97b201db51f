"""The AgentState gRPC service: a thin adapter between calls and the roster.

Each call is validated, applied to the roster (atomically: the roster never
awaits), journaled to Kafka, and only then answered, so what a caller was
told has happened is on the broker. Roster errors map to status codes:
INVALID_ARGUMENT (names the field), NOT_FOUND, FAILED_PRECONDITION.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from omniroute.kafka import BrokerUnavailable
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, task_pb2
from omniroute_agent_state.journal import Journal
from omniroute_agent_state.metrics import AgentStateMetrics
from omniroute_agent_state.roster import Changes, InvalidRequest, NotPossible, Roster, UnknownAgent

log = logging.getLogger("omniroute.agent_state")
R = TypeVar("R")

_TASK_TYPES = {
    task_pb2.TaskEvent.TYPE_OFFERED: "offered",
    task_pb2.TaskEvent.TYPE_ACCEPTED: "accepted",
    task_pb2.TaskEvent.TYPE_DECLINED: "declined",
    task_pb2.TaskEvent.TYPE_OFFER_TIMEOUT: "offer_timeout",
    task_pb2.TaskEvent.TYPE_WITHDRAWN: "withdrawn",
    task_pb2.TaskEvent.TYPE_COMPLETED: "completed",
}


def rpc(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Time and count the call; turn roster errors into gRPC status codes."""
    name = method.__name__

    @functools.wraps(method)
    async def handle(
        self: AgentStateServicer, request: Any, context: grpc.aio.ServicerContext
    ) -> R:
        started = time.perf_counter()
        code = "OK"
        try:
            return await method(self, request, context)
        except InvalidRequest as exc:
            code = "INVALID_ARGUMENT"
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except UnknownAgent as exc:
            code = "NOT_FOUND"
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except NotPossible as exc:
            code = "FAILED_PRECONDITION"
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except BrokerUnavailable:
            code = "UNAVAILABLE"
            self.metrics.publish_errors.inc()
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "the broker did not acknowledge the change; retry"
            )
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        finally:
            self.metrics.rpcs.labels(name, code).inc()
            self.metrics.rpc_seconds.labels(name).observe(time.perf_counter() - started)
        raise AssertionError("unreachable: abort raises")

    return handle


class AgentStateServicer(agent_state_pb2_grpc.AgentStateServicer):
    """agent-state's gRPC API over one roster."""

    def __init__(
        self,
        roster: Roster,
        journal: Journal,
        metrics: AgentStateMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.roster = roster
        self.journal = journal
        self.metrics = metrics
        self.clock = clock
        self.offer_watchers: dict[str, set[asyncio.Queue[agent_state_pb2.Offer]]] = {}
        self.agent_watchers: dict[str, set[asyncio.Queue[agent_pb2.AgentEvent]]] = {}
        self.pending_offers: dict[str, task_pb2.Assignment] = {}  # reservation id -> assignment

    async def publish(self, changes: Changes) -> None:
        """Journal the changes, then tell the watchers."""
        await self.journal.record(changes)
        for event in changes.task_events:
            self.metrics.task_events.labels(_TASK_TYPES.get(event.type, "other")).inc()
        for agent_event in changes.agent_events:
            for queue in self.agent_watchers.get(agent_event.agent.workspace, ()):
                queue.put_nowait(agent_event)

    @rpc
    async def UpsertAgent(
        self, request: agent_state_pb2.UpsertAgentRequest, context: Any
    ) -> agent_pb2.Agent:
        changes = self.roster.upsert(request.agent, _actor(context), self.clock())
        await self.publish(changes)
        return self.roster.get(request.agent.id)

    @rpc
    async def GetAgent(
        self, request: agent_state_pb2.GetAgentRequest, context: Any
    ) -> agent_pb2.Agent:
        if not request.agent_id:
            raise InvalidRequest("agent_id is required")
        return self.roster.get(request.agent_id)

    @rpc
    async def ListAgents(
        self, request: agent_state_pb2.ListAgentsRequest, context: Any
    ) -> agent_state_pb2.ListAgentsResponse:
        if not request.workspace:
            raise InvalidRequest("workspace is required")
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
        if not request.agent_id:
            raise InvalidRequest("agent_id is required")
        changes = self.roster.set_status(
            request.agent_id, request.status, request.reason, _actor(context), self.clock()
        )
        await self.publish(changes)
        return self.roster.get(request.agent_id)

    @rpc
    async def ReserveAgent(
        self, request: agent_state_pb2.ReserveAgentRequest, context: Any
    ) -> agent_state_pb2.ReserveAgentResponse:
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
            raise
        self.metrics.reservations.labels("existing" if already else "reserved").inc()
        await self.publish(changes)
        if not already:
            assignment = task_pb2.Assignment()
            assignment.CopyFrom(request.assignment)
            assignment.reservation_id = reservation.reservation_id
            assignment.offer_expires_at.CopyFrom(reservation.expires_at)
            offer = agent_state_pb2.Offer(reservation=reservation, assignment=assignment)
            offer.offered_at.GetCurrentTime()
            for queue in self.offer_watchers.get(agent.id, ()):
                queue.put_nowait(offer)
        return agent_state_pb2.ReserveAgentResponse(
            reservation=reservation, agent=agent, already_reserved=already
        )

    @rpc
    async def AcceptTask(
        self, request: agent_state_pb2.TaskRequest, context: Any
    ) -> agent_pb2.Agent:
        await self.publish(self.roster.accept(request.agent_id, request.inquiry_id, self.clock()))
        return self.roster.get(request.agent_id)

    @rpc
    async def DeclineTask(
        self, request: agent_state_pb2.TaskRequest, context: Any
    ) -> agent_pb2.Agent:
        await self.publish(
            self.roster.decline(request.agent_id, request.inquiry_id, request.reason, self.clock())
        )
        return self.roster.get(request.agent_id)

    @rpc
    async def CompleteTask(
        self, request: agent_state_pb2.CompleteTaskRequest, context: Any
    ) -> agent_pb2.Agent:
        outcome = task_pb2.TaskEvent(resolution=request.resolution)
        if request.HasField("follow_up"):
            outcome.follow_up.CopyFrom(request.follow_up)
        if request.HasField("escalation"):
            outcome.escalation.CopyFrom(request.escalation)
        await self.publish(
            self.roster.complete(request.agent_id, request.inquiry_id, outcome, self.clock())
        )
        return self.roster.get(request.agent_id)

    async def WatchOffers(
        self, request: agent_state_pb2.WatchOffersRequest, context: Any
    ) -> AsyncIterator[agent_state_pb2.Offer]:
        """Offers made to one agent from now on, until the caller hangs up."""
        if not request.agent_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "agent_id is required")
        if request.agent_id not in self.roster.agents:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no agent {request.agent_id!r}")
        queue: asyncio.Queue[agent_state_pb2.Offer] = asyncio.Queue()
        watchers = self.offer_watchers.setdefault(request.agent_id, set())
        watchers.add(queue)
        self.metrics.rpcs.labels("WatchOffers", "OK").inc()
        try:
            while True:
                yield await queue.get()
        finally:
            watchers.discard(queue)

    async def WatchAgents(
        self, request: agent_state_pb2.WatchAgentsRequest, context: Any
    ) -> AsyncIterator[agent_pb2.AgentEvent]:
        """Every change to the agents of one workspace from now on."""
        if not request.workspace:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "workspace is required")
        queue: asyncio.Queue[agent_pb2.AgentEvent] = asyncio.Queue()
        watchers = self.agent_watchers.setdefault(request.workspace, set())
        watchers.add(queue)
        self.metrics.rpcs.labels("WatchAgents", "OK").inc()
        try:
            while True:
                yield await queue.get()
        finally:
            watchers.discard(queue)

    async def expire_forever(self, interval_s: float) -> None:
        """Expire offers and wrap-ups as their time comes (runs until cancelled)."""
        while True:
            await asyncio.sleep(interval_s)
            changes = self.roster.expire(self.clock())
            if changes.agent_events or changes.task_events:
                try:
                    await self.publish(changes)
                except BrokerUnavailable:
                    self.metrics.publish_errors.inc()
                    log.error("could not publish expired offers; they are in the next snapshot")


def _actor(context: Any) -> str:
    """Who is calling, for the audit trail (the peer until authentication names them)."""
    try:
        return str(context.peer())
    except Exception:  # a context without a peer (tests): still record something
        return "unknown"

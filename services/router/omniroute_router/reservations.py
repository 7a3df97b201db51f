"""Reserving agents at agent-state, the authority on capacity (gRPC client)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from omniroute.grpc_client import agent_state_channel, bearer
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, task_pb2

# A refusal's status codes (the agent is not free, or not known): the inquiry
# is planned again; any other code means agent-state could not decide.
_REFUSALS = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)
# Most reservations and request bytes in one ReserveAgents call (agent-state
# takes up to 1,000, and answers once all of them are durable: the call must
# finish within its deadline when the broker is slow; gRPC's default message
# limit is 4 MiB and an assignment carries the inquiry's content): more take
# several calls, made at the same time.
MAX_CALL_RESERVATIONS = 200
MAX_CALL_BYTES = 2 * 1024 * 1024
# agent-state takes request ids of up to 128 characters.
_MAX_KEY = 120


class ReservationRefused(Exception):
    """agent-state refused: the agent is not available or has no free slot,
    or the inquiry was resolved already.

    `agent` is the agent's record as agent-state has it, when it sent one;
    `last_event` the TaskEvent that resolved the inquiry, when that is why.
    """

    def __init__(
        self,
        reason: str,
        agent: agent_pb2.Agent | None = None,
        last_event: task_pb2.TaskEvent | None = None,
    ) -> None:
        super().__init__(reason)
        self.agent = agent
        self.last_event = last_event


class AgentStateUnavailable(Exception):
    """agent-state did not answer; routing pauses and retries on the next tick."""


class Fenced(Exception):
    """agent-state refused the call (ABORTED): a newer owner of the partition has acted.

    This worker no longer owns the partition and must stop acting for it.
    """


@dataclass
class Reserved:
    """A reservation agent-state holds for an inquiry."""

    reservation: agent_pb2.Reservation
    agent: agent_pb2.Agent
    already_reserved: bool


class AgentStateClient:
    """The router's side of the agent-state gRPC service."""

    def __init__(
        self,
        target: str,
        token: str = "",
        timeout_s: float = 5.0,
        root_certificates: bytes | None = None,
    ) -> None:
        self._target = target
        # TLS when agent-state's CA is given (the shipped deployments always do).
        self._root_certificates = root_certificates
        # Created on first use: a grpc.aio channel binds to the running event loop.
        self._channel: grpc.aio.Channel | None = None
        self._stub: agent_state_pb2_grpc.AgentStateStub | None = None
        self._metadata = bearer(token)
        self._timeout_s = timeout_s

    async def reserve_all(
        self, assignments: Sequence[task_pb2.Assignment], fence: agent_state_pb2.RouterFence
    ) -> list[Reserved | ReservationRefused | AgentStateUnavailable]:
        """Hold a slot on each `assignment.agent_id` for its inquiry, in one call.

        agent-state decides each reservation on its own, atomically, in the
        order given; the answers come back in that order: `Reserved` (when the
        inquiry already holds a reservation, made by a previous worker before
        it died, that one with `already_reserved`), `ReservationRefused` (the
        agent is not free), or `AgentStateUnavailable` (agent-state could not
        decide this one). Raises `Fenced` when a newer owner of the partition
        has acted, and `AgentStateUnavailable` when the call as a whole failed
        (then no answer is known; the same requests are safe to send again).
        """
        requests = [_reserve_request(a, fence) for a in assignments]
        calls: list[list[agent_state_pb2.ReserveAgentRequest]] = []
        size = MAX_CALL_BYTES
        for request in requests:
            grows = request.ByteSize()
            if size + grows > MAX_CALL_BYTES or len(calls[-1]) >= MAX_CALL_RESERVATIONS:
                calls.append([])
                size = 0
            calls[-1].append(request)
            size += grows
        answers = await asyncio.gather(*(self._reserve_call(c) for c in calls))
        return [result for answer in answers for result in answer]

    async def _reserve_call(
        self, requests: list[agent_state_pb2.ReserveAgentRequest]
    ) -> list[Reserved | ReservationRefused | AgentStateUnavailable]:
        try:
            response: agent_state_pb2.ReserveAgentsResponse = await self._call(
                "ReserveAgents", agent_state_pb2.ReserveAgentsRequest(reservations=requests)
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        if len(response.results) != len(requests):
            raise AgentStateUnavailable(
                f"ReserveAgents answered {len(response.results)} of {len(requests)} requests"
            )
        return [_reserve_result(result) for result in response.results]

    async def withdraw(
        self,
        workspace: str,
        inquiry_id: str,
        reservation_id: str,
        reason: str,
        fence: agent_state_pb2.RouterFence,
    ) -> agent_state_pb2.WithdrawOfferResponse:
        """Take back the inquiry's open offer; agent-state tells the desk."""
        request = agent_state_pb2.WithdrawOfferRequest(
            workspace=workspace,
            inquiry_id=inquiry_id,
            reason=reason,
            fence=fence,
            request_id=f"withdraw/{workspace}/{inquiry_id}/{reservation_id}",
        )
        try:
            response: agent_state_pb2.WithdrawOfferResponse = await self._call(
                "WithdrawOffer", request
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return response

    async def get_reservation(
        self, workspace: str, inquiry_id: str
    ) -> agent_state_pb2.GetReservationResponse:
        """The inquiry's open reservation and last task event, as agent-state knows them."""
        request = agent_state_pb2.GetReservationRequest(workspace=workspace, inquiry_id=inquiry_id)
        try:
            response: agent_state_pb2.GetReservationResponse = await self._call(
                "GetReservation", request
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return response

    async def list_reservations(self, workspace: str) -> agent_state_pb2.ListReservationsResponse:
        """Every open reservation of the workspace."""
        request = agent_state_pb2.ListReservationsRequest(workspace=workspace)
        try:
            response: agent_state_pb2.ListReservationsResponse = await self._call(
                "ListReservations", request
            )
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return response

    async def list_agents(self, workspace: str) -> list[agent_pb2.Agent]:
        """Every agent of the workspace as agent-state has it now."""
        request = agent_state_pb2.ListAgentsRequest(workspace=workspace)
        try:
            response: agent_state_pb2.ListAgentsResponse = await self._call("ListAgents", request)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return list(response.agents)

    async def deliver_message(
        self, message: task_pb2.ConversationMessage
    ) -> agent_state_pb2.DeliverMessageResponse:
        """Have agent-state push a customer's new message to the agent holding its inquiry.

        Raises `ReservationRefused` when that agent no longer holds it.
        """
        request = agent_state_pb2.DeliverMessageRequest(message=message)
        try:
            response: agent_state_pb2.DeliverMessageResponse = await self._call(
                "DeliverMessage", request
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise ReservationRefused(exc.details() or exc.code().name) from None
            raise _error(exc) from None
        return response

    async def _call(self, method: str, request: Any) -> Any:
        if self._stub is None:
            self._channel = agent_state_channel(self._target, self._root_certificates)
            self._stub = agent_state_pb2_grpc.AgentStateStub(self._channel)
        call = getattr(self._stub, method)
        return await call(request, timeout=self._timeout_s, metadata=self._metadata)

    async def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            await self._channel.close()


def _reserve_request(
    assignment: task_pb2.Assignment, fence: agent_state_pb2.RouterFence
) -> agent_state_pb2.ReserveAgentRequest:
    return agent_state_pb2.ReserveAgentRequest(
        agent_id=assignment.agent_id,
        inquiry_id=assignment.inquiry_id,
        channel=assignment.channel,
        workspace=assignment.workspace,
        assignment=assignment,
        fence=fence,
        request_id=reserve_request_id(assignment, fence),
    )


def reserve_request_id(assignment: task_pb2.Assignment, fence: agent_state_pb2.RouterFence) -> str:
    """One id per planned offer: a resent call gets the same answer.

    A later plan for the same inquiry (after a call that failed as a whole,
    or by a newer owner of the partition) is a different request (its
    `assigned_at` and maybe its fence differ), so it gets a new id:
    agent-state then answers with the reservation the inquiry already holds
    (`already_reserved`), where reusing the id would be refused as the same id
    for a different request.
    """
    at = assignment.assigned_at
    key = (
        f"{assignment.workspace}/{assignment.inquiry_id}/{assignment.attempt}"
        f"/{assignment.agent_id}/{fence.generation}/{at.seconds}.{at.nanos:09d}"
    )
    if len(key) > _MAX_KEY:
        key = hashlib.sha256(key.encode()).hexdigest()
    return f"reserve/{key}"


def _reserve_result(
    result: agent_state_pb2.ReserveAgentResult,
) -> Reserved | ReservationRefused | AgentStateUnavailable:
    """One answer of a ReserveAgents call, as ReserveAgent would have answered it."""
    if result.WhichOneof("result") == "reserved":
        r = result.reserved
        return Reserved(r.reservation, r.agent, r.already_reserved)
    refusal = result.refused
    code = _status_code(refusal.code)
    if code is grpc.StatusCode.ABORTED:
        raise Fenced(refusal.message or "ABORTED")
    if code in _REFUSALS:
        agent = refusal.agent if refusal.HasField("agent") else None
        resolved = refusal.last_event if refusal.HasField("last_event") else None
        return ReservationRefused(refusal.message or code.name, agent, resolved)
    name = code.name if code is not None else str(refusal.code)
    return AgentStateUnavailable(f"{name}: {refusal.message}")


def _status_code(value: int) -> grpc.StatusCode | None:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return None


def _error(error: grpc.aio.AioRpcError) -> Exception:
    """`Fenced` for ABORTED, `AgentStateUnavailable` for anything else."""
    if error.code() == grpc.StatusCode.ABORTED:
        return Fenced(error.details() or "ABORTED")
    return AgentStateUnavailable(f"{error.code().name}: {error.details()}")

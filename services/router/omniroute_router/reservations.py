"""Reserving agents at agent-state, the authority on capacity (gRPC client)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from omniroute.grpc_client import (
    AGENT_RECORD_METADATA,
    LAST_EVENT_METADATA,
    agent_state_channel,
    bearer,
)
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, task_pb2


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

    async def reserve(
        self, assignment: task_pb2.Assignment, fence: agent_state_pb2.RouterFence
    ) -> Reserved:
        """Hold a slot on `assignment.agent_id` for the inquiry.

        When the inquiry already holds a reservation (a previous router worker
        made it before it died), that one comes back with `already_reserved`.
        Raises `Fenced` when a newer owner of the partition has acted.
        """
        request = agent_state_pb2.ReserveAgentRequest(
            agent_id=assignment.agent_id,
            inquiry_id=assignment.inquiry_id,
            channel=assignment.channel,
            workspace=assignment.workspace,
            assignment=assignment,
            fence=fence,
            # One id per owner generation, offer attempt and agent: a retry after
            # a lost answer gets the same answer; a re-plan to another agent, or
            # the next owner of the partition (which may have lost what this
            # attempt was), makes a new request that agent-state decides afresh.
            request_id=f"reserve/{assignment.workspace}/{assignment.inquiry_id}"
            f"/g{fence.generation}/{assignment.attempt}/{assignment.agent_id}",
        )
        try:
            response = await self._call("ReserveAgent", request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise ReservationRefused(
                    exc.details() or exc.code().name,
                    _trailing(exc, AGENT_RECORD_METADATA, agent_pb2.Agent),
                    _trailing(exc, LAST_EVENT_METADATA, task_pb2.TaskEvent),
                ) from None
            raise _error(exc) from None
        return Reserved(response.reservation, response.agent, response.already_reserved)

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


def _error(error: grpc.aio.AioRpcError) -> Exception:
    """`Fenced` for ABORTED, `AgentStateUnavailable` for anything else."""
    if error.code() == grpc.StatusCode.ABORTED:
        return Fenced(error.details() or "ABORTED")
    return AgentStateUnavailable(f"{error.code().name}: {error.details()}")


M = TypeVar("M", bound=Message)


def _trailing(error: grpc.aio.AioRpcError, key: str, kind: type[M]) -> M | None:
    """The message sent under `key` in a refusal's trailing metadata, if any (and readable)."""
    for name, value in error.trailing_metadata() or ():
        if name == key and isinstance(value, bytes):
            message = kind()
            try:
                message.ParseFromString(value)
            except DecodeError:
                return None
            return message
    return None

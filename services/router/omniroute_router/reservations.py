"""Reserving agents at agent-state, the authority on capacity (gRPC client)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from omniroute.grpc_client import agent_state_channel, bearer
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, task_pb2

# Trailing metadata agent-state sends with a refusal: the agent's record now.
AGENT_RECORD_METADATA = "omniroute-agent-bin"


class ReservationRefused(Exception):
    """agent-state refused: the agent is not available or has no free slot.

    `agent` is the agent's record as agent-state has it, when it sent one.
    """

    def __init__(self, reason: str, agent: agent_pb2.Agent | None = None) -> None:
        super().__init__(reason)
        self.agent = agent


class AgentStateUnavailable(Exception):
    """agent-state did not answer; routing pauses and retries on the next tick."""


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

    async def reserve(self, assignment: task_pb2.Assignment) -> Reserved:
        """Hold a slot on `assignment.agent_id` for the inquiry.

        When the inquiry already holds a reservation (a previous router worker
        made it before it died), that one comes back with `already_reserved`.
        """
        request = agent_state_pb2.ReserveAgentRequest(
            agent_id=assignment.agent_id,
            inquiry_id=assignment.inquiry_id,
            channel=assignment.channel,
            workspace=assignment.workspace,
            assignment=assignment,
        )
        if self._stub is None:
            self._channel = agent_state_channel(self._target, self._root_certificates)
            self._stub = agent_state_pb2_grpc.AgentStateStub(self._channel)
        try:
            response = await self._stub.ReserveAgent(
                request, timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise ReservationRefused(
                    exc.details() or exc.code().name, _agent_record(exc)
                ) from None
            raise AgentStateUnavailable(f"{exc.code().name}: {exc.details()}") from None
        return Reserved(response.reservation, response.agent, response.already_reserved)

    async def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            await self._channel.close()


def _agent_record(error: grpc.aio.AioRpcError) -> agent_pb2.Agent | None:
    """The agent's record sent with a refusal, if any (and if readable)."""
    for key, value in error.trailing_metadata() or ():
        if key == AGENT_RECORD_METADATA and isinstance(value, bytes):
            agent = agent_pb2.Agent()
            try:
                agent.ParseFromString(value)
            except DecodeError:
                return None
            return agent
    return None

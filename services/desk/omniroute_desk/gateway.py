"""The desk's side of agent-state's gRPC API.

Every call an agent makes goes out with that agent's own desktop token, so
agent-state, the authority, decides what the agent may see and do (an agent
acts only on their own offers). The desk's own token (an administrator's) is
used only for what a desktop token cannot do: the wallboard's ListAgents and
WatchAgents, and listing transfer targets. The channel is the shared one
(omniroute.grpc_client): TLS checked against agent-state's CA when one is given.
"""

from __future__ import annotations

from typing import Any

import grpc

from omniroute.grpc_client import agent_state_channel, bearer
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc


class AgentStateGateway:
    """One gRPC channel to agent-state, shared by every browser the desk serves."""

    def __init__(
        self,
        target: str,
        desk_token: str = "",
        timeout_s: float = 5.0,
        root_certificates: bytes | None = None,
    ) -> None:
        self.target = target
        self.root_certificates = root_certificates
        self.desk_metadata = bearer(desk_token)
        self.timeout_s = timeout_s
        # Created on first use: a grpc.aio channel binds to the running event loop.
        self._channel: grpc.aio.Channel | None = None
        self._stub: agent_state_pb2_grpc.AgentStateStub | None = None

    @property
    def stub(self) -> agent_state_pb2_grpc.AgentStateStub:
        """The stub, creating the channel inside the running loop."""
        if self._stub is None:
            self._channel = agent_state_channel(self.target, self.root_certificates)
            self._stub = agent_state_pb2_grpc.AgentStateStub(self._channel)
        return self._stub

    async def close(self) -> None:
        """Close the channel (streams still open end with CANCELLED)."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    # -- as the agent ----------------------------------------------------------

    async def get_agent(self, agent_id: str, token: str) -> agent_pb2.Agent:
        """The agent's record, read with the agent's token (proves the token is theirs)."""
        return await self.stub.GetAgent(
            agent_state_pb2.GetAgentRequest(agent_id=agent_id),
            metadata=bearer(token),
            timeout=self.timeout_s,
        )

    async def set_status(
        self, agent_id: str, token: str, status: int, reason: str, request_id: str
    ) -> agent_pb2.Agent:
        """Log in, go away with a reason, wrap up, log out."""
        request = agent_state_pb2.SetStatusRequest(
            agent_id=agent_id,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            request_id=request_id,
        )
        return await self.stub.SetStatus(request, metadata=bearer(token), timeout=self.timeout_s)

    async def accept(self, token: str, request: agent_state_pb2.TaskRequest) -> agent_pb2.Agent:
        """Take an offer."""
        return await self.stub.AcceptTask(request, metadata=bearer(token), timeout=self.timeout_s)

    async def decline(self, token: str, request: agent_state_pb2.TaskRequest) -> agent_pb2.Agent:
        """Turn an offer down."""
        return await self.stub.DeclineTask(request, metadata=bearer(token), timeout=self.timeout_s)

    async def complete(
        self, token: str, request: agent_state_pb2.CompleteTaskRequest
    ) -> agent_pb2.Agent:
        """Finish a task with its outcome."""
        return await self.stub.CompleteTask(request, metadata=bearer(token), timeout=self.timeout_s)

    async def transfer(
        self, token: str, request: agent_state_pb2.TransferTaskRequest
    ) -> agent_state_pb2.TransferTaskResponse:
        """Hand an accepted task to a colleague."""
        return await self.stub.TransferTask(request, metadata=bearer(token), timeout=self.timeout_s)

    def watch_offers(self, agent_id: str, token: str) -> Any:
        """The agent's offers as they are made, and withdrawn or timed out (a stream call:
        iterate it with `async for`, `cancel()` it)."""
        return self.stub.WatchOffers(
            agent_state_pb2.WatchOffersRequest(agent_id=agent_id), metadata=bearer(token)
        )

    # -- as the desk ------------------------------------------------------------

    async def list_agents(self, workspace: str, status: int = 0) -> list[agent_pb2.Agent]:
        """The workspace's agents (optionally only those in `status`)."""
        response = await self.stub.ListAgents(
            agent_state_pb2.ListAgentsRequest(workspace=workspace, status=status),  # type: ignore[arg-type]
            metadata=self.desk_metadata,
            timeout=self.timeout_s,
        )
        return list(response.agents)

    def watch_agents(self, workspace: str) -> Any:
        """Every change to the workspace's agents from now on (a stream call)."""
        return self.stub.WatchAgents(
            agent_state_pb2.WatchAgentsRequest(workspace=workspace), metadata=self.desk_metadata
        )

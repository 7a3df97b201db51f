"""agent-state as a real process: killed with SIGKILL and restarted, it loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.processes import SOURCE_PATH
from omniroute.embedded import Broker, free_port, wait_for_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2
from tests.support.agent_state import agent_state_env, available_agent, reserve
from tests.support.processes import ServiceProcess
from tests.support.system import new_workspace

pytestmark = pytest.mark.integration

VOICE, CHAT = inquiry_pb2.CHANNEL_VOICE, inquiry_pb2.CHANNEL_CHAT
AWAY, WRAP_UP = agent_pb2.AGENT_STATUS_AWAY, agent_pb2.AGENT_STATUS_WRAP_UP


def _listening(port: int) -> bool:
    try:
        wait_for_port("127.0.0.1", port, timeout_s=0.2)
        return True
    except TimeoutError:
        return False


def _essentials(agent: agent_pb2.Agent) -> tuple[object, ...]:
    """What a restart must keep: status and why, load per channel, open reservations."""
    return (
        agent.status,
        agent.away_reason,
        sorted((c.channel, c.capacity, c.load) for c in agent.capacities),
        sorted(
            (r.inquiry_id, r.reservation_id, r.accepted, r.expires_at.seconds)
            for r in agent.reservations
        ),
        agent.wrap_up_until.seconds,
        agent.version,
    )


async def test_sigkill_and_restart_restore_every_agent(broker: Broker) -> None:
    port = free_port()
    env = agent_state_env(
        broker,
        AGENT_STATE_PORT=str(port),
        AGENT_STATE_METRICS_PORT=str(free_port()),
        OFFER_TTL_S="300",
        WRAP_UP_BY_CHANNEL='{"voice": 600}',
        LOG_LEVEL="WARNING",
    )
    ws = new_workspace()
    first = ServiceProcess("omniroute_agent_state", env).start()
    second: ServiceProcess | None = None
    try:
        first.wait_until(lambda: _listening(port))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            await available_agent(stub, ws, "ann", {CHAT: 3, VOICE: 1})
            await stub.ReserveAgent(reserve(ws, "ann", "chat-open"))
            await stub.ReserveAgent(reserve(ws, "ann", "chat-work"))
            await stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="chat-work"))  # fmt: skip
            await available_agent(stub, ws, "bob", {CHAT: 1})
            await stub.SetStatus(
                agent_state_pb2.SetStatusRequest(agent_id="bob", status=AWAY, reason="training")
            )
            await available_agent(stub, ws, "cal", {VOICE: 1})
            await stub.SetStatus(agent_state_pb2.SetStatusRequest(agent_id="cal", status=WRAP_UP))
            before = {
                a.id: a
                for a in (
                    await stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace=ws))
                ).agents
            }
        first.stop(signal.SIGKILL)

        second = ServiceProcess("omniroute_agent_state", env).start()
        second.wait_until(lambda: _listening(port))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest())
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            # The container's health probe agrees.
            probe = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "omniroute_agent_state.healthcheck",
                env={**os.environ, "PYTHONPATH": SOURCE_PATH, **env},
            )
            assert await probe.wait() == 0
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            after = {
                a.id: a
                for a in (
                    await stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace=ws))
                ).agents
            }
            assert sorted(after) == ["ann", "bob", "cal"]
            for agent_id, agent in before.items():
                assert _essentials(after[agent_id]) == _essentials(agent), agent_id
            # The open reservation still guards its inquiry and still holds its slot ...
            again = await stub.ReserveAgent(reserve(ws, "bob", "chat-open"))
            assert again.already_reserved and again.agent.id == "ann"
            # ... and the agent can still take it; the next version follows on.
            ann = await stub.AcceptTask(
                agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="chat-open")
            )
            assert ann.version == before["ann"].version + 1
            assert all(r.accepted for r in ann.reservations)
        # SIGTERM: a graceful stop, exit status 0.
        assert second.stop(signal.SIGTERM) == 0
    except BaseException:
        print(first.log())
        if second is not None:
            print(second.log())
        raise
    finally:
        first.stop()
        if second is not None:
            second.stop()

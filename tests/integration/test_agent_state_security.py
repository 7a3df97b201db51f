"""agent-state over real gRPC: bearer tokens (router/admin vs desktops) and TLS."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2
from tests.support.agent_state import (
    Running,
    agent_state_env,
    available_agent,
    reserve,
    serving,
    settings_from,
)
from tests.support.kafka import TopicTail
from tests.support.system import new_workspace

pytestmark = pytest.mark.integration

CHAT = inquiry_pb2.CHANNEL_CHAT
ROUTER = (("authorization", "Bearer router-secret"),)
ANN_DESK = (("authorization", "Bearer ann-desk-secret"),)


@pytest.fixture
async def secured(broker: Broker) -> AsyncIterator[Running]:
    """agent-state that requires tokens: one for the router, one for ann's desktop."""
    env = agent_state_env(
        broker,
        AGENT_STATE_ADMIN_TOKENS=json.dumps({"router": "router-secret"}),
        AGENT_STATE_DESKTOP_TOKENS=json.dumps({"ann-desk-secret": "ann"}),
    )
    async with serving(settings_from(env)) as running:
        yield running


async def code_of(call: object) -> grpc.StatusCode:
    """The status code a call fails with (fails the test when it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return refused.value.code()


async def test_tokens_separate_the_router_from_agent_desktops(secured: Running) -> None:
    stub, ws = secured.stub, new_workspace()
    get_ann = agent_state_pb2.GetAgentRequest(agent_id="ann")
    assert await code_of(stub.GetAgent(get_ann)) == grpc.StatusCode.UNAUTHENTICATED
    bad = (("authorization", "Bearer guess"),)
    assert await code_of(stub.GetAgent(get_ann, metadata=bad)) == grpc.StatusCode.UNAUTHENTICATED

    # The router (an administrator) sets agents up and reserves them.
    await available_agent(stub, ws, "ann", {CHAT: 2}, metadata=ROUTER)
    await available_agent(stub, ws, "bob", {CHAT: 2}, metadata=ROUTER)
    await stub.ReserveAgent(reserve(ws, "ann", "chat-1"), metadata=ROUTER)

    # Ann's desktop acts on ann only, and only through the desktop's methods.
    ann = await stub.AcceptTask(
        agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="chat-1"), metadata=ANN_DESK
    )
    assert ann.reservations[0].accepted
    await stub.Heartbeat(agent_state_pb2.HeartbeatRequest(agent_id="ann"), metadata=ANN_DESK)
    denied = grpc.StatusCode.PERMISSION_DENIED
    get_bob = agent_state_pb2.GetAgentRequest(agent_id="bob")
    assert await code_of(stub.GetAgent(get_bob, metadata=ANN_DESK)) == denied
    bob_away = agent_state_pb2.SetStatusRequest(
        agent_id="bob", status=agent_pb2.AGENT_STATUS_AWAY, reason="break"
    )
    assert await code_of(stub.SetStatus(bob_away, metadata=ANN_DESK)) == denied
    own_reserve = reserve(ws, "ann", "chat-2")
    assert await code_of(stub.ReserveAgent(own_reserve, metadata=ANN_DESK)) == denied
    listing = agent_state_pb2.ListAgentsRequest(workspace=ws)
    assert await code_of(stub.ListAgents(listing, metadata=ANN_DESK)) == denied

    # The audit trail names who acted.
    away = await stub.SetStatus(
        agent_state_pb2.SetStatusRequest(
            agent_id="ann", status=agent_pb2.AGENT_STATUS_AWAY, reason="break"
        ),
        metadata=ANN_DESK,
    )
    assert away.status == agent_pb2.AGENT_STATUS_AWAY
    events = TopicTail(
        secured.settings.kafka_bootstrap,
        secured.settings.topic_agent_events,
        agent_pb2.AgentEvent,
    )
    await events.start()
    try:
        upserted = await events.wait_for(
            lambda e: e.agent.id == "ann" and e.change == agent_pb2.AgentEvent.CHANGE_UPSERTED
        )
        went_away = await events.wait_for(lambda e: e.agent.status == agent_pb2.AGENT_STATUS_AWAY)
        assert (upserted.actor, went_away.actor, went_away.reason) == ("router", "ann", "break")
    finally:
        await events.stop()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost/127.0.0.1 and its key, made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_when_a_certificate_is_configured(broker: Broker, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    env = agent_state_env(
        broker, AGENT_STATE_TLS_CERT_FILE=str(cert), AGENT_STATE_TLS_KEY_FILE=str(key)
    )
    async with serving(settings_from(env)) as running:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with grpc.aio.secure_channel(running.target, credentials) as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            answer = await stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace="ws"))
            assert list(answer.agents) == []
        # Plain text is refused on a TLS port.
        refused = await code_of(
            running.stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace="ws"), timeout=5)
        )
        assert refused == grpc.StatusCode.UNAVAILABLE

"""agent-state over real gRPC: bearer tokens (router/admin vs desktops) and TLS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omniroute.embedded import Broker
from omniroute.provision import Options, provision, read_env
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2
from omniroute_agent_state.healthcheck import probe
from omniroute_agent_state.settings import AgentStateSettings
from omniroute_desk.gateway import AgentStateGateway
from omniroute_router.reservations import (
    AgentStateClient,
    AgentStateUnavailable,
    ReservationRefused,
)
from tests.support.agent_state import (
    Running,
    agent_state_env,
    agent_state_service,
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
    async with agent_state_service(
        broker,
        AGENT_STATE_ADMIN_TOKENS=json.dumps({"router": "router-secret"}),
        AGENT_STATE_DESKTOP_TOKENS=json.dumps({"ann-desk-secret": "ann"}),
    ) as running:
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
    # The router's reconciliation and withdrawal calls are the router's alone.
    withdraw = agent_state_pb2.WithdrawOfferRequest(workspace=ws, inquiry_id="chat-1")
    assert await code_of(stub.WithdrawOffer(withdraw, metadata=ANN_DESK)) == denied
    lookup = agent_state_pb2.GetReservationRequest(workspace=ws, inquiry_id="chat-1")
    assert await code_of(stub.GetReservation(lookup, metadata=ANN_DESK)) == denied
    every = agent_state_pb2.ListReservationsRequest(workspace=ws)
    assert await code_of(stub.ListReservations(every, metadata=ANN_DESK)) == denied
    assert (await stub.GetReservation(lookup, metadata=ROUTER)).reservation.accepted

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


def _certificate(directory: Path) -> tuple[Path, Path]:
    """agent-state's certificate chain (for localhost, 127.0.0.1) and key, from the setup step."""
    provision(Options(deploy_dir=directory))
    return directory / "secrets" / "agent-state.pem", directory / "secrets" / "agent-state.key"


async def test_tls_when_a_certificate_is_configured(broker: Broker, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    async with agent_state_service(
        broker, AGENT_STATE_TLS_CERT_FILE=str(cert), AGENT_STATE_TLS_KEY_FILE=str(key)
    ) as running:
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


async def test_no_tokens_configured_means_no_access(broker: Broker) -> None:
    """Secure by default: without tokens (and without the loopback-only opt-out) every
    call is refused, while the health service still answers."""
    async with agent_state_service(broker, AGENT_STATE_ALLOW_ANONYMOUS="false") as running:
        listing = agent_state_pb2.ListAgentsRequest(workspace="ws")
        assert await code_of(running.stub.ListAgents(listing)) == grpc.StatusCode.UNAUTHENTICATED
        anyone = (("authorization", "Bearer anything"),)
        refused = await code_of(running.stub.ListAgents(listing, metadata=anyone))
        assert refused == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(running.channel)
        answer = await health.Check(health_pb2.HealthCheckRequest())
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_anonymous_access_is_refused_on_a_reachable_address() -> None:
    with pytest.raises(ValueError, match="loopback"):
        AgentStateSettings(agent_state_host="0.0.0.0", agent_state_allow_anonymous=True)
    assert AgentStateSettings(agent_state_host="127.0.0.1", agent_state_allow_anonymous=True)


async def test_the_setup_steps_secrets_secure_agent_state_for_the_router(
    broker: Broker, tmp_path: Path
) -> None:
    """What `make deploy-setup` writes runs agent-state as compose does: TLS with the
    generated certificate, tokens required; the router's client and the desk's (its own
    token for the wallboard, an agent's desktop token for the agent) get in with their
    tokens and the CA, anyone else is refused; the container's health probe passes over TLS."""
    (tmp_path / ".env.example").write_text(
        (Path(__file__).parents[2] / "deploy" / ".env.example").read_text()
    )
    provision(Options(deploy_dir=tmp_path, desks=("ann",)))
    secrets, dotenv = tmp_path / "secrets", read_env(tmp_path / ".env")
    env = agent_state_env(
        broker,
        AGENT_STATE_ALLOW_ANONYMOUS="false",
        AGENT_STATE_ADMIN_TOKENS=dotenv["AGENT_STATE_ADMIN_TOKENS"],
        AGENT_STATE_DESKTOP_TOKENS=dotenv["AGENT_STATE_DESKTOP_TOKENS"],
        AGENT_STATE_TLS_CERT_FILE=str(secrets / "agent-state.pem"),
        AGENT_STATE_TLS_KEY_FILE=str(secrets / "agent-state.key"),
    )
    settings = settings_from(env)
    async with serving(settings) as running:
        target = f"localhost:{running.server.port}"  # a name in the certificate
        ca = (secrets / "ca.pem").read_bytes()
        router = AgentStateClient(target, dotenv["AGENT_STATE_TOKEN"], 10.0, ca)
        stranger = AgentStateClient(target, "not-a-token", 10.0, ca)
        try:
            ws = new_workspace()
            assignment = task_pb2.Assignment(
                inquiry_id="i-1", workspace=ws, agent_id="nobody", channel=CHAT, attempt=1
            )
            fence = agent_state_pb2.RouterFence(group="router", partition=0, generation=1)
            [refused] = await router.reserve_all([assignment], fence)
            assert isinstance(refused, ReservationRefused)  # authenticated: the agent is unknown
            with pytest.raises(AgentStateUnavailable, match="UNAUTHENTICATED"):
                await stranger.reserve_all([assignment], fence)
        finally:
            await router.close()
            await stranger.close()
        ann_token = next(iter(json.loads(dotenv["AGENT_STATE_DESKTOP_TOKENS"])))
        desk = AgentStateGateway(target, dotenv["DESK_AGENT_STATE_TOKEN"], 10.0, ca)
        impostor = AgentStateGateway(target, "not-a-token", 10.0, ca)
        plaintext = AgentStateGateway(target, dotenv["DESK_AGENT_STATE_TOKEN"], 10.0)
        try:
            assert await desk.list_agents(ws) == []  # the wallboard's call, as the desk
            assert await code_of(desk.get_agent("ann", ann_token)) == grpc.StatusCode.NOT_FOUND
            denied = await code_of(desk.get_agent("bob", ann_token))
            assert denied == grpc.StatusCode.PERMISSION_DENIED
            refused = await code_of(impostor.list_agents(ws))
            assert refused == grpc.StatusCode.UNAUTHENTICATED
            assert await code_of(plaintext.list_agents(ws)) == grpc.StatusCode.UNAVAILABLE
        finally:
            for gateway in (desk, impostor, plaintext):
                await gateway.close()
        probe_settings = settings.model_copy(update={"agent_state_port": running.server.port})
        assert await asyncio.to_thread(probe, probe_settings)

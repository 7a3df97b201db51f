"""Bad input over gRPC: no request, however absurd, gets INTERNAL or UNKNOWN from agent-state.

agent-state runs as a real process; hypothesis draws every method's request
message with arbitrary field values (unknown enum values, extreme integers,
odd and huge strings, timestamps from year 1 to 9999, nested lists and maps)
and calls it over real gRPC. Ids are often steered to agents and inquiries
that exist (agents logged in on every channel, offers open), so the calls
reach the rules, not only the edge's validation. Each call must end with OK or a status that
names what was wrong; the process must still answer its health check and
/metrics afterwards. Examples are bounded so the suite stays short.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute.embedded import Broker, wait_for_port
from omniroute.ports import free_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2
from tests.support.agent_state import agent_state_env, reserve
from tests.support.processes import ServiceProcess
from tests.support.protobuf_strategies import messages
from tests.support.system import make_agent

pytestmark = pytest.mark.integration

SERVICE = agent_state_pb2.DESCRIPTOR.services_by_name["AgentState"]
UNARY = [m.name for m in SERVICE.methods if not m.server_streaming]
STREAMS = [m.name for m in SERVICE.methods if m.server_streaming]
BROKEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.fixture(scope="module")
def agent_state(broker: Broker) -> Iterator[tuple[ServiceProcess, int, int]]:
    port, metrics_port = free_port(), free_port()
    env = agent_state_env(
        broker,
        AGENT_STATE_PORT=str(port),
        AGENT_STATE_METRICS_PORT=str(metrics_port),
        LOG_LEVEL="WARNING",
    )
    process = ServiceProcess("omniroute_agent_state", env).start()
    try:
        process.wait_until(lambda: _listening(port))
        yield process, port, metrics_port
    finally:
        code = process.stop()
        assert code == 0, process.log()[-5000:]


@pytest.fixture(scope="module")
def stub(agent_state: tuple[ServiceProcess, int, int]) -> Iterator[Any]:
    """A client, with the pool's agents logged in on every channel and an offer open each."""
    with grpc.insecure_channel(f"127.0.0.1:{agent_state[1]}") as channel:
        client = agent_state_pb2_grpc.AgentStateStub(channel)
        every_channel = {c: 3 for c in inquiry_pb2.Channel.values() if c}
        for agent_id in AGENTS:
            agent = make_agent(WORKSPACE, agent_id, {"billing": 3}, every_channel)
            client.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=agent), timeout=20)
            client.SetStatus(
                agent_state_pb2.SetStatusRequest(
                    agent_id=agent_id, status=agent_pb2.AGENT_STATUS_AVAILABLE
                ),
                timeout=20,
            )
            client.ReserveAgent(reserve(WORKSPACE, agent_id, f"{agent_id}-{INQUIRIES[0]}"))
        yield client


# Ids the requests are steered to: agents and inquiries that exist, and some that do not.
WORKSPACE = "ws-bad-input"
AGENTS = ("ann", "bob")
INQUIRIES = ("i1", "i2")
ID_FIELDS = {"agent_id", "target_agent_id", "inquiry_id", "workspace", "id", "reservation_id"}


def steer_ids(message: Message, data: st.DataObject) -> None:
    """Point id fields (at any depth) at the pool, most of the time."""
    for field in message.DESCRIPTOR.fields:
        if field.is_repeated:
            if field.message_type is not None and not field.message_type.GetOptions().map_entry:
                for item in getattr(message, field.name):
                    steer_ids(item, data)
        elif field.message_type is not None:
            if message.HasField(field.name):
                steer_ids(getattr(message, field.name), data)
        elif field.name in ID_FIELDS and data.draw(st.booleans()):
            pool = {
                "workspace": [WORKSPACE, ""],
                "inquiry_id": [f"{a}-{i}" for a in AGENTS for i in INQUIRIES],
            }.get(field.name, [*AGENTS, ""])
            setattr(message, field.name, data.draw(st.sampled_from(pool)))


def _listening(port: int) -> bool:
    try:
        wait_for_port("127.0.0.1", port, timeout_s=0.2)
        return True
    except TimeoutError:
        return False


def request_type(method: str) -> type[Any]:
    return GetMessageClass(SERVICE.methods_by_name[method].input_type)


@pytest.mark.parametrize("method", UNARY)
@settings(max_examples=30, deadline=None, suppress_health_check=CHECKS)
@given(data=st.data())
def test_no_unary_request_breaks_agent_state(stub: Any, method: str, data: st.DataObject) -> None:
    request = data.draw(messages(request_type(method)), label="request")
    steer_ids(request, data)
    try:
        getattr(stub, method)(request, timeout=20)
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        assert code not in BROKEN, (method, code, exc.details())  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", STREAMS)
@settings(max_examples=8, deadline=None, suppress_health_check=CHECKS)
@given(data=st.data())
def test_no_stream_request_breaks_agent_state(stub: Any, method: str, data: st.DataObject) -> None:
    request = data.draw(messages(request_type(method)), label="request")
    steer_ids(request, data)
    call = getattr(stub, method)(request, timeout=0.5)
    try:
        next(iter(call), None)  # the first event, if one comes before the deadline
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        assert code not in BROKEN, (method, code, exc.details())  # type: ignore[attr-defined]
    finally:
        call.cancel()


INT32 = st.integers(-(2**31), 2**31 - 1)
CHANNELS = st.sampled_from([c for c in inquiry_pb2.Channel.values() if c])


@st.composite
def absurd_agents(draw: st.DrawFn) -> agent_pb2.Agent:
    """Agents that pass for valid at a glance: known ids and enums, absurd numbers and names."""
    return agent_pb2.Agent(
        id=draw(st.sampled_from([*AGENTS, "carl"])),
        workspace=WORKSPACE,
        name=draw(st.text(max_size=300)),
        skills=draw(st.dictionaries(st.text(min_size=1, max_size=120), INT32, max_size=30)),
        languages=draw(st.lists(st.text(max_size=40), max_size=30)),
        tier=draw(st.sampled_from([1, 2, 3])),
        capacities=[
            agent_pb2.ChannelCapacity(channel=c, capacity=n, load=load)
            for c, n, load in draw(st.lists(st.tuples(CHANNELS, INT32, INT32), max_size=10))
        ],
        total_capacity=draw(INT32),
        version=draw(st.integers(-(2**63), 2**63 - 1)),
        voice_blocks_other_channels=draw(st.booleans()),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=CHECKS)
@given(agent=absurd_agents(), channel=CHANNELS)
def test_absurd_but_well_formed_agents_are_refused_or_served(
    stub: Any, agent: agent_pb2.Agent, channel: int
) -> None:
    for call, request in (
        ("UpsertAgent", agent_state_pb2.UpsertAgentRequest(agent=agent)),
        ("ReserveAgent", reserve(WORKSPACE, agent.id, f"{agent.id}-i2", channel)),
        ("ListAgents", agent_state_pb2.ListAgentsRequest(workspace=WORKSPACE)),
    ):
        try:
            getattr(stub, call)(request, timeout=20)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            assert code not in BROKEN, (call, code, exc.details())  # type: ignore[attr-defined]


def test_after_all_that_agent_state_is_up_and_its_metrics_answer(
    agent_state: tuple[ServiceProcess, int, int], stub: Any
) -> None:
    process, port, metrics_port = agent_state
    assert process.process is not None and process.process.poll() is None, process.log()[-5000:]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'omniroute_agent_state_rpcs_total{code="INTERNAL"' not in text
    assert 'code="UNKNOWN"' not in text

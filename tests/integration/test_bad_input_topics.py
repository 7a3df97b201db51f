"""Bad input on Kafka: random bytes and absurd but well-formed protobufs on every input topic.

The router consumes inquiries, agent-events and task-events; agent-state
reads agent-events and agent-snapshots when it starts. Hypothesis draws
records of both kinds (many pointed at a configured workspace so they reach
the routing rules), all on one partition, then one good inquiry. Every
process must stay up, every record must be accounted for (processed, or
dead-lettered and counted), and the good inquiry behind them must be queued:
no record stops a loop or blocks a partition. Examples are few and each is a
whole round, so the suite stays short.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from omniroute.codec import InvalidEvent, decode, encode
from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2, task_pb2
from tests.support.agent_state import agent_state_env, make_topics, serving, settings_from
from tests.support.protobuf_strategies import messages, wire_garbage
from tests.support.system import System, eventually, metric_value, running

pytestmark = pytest.mark.integration

KNOWN = "known"
_OUTCOMES = ("processed", "duplicate", "dead_letter")
ROUND = settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.generate],  # each example is a whole round: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def system(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    config = Path(tmp_path_factory.mktemp("routing")) / "routing.yaml"
    config.write_text(f"workspaces:\n  {KNOWN}: {{}}\n")  # no default: others are refused
    yield from running(System(broker, routing_config=str(config)), "agent-state", "router")


def in_known_workspace(message: Message) -> Message:
    """Point the record at the configured workspace, so it reaches the rules."""
    if isinstance(message, inquiry_pb2.Inquiry | task_pb2.TaskEvent):
        message.workspace = KNOWN
    elif isinstance(message, agent_pb2.AgentEvent):
        message.agent.workspace = KNOWN
    return message


def records(message_type: type[Message]) -> st.SearchStrategy[list[bytes]]:
    """A mix of bytes that are no message and absurd messages, half in the known workspace."""
    absurd = messages(message_type).map(encode)
    steered = messages(message_type).map(in_known_workspace).map(encode)
    return st.lists(wire_garbage() | absurd | steered, min_size=10, max_size=20)


def undecodable(message_type: type[Message], values: list[bytes]) -> int:
    count = 0
    for value in values:
        try:
            decode(message_type, value)
        except InvalidEvent:
            count += 1
    return count


def router_counts(system: System) -> dict[tuple[str, str], float]:
    """omniroute_router_events_total by (input, outcome)."""
    url = f"http://127.0.0.1:{system.ports['router_metrics']}/metrics"
    counts = {}
    for source in ("inquiries", "agent-events", "task-events"):
        for outcome in _OUTCOMES:
            prefix = f'omniroute_router_events_total{{input="{source}",outcome="{outcome}"}}'
            counts[(source, outcome)] = metric_value(url, prefix) or 0.0
    return counts


def waiting_or_offered(metrics: str) -> float:
    """Inquiries of the known workspace waiting or offered, per the router's gauges."""
    depth = metric_value(
        metrics, f'omniroute_router_queue_depth{{queue="default",workspace="{KNOWN}"}}'
    )
    offered = metric_value(metrics, f'omniroute_router_offers_open{{workspace="{KNOWN}"}}')
    return (depth or 0) + (offered or 0)


@ROUND
@given(
    inquiries=records(inquiry_pb2.Inquiry),
    agent_events=records(agent_pb2.AgentEvent),
    task_events=records(task_pb2.TaskEvent),
)
def test_no_record_stops_the_router_or_blocks_its_partition(
    system: System,
    inquiries: list[bytes],
    agent_events: list[bytes],
    task_events: list[bytes],
) -> None:
    topics = system.topics
    sent = {
        "inquiries": (topics["TOPIC_INQUIRIES"], inquiries),
        "agent-events": (topics["TOPIC_AGENT_EVENTS"], agent_events),
        "task-events": (topics["TOPIC_TASK_EVENTS"], task_events),
    }
    before = router_counts(system)
    already = waiting_or_offered(f"http://127.0.0.1:{system.ports['router_metrics']}/metrics")
    sentinel = inquiry_pb2.Inquiry(
        id=f"good-{uuid.uuid4().hex[:8]}", workspace=KNOWN, channel=inquiry_pb2.CHANNEL_EMAIL
    )

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.broker.bootstrap)
        await producer.start()
        try:
            for topic, values in sent.values():
                for value in values:
                    await producer.send_and_wait(topic, value, key=KNOWN.encode())
            await producer.send_and_wait(
                topics["TOPIC_INQUIRIES"], encode(sentinel), key=KNOWN.encode()
            )
        finally:
            await producer.stop()

    asyncio.run(produce())
    types = {"inquiries": inquiry_pb2.Inquiry, "agent-events": agent_pb2.AgentEvent}
    types["task-events"] = task_pb2.TaskEvent

    async def every_record_accounted_for() -> None:
        after = router_counts(system)
        for source, (_, values) in sent.items():
            handled = sum(after[(source, o)] - before[(source, o)] for o in _OUTCOMES)
            dead = after[(source, "dead_letter")] - before[(source, "dead_letter")]
            extra = 1 if source == "inquiries" else 0  # the sentinel
            assert handled >= len(values) + extra, (source, handled, len(values))
            assert dead >= undecodable(types[source], values), (source, dead)

    asyncio.run(eventually(every_record_accounted_for, timeout_s=90))
    for name, process in system.processes.items():
        assert process.process is not None and process.process.poll() is None, (
            f"{name} died:\n{process.log()[-5000:]}"
        )
    # The partition is not blocked: the sentinel behind the bad records is queued
    # (or already offered, if an absurd agent event left an agent able to take it).
    metrics = f"http://127.0.0.1:{system.ports['router_metrics']}/metrics"

    async def sentinel_seen() -> None:
        assert waiting_or_offered(metrics) >= already + 1

    asyncio.run(eventually(sentinel_seen, timeout_s=30))


def plausible(agent: agent_pb2.Agent, status: int) -> agent_pb2.Agent:
    """An absurd agent with a known status and workspace: the roster takes some of these."""
    agent.workspace, agent.status = KNOWN, status  # type: ignore[assignment]
    return agent


PLAUSIBLE_AGENTS = st.builds(
    plausible, messages(agent_pb2.Agent), st.sampled_from(agent_pb2.AgentStatus.values()[1:])
)


@ROUND
@given(
    snapshots=st.lists(
        wire_garbage() | messages(agent_pb2.Agent).map(encode) | PLAUSIBLE_AGENTS.map(encode),
        max_size=15,
    ),
    events=st.lists(
        wire_garbage()
        | messages(agent_pb2.AgentEvent).map(encode)
        | PLAUSIBLE_AGENTS.map(lambda a: encode(agent_pb2.AgentEvent(event_id="e", agent=a))),
        max_size=15,
    ),
)
def test_agent_state_recovers_past_any_record_on_its_topics(
    broker: Broker, snapshots: list[bytes], events: list[bytes]
) -> None:
    settings_ = settings_from(agent_state_env(broker))

    async def round_trip() -> str:
        await make_topics(settings_)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            for topic, values in (
                (settings_.topic_agent_snapshots, snapshots),
                (settings_.topic_agent_events, events),
            ):
                for value in values:
                    await producer.send_and_wait(topic, value, key=b"any")
        finally:
            await producer.stop()
        async with serving(settings_) as service:
            listing = await service.stub.ListAgents(
                agent_state_pb2.ListAgentsRequest(workspace=KNOWN)
            )
            for agent in listing.agents:  # whatever it took, it serves
                await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id=agent.id))
            return generate_latest(service.registry).decode()

    scrape = asyncio.run(round_trip())
    assert "omniroute_agent_state_records_skipped_total" in scrape

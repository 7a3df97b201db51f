"""Bad events on the router's input topics go to the dead-letter topic and block nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from omniroute.codec import decode, encode
from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2, dead_letter_pb2, inquiry_pb2, task_pb2
from tests.support.system import System, eventually, metric_value, running

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    config = Path(tmp_path_factory.mktemp("routing")) / "routing.yaml"
    config.write_text("workspaces:\n  known: {}\n")  # no default: other workspaces are rejected
    yield from running(System(broker, routing_config=str(config)), "router")


async def test_bad_events_are_dead_lettered_with_the_reason(system: System) -> None:
    topics = system.topics
    producer = AIOKafkaProducer(bootstrap_servers=system.broker.bootstrap)
    await producer.start()
    bad = {
        "garbage inquiry": (topics["TOPIC_INQUIRIES"], b"known", b"\xff\xfe not protobuf"),
        "inquiry without id": (
            topics["TOPIC_INQUIRIES"],
            b"known",
            encode(inquiry_pb2.Inquiry(workspace="known", channel=inquiry_pb2.CHANNEL_CHAT)),
        ),
        "unknown workspace": (
            topics["TOPIC_INQUIRIES"],
            b"stranger",
            encode(inquiry_pb2.Inquiry(id="x1", workspace="stranger", channel=inquiry_pb2.CHANNEL_CHAT)),
        ),
        "agent event without agent": (topics["TOPIC_AGENT_EVENTS"], b"known", encode(agent_pb2.AgentEvent(event_id="e"))),
        "task event without inquiry": (topics["TOPIC_TASK_EVENTS"], b"known", encode(task_pb2.TaskEvent(workspace="known"))),
    }  # fmt: skip
    try:
        for topic, key, value in bad.values():
            await producer.send_and_wait(topic, value, key=key)
        good = inquiry_pb2.Inquiry(
            id="good-1", workspace="known", channel=inquiry_pb2.CHANNEL_EMAIL
        )
        await producer.send_and_wait(topics["TOPIC_INQUIRIES"], encode(good), key=b"known")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topics["TOPIC_DEAD_LETTERS"],
        bootstrap_servers=system.broker.bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    letters: list[dead_letter_pb2.DeadLetter] = []
    try:

        async def all_arrived() -> None:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                letters.extend(decode(dead_letter_pb2.DeadLetter, r.value) for r in records)
            assert len(letters) == len(bad)

        await eventually(all_arrived)
    finally:
        await consumer.stop()

    reasons = sorted(letter.reason for letter in letters)
    assert any("not a valid Inquiry" in r for r in reasons)
    assert "Inquiry.id is required" in reasons
    assert any("unknown workspace 'stranger'" in r for r in reasons)
    assert any("AgentEvent.agent.id" in r for r in reasons)
    assert any("TaskEvent.inquiry_id" in r for r in reasons)
    assert all(letter.service == "router" and letter.value for letter in letters)

    # The partition is not blocked: the good inquiry behind the bad ones is queued.
    metrics = f"http://127.0.0.1:{system.ports['router_metrics']}/metrics"

    async def queued() -> None:
        assert (
            metric_value(metrics, 'omniroute_router_queue_depth{queue="default",workspace="known"}')
            == 1
        )

    await eventually(queued)

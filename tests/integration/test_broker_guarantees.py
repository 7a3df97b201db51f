"""What each broker offers is used where it is offered: idempotent producers, compaction.

The services learn the broker from KAFKA_BROKER_KIND (the test tier sets it,
as an operator would). On Apache Kafka every producer is idempotent and the
compacted topics really compact; the embedded broker has neither, and the
services stay correct without them (at-least-once, recovery reads it all).
"""

from __future__ import annotations

import uuid

import pytest

from omniroute.embedded import Broker
from omniroute.kafka import (
    BrokerUnavailable,
    EventProducer,
    RecordTooLarge,
    ensure_topics,
    read_to_end,
)
from omniroute.settings import BrokerKind, CommonSettings
from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2
from tests.support.agent_state import (
    agent_state_env,
    available_agent,
    eventually,
    serving,
    settings_from,
)
from tests.support.ingest import reading
from tests.support.system import new_workspace

pytestmark = pytest.mark.integration

AVAILABLE, AWAY = agent_pb2.AGENT_STATUS_AVAILABLE, agent_pb2.AGENT_STATUS_AWAY


async def test_the_event_producer_is_idempotent_where_the_broker_offers_it(
    broker: Broker, broker_kind: BrokerKind
) -> None:
    settings = CommonSettings(kafka_bootstrap=broker.bootstrap, kafka_partitions=2)
    assert settings.kafka_broker_kind is broker_kind
    topic = f"idempotent-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    producer = EventProducer(settings, client_id="test-idempotent")
    await producer.start()
    try:
        await producer.publish(topic, "acme", b"acknowledged")
        # aiokafka keeps the producer id the broker handed out (InitProducerId)
        # in its transaction manager, which exists only for an idempotent producer.
        manager = producer._producer._txn_manager  # type: ignore[union-attr]
        if broker_kind.idempotent_producers:
            assert manager is not None and manager.producer_id >= 0
        else:
            assert manager is None
    finally:
        await producer.stop()


async def test_publish_many_writes_every_event_in_order_and_says_where(broker: Broker) -> None:
    settings = CommonSettings(kafka_bootstrap=broker.bootstrap, kafka_partitions=2)
    topic = f"publish-many-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    producer = EventProducer(settings, client_id="test-publish-many")
    await producer.start()
    try:
        # Enough, and large enough, to fill several of the producer's batches.
        events: list[tuple[str, str, bytes | None]] = [
            (topic, f"ws-{n % 3}", f"{n:05d}".encode() * 100) for n in range(600)
        ]
        events.append((topic, "ws-0", None))  # a tombstone
        answers = await producer.publish_many(events)
    finally:
        await producer.stop()
    placed = [a for a in answers if not isinstance(a, BrokerUnavailable)]
    assert len(placed) == len(events)  # every one acknowledged
    records = await read_to_end(broker.bootstrap, topic)
    where = {(r.partition, r.offset): (r.key, r.value) for r in records}
    assert len(where) == len(events)
    for (_, key, value), at in zip(events, placed, strict=True):
        assert where[at] == (key.encode(), value)
    for partition in {p for p, _ in placed}:  # each partition's events in the order given
        offsets = [offset for p, offset in placed if p == partition]
        assert offsets == sorted(offsets)


async def test_publish_many_refuses_a_record_too_large_and_writes_the_others(
    broker: Broker,
) -> None:
    settings = CommonSettings(
        kafka_bootstrap=broker.bootstrap, kafka_partitions=2, kafka_max_request_bytes=65_536
    )
    topic = f"publish-many-large-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    producer = EventProducer(settings, client_id="test-publish-many-large")
    await producer.start()
    try:
        answers = await producer.publish_many(
            [(topic, "ws", b"before"), (topic, "ws", b"x" * 100_000), (topic, "ws", b"after")]
        )
    finally:
        await producer.stop()
    assert isinstance(answers[1], RecordTooLarge)
    assert not isinstance(answers[0], BaseException) and not isinstance(answers[2], BaseException)
    assert [r.value for r in await read_to_end(broker.bootstrap, topic)] == [b"before", b"after"]


async def test_agent_snapshots_compact_on_apache_kafka_and_recovery_keeps_the_latest(
    broker: Broker, broker_kind: BrokerKind
) -> None:
    if broker_kind is BrokerKind.TANSU:
        pytest.skip("the embedded broker never compacts (README, Brokers)")
    env = agent_state_env(broker, KAFKA_MAX_COMPACTION_LAG_MS="500")
    settings = settings_from(env)
    ws = new_workspace()
    changes = 0

    async def snapshot_records() -> int:
        async with reading(broker.bootstrap, settings.topic_agent_snapshots) as topic:
            return sum(key == "a1" for key, _ in await topic.settle(0.3))

    async with serving(settings) as service:
        await available_agent(service.stub, ws, "a1", {inquiry_pb2.CHANNEL_CHAT: 2})
        changes = 2

        async def compacted() -> bool:
            # Kafka rolls a segment on the next write after the lag and then
            # cleans it: keep changing the agent until records disappear.
            nonlocal changes
            status = AWAY if changes % 2 == 0 else AVAILABLE
            reason = "break" if status == AWAY else ""
            await service.stub.SetStatus(
                agent_state_pb2.SetStatusRequest(agent_id="a1", status=status, reason=reason)  # type: ignore[arg-type]
            )
            changes += 1
            return await snapshot_records() < changes

        await eventually(compacted, timeout_s=60, interval_s=0.3)
        latest = await service.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="a1"))

    # A new agent-state on the compacted topic rebuilds the agent as it was last.
    async with serving(settings) as again:
        restored = await again.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="a1"))
    assert restored.status == latest.status
    assert restored.version == latest.version

"""A replay reads a recorded period from the topics: each read to its high watermark."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from omniroute.codec import timestamp
from omniroute.embedded import Broker
from omniroute.kafka import EventProducer, ensure_topics
from omniroute.settings import CommonSettings
from omniroute.v1 import inquiry_pb2, task_pb2
from omniroute_simulator import replay
from omniroute_simulator.scenario import load

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parents[2] / "simulator" / "examples"
T0 = 1_763_900_000.0


async def test_replay_reads_inquiries_and_task_events_from_the_topics(
    broker: Broker,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = CommonSettings(
        kafka_bootstrap=broker.bootstrap,
        kafka_partitions=3,
        topic_inquiries=f"inquiries-{suffix}",
        topic_task_events=f"task-events-{suffix}",
    )
    await ensure_topics(settings, [settings.topic_inquiries, settings.topic_task_events])
    producer = EventProducer(settings, "simulator-test")
    await producer.start()
    try:
        for i in range(30):
            workspace = "acme" if i % 3 else "elsewhere"  # spread over partitions
            inquiry = inquiry_pb2.Inquiry(
                id=f"q{i}",
                workspace=workspace,
                channel=inquiry_pb2.CHANNEL_VOICE,
                received_at=timestamp(T0 + 60 * i),
                required_skills=[inquiry_pb2.SkillRequirement(name="billing", min_proficiency=2)],
            )
            await producer.publish(settings.topic_inquiries, workspace, inquiry)
            for kind, delay in ((task_pb2.TaskEvent.TYPE_ACCEPTED, 8),
                                (task_pb2.TaskEvent.TYPE_COMPLETED, 200)):  # fmt: skip
                event = task_pb2.TaskEvent(
                    event_id=f"e{i}-{kind}",
                    type=kind,
                    inquiry_id=f"q{i}",
                    workspace=workspace,
                    agent_id="a1",
                    occurred_at=timestamp(T0 + 60 * i + delay),
                )
                await producer.publish(settings.topic_task_events, workspace, event)
        # Not an inquiry at all: skipped, as the router dead-letters it.
        await producer.publish(settings.topic_inquiries, "acme", b"\x00garbage")
    finally:
        await producer.stop()

    events = await replay.read_kafka(
        broker.bootstrap, settings.topic_inquiries, settings.topic_task_events
    )
    inquiries = [e for e in events if e["type"] == "inquiry"]
    tasks = [e for e in events if e["type"] == "task"]
    assert len(inquiries) == 30 and len(tasks) == 60
    first = next(e for e in inquiries if e["id"] == "q1")
    assert first["at"] == pytest.approx(T0 + 60)
    assert first["skills"] == {"billing": 2} and first["channel"] == "voice"

    rec = replay.recording(events, load(EXAMPLES / "contact-centre.yaml"))
    assert len(rec.contacts) == 20  # workspace acme only
    assert all(c.handle_s == pytest.approx(192) for _, c in rec.contacts)
    assert all(w == pytest.approx(8) for w in rec.recorded_waits.values())

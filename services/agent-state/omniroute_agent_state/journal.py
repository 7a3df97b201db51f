"""agent-state's journal on Kafka: every change published, the roster rebuilt from it.

- `agent-events` (key: workspace): every change, with the agent's full record
  after it; the router's picture of agents comes from here.
- `task-events` (key: workspace): offered, accepted, declined, offer timeout,
  withdrawn, completed (with the outcome).
- `agent-snapshots` (key: agent id, compacted on Kafka): the latest full
  record of each agent; a restarted service reads it to the end and takes the
  highest version of each agent, so no agent, status, load or open offer is lost.
  Under keys `fence/<group>/<partition>` it also holds `RouterFence` records:
  the highest router generation seen per partition, so fencing survives a restart.

Writes go through the `Outbox` (outbox.py), which re-sends them until the
broker acknowledges them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import Message

from omniroute.codec import InvalidEvent, decode
from omniroute.kafka import EventProducer, compacted, ensure_topics
from omniroute.v1 import agent_pb2, agent_state_pb2, task_pb2
from omniroute_agent_state.roster import Changes
from omniroute_agent_state.settings import AgentStateSettings

log = logging.getLogger("omniroute.agent_state")

FENCE_KEY_PREFIX = "fence/"


@dataclass(frozen=True)
class Record:
    """One write: topic, key and the event."""

    topic: str
    key: str
    value: Message


def fence_key(fence: agent_state_pb2.RouterFence) -> str:
    """The snapshot-topic key of a router fence."""
    return f"{FENCE_KEY_PREFIX}{fence.group}/{fence.partition}"


class Journal:
    """Publishes the roster's changes; waits for the broker before a call is answered."""

    def __init__(self, settings: AgentStateSettings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer

    async def prepare(self) -> None:
        """Create the topics this service writes."""
        await ensure_topics(
            self.settings,
            [
                self.settings.topic_agent_events,
                self.settings.topic_task_events,
                self.settings.topic_agent_snapshots,
            ],
            # One record per agent is all recovery needs (the embedded broker
            # accepts this and never compacts; recovery reads it all then).
            configs={self.settings.topic_agent_snapshots: compacted(self.settings)},
        )

    def records(self, changes: Changes) -> list[Record]:
        """The writes `changes` imply, in publishing order."""
        s = self.settings
        writes = []
        for event in changes.agent_events:
            writes.append(Record(s.topic_agent_events, event.agent.workspace, event))
            writes.append(Record(s.topic_agent_snapshots, event.agent.id, event.agent))
        for task in changes.task_events:
            writes.append(Record(s.topic_task_events, task.workspace, task))
        for fence in changes.fences:
            writes.append(Record(s.topic_agent_snapshots, fence_key(fence), fence))
        return writes

    async def write(self, record: Record) -> None:
        """Publish one record; raises `BrokerUnavailable` when not acknowledged."""
        await self.producer.publish(record.topic, record.key, record.value)

    async def record(self, changes: Changes) -> None:
        """Publish every event of `changes` at once; raises `BrokerUnavailable`."""
        await asyncio.gather(*(self.write(r) for r in self.records(changes)))


@dataclass
class Recovered:
    """What a restarted service reads back: agents, router fences, recent task events."""

    agents: list[agent_pb2.Agent] = field(default_factory=list)
    fences: list[agent_state_pb2.RouterFence] = field(default_factory=list)
    task_events: list[task_pb2.TaskEvent] = field(default_factory=list)


async def recover(settings: AgentStateSettings, timeout_s: float = 60.0) -> Recovered:
    """Everything the service published that its state is rebuilt from, each topic to its end.

    The snapshot topic holds the latest record of each agent (once Kafka has
    compacted it) and the router fences; the agent-events topic carries the
    same record after every change, so a record whose snapshot write was lost
    is still found there. The roster keeps the highest version of each agent.
    The last task event of each inquiry comes from the task-events topic (the
    roster keeps those within its retention period), and of each agent for
    it (what answers a retried decline or completion). The end of a topic is
    its fetch high watermark (the embedded broker's `end_offsets()` can be
    wrong; see the README).
    """
    found = Recovered()
    last: dict[tuple[str, str, str], task_pb2.TaskEvent] = {}  # in publishing order

    def snapshot(key: bytes | None, value: bytes | None) -> None:
        if key is not None and key.startswith(FENCE_KEY_PREFIX.encode()):
            found.fences.append(decode(agent_state_pb2.RouterFence, value))
        else:
            found.agents.append(decode(agent_pb2.Agent, value))

    def agent_event(key: bytes | None, value: bytes | None) -> None:
        agent = decode(agent_pb2.AgentEvent, value).agent
        if agent.id:
            found.agents.append(agent)

    def task_event(key: bytes | None, value: bytes | None) -> None:
        event = decode(task_pb2.TaskEvent, value)
        scope = (event.workspace, event.inquiry_id, event.agent_id)
        last.pop(scope, None)
        last[scope] = event

    await _read_to_end(settings, settings.topic_agent_snapshots, snapshot, timeout_s)
    await _read_to_end(settings, settings.topic_agent_events, agent_event, timeout_s)
    await _read_to_end(settings, settings.topic_task_events, task_event, timeout_s)
    found.task_events = list(last.values())
    return found


async def _read_to_end(
    settings: AgentStateSettings,
    topic: str,
    handle: Callable[[bytes | None, bytes | None], None],
    timeout_s: float,
) -> None:
    """Hand every record of `topic` from the beginning to the high watermark to `handle`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    try:
                        handle(record.key, record.value)
                    except InvalidEvent as exc:
                        log.error(
                            "unreadable record skipped",
                            extra={"topic": topic, "offset": record.offset, "reason": str(exc)},
                        )
            ends = [consumer.highwater(tp) for tp in tps]
            positions = [await consumer.position(tp) for tp in tps]
            if all(end is not None and at >= end for at, end in zip(positions, ends, strict=True)):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout_s}s")
    finally:
        await consumer.stop()

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
  Under keys `held/<reservation id>...` it holds `HeldContent` records: what
  the desks are shown for each reservation held (content.py), with a
  tombstone when the reservation ends.

Writes go through the `Outbox` (outbox.py), which re-sends them until the
broker acknowledges them.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from google.protobuf.message import Message

from omniroute.codec import InvalidEvent, decode
from omniroute.kafka import (
    BrokerUnavailable,
    EventProducer,
    RecordTooLarge,
    compacted,
    ensure_topics,
)
from omniroute.v1 import agent_pb2, agent_state_pb2, checkpoint_pb2, task_pb2
from omniroute_agent_state.checkpoint import (
    Checkpoint,
    TopicOffset,
    partitions_of,
    read_checkpoint,
)
from omniroute_agent_state.content import HELD_KEY_PREFIX, key_of
from omniroute_agent_state.roster import FENCE_KEY_PREFIX, Changes
from omniroute_agent_state.settings import AgentStateSettings

log = logging.getLogger("omniroute.agent_state")


@dataclass(frozen=True)
class Record:
    """One write: topic, key and the event."""

    topic: str
    key: str
    value: Message | None  # None: a tombstone (the snapshot topic forgets the key)


def fence_key(fence: agent_state_pb2.RouterFence) -> str:
    """The snapshot-topic key of a router fence."""
    return f"{FENCE_KEY_PREFIX}{fence.group}/{fence.partition}"


class Journal:
    """Publishes the roster's changes; waits for the broker before a call is answered."""

    def __init__(self, settings: AgentStateSettings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer
        # Per (topic, partition): every record before this offset is acknowledged (or
        # was read back at start), so a checkpoint taken now reflects all of them.
        self.covered: dict[TopicOffset, int] = {}
        self.written = 0  # records acknowledged since start

    async def prepare(self) -> None:
        """Create the topics this service writes."""
        await ensure_topics(
            self.settings,
            [
                self.settings.topic_agent_events,
                self.settings.topic_task_events,
                self.settings.topic_agent_snapshots,
                self.settings.topic_agent_checkpoints,
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
        for content in changes.contents:
            writes.append(Record(s.topic_agent_snapshots, content.key, content.value))
        return writes

    async def write_many(
        self, records: Sequence[Record]
    ) -> list[BrokerUnavailable | RecordTooLarge | None]:
        """Publish records in order, acknowledged together: per record None when
        the broker acknowledged it, else `BrokerUnavailable` or `RecordTooLarge`."""
        answers = await self.producer.publish_many([(r.topic, r.key, r.value) for r in records])
        results: list[BrokerUnavailable | RecordTooLarge | None] = []
        for record, answer in zip(records, answers, strict=True):
            if isinstance(answer, (BrokerUnavailable, RecordTooLarge)):
                results.append(answer)
                continue
            partition, offset = answer
            where = (record.topic, partition)
            self.covered[where] = max(self.covered.get(where, 0), offset + 1)
            self.written += 1
            results.append(None)
        return results

    def cover(self, ends: dict[TopicOffset, int]) -> None:
        """Take the ends recovery read to: every record before them is in the roster."""
        for where, end in ends.items():
            self.covered[where] = max(self.covered.get(where, 0), end)


class Source(enum.StrEnum):
    """Where recovery read its records (the `source` label of the recovery metric)."""

    CHECKPOINT = "checkpoint"
    AGENT_SNAPSHOTS = "agent_snapshots"
    AGENT_EVENTS = "agent_events"
    TASK_EVENTS = "task_events"


@dataclass
class Recovered:
    """What a restarted service reads back: agents, router fences, recent task events.

    And what the desks are shown for held reservations (`contents`, by key,
    in reading order, which is not writing order across partitions: messages
    carry their `sequence`; the roster decides which are still held).

    Also where each topic partition was read to (`ends`, what the next
    checkpoint covers) and how many records were read from each source.
    """

    agents: list[agent_pb2.Agent] = field(default_factory=list)
    fences: list[agent_state_pb2.RouterFence] = field(default_factory=list)
    task_events: list[task_pb2.TaskEvent] = field(default_factory=list)
    contents: dict[str, checkpoint_pb2.HeldContent] = field(default_factory=dict)
    ends: dict[TopicOffset, int] = field(default_factory=dict)
    records_read: dict[Source, int] = field(default_factory=lambda: dict.fromkeys(Source, 0))
    checkpoint: Checkpoint | None = None

    @property
    def tail_records(self) -> int:
        """Records read after the checkpoint (all of them without one)."""
        return sum(n for source, n in self.records_read.items() if source != Source.CHECKPOINT)


async def recover(settings: AgentStateSettings, timeout_s: float = 60.0) -> Recovered:
    """Everything the service published that its state is rebuilt from, each topic to its end.

    The latest complete checkpoint (checkpoint.py) gives every agent, fence
    and kept task event as they were when it was taken, and the offsets it
    covers; each topic is then read only from those offsets (from the
    beginning without a checkpoint), so the reading does not grow with the
    topics' history. The snapshot topic holds the latest record of each agent
    and the router fences; the agent-events topic carries the same record
    after every change, so a record whose snapshot write was lost is still
    found there. The roster keeps the highest version of each agent. The last
    task event of each inquiry comes from the task-events topic (the roster
    keeps those within its retention period, and those of open
    reservations), and of each agent for it (what answers a retried decline
    or completion). The end of a topic is its fetch high watermark (the
    embedded broker's `end_offsets()` can be wrong; see the README).
    """
    found = Recovered()
    last: dict[tuple[str, str, str], task_pb2.TaskEvent] = {}  # in publishing order
    starts: dict[TopicOffset, int] = {}
    try:
        checkpoint = await read_checkpoint(settings, timeout_s)
    except (TimeoutError, InvalidEvent) as exc:  # never worse than no checkpoint
        log.error("checkpoint unreadable; reading the topics in full", extra={"error": str(exc)})
        checkpoint = None
    if checkpoint is not None:
        found.checkpoint = checkpoint
        found.records_read[Source.CHECKPOINT] = checkpoint.records_read
        found.agents.extend(checkpoint.agents)
        found.fences.extend(checkpoint.fences)
        for event in checkpoint.task_events:
            last[(event.workspace, event.inquiry_id, event.agent_id)] = event
        for content in checkpoint.contents:
            found.contents[key_of(content)] = content
        starts = checkpoint.covers

    def snapshot(key: bytes | None, value: bytes | None) -> None:
        if key is not None and key.startswith(HELD_KEY_PREFIX.encode()):
            name = key.decode(errors="replace")
            found.contents.pop(name, None)  # a tombstone ends it; a record comes last
            if value is not None:
                found.contents[name] = decode(checkpoint_pb2.HeldContent, value)
        elif key is not None and key.startswith(FENCE_KEY_PREFIX.encode()):
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

    for topic, source, handle in (
        (settings.topic_agent_snapshots, Source.AGENT_SNAPSHOTS, snapshot),
        (settings.topic_agent_events, Source.AGENT_EVENTS, agent_event),
        (settings.topic_task_events, Source.TASK_EVENTS, task_event),
    ):
        ends, read = await read_from(settings, topic, starts, handle, timeout_s)
        found.ends.update(ends)
        found.records_read[source] = read
    found.task_events = list(last.values())
    return found


async def read_from(
    settings: AgentStateSettings,
    topic: str,
    starts: dict[TopicOffset, int],
    handle: Callable[[bytes | None, bytes | None], None],
    timeout_s: float,
) -> tuple[dict[TopicOffset, int], int]:
    """Hand every record of `topic` from `starts` (else the beginning) to the high watermark.

    Returns the offset each partition was read to and how many records were read.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a start no longer on the topic: its beginning
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    read = 0
    try:
        tps = await partitions_of(consumer, topic)
        if not tps:
            return {}, 0
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp in tps:
            if starts.get((topic, tp.partition), 0) > 0:
                consumer.seek(tp, starts[(topic, tp.partition)])
        deadline = time.monotonic() + timeout_s
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                read += len(records)
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
                return {
                    (topic, tp.partition): at for tp, at in zip(tps, positions, strict=True)
                }, read
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout_s}s")
    finally:
        await consumer.stop()

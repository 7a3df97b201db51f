"""Checkpoints: the whole roster written from time to time, so a restart reads only a tail.

Without them a restart reads agent-snapshots, agent-events and task-events
from the beginning: on Apache Kafka the snapshot topic is compacted but the
event topics are bounded only by their retention, and the embedded broker
never compacts at all, so the reading grows with the history. A checkpoint
is every agent record, router fence, kept task event (`Roster.kept_events`)
and what the desks are shown for each reservation held (content.py), with, per partition of those three topics, the offset before which every
record is reflected in it. A restart reads the latest complete checkpoint and
each topic only from those offsets: its time depends on the number of agents
and on the records since the checkpoint, which the next checkpoint bounds.

Taking one (`Checkpointer.take`), on the `agent-checkpoints` topic, all under
one key so on one partition:

1. at one instant (nothing awaits in between) the covered offsets are
   noted (what the journal has had acknowledged, or read back at start: every
   record before them was made before now, so it is in the roster) and the
   roster is copied into chunks (records below ~256 KB; one assignment or
   message larger than that gets a chunk of its own: it was published as one
   record already, so its chunk fits the broker's record limit too);
2. it waits until every change made before that instant is durable, so a
   checkpoint never holds what the topics might lack (the recovery repair
   trusts the task events it carries);
3. writes the chunks, then the manifest naming them: only a manifest makes
   a checkpoint complete. Each chunk names the previous manifest's offset, so
   a restart that finds a torn checkpoint at the end uses the one before.

The records after the covered offsets are read as before, and the roster
keeps the highest version of each agent, so a record both in the checkpoint
and in the tail counts once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from omniroute.codec import InvalidEvent, decode, timestamp
from omniroute.kafka import BrokerUnavailable, EventProducer
from omniroute.v1 import agent_pb2, agent_state_pb2, checkpoint_pb2, task_pb2
from omniroute_agent_state.content import DeskContent
from omniroute_agent_state.roster import Roster
from omniroute_agent_state.settings import AgentStateSettings

if TYPE_CHECKING:
    from omniroute_agent_state.journal import Journal
    from omniroute_agent_state.outbox import Outbox

log = logging.getLogger("omniroute.agent_state")

TopicOffset = tuple[str, int]  # (topic, partition)
CHECKPOINT_KEY = "checkpoint"
# Chunks stay well under Kafka's default 1 MB message limit.
CHUNK_BYTES = 256 * 1024


@dataclass
class Checkpoint:
    """A complete checkpoint read back: the state, and the offsets it covers."""

    agents: list[agent_pb2.Agent] = field(default_factory=list)
    fences: list[agent_state_pb2.RouterFence] = field(default_factory=list)
    task_events: list[task_pb2.TaskEvent] = field(default_factory=list)
    contents: list[checkpoint_pb2.HeldContent] = field(default_factory=list)
    covers: dict[TopicOffset, int] = field(default_factory=dict)
    manifest_offset: int = -1
    records_read: int = 0


def chunks(
    checkpoint_id: str,
    agents: Sequence[agent_pb2.Agent],
    fences: Sequence[agent_state_pb2.RouterFence],
    task_events: Sequence[task_pb2.TaskEvent],
    previous_manifest_offset: int,
    budget: int = CHUNK_BYTES,
    contents: Sequence[checkpoint_pb2.HeldContent] = (),
) -> list[checkpoint_pb2.CheckpointChunk]:
    """The state cut into chunks of about `budget` bytes, copies taken now (plain Python)."""
    made: list[checkpoint_pb2.CheckpointChunk] = []
    size = 0

    def room(item_size: int) -> checkpoint_pb2.CheckpointChunk:
        nonlocal size
        if not made or size + item_size > budget:
            made.append(
                checkpoint_pb2.CheckpointChunk(
                    checkpoint_id=checkpoint_id,
                    index=len(made),
                    previous_manifest_offset=previous_manifest_offset,
                )
            )
            size = 0
        size += item_size
        return made[-1]

    for agent in agents:
        room(agent.ByteSize()).agents.append(agent)
    for fence in fences:
        room(fence.ByteSize()).fences.append(fence)
    for event in task_events:
        room(event.ByteSize()).task_events.append(event)
    for content in contents:
        room(content.ByteSize()).contents.append(content)
    if not made:  # an empty roster is a checkpoint too
        room(0)
    return made


class Checkpointer:
    """Takes a checkpoint once enough records were written since the last one."""

    def __init__(
        self,
        settings: AgentStateSettings,
        producer: EventProducer,
        journal: Journal,
        outbox: Outbox,
        roster: Roster,
        previous_manifest_offset: int = -1,
        records_behind: int = 0,
        content: DeskContent | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.journal = journal
        self.outbox = outbox
        self.roster = roster
        self.content = content or DeskContent()
        self.previous_manifest_offset = previous_manifest_offset
        # Records a restart would read after the last checkpoint: those read at
        # start (without a checkpoint: all of them) and those written since.
        self.records_behind = records_behind
        self.written_at_last = journal.written

    def due(self) -> bool:
        """Whether the tail since the last checkpoint is long enough for a new one.

        At least `checkpoint_records`, and at least twice the agents (so the
        cost of writing the roster stays a fraction of the records written).
        """
        if not self.settings.checkpoint_records:
            return False
        behind = self.records_behind + self.journal.written - self.written_at_last
        return behind >= max(self.settings.checkpoint_records, 2 * len(self.roster.agents))

    async def take(self, wait_s: float) -> checkpoint_pb2.CheckpointManifest:
        """Write a checkpoint of the roster as it is now; its manifest once all is written.

        Raises `BrokerUnavailable` when the broker does not take it (the
        previous checkpoint stays the latest complete one).
        """
        # One instant: the covered offsets, then the copies (nothing awaits in between).
        covers = dict(self.journal.covered)
        seq = self.outbox.last_seq
        written = self.journal.written
        taken_at = time.time()
        checkpoint_id = uuid.uuid4().hex
        parts = chunks(
            checkpoint_id,
            list(self.roster.agents.values()),
            [
                agent_state_pb2.RouterFence(group=group, partition=partition, generation=gen)
                for (group, partition), gen in self.roster.fences.items()
            ],
            self.roster.kept_events(),
            self.previous_manifest_offset,
            contents=self.content.records(),
        )
        agents = len(self.roster.agents)
        await self.outbox.wait(seq, wait_s)  # nothing in it is missing from the topics
        first_offset = -1
        for part in parts:
            _, offset = await self.producer.publish(
                self.settings.topic_agent_checkpoints,
                CHECKPOINT_KEY,
                checkpoint_pb2.CheckpointRecord(chunk=part),
            )
            first_offset = offset if first_offset < 0 else first_offset
        manifest = checkpoint_pb2.CheckpointManifest(
            checkpoint_id=checkpoint_id,
            chunks=len(parts),
            first_chunk_offset=first_offset,
            covers=[
                checkpoint_pb2.CoveredOffset(topic=topic, partition=partition, offset=offset)
                for (topic, partition), offset in sorted(covers.items())
            ],
            agents=agents,
        )
        manifest.taken_at.CopyFrom(timestamp(taken_at))
        _, offset = await self.producer.publish(
            self.settings.topic_agent_checkpoints,
            CHECKPOINT_KEY,
            checkpoint_pb2.CheckpointRecord(manifest=manifest),
        )
        self.previous_manifest_offset = offset
        self.records_behind = 0
        self.written_at_last = written
        log.info(
            "checkpoint written",
            extra={"agents": agents, "chunks": len(parts), "offset": offset},
        )
        return manifest

    async def run_forever(
        self, check_s: float, wait_s: float, report: Callable[[bool], None]
    ) -> None:
        """Take a checkpoint whenever one is due, until cancelled; `report` each outcome."""
        while True:
            await asyncio.sleep(check_s)
            if not self.due():
                continue
            try:
                await self.take(wait_s)
            except BrokerUnavailable as exc:
                log.warning("checkpoint not written; retried later", extra={"error": str(exc)})
                report(False)
            except Exception:  # a bug in one checkpoint must not stop the next
                log.exception("checkpoint failed")
                report(False)
            else:
                report(True)


async def read_checkpoint(settings: AgentStateSettings, timeout_s: float) -> Checkpoint | None:
    """The latest complete checkpoint on the checkpoint topic; None when there is none.

    Reads the last record of each partition (the manifest, or a chunk of a
    torn checkpoint naming the previous manifest), then that manifest's
    chunks: a number of records that depends on the roster, not the history.
    A checkpoint whose chunks are not all there is not used (logged): the
    topics are then read from the beginning.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    read = 0
    try:
        deadline = time.monotonic() + timeout_s
        best: tuple[checkpoint_pb2.CheckpointManifest, TopicPartition, int] | None = None
        tps = await partitions_of(consumer, settings.topic_agent_checkpoints)
        for tp in tps:
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            if end <= 0:
                continue
            # The embedded broker may report an end short of the real one: read on to
            # the fetch high watermark and take the last record.
            tail = [r async for r in _records(consumer, tp, end - 1, None, deadline)]
            read += len(tail)
            found = _manifest_at(tail[-1]) if tail else None
            if found is None and tail:
                previous = _previous_manifest(tail[-1])
                if previous >= 0:
                    at = previous
                    record = [r async for r in _records(consumer, tp, at, at + 1, deadline)]
                    read += len(record)
                    found = _manifest_at(record[0]) if record else None
            if found is not None and (best is None or _seconds(found[0]) > _seconds(best[0])):
                best = (found[0], tp, found[1])
        if best is None:
            return None
        manifest, tp, manifest_offset = best
        consumer.assign([tp])
        parts: dict[int, checkpoint_pb2.CheckpointChunk] = {}
        async for record in _records(
            consumer, tp, manifest.first_chunk_offset, manifest_offset, deadline
        ):
            read += 1
            try:
                chunk = _decode(record).chunk
            except InvalidEvent:
                continue  # reported below as a missing chunk
            if chunk.checkpoint_id == manifest.checkpoint_id:
                parts[chunk.index] = chunk
        if sorted(parts) != list(range(manifest.chunks)):
            log.error(
                "latest checkpoint incomplete; reading the topics from the beginning",
                extra={"offset": manifest_offset, "chunks": manifest.chunks, "found": len(parts)},
            )
            return None
        found_checkpoint = Checkpoint(
            covers={(c.topic, c.partition): c.offset for c in manifest.covers},
            manifest_offset=manifest_offset,
        )
        for index in range(manifest.chunks):
            found_checkpoint.agents.extend(parts[index].agents)
            found_checkpoint.fences.extend(parts[index].fences)
            found_checkpoint.task_events.extend(parts[index].task_events)
            found_checkpoint.contents.extend(parts[index].contents)
        found_checkpoint.records_read = read
        return found_checkpoint
    finally:
        await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of `topic`, in order (none when it does not exist)."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def _records(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    start: int,
    stop: int | None,
    deadline: float,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """The records of the assigned `tp` from `start` to `stop` (None: the high watermark)."""
    consumer.seek(tp, start)
    while True:
        end = stop if stop is not None else consumer.highwater(tp)
        if end is not None and await consumer.position(tp) >= end:
            return
        batches = await consumer.getmany(tp, timeout_ms=200)
        for record in batches.get(tp, []):
            if stop is None or record.offset < stop:
                yield record
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read the checkpoint on {tp.topic}")


def _decode(record: ConsumerRecord[bytes, bytes]) -> checkpoint_pb2.CheckpointRecord:
    return decode(checkpoint_pb2.CheckpointRecord, record.value)


def _manifest_at(
    record: ConsumerRecord[bytes, bytes],
) -> tuple[checkpoint_pb2.CheckpointManifest, int] | None:
    """The manifest in `record` and its offset; None for a chunk or an unreadable record."""
    try:
        value = _decode(record)
    except InvalidEvent:
        log.error("unreadable checkpoint record", extra={"offset": record.offset})
        return None
    return (value.manifest, record.offset) if value.HasField("manifest") else None


def _previous_manifest(record: ConsumerRecord[bytes, bytes]) -> int:
    """The previous manifest's offset a chunk names (-1: none, or not a chunk)."""
    try:
        value = _decode(record)
    except InvalidEvent:
        return -1
    return value.chunk.previous_manifest_offset if value.HasField("chunk") else -1


def _seconds(manifest: checkpoint_pb2.CheckpointManifest) -> float:
    return manifest.taken_at.seconds + manifest.taken_at.nanos / 1e9

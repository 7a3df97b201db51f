"""What the desk reads from Kafka: the router's queue snapshots and its assignments.

- `queue-snapshots`: the router publishes a `QueueSnapshot` per workspace per
  tick. The desk reads from the end (a fresh one arrives within a tick), keeps
  the latest per workspace and wakes that workspace's wallboards.
- `assignments`: every offer the router made, with the inquiry's content. The
  desk keeps the latest per inquiry for a look-back period, so a task shows
  its content where the offer did not carry it to this screen (a task
  transferred in, or opened on another device).

Every desk replica reads both topics whole (no consumer group), so each holds
the same picture, rebuilt from Kafka after a restart. Nothing here is authority.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from omniroute.codec import InvalidEvent, decode, seconds
from omniroute.kafka import ensure_topics
from omniroute.settings import CommonSettings
from omniroute.v1 import queue_pb2, task_pb2

log = logging.getLogger("omniroute.desk")


class SnapshotBoard:
    """The latest snapshot of each workspace, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.latest: dict[str, queue_pb2.QueueSnapshot] = {}
        self._changed = asyncio.Condition()

    async def put(self, snapshot: queue_pb2.QueueSnapshot) -> bool:
        """Keep `snapshot` unless an as new or newer one is held; wake the waiters."""
        held = self.latest.get(snapshot.workspace)
        if held is not None and seconds(held.taken_at) >= seconds(snapshot.taken_at):
            return False
        self.latest[snapshot.workspace] = snapshot
        async with self._changed:
            self._changed.notify_all()
        return True

    async def next(
        self, workspace: str, after: float, timeout_s: float
    ) -> queue_pb2.QueueSnapshot | None:
        """The workspace's snapshot taken after `after`, or None after `timeout_s`."""

        def newer() -> bool:
            held = self.latest.get(workspace)
            return held is not None and seconds(held.taken_at) > after

        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(newer), timeout_s)
        return self.latest.get(workspace) if newer() else None


class AssignmentIndex:
    """The latest assignment (with content) of each inquiry, the oldest dropped past `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.entries: OrderedDict[tuple[str, str], task_pb2.Assignment] = OrderedDict()

    def put(self, assignment: task_pb2.Assignment) -> None:
        """Keep the assignment if it carries the inquiry (older routers did not)."""
        if not assignment.HasField("inquiry") or not assignment.workspace:
            return
        key = (assignment.workspace, assignment.inquiry_id)
        self.entries[key] = assignment
        self.entries.move_to_end(key)
        while len(self.entries) > self.limit:
            self.entries.popitem(last=False)

    def get(self, workspace: str, inquiry_id: str) -> task_pb2.Assignment | None:
        """The last offer of the inquiry the desk has read, if any."""
        return self.entries.get((workspace, inquiry_id))


class TopicFollower:
    """Reads one topic in the background, from a chosen position, reconnecting on trouble."""

    topic: str

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Read in the background until stopped."""
        self._task = asyncio.create_task(self._run(), name=f"read {self.topic}")

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def position(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Where to start reading (after every reconnect)."""
        raise NotImplementedError

    async def take(self, value: bytes | None) -> None:
        """Handle one record's value."""
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("topic unavailable; retrying", extra={"topic": self.topic, "error": str(exc)})  # fmt: skip
            except Exception:  # the reader must outlive any one bad round
                log.exception("topic reader failed; retrying", extra={"topic": self.topic})
            await asyncio.sleep(1.0)

    async def _read(self) -> None:
        # Created with the same partitions as every topic, if the router has not yet.
        await ensure_topics(self.settings, [self.topic])
        # No consumer group: every replica reads everything.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            client_id="omniroute-desk",
        )
        await consumer.start()
        try:
            # A consumer without a subscription knows no topic yet (Apache Kafka
            # answers its first metadata request with none): ask for them.
            # (AIOKafkaConsumer has no public call for it; agent-state's
            # journal does the same.)
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(self.topic)
            while not partitions:
                await asyncio.sleep(1.0)
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await self.position(consumer, tps)
            async for record in consumer:
                try:
                    await self.take(record.value)
                except InvalidEvent as exc:
                    log.warning("undecodable record skipped", extra={"topic": self.topic, "error": str(exc)})  # fmt: skip
        finally:
            await consumer.stop()


class SnapshotReader(TopicFollower):
    """`queue-snapshots` into a `SnapshotBoard`, from the end."""

    def __init__(self, settings: CommonSettings, board: SnapshotBoard) -> None:
        super().__init__(settings)
        self.topic = settings.topic_queue_snapshots
        self.board = board

    async def position(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        await consumer.seek_to_end(*partitions)

    async def take(self, value: bytes | None) -> None:
        snapshot = decode(queue_pb2.QueueSnapshot, value)
        if snapshot.workspace:
            await self.board.put(snapshot)


class AssignmentReader(TopicFollower):
    """`assignments` into an `AssignmentIndex`, from `lookback_s` ago."""

    def __init__(self, settings: CommonSettings, index: AssignmentIndex, lookback_s: float) -> None:
        super().__init__(settings)
        self.topic = settings.topic_assignments
        self.index = index
        self.lookback_s = lookback_s

    async def position(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        since_ms = int((time.time() - self.lookback_s) * 1000)
        try:
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        except KafkaError:  # a broker without time lookups: read everything it keeps
            await consumer.seek_to_beginning(*partitions)
            return
        for tp in partitions:
            at = found.get(tp)
            if at is not None:
                consumer.seek(tp, at.offset)
            else:  # nothing that recent in this partition
                await consumer.seek_to_end(tp)

    async def take(self, value: bytes | None) -> None:
        self.index.put(decode(task_pb2.Assignment, value))

"""Following a topic from every replica, and the router's queue snapshots.

`TopicFollower` reads one topic in the background without a consumer group
(every replica of a service reads everything, so each holds the same
picture, rebuilt from Kafka after a restart), from a position the subclass
chooses, reconnecting on trouble; `stop()` returns once the reader has ended,
also when the Kafka client lost the cancellation (it cancels again, and a
stopping reader never reconnects). `SnapshotReader` follows `queue-snapshots`
from the end into a `SnapshotBoard`: the router publishes a `QueueSnapshot`
per workspace per tick, so a fresh one arrives within a tick; the board keeps
the latest per workspace and wakes whoever waits for the next. The desk's
wallboard and ingest's answers about place in line read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from omniroute.codec import InvalidEvent, decode, seconds
from omniroute.kafka import ensure_topics
from omniroute.settings import CommonSettings
from omniroute.v1 import queue_pb2

log = logging.getLogger(__name__)

# `TopicFollower.stop` cancels its reader again after this long while it has not ended.
STOP_RECANCEL_S = 1.0


class SnapshotBoard:
    """The latest snapshot of each workspace, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.latest: dict[str, queue_pb2.QueueSnapshot] = {}
        # Set and replaced on every new snapshot. An event, not a condition: a
        # waiter cancelled twice (a server shutting down cancels again) must not
        # leave a lock behind that it no longer holds.
        self._changed = asyncio.Event()

    async def put(self, snapshot: queue_pb2.QueueSnapshot) -> bool:
        """Keep `snapshot` unless an as new or newer one is held; wake the waiters."""
        held = self.latest.get(snapshot.workspace)
        if held is not None and seconds(held.taken_at) >= seconds(snapshot.taken_at):
            return False
        self.latest[snapshot.workspace] = snapshot
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    async def next(
        self, workspace: str, after: float, timeout_s: float
    ) -> queue_pb2.QueueSnapshot | None:
        """The workspace's snapshot taken after `after`, or None after `timeout_s`."""

        def newer() -> bool:
            held = self.latest.get(workspace)
            return held is not None and seconds(held.taken_at) > after

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not newer():
                    await self._changed.wait()
        return self.latest.get(workspace) if newer() else None


class TopicFollower:
    """Reads one topic in the background, from a chosen position, reconnecting on trouble."""

    topic: str

    def __init__(self, settings: CommonSettings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Read in the background until stopped."""
        self._task = asyncio.create_task(self._run(), name=f"read {self.topic}")

    async def stop(self) -> None:
        """Stop reading; returns once the reader has ended.

        A cancellation can be lost inside the client (an error raised while a
        consumer closes replaces it, and a timeout inside aiokafka can swallow
        it): the reader then must not carry on, so it is cancelled again until
        it has ended, and it ends rather than reconnect once stopping.
        """
        task = self._task
        if task is None:
            return
        self._stopping = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_RECANCEL_S)
        if not task.cancelled() and task.exception() is not None:
            log.warning("topic reader ended with an error", extra={"topic": self.topic, "error": repr(task.exception())})  # fmt: skip

    async def position(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Where to start reading (after every reconnect)."""
        raise NotImplementedError

    async def take(self, value: bytes | None) -> None:
        """Handle one record's value."""
        raise NotImplementedError

    async def take_record(self, key: bytes | None, value: bytes | None) -> None:
        """Handle one record (its value only, unless a follower needs the key too)."""
        await self.take(value)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the reader must outlive any one bad round
                if self._stopping:  # raised while closing, in place of stop()'s cancellation
                    return
                if isinstance(exc, KafkaError):
                    log.warning("topic unavailable; retrying", extra={"topic": self.topic, "error": str(exc)})  # fmt: skip
                else:
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
            client_id=self.client_id,
        )
        try:
            # Inside the `try`: a consumer stopped while it starts is closed too.
            await consumer.start()
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
                    await self.take_record(record.key, record.value)
                except InvalidEvent as exc:
                    log.warning("undecodable record skipped", extra={"topic": self.topic, "error": str(exc)})  # fmt: skip
        finally:
            await consumer.stop()


class SnapshotReader(TopicFollower):
    """`queue-snapshots` into a `SnapshotBoard`, from the end."""

    def __init__(self, settings: CommonSettings, board: SnapshotBoard, client_id: str) -> None:
        super().__init__(settings, client_id)
        self.topic = settings.topic_queue_snapshots
        self.board = board

    async def position(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        await consumer.seek_to_end(*partitions)

    async def take(self, value: bytes | None) -> None:
        snapshot = decode(queue_pb2.QueueSnapshot, value)
        if snapshot.workspace:
            await self.board.put(snapshot)

"""The router's queue snapshots, read from Kafka: the latest per workspace.

The router publishes a `QueueSnapshot` per workspace per tick on
`queue-snapshots`. Every desk replica reads the whole topic from its end (a
fresh snapshot arrives within a tick), keeps the latest per workspace and
wakes the wallboards of that workspace. Nothing here is authority: a restarted
desk has the figures again after one tick.
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


class SnapshotReader:
    """Reads `queue-snapshots` into a `SnapshotBoard` until stopped."""

    def __init__(self, settings: CommonSettings, board: SnapshotBoard) -> None:
        self.settings = settings
        self.topic = settings.topic_queue_snapshots
        self.board = board
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Read in the background (reconnecting when the broker is away)."""
        self._task = asyncio.create_task(self._run(), name="queue-snapshots")

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("queue snapshots unavailable; retrying", extra={"error": str(exc)})
            except Exception:  # the reader must outlive any one bad round
                log.exception("queue snapshot reader failed; retrying")
            await asyncio.sleep(1.0)

    async def _read(self) -> None:
        # Created with the same partitions as every topic, if the router has not yet.
        await ensure_topics(self.settings, [self.topic])
        # No consumer group: every replica reads every workspace's snapshots.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            client_id="omniroute-desk",
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            while not partitions:
                await consumer.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.topic)
                if not partitions:
                    await asyncio.sleep(1.0)
            consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])
            await consumer.seek_to_end()
            async for record in consumer:
                try:
                    snapshot = decode(queue_pb2.QueueSnapshot, record.value)
                except InvalidEvent as exc:
                    log.warning("undecodable queue snapshot skipped", extra={"error": str(exc)})
                    continue
                if snapshot.workspace:
                    await self.board.put(snapshot)
        finally:
            await consumer.stop()

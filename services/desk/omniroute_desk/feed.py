"""What the desk reads from Kafka: the router's queue snapshots and its assignments.

- `queue-snapshots`: the router publishes a `QueueSnapshot` per workspace per
  tick. The desk reads from the end (a fresh one arrives within a tick), keeps
  the latest per workspace and wakes that workspace's wallboards
  (`omniroute.feeds`, shared with ingest).
- `assignments`: every offer the router made, with the inquiry's content. The
  desk keeps the latest per inquiry for a look-back period, so a task shows
  its content where the offer did not carry it to this screen (a task
  transferred in, or opened on another device).

Every desk replica reads both topics whole (no consumer group), so each holds
the same picture, rebuilt from Kafka after a restart. Nothing here is authority.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from omniroute.codec import decode
from omniroute.feeds import SnapshotBoard, SnapshotReader, TopicFollower
from omniroute.settings import CommonSettings
from omniroute.v1 import task_pb2

__all__ = ["AssignmentIndex", "AssignmentReader", "SnapshotBoard", "SnapshotReader"]


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


class AssignmentReader(TopicFollower):
    """`assignments` into an `AssignmentIndex`, from `lookback_s` ago."""

    def __init__(self, settings: CommonSettings, index: AssignmentIndex, lookback_s: float) -> None:
        super().__init__(settings, "omniroute-desk")
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

"""Re-reading the inquiries topic outside the consumer group, for the sweep.

A rebalance (or a fault in the client or the broker) has been seen to skip
records in the middle of a partition. The router's sweep re-reads each owned
partition from a checkpoint up to what its stream has processed and admits
any inquiry it has never seen; this module only does the reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


@dataclass(frozen=True)
class SweepRead:
    """What one re-read of a partition found: its records, and whether more are
    left before the limit it was given (the sweep is behind)."""

    records: Sequence[Any]
    behind: bool


class TopicReader:
    """Reads offset ranges of one topic's partitions with a consumer of its own (no group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        # One partition at a time: a read assigns its partition to the consumer.
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            # Created on first use, inside the worker's running event loop.
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await self._consumer.start()
        return self._consumer

    async def offset_at(self, partition: int, since_s: float) -> int:
        """The first offset written at or after `since_s` (epoch seconds), else the start."""
        async with self._lock:
            return await self._offset_at(partition, since_s)

    async def _offset_at(self, partition: int, since_s: float) -> int:
        consumer = await self._ensure()
        tp = TopicPartition(self._topic, partition)
        try:
            found = await consumer.offsets_for_times({tp: int(since_s * 1000)})
        except Exception:  # a broker without ListOffsets by time: read from the start
            found = {}
        at = found.get(tp)
        if at is not None:
            return int(at.offset)
        beginning = await consumer.beginning_offsets([tp])
        return int(beginning[tp])

    async def read(self, partition: int, start: int, end: int) -> list[ConsumerRecord]:
        """The records with offsets in [start, end), or fewer when the broker has no more."""
        async with self._lock:
            return await self._read(partition, start, end)

    async def _read(self, partition: int, start: int, end: int) -> list[ConsumerRecord]:
        consumer = await self._ensure()
        tp = TopicPartition(self._topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[ConsumerRecord] = []
        while True:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
            got = batch.get(tp, [])
            if not got:
                return records
            for record in got:
                if record.offset >= end:
                    return records
                records.append(record)
            if got[-1].offset + 1 >= end:
                return records

    async def close(self) -> None:
        """Stop the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()

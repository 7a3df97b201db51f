"""Reading what services published: a topic from its beginning, decoded, in the background."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from google.protobuf.message import Message

from omniroute.codec import decode

M = TypeVar("M", bound=Message)
R = TypeVar("R")


class RecordTail(Generic[R]):
    """Every record of a topic from its beginning, decoded by `_decode`, collected in the
    background. Records of one partition keep their order in `records`."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[R] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> RecordTail[R]:
        """Connect and start collecting (the topic must exist)."""
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self.topic)
        deadline = time.monotonic() + 10
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self.topic} does not exist")
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=100)
            except KafkaError:  # the broker paused or restarting: keep reading after it
                await asyncio.sleep(0.2)
                continue
            for batch in batches.values():
                self.records.extend(self._decode(r) for r in batch)

    def _decode(self, record: Any) -> R:
        raise NotImplementedError

    async def wait_for(self, matches: Callable[[R], bool], timeout_s: float = 30.0) -> R:
        """The first record for which `matches` is true; fails after `timeout_s`."""
        found = await self.wait_count(matches, 1, timeout_s)
        return found[0]

    async def wait_count(
        self, matches: Callable[[R], bool], count: int, timeout_s: float = 30.0
    ) -> list[R]:
        """At least `count` matching records, in order; fails after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [r for r in self.records if matches(r)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.topic}: wanted {count} matching, saw {len(found)} "
                    f"of {len(self.records)} records"
                )
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> RecordTail[R]:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop collecting and disconnect."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


class TopicTail(RecordTail[M]):
    """Every record of a topic of protobuf events from its beginning, decoded."""

    def __init__(self, bootstrap: str, topic: str, message_type: type[M]) -> None:
        super().__init__(bootstrap, topic)
        self.message_type = message_type

    def _decode(self, record: Any) -> M:
        return decode(self.message_type, record.value)

    async def start(self) -> TopicTail[M]:
        """Connect and start collecting (the topic must exist)."""
        await super().start()
        return self

    async def __aenter__(self) -> TopicTail[M]:
        return await self.start()

"""Helpers for the ingest tests: the service in-process on free ports, and reading topics back.

The service runs in the test's event loop exactly as `__main__` runs it
(uvicorn, the SMTP listener, the drop folder), against the real broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from omniroute.codec import decode
from omniroute.ports import free_port
from omniroute.v1 import inquiry_pb2, task_pb2
from omniroute_ingest.service import IngestService
from omniroute_ingest.settings import IngestSettings
from tests.support.processes import topic_env


def ingest_settings(bootstrap: str, **overrides: Any) -> IngestSettings:
    """Settings for one test: its own topics, free ports on 127.0.0.1, no drop folder."""
    env = {k.lower(): v for k, v in topic_env().items()}
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "kafka_partitions": 2,
        "ingest_host": "127.0.0.1",
        "ingest_port": free_port(),
        "ingest_smtp_enabled": True,
        "ingest_smtp_host": "127.0.0.1",
        "ingest_smtp_port": free_port(),
        "ingest_publish_timeout_s": 3.0,
        # Loopback only: no API key, unsigned webhooks when no secret is set
        # (the tests of keys and signatures configure them).
        "ingest_allow_anonymous": True,
        "ingest_rate_per_s": 0,  # no rate limit, except in the test of it
        # No router runs in these tests: answers do not wait for a place in line.
        "ingest_position_wait_s": 0,
        **env,
        **overrides,
    }
    return IngestSettings(**values)


@asynccontextmanager
async def running_ingest(settings: IngestSettings) -> AsyncIterator[IngestService]:
    """The service started in this event loop; stopped on exit."""
    service = IngestService(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


class TopicReader:
    """Reads every record of one topic from the beginning (no consumer group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            client_id=f"test-reader-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        self.records: list[tuple[str, bytes]] = []

    async def start(self) -> TopicReader:
        """Connect and assign every partition of the topic."""
        await self._consumer.start()
        partitions = None
        deadline = time.monotonic() + 15
        while not partitions:
            partitions = self._consumer.partitions_for_topic(self.topic)
            if not partitions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topic {self.topic} not found")
                await self._consumer._client.force_metadata_update()
                await asyncio.sleep(0.1)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        return self

    async def stop(self) -> None:
        """Disconnect."""
        await self._consumer.stop()

    async def wait_for(self, count: int, timeout_s: float = 15.0) -> list[tuple[str, bytes]]:
        """Poll until at least `count` records were read (fails after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while len(self.records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.records)} of {count} records on {self.topic} in {timeout_s}s"
                )
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.records.extend(
                    (r.key.decode() if r.key else "", r.value or b"") for r in records
                )
        return self.records

    async def settle(self, quiet_s: float = 1.0) -> list[tuple[str, bytes]]:
        """Read until nothing new arrived for `quiet_s` (to check nothing extra was written)."""
        deadline = time.monotonic() + quiet_s
        while time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.records.extend(
                    (r.key.decode() if r.key else "", r.value or b"") for r in records
                )
                deadline = time.monotonic() + quiet_s
        return self.records

    async def inquiries(self, count: int, timeout_s: float = 15.0) -> list[inquiry_pb2.Inquiry]:
        """The first `count` records decoded as inquiries."""
        records = await self.wait_for(count, timeout_s)
        return [decode(inquiry_pb2.Inquiry, value) for _, value in records]

    async def task_events(self, count: int, timeout_s: float = 15.0) -> list[task_pb2.TaskEvent]:
        """The first `count` records decoded as task events."""
        records = await self.wait_for(count, timeout_s)
        return [decode(task_pb2.TaskEvent, value) for _, value in records]


@asynccontextmanager
async def reading(bootstrap: str, topic: str) -> AsyncIterator[TopicReader]:
    """A started `TopicReader` for the block."""
    reader = await TopicReader(bootstrap, topic).start()
    try:
        yield reader
    finally:
        await reader.stop()

"""Kafka plumbing shared by the services: topics and an acknowledged producer.

The producer waits for the broker's acknowledgement (acks=all) before
`publish` returns, so a caller that answers its client afterwards never
reports success for an event the broker did not take. On Apache Kafka it is
idempotent: a send the client library retries is written once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from google.protobuf.message import Message

from omniroute.codec import encode
from omniroute.settings import CommonSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge a write in time; the caller may retry."""


class RecordTooLarge(ValueError):
    """A record above the producer's or the broker's size limit: a retry fails the same way."""


async def ensure_topics(
    settings: CommonSettings,
    topics: Iterable[str],
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create the topics with the configured partitions if they do not exist yet.

    Every topic keyed by workspace gets the same partition count, so the router
    sees one workspace's inquiries, agent and task events on one partition.
    `configs` gives topic configs by topic name, e.g. a compacted snapshot topic:
    `{"agent-snapshots": compacted(settings)}`.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="omniroute-admin"
    )
    try:
        await admin.start()  # inside the `try`: closed also when cancelled while it starts
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        new = [
            NewTopic(
                t,
                settings.kafka_partitions,
                settings.kafka_replication_factor,
                topic_configs=dict((configs or {}).get(t, {})),
            )
            for t in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another service created it first
        log.info("created topics", extra={"topics": missing})
    finally:
        await admin.close()


def compacted(settings: CommonSettings) -> dict[str, str]:
    """Topic configs of a compacted topic (the latest record per key is what counts).

    Apache Kafka compacts only closed segments, and rolls one after 7 days or
    1 GiB by default: a small topic would keep its whole history. A maximum
    compaction lag rolls and cleans it within that time, so recovery reads stay
    short however long the history. (The embedded broker never compacts.)
    """
    return {
        "cleanup.policy": "compact",
        "max.compaction.lag.ms": str(settings.kafka_max_compaction_lag_ms),
    }


class EventProducer:
    """Publishes protobuf events and waits for the broker's acknowledgement."""

    def __init__(
        self, settings: CommonSettings, client_id: str, send_timeout_s: float = 10.0
    ) -> None:
        self._settings = settings
        self._client_id = client_id
        self._send_timeout_s = send_timeout_s
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect to the broker (created here: aiokafka binds to the running loop)."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            client_id=self._client_id,
            acks="all",
            # Tansu rejects the idempotent producer's InitProducerId; there
            # consumers de-duplicate by id instead (at-least-once delivery).
            enable_idempotence=self._settings.kafka_broker_kind.idempotent_producers,
            linger_ms=1,
            max_request_size=self._settings.kafka_max_request_bytes,
            request_timeout_ms=int(self._send_timeout_s * 1000),
        )
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is buffered and disconnect."""
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, topic: str, key: str, event: Message | bytes | None) -> tuple[int, int]:
        """Write one event and wait for the acknowledgement.

        `None` writes a tombstone (a compacted topic then forgets the key).
        Returns (partition, offset). Raises `BrokerUnavailable` when the broker
        does not acknowledge in time, `RecordTooLarge` when the record is above
        the producer's (KAFKA_MAX_REQUEST_BYTES) or the broker's limit.
        """
        if self._producer is None:
            raise RuntimeError("EventProducer.publish before start()")
        value = event if event is None or isinstance(event, bytes) else encode(event)
        try:
            metadata = await asyncio.wait_for(
                self._producer.send_and_wait(topic, value=value, key=key.encode()),
                timeout=self._send_timeout_s,
            )
        except MessageSizeTooLargeError as exc:
            raise self._too_large(topic, 0 if value is None else len(value), exc) from exc
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailable(f"broker did not acknowledge the write to {topic}") from exc
        return metadata.partition, metadata.offset

    async def publish_many(
        self, events: Sequence[tuple[str, str, Message | bytes | None]]
    ) -> list[tuple[int, int] | BrokerUnavailable | RecordTooLarge]:
        """Write (topic, key, event) in order; wait for all the acknowledgements together.

        What `publish` does for each, without a task and a wait per event: the
        records go into the producer's batches one after the other, then their
        acknowledgements are awaited at once (a gather of `publish` cost 30-90 us
        of CPU per record, the more the larger the round, since every waiter
        woke whenever a full batch was sent; this costs about 15). The send
        timeout bounds the whole call. Per event: (partition, offset),
        `RecordTooLarge` as `publish` says, or `BrokerUnavailable` when it was
        not acknowledged (those not yet handed to the producer by then are not
        sent at all).
        """
        if self._producer is None:
            raise RuntimeError("EventProducer.publish_many before start()")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._send_timeout_s
        sent: list[asyncio.Future[Any] | RecordTooLarge] = []
        sizes: list[int] = []
        stopped: BaseException | None = None
        try:
            async with asyncio.timeout_at(deadline):
                for topic, key, event in events:
                    value = event if event is None or isinstance(event, bytes) else encode(event)
                    sizes.append(0 if value is None else len(value))
                    try:
                        sent.append(await self._producer.send(topic, value=value, key=key.encode()))
                    except MessageSizeTooLargeError as exc:
                        sent.append(self._too_large(topic, sizes[-1], exc))
        except (KafkaError, TimeoutError) as exc:
            stopped = exc
        waiting = [f for f in sent if isinstance(f, asyncio.Future)]
        if waiting:
            await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()))
        results: list[tuple[int, int] | BrokerUnavailable | RecordTooLarge] = []
        for n, (topic, _, _) in enumerate(events):
            future = sent[n] if n < len(sent) else None
            cause: BaseException | None = stopped
            if isinstance(future, RecordTooLarge):
                results.append(future)
                continue
            if future is not None:
                if future.done() and future.exception() is None:
                    metadata = future.result()
                    results.append((metadata.partition, metadata.offset))
                    continue
                if future.done():
                    cause = future.exception()
                    if isinstance(cause, MessageSizeTooLargeError):
                        results.append(self._too_large(topic, sizes[n], cause))
                        continue
                else:
                    cause = TimeoutError()
                    future.add_done_callback(_retrieved)  # its outcome is moot now
            failure = BrokerUnavailable(f"broker did not acknowledge the write to {topic}")
            failure.__cause__ = cause
            results.append(failure)
        return results

    def _too_large(self, topic: str, size: int, cause: BaseException) -> RecordTooLarge:
        """The refusal of a record above the size limit, as `publish` raises it."""
        failure = RecordTooLarge(
            f"a record of {size} bytes for {topic} is above the size limit "
            f"(KAFKA_MAX_REQUEST_BYTES {self._settings.kafka_max_request_bytes})"
        )
        failure.__cause__ = cause
        return failure

    async def discard(self) -> None:
        """Drop every record not yet acknowledged, then disconnect.

        For a caller that has already answered "not accepted" after a timeout:
        the client will retry, so delivering the old record once the broker is
        back would publish it twice. (A record already on the wire may still
        land; consumers de-duplicate by id.)
        """
        producer, self._producer = self._producer, None
        if producer is None:
            return
        # aiokafka has no public call for this: stop its sender first so that
        # nothing more goes out, then fail what is still buffered.
        sender = getattr(producer, "_sender", None)
        try:
            if sender is not None:
                await sender.close()
            accumulator = getattr(producer, "_message_accumulator", None)
            if accumulator is not None:
                accumulator.fail_all(BrokerUnavailable("producer discarded"))
            await producer.client.close()
        except Exception:
            log.warning("producer did not close cleanly after a broker failure", exc_info=True)
        producer._closed = True  # stop() would wait for the failed batches


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Take a late outcome nobody waits for any more (no "exception never retrieved")."""
    if not future.cancelled():
        future.exception()


async def read_to_end(
    bootstrap: str, topic: str, fetch_max_wait_ms: int = 100, timeout_s: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic`, from the beginning of each partition to its high watermark.

    A bounded read without a consumer group: it stops at the end each partition
    had when read, and commits nothing. The end is the fetch high watermark
    (the embedded broker's `end_offsets()` can be wrong).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return found
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found.extend(records)
            ends = [consumer.highwater(tp) for tp in tps]
            positions = [await consumer.position(tp) for tp in tps]
            if all(end is not None and at >= end for at, end in zip(positions, ends, strict=True)):
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout_s}s")
    finally:
        await consumer.stop()

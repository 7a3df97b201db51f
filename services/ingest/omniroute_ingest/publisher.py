"""Writing inquiries, abandons and callback requests to Kafka; success only once acknowledged.

`InquiryPublisher` is a thin wrapper over the shared `EventProducer`: it
counts and times every write per channel, recognises retries (Idempotency-Key
or inquiry id, see `idempotency`) and raises `BrokerUnavailable` when the
broker does not acknowledge in time, which the channels turn into 503 with
Retry-After or SMTP 451.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omniroute.codec import timestamp
from omniroute.kafka import (
    BrokerUnavailable,
    EventProducer,
    RecordTooLarge,
    compacted,
    ensure_topics,
)
from omniroute.v1 import inquiry_pb2, task_pb2
from omniroute_ingest.idempotency import IdempotencyCache
from omniroute_ingest.ids import new_id
from omniroute_ingest.metrics import IngestMetrics, channel_label
from omniroute_ingest.settings import IngestSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """The broker holds the inquiry `id`; `duplicate` when an earlier attempt already wrote it."""

    id: str
    duplicate: bool = False


class InquiryPublisher:
    """Publishes canonical inquiries to `topic_inquiries` and abandons to `topic_task_events`.

    Both are keyed by workspace, so the router sees one workspace's events in order.
    """

    def __init__(
        self,
        settings: IngestSettings,
        metrics: IngestMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._producer: EventProducer | None = None  # aiokafka needs a running loop: start()
        self._accepted = IdempotencyCache(
            settings.ingest_idempotency_ttl_s, settings.ingest_idempotency_max_entries
        )
        self._in_flight: dict[str, asyncio.Future[str]] = {}
        self._topics_ready = False

    async def start(self) -> None:
        """Create the topics if needed and connect to the broker."""
        await self._ensure_topics()
        await self._connect()

    async def stop(self) -> None:
        """Flush what is buffered and disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, inquiry: inquiry_pb2.Inquiry, idempotency_key: str = "") -> Accepted:
        """Write one inquiry and wait for the acknowledgement.

        A retry (same workspace and Idempotency-Key, or same inquiry id when no
        key is given) seen within the TTL is not written again: the first
        attempt's id is returned with `duplicate=True`. Raises
        `BrokerUnavailable` when the broker does not acknowledge.
        """
        channel = channel_label(inquiry.channel)
        key = f"{inquiry.workspace}\x1f" + (
            f"key\x1f{idempotency_key}" if idempotency_key else f"id\x1f{inquiry.id}"
        )
        known = self._accepted.get(key, self._clock())
        if known is None and key in self._in_flight:
            # A concurrent attempt with the same key: its outcome is ours.
            known = await asyncio.shield(self._in_flight[key])
        if known is not None:
            self.metrics.duplicates.labels(channel).inc()
            self.metrics.accepted.labels(channel).inc()
            log.info(
                "duplicate inquiry not published again",
                extra={"inquiry_id": known, "workspace": inquiry.workspace, "channel": channel},
            )
            return Accepted(known, duplicate=True)

        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            await self._write(self.settings.topic_inquiries, inquiry.workspace, inquiry, channel)
        except (BrokerUnavailable, RecordTooLarge) as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._in_flight[key]
        future.set_result(inquiry.id)
        self._accepted.put(key, inquiry.id, self._clock())
        self.metrics.accepted.labels(channel).inc()
        log.info(
            "inquiry published",
            extra={
                "inquiry_id": inquiry.id,
                "workspace": inquiry.workspace,
                "channel": channel,
                "kind": inquiry_pb2.InquiryKind.Name(inquiry.kind),
                "priority": inquiry.priority,
            },
        )
        return Accepted(inquiry.id)

    async def publish_abandon(
        self, workspace: str, inquiry_id: str, channel: int, reason: str
    ) -> str:
        """Tell the router the customer left before being served (TaskEvent TYPE_ABANDONED).

        Ingest cannot know whether the router has already assigned the inquiry,
        so it publishes whenever the customer leaves before the conversation
        ended and the router decides. Returns the event id.
        """
        label = channel_label(channel)
        event = self._task_event(
            task_pb2.TaskEvent.TYPE_ABANDONED, workspace, inquiry_id, channel, reason=reason
        )
        await self._write(self.settings.topic_task_events, workspace, event, label)
        self.metrics.abandoned.labels(label).inc()
        log.info(
            "abandon published",
            extra={"inquiry_id": inquiry_id, "workspace": workspace, "channel": label},
        )
        return event.event_id

    async def publish_callback(
        self, workspace: str, inquiry_id: str, channel: int, number: str
    ) -> tuple[str, bool]:
        """Tell the router the customer asks to be called back at `number` (TaskEvent
        TYPE_CALLBACK_REQUESTED); (the event id, whether a retry recognised).

        A retry for the same inquiry within the idempotency TTL is not written
        again (the first request's event id comes back, the first number stands);
        one that gets past this process (another replica, a restart) is
        recognised by the router, which changes nothing for an inquiry that is
        a callback already. `number` is personal data: never logged.
        """
        label = channel_label(channel)
        key = f"{workspace}\x1fcallback\x1f{inquiry_id}"
        known = self._accepted.get(key, self._clock())
        if known is not None:
            return known, True
        callback = task_pb2.Callback(number=number, origin_channel=channel)  # type: ignore[arg-type]
        event = self._task_event(
            task_pb2.TaskEvent.TYPE_CALLBACK_REQUESTED,
            workspace,
            inquiry_id,
            channel,
            callback=callback,
        )
        await self._write(self.settings.topic_task_events, workspace, event, label)
        self._accepted.put(key, event.event_id, self._clock())
        self.metrics.callbacks.labels(label).inc()
        log.info(
            "callback request published",
            extra={"inquiry_id": inquiry_id, "workspace": workspace, "channel": label},
        )
        return event.event_id, False

    def _task_event(
        self, kind: int, workspace: str, inquiry_id: str, channel: int, **fields: Any
    ) -> task_pb2.TaskEvent:
        """A TaskEvent ingest publishes (no agent: the customer's side), stamped now."""
        return task_pb2.TaskEvent(
            event_id=new_id(),
            type=kind,  # type: ignore[arg-type]
            inquiry_id=inquiry_id,
            workspace=workspace,
            channel=channel,  # type: ignore[arg-type]
            occurred_at=timestamp(self._clock()),
            **fields,
        )

    async def publish_state(self, key: str, value: bytes, channel: str) -> None:
        """Write one record of ingest's conversation state (`topic_chat_conversations`,
        compacted) and wait for the acknowledgement; `BrokerUnavailable` otherwise."""
        await self._write(self.settings.topic_chat_conversations, key, value, channel)

    async def _write(
        self,
        topic: str,
        workspace: str,
        event: inquiry_pb2.Inquiry | task_pb2.TaskEvent | bytes,
        channel: str,
    ) -> None:
        started = time.perf_counter()
        try:
            if not self._topics_ready:
                await self._ensure_topics()
            if self._producer is None:
                await self._connect()
            assert self._producer is not None
            await self._producer.publish(topic, workspace, event)
        except BrokerUnavailable:
            self.metrics.broker_errors.labels(channel).inc()
            # A broker that comes back may be a new one without our topics
            # (the embedded broker keeps them in memory): create them again.
            self._topics_ready = False
            # The caller answers 503 and the client retries: records still
            # buffered must not reach the broker later as duplicates.
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await producer.discard()
            log.warning("broker did not acknowledge", extra={"topic": topic, "channel": channel})
            raise
        finally:
            self.metrics.publish_seconds.labels(channel).observe(time.perf_counter() - started)

    async def _connect(self) -> None:
        producer = EventProducer(
            self.settings,
            client_id="omniroute-ingest",
            send_timeout_s=self.settings.ingest_publish_timeout_s,
        )
        try:
            await asyncio.wait_for(producer.start(), self.settings.ingest_publish_timeout_s)
        except Exception as exc:
            await producer.discard()
            raise BrokerUnavailable("could not connect to the broker") from exc
        self._producer = producer

    async def _ensure_topics(self) -> None:
        state = self.settings.topic_chat_conversations
        topics = [self.settings.topic_inquiries, self.settings.topic_task_events, state]
        try:
            await asyncio.wait_for(
                ensure_topics(self.settings, topics, {state: compacted(self.settings)}),
                self.settings.ingest_publish_timeout_s,
            )
        except Exception as exc:
            raise BrokerUnavailable("could not reach the broker to create topics") from exc
        self._topics_ready = True

"""Writing inquiries to Kafka; success only once the broker has acknowledged."""

from __future__ import annotations

import time

from omniroute.kafka import EventProducer
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.metrics import IngestMetrics
from omniroute_ingest.settings import IngestSettings


class InquiryPublisher:
    """Publishes canonical inquiries keyed by workspace."""

    def __init__(self, settings: IngestSettings, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.producer = EventProducer(
            settings, client_id="omniroute-ingest", send_timeout_s=settings.ingest_publish_timeout_s
        )

    async def start(self) -> None:
        """Connect to the broker and make sure the topic exists."""
        from omniroute.kafka import ensure_topics

        await ensure_topics(self.settings, [self.settings.topic_inquiries])
        await self.producer.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self.producer.stop()

    async def publish(self, inquiry: inquiry_pb2.Inquiry) -> None:
        """Write one inquiry; raises `BrokerUnavailable` when the broker does not acknowledge."""
        channel = inquiry_pb2.Channel.Name(inquiry.channel).removeprefix("CHANNEL_").lower()
        started = time.perf_counter()
        try:
            await self.producer.publish(self.settings.topic_inquiries, inquiry.workspace, inquiry)
        except Exception:
            self.metrics.broker_errors.inc()
            raise
        finally:
            self.metrics.publish_seconds.labels(channel).observe(time.perf_counter() - started)

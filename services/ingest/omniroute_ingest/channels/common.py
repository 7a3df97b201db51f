"""What every channel adapter shares: understanding, publishing and the answers to give.

`Intake.accept` is the one path from a parsed inquiry to the broker: it fills
in what the understanding step can tell (kind, skills, language, priority),
publishes, counts, and turns a broker failure into `Rejected(503)` with
Retry-After, so no channel can answer success for an unacknowledged write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from omniroute.kafka import BrokerUnavailable
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.errors import Rejected
from omniroute_ingest.metrics import IngestMetrics, channel_label
from omniroute_ingest.publisher import Accepted, InquiryPublisher
from omniroute_ingest.settings import IngestSettings
from omniroute_ingest.understanding import Understanding


@dataclass
class Intake:
    """The services a channel adapter needs, built once by the app factory."""

    settings: IngestSettings
    publisher: InquiryPublisher
    metrics: IngestMetrics
    understanding: Understanding
    clock: Callable[[], float] = field(default=time.time)

    def unavailable(self, channel: str) -> Rejected:
        """The 503 answer when the broker did not acknowledge (counted)."""
        self.metrics.reject(channel, "broker_unavailable")
        return Rejected(
            503,
            "broker_unavailable",
            "the broker did not acknowledge; retry later",
            headers={"Retry-After": str(self.settings.ingest_retry_after_s)},
        )

    async def accept(
        self, inquiry: inquiry_pb2.Inquiry, idempotency_key: str = "", understand: bool = True
    ) -> Accepted:
        """Classify (when asked) and publish; raises `Rejected(503)` when the broker fails."""
        if understand:
            self.understanding.apply(inquiry)
        try:
            return await self.publisher.publish(inquiry, idempotency_key)
        except BrokerUnavailable:
            raise self.unavailable(channel_label(inquiry.channel)) from None

    async def abandon(self, workspace: str, inquiry_id: str, channel: int, reason: str) -> str:
        """Publish an abandon event; raises `Rejected(503)` when the broker fails."""
        try:
            return await self.publisher.publish_abandon(workspace, inquiry_id, channel, reason)
        except BrokerUnavailable:
            raise self.unavailable(channel_label(channel)) from None

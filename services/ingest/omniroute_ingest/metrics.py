"""ingest's Prometheus metrics (`omniroute_ingest_*`), per channel."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from omniroute.metrics import LATENCY_BUCKETS
from omniroute_ingest.inquiry import CHANNELS


class IngestMetrics:
    """Every metric ingest exports, on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "omniroute_ingest_received_total",
            "Requests received, by channel.",
            ["channel"],
            registry=registry,
        )
        self.accepted = Counter(
            "omniroute_ingest_accepted_total",
            "Inquiries published and acknowledged by the broker, by channel.",
            ["channel"],
            registry=registry,
        )
        self.rejected = Counter(
            "omniroute_ingest_rejected_total",
            "Requests refused, by channel and reason (invalid, too_large, broker_unavailable).",
            ["channel", "reason"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "omniroute_ingest_publish_seconds",
            "Time from publishing an inquiry to the broker's acknowledgement.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.broker_errors = Counter(
            "omniroute_ingest_broker_errors_total",
            "Writes the broker did not acknowledge.",
            registry=registry,
        )
        for channel in CHANNELS:
            self.received.labels(channel)
            self.accepted.labels(channel)
            self.publish_seconds.labels(channel)
            self.rejected.labels(channel, "broker_unavailable")
        # Invalid and oversized requests are counted before a channel is known.
        for reason in ("invalid", "too_large"):
            self.rejected.labels("unknown", reason)

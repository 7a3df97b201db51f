"""ingest's Prometheus metrics (`omniroute_ingest_*`), with every channel's series pre-initialised.

The registry is passed in, so tests use an isolated `CollectorRegistry()`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from omniroute.metrics import LATENCY_BUCKETS
from omniroute.v1 import inquiry_pb2

#: Channel label values: the enum names without prefix, lower case ("voice", "email", ...).
CHANNELS = tuple(n.removeprefix("CHANNEL_").lower() for n in inquiry_pb2.Channel.keys()[1:])

#: Why a request was refused (the `reason` label of the rejected counter).
REJECT_REASONS = (
    "invalid",  # malformed input: 400/422, SMTP 5xx
    "too_large",  # body or attachment above the limit: 413
    "unsupported_media",  # wrong content type: 415
    "bad_signature",  # webhook signature missing or wrong: 401/403
    "not_found",  # unknown conversation or call
    "unauthorized",  # no or unknown API key: 401
    "forbidden",  # the API key may not write this workspace or set this field: 403
    "rate_limited",  # the client is over its rate: 429
    "broker_unavailable",  # the broker did not acknowledge: 503 / SMTP 451
)


def channel_label(channel: int) -> str:
    """The metric label of a `Channel` enum value ("unspecified" for 0)."""
    return inquiry_pb2.Channel.Name(channel).removeprefix("CHANNEL_").lower()  # type: ignore[arg-type]


class IngestMetrics:
    """Every metric ingest exports, on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.received = Counter(
            "omniroute_ingest_received_total",
            "Contacts received (requests, mails, files), by channel.",
            ["channel"],
            registry=registry,
        )
        self.accepted = Counter(
            "omniroute_ingest_accepted_total",
            "Inquiries acknowledged by the broker (or recognised as an accepted retry).",
            ["channel"],
            registry=registry,
        )
        self.duplicates = Counter(
            "omniroute_ingest_duplicates_total",
            "Retries recognised by Idempotency-Key or inquiry id and not published again.",
            ["channel"],
            registry=registry,
        )
        self.rejected = Counter(
            "omniroute_ingest_rejected_total",
            "Contacts refused, by channel and reason.",
            ["channel", "reason"],
            registry=registry,
        )
        self.abandoned = Counter(
            "omniroute_ingest_abandoned_total",
            "Abandon events published (caller hung up or chat left before the end).",
            ["channel"],
            registry=registry,
        )
        self.callbacks = Counter(
            "omniroute_ingest_callbacks_total",
            "Callback requests published (the customer asked to be called back instead of "
            "waiting), by the channel waited on; recognised retries not counted.",
            ["channel"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "omniroute_ingest_publish_seconds",
            "Time from writing an event to the broker's acknowledgement.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.broker_errors = Counter(
            "omniroute_ingest_broker_errors_total",
            "Writes the broker did not acknowledge in time, by channel.",
            ["channel"],
            registry=registry,
        )
        for channel in CHANNELS:
            for metric in (
                self.received,
                self.accepted,
                self.duplicates,
                self.abandoned,
                self.callbacks,
                self.publish_seconds,
                self.broker_errors,
            ):
                metric.labels(channel)
        # "unknown": refused before the channel could be read (unparsable REST JSON).
        for channel in (*CHANNELS, "unknown"):
            for reason in REJECT_REASONS:
                self.rejected.labels(channel, reason)

    def reject(self, channel: str, reason: str) -> None:
        """Count one refused contact."""
        self.rejected.labels(channel, reason).inc()

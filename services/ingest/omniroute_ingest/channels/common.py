"""What every channel adapter shares: understanding, publishing and the answers to give.

`Intake.accept` is the one path from a parsed inquiry to the broker: it fills
in what the understanding step can tell (kind, skills, language, priority),
publishes, counts, and turns a broker failure into `Rejected(503)` with
Retry-After, so no channel can answer success for an unacknowledged write.
`Intake.authorize` is the one gate of the API-key routes (key, workspace,
rate); `Intake.limit_peer` rate-limits the provider webhooks by address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from omniroute.kafka import BrokerUnavailable, RecordTooLarge
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.clients import (
    ANONYMOUS,
    ApiKeys,
    Client,
    RateLimiter,
    retry_after,
    steering_fields,
)
from omniroute_ingest.errors import Rejected
from omniroute_ingest.metrics import IngestMetrics, channel_label
from omniroute_ingest.positions import QueueView
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
    monotonic: Callable[[], float] = field(default=time.monotonic)
    clients: ApiKeys = field(init=False)
    limiter: RateLimiter = field(init=False)
    #: The router's queue snapshots (followed by the service), for place-in-line answers.
    view: QueueView = field(init=False)

    def __post_init__(self) -> None:
        self.clients = ApiKeys(
            self.settings.ingest_api_keys, allow_anonymous=self.settings.ingest_allow_anonymous
        )
        self.limiter = RateLimiter(self.settings.ingest_rate_per_s, self.settings.ingest_rate_burst)
        self.view = QueueView(self.settings.ingest_snapshot_max_age_s, self.clock)

    def authorize(self, request: Request, channel: str, workspace: str | None = None) -> Client:
        """The API-key client of `request`, within its rate, allowed to write `workspace`.

        401 without a known key, 429 above the rate (a failed key is limited by
        address, so guessing keys is slow too), 403 for another workspace.
        """
        request.state.channel = channel
        try:
            client = self.clients.identify(request.headers.get("authorization", ""))
        except Rejected:
            self.limit_peer(request)
            raise
        if client is ANONYMOUS:
            self.limit_peer(request)
        else:
            self._limit(f"key:{client.name}")
        if workspace is not None:
            client.check_workspace(workspace)
        return client

    def limit_peer(self, request: Request) -> None:
        """429 when the request's remote address is over its rate."""
        self._limit(f"addr:{request.client.host if request.client else ''}")

    def _limit(self, who: str) -> None:
        wait = self.limiter.take(who, self.monotonic())
        if wait:
            raise Rejected(
                429,
                "rate_limited",
                "too many requests from this client; retry later",
                headers={"Retry-After": retry_after(wait)},
            )

    def check_steering(
        self,
        client: Client,
        attributes: dict[str, str],
        segment: str,
        priority: int = 0,
        prefix: str = "",
    ) -> None:
        """403 naming each field only a client with the steer right may set."""
        if client.steer:
            return
        fields = steering_fields(attributes, segment, priority, prefix)
        if fields:
            raise Rejected(
                403,
                "forbidden",
                f"{fields[0]}: this API key may not set what steers routing",
                [{"field": f, "message": "this API key may not set it"} for f in fields],
            )

    def received_at_skew(self, client: Client) -> float | None:
        """How far from now the client's receivedAt may be (None: as given)."""
        return None if client.steer else self.settings.ingest_received_at_skew_s

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
        """Classify (when asked) and publish; raises `Rejected(503)` when the broker fails.

        An inquiry larger than routing can carry (`omniroute.sizes`: the router's
        copy and the assignment must fit one record) is refused with 413 naming
        the limit, before anything is published.
        """
        if understand:
            self.understanding.apply(inquiry)
        self.check_size(inquiry)
        try:
            return await self.publisher.publish(inquiry, idempotency_key)
        except BrokerUnavailable:
            raise self.unavailable(channel_label(inquiry.channel)) from None
        except RecordTooLarge as exc:  # the broker's own limit is below ours
            raise Rejected(413, "too_large", f"inquiry: {exc}") from None

    def check_size(self, inquiry: inquiry_pb2.Inquiry) -> None:
        """413 when the encoded inquiry is above the size budget's inquiry limit."""
        problem = self.settings.sizes.inquiry_problem(inquiry.ByteSize())
        if problem is not None:
            raise Rejected(413, "too_large", problem)

    async def callback(
        self, workspace: str, inquiry_id: str, channel: int, number: str
    ) -> tuple[str, bool]:
        """Publish a callback request; raises `Rejected(503)` when the broker fails."""
        try:
            return await self.publisher.publish_callback(workspace, inquiry_id, channel, number)
        except BrokerUnavailable:
            raise self.unavailable(channel_label(channel)) from None

    async def abandon(self, workspace: str, inquiry_id: str, channel: int, reason: str) -> str:
        """Publish an abandon event; raises `Rejected(503)` when the broker fails."""
        try:
            return await self.publisher.publish_abandon(workspace, inquiry_id, channel, reason)
        except BrokerUnavailable:
            raise self.unavailable(channel_label(channel)) from None

"""Who is calling ingest's own API, what they may do, and how often.

- API keys (`INGEST_API_KEYS`, JSON name -> {key, workspaces, steer}): every
  REST, batch, chat and walk-in request carries `Authorization: Bearer <key>`
  (401 without a known key) and may only write to the key's workspaces (403).
  Only a key with `steer` may set what steers routing: `routing.*` attributes,
  `customer.segment`, `priority`, and a `receivedAt` further from now than
  `INGEST_RECEIVED_AT_SKEW_S` (others get 403 naming the field, and their
  `receivedAt` is clamped).
- With no key configured every such request is refused, unless
  `INGEST_ALLOW_ANONYMOUS` (loopback only: the tests), where the
  caller is an anonymous client with every right.
- A token bucket per client (key name, or the remote address when there is
  none) answers 429 with Retry-After above `INGEST_RATE_PER_S`.

Plain logic: time is passed in, nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import hmac
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, Field

from omniroute_ingest.errors import Rejected

ANY_WORKSPACE = "*"


class ApiKey(BaseModel):
    """One client's key and rights, as configured."""

    key: str = Field(min_length=16, description="The bearer token (16+ characters).")
    workspaces: list[str] = Field(
        min_length=1, description='Workspaces it may write to; ["*"] for every one.'
    )
    steer: bool = Field(
        False,
        description="May set routing.* attributes, customer.segment, priority and a "
        "receivedAt outside the skew.",
    )


@dataclass(frozen=True)
class Client:
    """An identified caller."""

    name: str
    workspaces: frozenset[str]
    steer: bool

    def may_write(self, workspace: str) -> bool:
        """Whether the client may publish to `workspace`."""
        return ANY_WORKSPACE in self.workspaces or workspace in self.workspaces

    def check_workspace(self, workspace: str) -> None:
        """Raise 403 unless the client may write to `workspace`."""
        if not self.may_write(workspace):
            raise Rejected(
                403, "forbidden", f"workspace: this API key may not write to {workspace!r}"
            )


ANONYMOUS = Client("anonymous", frozenset({ANY_WORKSPACE}), steer=True)


class ApiKeys:
    """Resolves `Authorization: Bearer <key>` to a `Client`, in constant time per key."""

    def __init__(self, keys: Mapping[str, ApiKey], allow_anonymous: bool = False) -> None:
        self._clients = [
            (k.key.encode(), Client(name, frozenset(k.workspaces), k.steer))
            for name, k in keys.items()
        ]
        self.anonymous = allow_anonymous and not self._clients

    def identify(self, authorization: str) -> Client:
        """The client named by the header; raises 401 `unauthorized` otherwise."""
        if self.anonymous:
            return ANONYMOUS
        if not self._clients:
            raise Rejected(401, "unauthorized", "Authorization: no API keys are configured")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Rejected(401, "unauthorized", "Authorization: 'Bearer <API key>' is required")
        client = self.find(token.strip())
        if client is None:
            raise Rejected(401, "unauthorized", "Authorization: unknown API key")
        return client

    def find(self, token: str) -> Client | None:
        """The client whose key is `token` (every key compared, in constant time)."""
        presented = token.encode()
        found = None
        for key, client in self._clients:
            if hmac.compare_digest(presented, key) and found is None:
                found = client
        return found


def steering_fields(
    attributes: Iterable[str], segment: str, priority: int, prefix: str = ""
) -> list[str]:
    """The fields a client without `steer` set: routing.* attributes, segment, priority."""
    fields = [f"{prefix}attributes.{name}" for name in attributes if name.startswith("routing.")]
    if segment:
        fields.append(f"{prefix}customer.segment")
    if priority:
        fields.append(f"{prefix}priority")
    return fields


def clamp_received_at(received: float, now: float, skew_s: float) -> float:
    """`received` moved into [now - skew, now + skew]: an untrusted clock cannot jump the queue."""
    return min(max(received, now - skew_s), now + skew_s)


class RateLimiter:
    """A token bucket per client: `rate_per_s` sustained, `burst` at once.

    At most `max_clients` buckets are kept (the least recently seen dropped;
    a dropped client starts again with a full bucket).
    """

    def __init__(self, rate_per_s: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait_s: float) -> str:
    """Retry-After in whole seconds (at least 1)."""
    return str(max(1, math.ceil(wait_s)))

"""ingest's clients: API keys and their rights, the token bucket, receivedAt clamping."""

from __future__ import annotations

import pytest

from omniroute_ingest.clients import (
    ANONYMOUS,
    ApiKey,
    ApiKeys,
    RateLimiter,
    clamp_received_at,
    retry_after,
    steering_fields,
)
from omniroute_ingest.errors import Rejected

SHOP = "shop-key-0123456789abcdef"


def test_a_key_names_its_client_and_its_workspaces() -> None:
    keys = ApiKeys({"shop": ApiKey(key=SHOP, workspaces=["acme"])})
    client = keys.identify(f"Bearer {SHOP}")
    assert (client.name, client.steer) == ("shop", False)
    assert client.may_write("acme") and not client.may_write("globex")
    with pytest.raises(Rejected) as other:
        client.check_workspace("globex")
    assert (other.value.status, other.value.reason) == (403, "forbidden")
    for header in ("", SHOP, "Basic abc", f"Bearer {SHOP}x", "Bearer "):
        with pytest.raises(Rejected) as refused:
            keys.identify(header)
        assert (refused.value.status, refused.value.reason) == (401, "unauthorized")


def test_no_keys_means_no_access_unless_anonymous_is_allowed() -> None:
    with pytest.raises(Rejected):
        ApiKeys({}).identify("Bearer anything-at-all-here")
    assert ApiKeys({}, allow_anonymous=True).identify("") is ANONYMOUS
    # Keys configured: anonymous access is off even when allowed.
    keys = ApiKeys({"shop": ApiKey(key=SHOP, workspaces=["*"])}, allow_anonymous=True)
    with pytest.raises(Rejected):
        keys.identify("")


def test_what_steers_routing_is_named() -> None:
    assert steering_fields({"routing.queue": "x", "note": "y"}, "vip", 3, "inquiries[1].") == [
        "inquiries[1].attributes.routing.queue",
        "inquiries[1].customer.segment",
        "inquiries[1].priority",
    ]
    assert steering_fields({"note": "y"}, "", 0) == []


def test_received_at_is_clamped_to_the_skew() -> None:
    assert clamp_received_at(0.0, now=1000.0, skew_s=60) == 940.0
    assert clamp_received_at(5000.0, now=1000.0, skew_s=60) == 1060.0
    assert clamp_received_at(990.0, now=1000.0, skew_s=60) == 990.0


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == pytest.approx(0.5)
    assert limiter.take("b", now=0.0) == 0.0  # another client, another bucket
    assert limiter.take("a", now=0.5) == 0.0  # one token back after 1/rate
    assert retry_after(0.2) == "1" and retry_after(2.1) == "3"
    assert RateLimiter(rate_per_s=0, burst=1).take("a", now=0.0) == 0.0  # 0: no limit


def test_the_limiter_keeps_a_bounded_number_of_clients() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_clients=2)
    for client in ("a", "b", "c"):
        limiter.take(client, now=0.0)
    assert limiter.take("a", now=0.0) == 0.0  # forgotten, so full again
    assert limiter.take("c", now=0.0) > 0.0

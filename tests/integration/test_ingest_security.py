"""ingest secure by default, against the real server and broker: API keys per workspace,
who may steer routing, receivedAt clamped, rate limits, webhooks signed or refused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from omniroute.embedded import Broker
from omniroute_ingest.service import IngestService
from omniroute_ingest.settings import IngestSettings
from omniroute_ingest.signatures import provider_signature
from tests.support.ingest import TopicReader, ingest_settings, running_ingest

pytestmark = pytest.mark.integration

SHOP = "shop-key-0123456789abcdef"  # acme only, no steering
CRM = "crm-key-0123456789abcdef0"  # every workspace, may steer
KEYS = {
    "shop": {"key": SHOP, "workspaces": ["acme"]},
    "crm": {"key": CRM, "workspaces": ["*"], "steer": True},
}
SKEW_S = 60.0


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def ingest(broker: Broker) -> AsyncIterator[IngestService]:
    """ingest as deployed: keys configured, no anonymous access, no webhook secrets."""
    settings = ingest_settings(
        broker.bootstrap,
        ingest_allow_anonymous=False,
        ingest_api_keys=KEYS,
        ingest_received_at_skew_s=SKEW_S,
        ingest_rate_per_s=0.01,
        ingest_rate_burst=30,
    )
    async with running_ingest(settings) as service:
        yield service


async def refused(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    return body


async def test_every_api_route_needs_a_key_for_its_workspace(http: httpx.AsyncClient) -> None:
    inquiry = {"workspace": "acme", "channel": "chat", "body": "hello"}
    routes: list[tuple[str, dict[str, Any]]] = [
        ("/v1/inquiries", {"json": inquiry}),
        ("/v1/inquiries/batch", {"json": {"inquiries": [inquiry]}}),
        ("/v1/chat/acme/conversations", {"json": {"message": "hi"}}),
        ("/v1/walk-in/acme", {"json": {"location": "desk 1", "reason": "returns"}}),
        ("/v1/email/acme/raw", {"content": b"Subject: x\r\n\r\nbody\r\n"}),
        ("/v1/documents/acme", {"files": {"file": ("a.pdf", b"%PDF-1.4\n%%EOF\n")}}),
    ]
    for path, body in routes:
        await refused(await http.post(path, **body), 401, "unauthorized")
        wrong = bearer("not-a-key-at-all-000000")
        await refused(await http.post(path, headers=wrong, **body), 401, "unauthorized")

    # The queue figures are read with the same keys, for the key's workspaces only.
    for path in ("/v1/workspaces/acme/queues", "/v1/workspaces/acme/inquiries/i-1/position"):
        await refused(await http.get(path), 401, "unauthorized")
        globex = path.replace("acme", "globex")
        await refused(await http.get(globex, headers=bearer(SHOP)), 403, "forbidden")
        # No router here: the key is good, the figures do not exist.
        await refused(await http.get(path, headers=bearer(SHOP)), 404, "not_found")

    response = await http.post("/v1/inquiries", json=inquiry, headers=bearer(SHOP))
    assert response.status_code == 202, response.text
    other = {**inquiry, "workspace": "globex"}
    await refused(
        await http.post("/v1/inquiries", json=other, headers=bearer(SHOP)), 403, "forbidden"
    )
    batch = {"inquiries": [inquiry, other]}
    await refused(
        await http.post("/v1/inquiries/batch", json=batch, headers=bearer(SHOP)), 403, "forbidden"
    )
    await refused(
        await http.post("/v1/walk-in/globex", json=routes[3][1]["json"], headers=bearer(SHOP)),
        403,
        "forbidden",
    )
    response = await http.post("/v1/inquiries", json=other, headers=bearer(CRM))
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"attributes": {"routing.queue": "vip"}}, "attributes.routing.queue"),
        ({"customer": {"segment": "vip"}}, "customer.segment"),
        ({"priority": 9}, "priority"),
    ],
)
async def test_only_a_key_with_the_steer_right_sets_what_steers_routing(
    http: httpx.AsyncClient, inquiries: TopicReader, extra: dict[str, Any], field: str
) -> None:
    inquiry = {"workspace": "acme", "channel": "chat", "body": "hello", **extra}
    body = await refused(
        await http.post("/v1/inquiries", json=inquiry, headers=bearer(SHOP)), 403, "forbidden"
    )
    assert [f["field"] for f in body["fields"]] == [field]
    clean = {"workspace": "acme", "channel": "chat", "attributes": {"note": "fine"}}
    batch = {"inquiries": [clean, inquiry]}
    body = await refused(
        await http.post("/v1/inquiries/batch", json=batch, headers=bearer(SHOP)), 403, "forbidden"
    )
    assert [f["field"] for f in body["fields"]] == [f"inquiries[1].{field}"]
    allowed = await http.post("/v1/inquiries", json=inquiry, headers=bearer(CRM))
    assert allowed.status_code == 202, allowed.text
    [published] = await inquiries.inquiries(1)  # nothing from the refused requests
    assert published.id == allowed.json()["id"]


async def test_received_at_from_an_untrusted_clock_is_clamped(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    long_ago = "2020-01-01T00:00:00Z"
    before = time.time()
    for key in (SHOP, CRM):
        inquiry = {"workspace": "acme", "channel": "email", "receivedAt": long_ago}
        response = await http.post("/v1/inquiries", json=inquiry, headers=bearer(key))
        assert response.status_code == 202, response.text
    shop, crm = await inquiries.inquiries(2)
    assert shop.received_at.seconds >= before - SKEW_S - 1  # clamped near now
    assert crm.received_at.ToDatetime(UTC) == datetime(2020, 1, 1, tzinfo=UTC)  # as given


async def test_a_client_over_its_rate_gets_429_with_retry_after(
    http: httpx.AsyncClient,
) -> None:
    inquiry = {"workspace": "acme", "channel": "chat", "body": "hello"}
    answers = [
        await http.post("/v1/inquiries", json=inquiry, headers=bearer(SHOP)) for _ in range(31)
    ]
    assert [a.status_code for a in answers[:30]] == [202] * 30  # the burst
    body = await refused(answers[30], 429, "rate_limited")
    assert int(answers[30].headers["Retry-After"]) >= 1, body
    # Another client has its own bucket.
    response = await http.post("/v1/inquiries", json=inquiry, headers=bearer(CRM))
    assert response.status_code == 202, response.text


async def test_webhooks_without_a_configured_secret_are_refused(http: httpx.AsyncClient) -> None:
    form = {"From": "+15550001111", "To": "+15559990000", "Body": "hi", "MessageSid": "SM1"}
    await refused(await http.post("/v1/sms/acme", data=form), 403, "bad_signature")
    call = {"CallSid": "CA1", "From": "+15550002222", "To": "+15559990000"}
    await refused(await http.post("/v1/voice/acme/calls", data=call), 403, "bad_signature")
    await refused(
        await http.post("/v1/social/acme/webhook", json={"object": "page", "entry": []}),
        403,
        "bad_signature",
    )
    challenge = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "42"}
    await refused(await http.get("/v1/social/acme/webhook", params=challenge), 403, "bad_signature")


async def test_sms_signatures_are_checked_against_the_public_url_not_the_host_header(
    broker: Broker,
) -> None:
    token, public = "provider-auth-token", "https://ingest.example.com"
    settings = ingest_settings(
        broker.bootstrap,
        ingest_allow_anonymous=False,
        ingest_sms_auth_token=token,
        ingest_public_base_url=public,
    )
    form = {"From": "+15550001111", "To": "+15559990000", "Body": "hi", "MessageSid": "SM9"}
    async with running_ingest(settings) as service:
        base = f"http://127.0.0.1:{service.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            # Signed over the URL the request arrived on (what a Host header says): refused.
            as_host = provider_signature(token, base + "/v1/sms/acme", form.items())
            forged_host = {"X-Twilio-Signature": as_host, "Host": "attacker.example"}
            response = await http.post("/v1/sms/acme", data=form, headers=forged_host)
            await refused(response, 403, "bad_signature")
            signed = provider_signature(token, public + "/v1/sms/acme", form.items())
            response = await http.post(
                "/v1/sms/acme", data=form, headers={"X-Twilio-Signature": signed}
            )
            assert response.status_code == 200, response.text


def test_settings_refuse_an_open_ingest() -> None:
    with pytest.raises(ValueError, match="loopback"):
        IngestSettings(ingest_host="0.0.0.0", ingest_allow_anonymous=True)
    with pytest.raises(ValueError, match="INGEST_PUBLIC_BASE_URL"):
        IngestSettings(ingest_sms_auth_token="secret")
    with pytest.raises(ValueError, match="at least 16"):
        IngestSettings(ingest_api_keys={"short": {"key": "abc", "workspaces": ["acme"]}})

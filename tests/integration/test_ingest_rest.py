"""REST intake against a real HTTP server and the real broker: what goes in comes out on Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from omniroute.embedded import Broker
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.service import IngestService
from tests.support.ingest import TopicReader, ingest_settings, running_ingest

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(broker: Broker) -> AsyncIterator[IngestService]:
    async with running_ingest(ingest_settings(broker.bootstrap)) as service:
        yield service


async def test_posted_inquiry_is_on_the_topic_keyed_by_workspace(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    response = await http.post(
        "/v1/inquiries",
        json={
            "workspace": "acme",
            "channel": "CHANNEL_CHAT",
            "customer": {"id": "c-1", "contactAddress": "+15550100"},
            "kind": "complaint",
            "subject": "Broken router",
            "requiredSkills": [{"name": "technical", "minProficiency": 3}],
            "language": "en",
            "priority": 4,
            "threadId": "t-9",
        },
    )
    assert response.status_code == 202, response.text
    inquiry_id = response.json()["id"]
    [(key, _)] = await inquiries.wait_for(1)
    [inquiry] = await inquiries.inquiries(1)
    assert key == "acme"
    assert inquiry.id == inquiry_id
    assert inquiry.channel == inquiry_pb2.CHANNEL_CHAT
    assert inquiry.kind == inquiry_pb2.INQUIRY_KIND_COMPLAINT
    assert inquiry.customer.contact_address == "+15550100"
    assert [(s.name, s.min_proficiency) for s in inquiry.required_skills] == [("technical", 3)]
    assert (inquiry.language, inquiry.priority, inquiry.thread_id) == ("en", 4, "t-9")
    assert inquiry.received_at.seconds > 0


async def test_proto_field_names_and_short_enums_are_accepted(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    response = await http.post(
        "/v1/inquiries",
        json={
            "id": "given-1",
            "workspace": "acme",
            "channel": "voice",
            "thread_id": "call-1",
            "received_at": "2026-01-02T03:04:05Z",
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["id"] == "given-1"
    [inquiry] = await inquiries.inquiries(1)
    assert (inquiry.id, inquiry.channel, inquiry.thread_id) == (
        "given-1",
        inquiry_pb2.CHANNEL_VOICE,
        "call-1",
    )
    assert inquiry.received_at.ToJsonString() == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "chat"}, "workspace"),
        ({"workspace": "acme"}, "channel"),
        ({"workspace": "acme", "channel": "pigeon"}, "channel"),
        ({"workspace": "acme", "channel": "chat", "priority": 11}, "priority"),
        (
            {
                "workspace": "acme",
                "channel": "chat",
                "requiredSkills": [{"name": "x", "minProficiency": 9}],
            },
            "requiredSkills[0].minProficiency",
        ),
        ({"workspace": "acme", "channel": "chat", "colour": "red"}, "colour"),
        # valid ISO 8601, but outside what a protobuf Timestamp holds once in UTC
        (
            {"workspace": "acme", "channel": "chat", "receivedAt": "0001-01-01T00:00:00+01:00"},
            "receivedAt",
        ),
        (
            {"workspace": "acme", "channel": "chat", "receivedAt": "9999-12-31T23:59:59-01:00"},
            "receivedAt",
        ),
    ],
)
async def test_bad_inquiries_are_refused_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await http.post("/v1/inquiries", json=body)
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["fields"]]


async def test_unparsable_json_is_400_and_nothing_is_published(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    response = await http.post(
        "/v1/inquiries", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid"
    assert await inquiries.settle(0.5) == []


async def test_health_and_metrics(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    metrics = (await http.get("/metrics")).text
    assert 'omniroute_ingest_received_total{channel="sms"} 0.0' in metrics
    assert "/v1/inquiries" in (await http.get("/openapi.json")).json()["paths"]


async def test_idempotency_key_publishes_a_retry_once(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    body = {"workspace": "acme", "channel": "email", "subject": "Where is my parcel?"}
    headers = {"Idempotency-Key": "order-77"}
    first = await http.post("/v1/inquiries", json=body, headers=headers)
    second = await http.post("/v1/inquiries", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["duplicate"] is True
    assert len(await inquiries.settle(1.0)) == 1


async def test_client_supplied_id_publishes_a_retry_once(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    body = {"id": "mine-1", "workspace": "acme", "channel": "sms"}
    for _ in range(3):
        assert (await http.post("/v1/inquiries", json=body)).status_code == 202
    assert len(await inquiries.settle(1.0)) == 1


async def test_batch_is_validated_whole_then_published(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    bad = await http.post(
        "/v1/inquiries/batch",
        json={"inquiries": [{"workspace": "a", "channel": "chat"}, {"workspace": "a"}]},
    )
    assert bad.status_code == 422
    assert bad.json()["fields"][0]["field"] == "inquiries[1].channel"
    batch = {
        "inquiries": [
            {"workspace": "a", "channel": "chat", "subject": "one"},
            {"workspace": "b", "channel": "voice", "subject": "two"},
        ]
    }
    headers = {"Idempotency-Key": "batch-1"}
    first = await http.post("/v1/inquiries/batch", json=batch, headers=headers)
    again = await http.post("/v1/inquiries/batch", json=batch, headers=headers)
    assert first.status_code == 202, first.text
    assert [r["id"] for r in first.json()["results"]] == [r["id"] for r in again.json()["results"]]
    published = await inquiries.settle(1.0)
    assert sorted(key for key, _ in published) == ["a", "b"]


async def test_oversized_body_is_413(http: httpx.AsyncClient, ingest: IngestService) -> None:
    body = {
        "workspace": "a",
        "channel": "chat",
        "body": "x" * ingest.settings.ingest_max_body_bytes,
    }
    response = await http.post("/v1/inquiries", json=body)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"

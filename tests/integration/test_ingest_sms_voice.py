"""SMS and voice webhooks, signed and wrongly signed, against the real server and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from omniroute.embedded import Broker
from omniroute.v1 import inquiry_pb2, task_pb2
from omniroute_ingest.service import IngestService
from omniroute_ingest.signatures import provider_signature
from tests.support.ingest import TopicReader, ingest_settings, running_ingest

pytestmark = pytest.mark.integration

TOKEN = "provider-auth-token"
PUBLIC = "https://ingest.example.com"
RULES = """
workspaces:
  acme:
    ivr:
      "2": {kind: service_problem, skills: [{name: technical, min_proficiency: 2}], priority: 3}
"""


@pytest.fixture
async def ingest(broker: Broker, tmp_path: Path) -> AsyncIterator[IngestService]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = ingest_settings(
        broker.bootstrap,
        ingest_sms_auth_token=TOKEN,
        ingest_public_base_url=PUBLIC,
        ingest_rules_path=str(rules),
    )
    async with running_ingest(settings) as service:
        yield service


async def post_signed(
    http: httpx.AsyncClient, path: str, form: dict[str, str], signature: str | None = None
) -> httpx.Response:
    """POST a form as the provider does, signed over the public URL."""
    headers = {}
    if signature is None:
        signature = provider_signature(TOKEN, PUBLIC + path, form.items())
    if signature:
        headers["X-Twilio-Signature"] = signature
    return await http.post(path, data=form, headers=headers)


async def test_sms_messages_from_one_number_share_a_thread(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    first = {
        "From": "+15550001111",
        "To": "+15559990000",
        "Body": "Hi, my package never arrived and I need help tracking it.",
        "MessageSid": "SM1",
    }
    second = {**first, "Body": "Hello?", "MessageSid": "SM2"}
    for form in (first, second):
        response = await post_signed(http, "/v1/sms/acme", form)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/xml")
    one, two = await inquiries.inquiries(2)
    assert one.channel == inquiry_pb2.CHANNEL_SMS
    assert (one.workspace, one.customer.contact_address, one.external_id) == (
        "acme",
        "+15550001111",
        "SM1",
    )
    assert one.body.startswith("Hi, my package")
    assert one.language == "en"
    assert one.thread_id == two.thread_id != ""
    assert one.id != two.id


async def test_sms_with_a_wrong_or_missing_signature_is_refused(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    form = {"From": "+15550001111", "Body": "hello", "MessageSid": "SM9"}
    wrong = await post_signed(
        http,
        "/v1/sms/acme",
        form,
        provider_signature("not-the-token", PUBLIC + "/v1/sms/acme", form.items()),
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"] == "bad_signature"
    missing = await post_signed(http, "/v1/sms/acme", form, "")
    assert missing.status_code == 401
    tampered = await http.post(
        "/v1/sms/acme",
        data={**form, "Body": "changed"},
        headers={
            "X-Twilio-Signature": provider_signature(TOKEN, PUBLIC + "/v1/sms/acme", form.items())
        },
    )
    assert tampered.status_code == 403
    unsigned_field = await post_signed(
        http, "/v1/sms/acme", {"Body": "no sender", "MessageSid": "SM10"}
    )
    assert unsigned_field.status_code == 422
    assert unsigned_field.json()["fields"][0]["field"] == "From"
    assert await inquiries.settle(0.5) == []
    metrics = (await http.get("/metrics")).text
    assert 'omniroute_ingest_rejected_total{channel="sms",reason="bad_signature"} 3.0' in metrics


async def test_call_with_ivr_choice_then_hang_up_while_queued_is_abandoned(
    http: httpx.AsyncClient, inquiries: TopicReader, task_events: TopicReader
) -> None:
    arrival = {
        "CallSid": "CA77",
        "From": "+15550002222",
        "To": "+18005550100",
        "Digits": "2",
        "Language": "es",
    }
    response = await post_signed(http, "/v1/voice/acme/calls", arrival)
    assert response.status_code == 200, response.text
    assert '<Enqueue waitUrl="/v1/voice/acme/calls/CA77/wait">acme</Enqueue>' in response.text
    # No router publishes queue figures here: the caller hears the plain greeting.
    assert "<Say>Thank you for waiting." in response.text
    [call] = await inquiries.inquiries(1)
    assert call.channel == inquiry_pb2.CHANNEL_VOICE
    assert (call.customer.contact_address, call.language, call.thread_id, call.external_id) == (
        "+15550002222",
        "es",
        "call-CA77",
        "CA77",
    )
    assert call.kind == inquiry_pb2.INQUIRY_KIND_SERVICE_PROBLEM
    assert [(s.name, s.min_proficiency) for s in call.required_skills] == [("technical", 2)]
    assert call.priority == 3
    assert call.attributes["voice.ivr_digits"] == "2"

    ended = await post_signed(
        http,
        "/v1/voice/acme/calls/status",
        {"CallSid": "CA77", "CallStatus": "completed", "QueueResult": "hangup"},
    )
    assert ended.json() == {"inquiry_id": call.id, "abandoned": True}
    [abandon] = await task_events.task_events(1)
    assert abandon.type == task_pb2.TaskEvent.TYPE_ABANDONED
    assert (abandon.inquiry_id, abandon.workspace, abandon.channel) == (
        call.id,
        "acme",
        inquiry_pb2.CHANNEL_VOICE,
    )
    assert abandon.occurred_at.seconds > 0
    assert task_events.records[0][0] == "acme"


async def test_a_call_bridged_to_an_agent_is_not_abandoned(
    http: httpx.AsyncClient, inquiries: TopicReader, task_events: TopicReader
) -> None:
    assert (
        await post_signed(http, "/v1/voice/acme/calls", {"CallSid": "CA78", "From": "+15550003333"})
    ).status_code == 200
    await inquiries.wait_for(1)
    ended = await post_signed(
        http,
        "/v1/voice/acme/calls/status",
        {"CallSid": "CA78", "CallStatus": "completed", "QueueResult": "bridged"},
    )
    assert ended.json()["abandoned"] is False
    ringing = await post_signed(
        http, "/v1/voice/acme/calls/status", {"CallSid": "CA78", "CallStatus": "in-progress"}
    )
    assert ringing.json()["abandoned"] is False
    bad_digits = await post_signed(
        http, "/v1/voice/acme/calls", {"CallSid": "CA79", "From": "+1555", "Digits": "1; DROP"}
    )
    assert bad_digits.status_code == 422
    assert await task_events.settle(0.5) == []

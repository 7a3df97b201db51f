"""Chat, social, documents (upload and drop folder) and walk-in, through the real server and broker."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from omniroute.embedded import Broker
from omniroute.v1 import inquiry_pb2, task_pb2
from omniroute_ingest.service import IngestService
from omniroute_ingest.signatures import hub_signature
from tests.support.ingest import TopicReader, ingest_settings, running_ingest

pytestmark = pytest.mark.integration

SECRET = "social-app-secret"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TIFF = b"II*\x00" + b"\x00" * 60


@pytest.fixture
async def ingest(broker: Broker, tmp_path: Path) -> AsyncIterator[IngestService]:
    settings = ingest_settings(
        broker.bootstrap,
        ingest_attachment_dir=str(tmp_path / "attachments"),
        ingest_social_app_secret=SECRET,
        ingest_social_verify_token="verify-me",
        ingest_drop_dir=str(tmp_path / "drop" / "incoming"),
        ingest_drop_poll_s=0.1,
        ingest_max_attachment_bytes=10_000,
    )
    async with running_ingest(settings) as service:
        yield service


async def test_chat_first_message_publishes_and_leaving_is_abandoned(
    http: httpx.AsyncClient, inquiries: TopicReader, task_events: TopicReader
) -> None:
    started = await http.post(
        "/v1/chat/acme/conversations",
        json={"customer": {"id": "cust-7", "name": "Kim"}, "subject": "Web chat"},
    )
    assert started.status_code == 201, started.text
    conversation = started.json()
    assert conversation["published"] is False
    cid = conversation["conversation_id"]
    base = f"/v1/chat/acme/conversations/{cid}"
    first = await http.post(
        f"{base}/messages", json={"text": "Bonjour, je voudrais changer mon adresse de livraison."}
    )
    assert first.json()["published"] is True
    assert (await http.post(f"{base}/messages", json={"text": "Merci"})).status_code == 202
    # The later message is published on the conversation's thread with an id of its
    # own: the router joins it to the open inquiry (test_conversations.py).
    inquiry, later = await inquiries.inquiries(2)
    assert (later.thread_id, later.body) == (f"chat-{cid}", "Merci")
    assert later.id != inquiry.id
    assert inquiry.channel == inquiry_pb2.CHANNEL_CHAT
    assert (inquiry.id, inquiry.thread_id, inquiry.customer.id) == (
        conversation["inquiry_id"],
        f"chat-{cid}",
        "cust-7",
    )
    assert inquiry.language == "fr"

    left = await http.post(f"{base}/leave", json={"reason": "closed the window"})
    assert left.json()["abandoned"] is True
    [abandon] = await task_events.task_events(1)
    assert (abandon.type, abandon.inquiry_id, abandon.channel, abandon.reason) == (
        task_pb2.TaskEvent.TYPE_ABANDONED,
        inquiry.id,
        inquiry_pb2.CHANNEL_CHAT,
        "closed the window",
    )
    assert len(await inquiries.settle(0.5)) == 2  # leaving published no inquiry


async def test_chat_ended_normally_is_not_abandoned_and_unknown_is_404(
    http: httpx.AsyncClient, task_events: TopicReader
) -> None:
    started = await http.post("/v1/chat/acme/conversations", json={"message": "Hi there"})
    cid = started.json()["conversation_id"]
    assert started.json()["published"] is True
    await http.post(f"/v1/chat/acme/conversations/{cid}/end")
    assert (await http.post(f"/v1/chat/acme/conversations/{cid}/leave")).json()[
        "abandoned"
    ] is False
    assert (
        await http.post("/v1/chat/acme/conversations/nope/messages", json={"text": "x"})
    ).status_code == 404
    assert (await http.post(f"/v1/chat/other/conversations/{cid}/leave")).status_code == 404
    empty = await http.post(f"/v1/chat/acme/conversations/{cid}/messages", json={"text": ""})
    assert empty.status_code == 422 and empty.json()["fields"][0]["field"] == "text"
    assert await task_events.settle(0.5) == []


def social_body() -> bytes:
    return json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": "page-1",
                    "time": 1700000000,
                    "messaging": [
                        {
                            "sender": {"id": "u-42"},
                            "recipient": {"id": "page-1"},
                            "timestamp": 1700000000,
                            "message": {
                                "mid": "m-1",
                                "text": "My order #123 never arrived, I want to cancel it.",
                            },
                        },
                        {
                            "sender": {"id": "page-1"},
                            "recipient": {"id": "u-42"},
                            "message": {"mid": "m-2", "text": "echo", "is_echo": True},
                        },
                    ],
                    "changes": [
                        {
                            "field": "mention",
                            "value": {
                                "from": {"id": "u-9", "username": "dana"},
                                "text": "@acme your app has been down all morning",
                                "comment_id": "c-5",
                                "post_id": "p-3",
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


async def test_social_challenge_and_signed_notifications(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    challenge = await http.get(
        "/v1/social/acme/webhook",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": "verify-me",
            "hub.challenge": "1158201444",
        },
    )
    assert (challenge.status_code, challenge.text) == (200, "1158201444")
    wrong_token = await http.get(
        "/v1/social/acme/webhook",
        params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"},
    )
    assert wrong_token.status_code == 403

    body = social_body()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": hub_signature(SECRET, body),
    }
    response = await http.post("/v1/social/acme/webhook", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["accepted"]) == 2
    dm, mention = await inquiries.inquiries(2)
    assert dm.channel == mention.channel == inquiry_pb2.CHANNEL_SOCIAL
    assert (dm.customer.id, dm.external_id, dm.attributes["social.type"]) == (
        "page:u-42",
        "m-1",
        "direct_message",
    )
    assert (
        mention.customer.name,
        mention.attributes["social.type"],
        mention.attributes["social.public"],
    ) == ("dana", "mention", "true")
    assert dm.thread_id != mention.thread_id
    assert dm.language == "en"


async def test_social_bad_signatures_and_bad_payloads(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    body = social_body()
    wrong = await http.post(
        "/v1/social/acme/webhook",
        content=body,
        headers={"X-Hub-Signature-256": hub_signature("other", body)},
    )
    assert wrong.status_code == 403
    missing = await http.post("/v1/social/acme/webhook", content=body)
    assert missing.status_code == 401
    bad = json.dumps(
        {"object": "page", "entry": [{"messaging": [{"message": {"mid": "m"}}]}]}
    ).encode()
    invalid = await http.post(
        "/v1/social/acme/webhook",
        content=bad,
        headers={"X-Hub-Signature-256": hub_signature(SECRET, bad)},
    )
    assert invalid.status_code == 422
    assert invalid.json()["fields"][0]["field"] == "entry[0].messaging[0].sender"
    garbage = b"{nope"
    unparsable = await http.post(
        "/v1/social/acme/webhook",
        content=garbage,
        headers={"X-Hub-Signature-256": hub_signature(SECRET, garbage)},
    )
    assert unparsable.status_code == 400
    assert await inquiries.settle(0.5) == []


async def test_fax_upload_as_multipart(http: httpx.AsyncClient, inquiries: TopicReader) -> None:
    response = await http.post(
        "/v1/documents/acme",
        files={"file": ("claim.pdf", PDF, "application/pdf")},
        data={
            "channel": "fax",
            "sender_name": "Dr. Who",
            "sender_address": "+44 20 7946 0000",
            "subject": "Insurance claim",
            "external_id": "fax-991",
        },
    )
    assert response.status_code == 202, response.text
    again = await http.post(
        "/v1/documents/acme",
        files={"file": ("claim.pdf", PDF, "application/pdf")},
        data={"channel": "fax", "external_id": "fax-991"},
    )
    assert again.json()["duplicate"] is True
    not_pdf = await http.post(
        "/v1/documents/acme", files={"file": ("x.pdf", b"hello", "application/pdf")}
    )
    assert not_pdf.status_code == 415
    too_big = await http.post(
        "/v1/documents/acme", files={"file": ("big.pdf", PDF + b"x" * 20_000, "application/pdf")}
    )
    assert too_big.status_code == 413
    no_file = await http.post("/v1/documents/acme", data={"channel": "fax"})
    assert no_file.status_code == 422 and no_file.json()["fields"][0]["field"] == "file"
    [fax] = await inquiries.inquiries(1)
    assert fax.channel == inquiry_pb2.CHANNEL_FAX
    assert (fax.customer.name, fax.customer.contact_address, fax.subject, fax.external_id) == (
        "Dr. Who",
        "+44 20 7946 0000",
        "Insurance claim",
        "fax-991",
    )
    [attachment] = fax.attachments
    assert (attachment.content_type, attachment.size_bytes) == ("application/pdf", len(PDF))
    assert len(await inquiries.settle(0.5)) == 1


async def test_drop_folder_files_become_inquiries_once(
    ingest: IngestService, inquiries: TopicReader
) -> None:
    assert ingest.drop_folder is not None
    incoming = ingest.drop_folder.root / "acme"
    await asyncio.to_thread(incoming.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(
        (incoming / "letter.tiff.json").write_text,
        json.dumps(
            {
                "sender_name": "M. Curie",
                "sender_address": "1 Rue X, Paris",
                "subject": "Change of address",
            }
        ),
    )
    await asyncio.to_thread((incoming / "letter.tiff").write_bytes, TIFF)
    await asyncio.to_thread((incoming / "junk.pdf").write_bytes, b"not a document")

    [letter] = await inquiries.inquiries(1)
    assert letter.channel == inquiry_pb2.CHANNEL_POSTAL_MAIL
    assert (letter.workspace, letter.customer.name, letter.subject) == (
        "acme",
        "M. Curie",
        "Change of address",
    )
    assert letter.attachments[0].content_type == "image/tiff"

    processed = ingest.drop_folder.processed / "acme"
    failed = ingest.drop_folder.failed / "acme"
    deadline = time.monotonic() + 10
    while not (
        await asyncio.to_thread(
            lambda: (failed / "junk.pdf.reason.txt").exists() and not any(incoming.iterdir())
        )
    ):
        assert time.monotonic() < deadline, "drop files were not moved"
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(lambda: sorted(p.name for p in processed.iterdir())) == [
        f"{letter.id}-letter.tiff",
        f"{letter.id}-letter.tiff.json",
    ]
    reason = await asyncio.to_thread((failed / "junk.pdf.reason.txt").read_text)
    assert "not a PDF or TIFF" in reason
    assert len(await inquiries.settle(0.5)) == 1


async def test_walk_in_check_in(http: httpx.AsyncClient, inquiries: TopicReader) -> None:
    response = await http.post(
        "/v1/walk-in/acme",
        json={
            "location": "store-12",
            "locationType": "store",
            "reason": "Return a faulty phone",
            "ticket": "A-17",
            "language": "de",
            "kind": "return",
        },
    )
    assert response.status_code == 202, response.text
    bad = await http.post(
        "/v1/walk-in/acme", json={"location": "store-12", "locationType": "boat", "reason": "x"}
    )
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "locationType"
    [visit] = await inquiries.inquiries(1)
    assert visit.channel == inquiry_pb2.CHANNEL_IN_PERSON
    assert (visit.subject, visit.language, visit.kind, visit.thread_id) == (
        "Return a faulty phone",
        "de",
        inquiry_pb2.INQUIRY_KIND_RETURN,
        "visit-A-17",
    )
    assert visit.attributes["walk_in.location"] == "store-12"
    assert visit.site == "store-12"


async def test_drop_folder_refuses_symlinks_and_big_files_unread(
    ingest: IngestService, inquiries: TopicReader, tmp_path: Path
) -> None:
    assert ingest.drop_folder is not None
    incoming = ingest.drop_folder.root / "acme"
    failed = ingest.drop_folder.failed / "acme"
    secret = tmp_path / "elsewhere.pdf"  # a document outside the drop folder
    await asyncio.to_thread(secret.write_bytes, PDF)
    await asyncio.to_thread(incoming.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread((incoming / "link.pdf").symlink_to, secret)
    await asyncio.to_thread((incoming / "huge.pdf").write_bytes, PDF + b"x" * 20_000)

    def moved() -> bool:
        return all((failed / f"{n}.reason.txt").exists() for n in ("link.pdf", "huge.pdf"))

    deadline = time.monotonic() + 10
    while not await asyncio.to_thread(moved):
        assert time.monotonic() < deadline, "drop files were not refused"
        await asyncio.sleep(0.1)
    assert "symbolic link" in (failed / "link.pdf.reason.txt").read_text()
    assert "larger than 10000 bytes" in (failed / "huge.pdf.reason.txt").read_text()
    assert secret.read_bytes() == PDF  # the link's target untouched
    assert await inquiries.settle(0.5) == []


async def test_an_upload_is_stored_under_the_extension_of_what_it_is(
    http: httpx.AsyncClient, inquiries: TopicReader
) -> None:
    response = await http.post(
        "/v1/documents/acme", files={"file": ("invoice.html", PDF, "text/html")}
    )
    assert response.status_code == 202, response.text
    [document] = await inquiries.inquiries(1)
    [attachment] = document.attachments
    assert attachment.content_type == "application/pdf"
    assert attachment.uri.endswith("/invoice.pdf") and attachment.name == "invoice.pdf"

"""Email over real SMTP sessions (smtplib) and the raw-message endpoint, read back from Kafka."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from omniroute.embedded import Broker
from omniroute.provision import Options, provision
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.service import IngestService
from tests.support.ingest import TopicReader, ingest_settings, reading, running_ingest

pytestmark = pytest.mark.integration

RULES = """
workspaces:
  "*":
    rules:
      - name: refund
        kind: return
        keywords: [refund]
        skills: [{name: billing, min_proficiency: 2}]
"""


@pytest.fixture
async def ingest(broker: Broker, tmp_path: Path) -> AsyncIterator[IngestService]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = ingest_settings(
        broker.bootstrap,
        ingest_attachment_dir=str(tmp_path / "attachments"),
        ingest_rules_path=str(rules),
        ingest_smtp_workspaces={"help@acme.example": "acme"},
        ingest_max_attachment_bytes=50_000,
        ingest_smtp_max_recipients=2,
    )
    async with running_ingest(settings) as service:
        yield service


def send(
    port: int, msg: EmailMessage, to: str = "help@acme.example"
) -> dict[str, tuple[int, bytes]]:
    """One SMTP session: EHLO, MAIL, RCPT, DATA, QUIT (blocking; run in a thread)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.send_message(msg, from_addr="customer@example.com", to_addrs=[to])


def mail(subject: str, body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Ana Silva <Ana.Silva@example.com>"
    msg["To"] = "help@acme.example"
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


async def test_smtp_mail_with_attachment_then_a_reply_in_the_same_thread(
    ingest: IngestService, inquiries: TopicReader
) -> None:
    first = mail(
        "Refund for order 1234",
        "Hello, the blender arrived broken and I would like a refund please.",
        Message_ID="<first@example.com>",
    )
    first.add_attachment(
        b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt.pdf"
    )
    await asyncio.to_thread(send, ingest.smtp.port, first)
    reply = mail(
        "Re: Refund for order 1234",
        "Any news about my refund? It has been a week now.",
        Message_ID="<second@example.com>",
        In_Reply_To="<first@example.com>",
        References="<first@example.com>",
    )
    await asyncio.to_thread(send, ingest.smtp.port, reply)

    one, two = await inquiries.inquiries(2)
    assert one.workspace == two.workspace == "acme"
    assert one.channel == inquiry_pb2.CHANNEL_EMAIL
    assert (one.customer.contact_address, one.customer.name) == (
        "ana.silva@example.com",
        "Ana Silva",
    )
    assert one.subject == "Refund for order 1234"
    assert "blender arrived broken" in one.body
    assert one.external_id == "<first@example.com>"
    assert one.kind == inquiry_pb2.INQUIRY_KIND_RETURN
    assert [(s.name, s.min_proficiency) for s in one.required_skills] == [("billing", 2)]
    assert one.language == "en"
    [attachment] = one.attachments
    assert (attachment.name, attachment.content_type, attachment.size_bytes) == (
        "receipt.pdf",
        "application/pdf",
        16,
    )
    stored = Path(attachment.uri.removeprefix("file://"))
    assert await asyncio.to_thread(stored.read_bytes) == b"%PDF-1.4 receipt"
    assert two.thread_id == one.thread_id != ""
    assert two.id != one.id


async def test_smtp_refuses_unknown_recipients_and_malformed_mail(
    ingest: IngestService, inquiries: TopicReader
) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(
            send, ingest.smtp.port, mail("x", "y"), "not a workspace!@acme.example"
        )
    assert refused.value.recipients["not a workspace!@acme.example"][0] == 550

    no_sender = EmailMessage()
    no_sender["To"] = "help@acme.example"
    no_sender.set_content("who am I")
    with pytest.raises(smtplib.SMTPDataError) as bad:
        await asyncio.to_thread(send, ingest.smtp.port, no_sender)
    assert bad.value.smtp_code == 554
    assert b"From" in bad.value.smtp_error

    big = mail("big", "see attached")
    big.add_attachment(b"x" * 60_000, maintype="application", subtype="pdf", filename="big.pdf")
    with pytest.raises(smtplib.SMTPDataError) as too_large:
        await asyncio.to_thread(send, ingest.smtp.port, big)
    assert too_large.value.smtp_code == 552
    assert await inquiries.settle(0.5) == []


async def test_raw_message_endpoint(ingest: IngestService, inquiries: TopicReader) -> None:
    msg = mail(
        "Question",
        "What are your opening hours on public holidays?",
        Message_ID="<raw@example.com>",
    )
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{ingest.http_port}", timeout=30
    ) as http:
        response = await http.post(
            "/v1/email/globex/raw", content=bytes(msg), headers={"Content-Type": "message/rfc822"}
        )
        assert response.status_code == 202, response.text
        again = await http.post("/v1/email/globex/raw", content=bytes(msg))
        assert again.json() == {"id": response.json()["id"], "duplicate": True}
        bad = await http.post("/v1/email/globex/raw", content=b"Subject: hi\r\n\r\nno sender")
        assert bad.status_code == 422
        assert bad.json()["fields"][0]["field"] == "From"
    [inquiry] = await inquiries.inquiries(1)
    assert (inquiry.workspace, inquiry.id) == ("globex", response.json()["id"])
    assert len(await inquiries.settle(0.5)) == 1


async def test_smtp_limits_recipients_per_message(
    ingest: IngestService, inquiries: TopicReader
) -> None:
    def send_to_many() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", ingest.smtp.port, timeout=30) as client:
            return client.send_message(
                mail("many", "to everyone"),
                from_addr="customer@example.com",
                to_addrs=["help@acme.example", "one@example.com", "two@example.com"],
            )

    refused = await asyncio.to_thread(send_to_many)
    assert list(refused) == ["two@example.com"] and refused["two@example.com"][0] == 452
    assert sorted(i.workspace for i in await inquiries.inquiries(2)) == ["acme", "one"]


async def test_smtp_auth_and_starttls_when_configured(broker: Broker, tmp_path: Path) -> None:
    """With users and a certificate: STARTTLS first, then AUTH, then mail; nothing without."""
    provision(Options(deploy_dir=tmp_path))  # a certificate for localhost, and its CA
    secrets = tmp_path / "secrets"
    settings = ingest_settings(
        broker.bootstrap,
        ingest_attachment_dir=str(tmp_path / "attachments"),
        ingest_smtp_users={"relay": "relay-password-123"},
        ingest_smtp_tls_cert_file=str(secrets / "agent-state.pem"),
        ingest_smtp_tls_key_file=str(secrets / "agent-state.key"),
        ingest_smtp_require_tls=True,
    )
    trust = ssl.create_default_context(cafile=str(secrets / "ca.pem"))

    def session(starttls: bool, password: str | None) -> None:
        with smtplib.SMTP("localhost", port, timeout=30) as client:
            if starttls:
                client.starttls(context=trust)
            if password is not None:
                client.login("relay", password)
            client.send_message(
                mail("hello", "over TLS"), from_addr="c@example.com", to_addrs=["help@acme.example"]
            )

    async with (
        running_ingest(settings) as service,
        reading(broker.bootstrap, settings.topic_inquiries) as inquiries,
    ):
        port = service.smtp.port
        with pytest.raises(smtplib.SMTPException):  # no TLS: refused
            await asyncio.to_thread(session, False, None)
        with pytest.raises(smtplib.SMTPException):  # TLS, but no AUTH
            await asyncio.to_thread(session, True, None)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            await asyncio.to_thread(session, True, "wrong-password")
        await asyncio.to_thread(session, True, "relay-password-123")
        [inquiry] = await inquiries.inquiries(1)
        assert inquiry.subject == "hello"
        assert len(await inquiries.settle(0.5)) == 1  # the refused sessions sent nothing


async def test_smtp_refuses_mail_whose_inquiry_is_above_the_size_limit(
    broker: Broker, tmp_path: Path
) -> None:
    # A smaller producer limit: the inquiry limit derives from it (omniroute.sizes).
    settings = ingest_settings(
        broker.bootstrap,
        ingest_attachment_dir=str(tmp_path / "attachments"),
        ingest_smtp_workspaces={"help@acme.example": "acme"},
        kafka_max_request_bytes=100_000,
    )
    limit = settings.sizes.inquiry_bytes
    async with (
        running_ingest(settings) as service,
        reading(broker.bootstrap, settings.topic_inquiries) as inquiries,
    ):
        with pytest.raises(smtplib.SMTPDataError) as too_large:
            await asyncio.to_thread(send, service.smtp.port, mail("long", "word " * (limit // 5)))
        assert too_large.value.smtp_code == 552
        assert f"above the limit of {limit} bytes".encode() in too_large.value.smtp_error
        await asyncio.to_thread(send, service.smtp.port, mail("short", "a few words"))
        (published,) = await inquiries.inquiries(1)
        assert published.subject == "short"  # the long one was never published

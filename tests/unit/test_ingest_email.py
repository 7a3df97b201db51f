"""MIME parsing and threading of inbound email: no I/O."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from omniroute.v1 import inquiry_pb2
from omniroute_ingest.channels.email import ThreadIndex, html_to_text, parse_email, to_inquiry
from omniroute_ingest.errors import Rejected


def message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_plain_text_quoted_printable_and_the_customer_from_from() -> None:
    raw = (
        b"From: =?utf-8?q?Jos=C3=A9_P=C3=A9rez?= <Jose@Example.COM>\r\n"
        b"To: help@acme.example\r\n"
        b"Subject: =?utf-8?q?Factura_err=C3=B3nea?=\r\n"
        b"Message-ID: <m1@example.com>\r\n"
        b"Content-Language: es\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"La factura est=C3=A1 mal.\r\n"
    )
    parsed = parse_email(raw, 1000)
    assert (parsed.from_address, parsed.from_name) == ("jose@example.com", "José Pérez")
    assert parsed.subject == "Factura errónea"
    assert parsed.text == "La factura está mal."
    assert (parsed.message_id, parsed.language) == ("<m1@example.com>", "es")


def test_html_only_is_reduced_to_text_and_attachments_are_kept() -> None:
    msg = message(From="a@example.com", Subject="Photo", Message_ID="<m2@example.com>")
    msg.set_content(
        "<html><style>p{}</style><p>Broken <b>screen</b></p><p>See photo</p></html>", subtype="html"
    )
    msg.add_attachment(b"\x89PNG...", maintype="image", subtype="png", filename="screen.png")
    parsed = parse_email(bytes(msg), 1000)
    assert parsed.text == "Broken screen\nSee photo"
    [attachment] = parsed.attachments
    assert (attachment.name, attachment.content_type, attachment.data) == (
        "screen.png",
        "image/png",
        b"\x89PNG...",
    )


def test_plain_part_is_preferred_over_html() -> None:
    msg = message(From="a@example.com", Subject="Hi")
    msg.set_content("plain words")
    msg.add_alternative("<p>html words</p>", subtype="html")
    assert parse_email(bytes(msg), 1000).text == "plain words"


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        (b"", 422, "message"),
        (b"To: x@example.com\r\nSubject: no sender\r\n\r\nhello", 422, "From"),
        (b"From: not an address\r\n\r\nhello", 422, "From"),
    ],
)
def test_bad_messages_are_refused_naming_the_problem(raw: bytes, status: int, field: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_email(raw, 1000)
    assert refused.value.status == status
    assert refused.value.fields[0]["field"] == field


def test_attachment_above_the_limit_is_413() -> None:
    msg = message(From="a@example.com")
    msg.set_content("see attached")
    msg.add_attachment(b"x" * 2000, maintype="application", subtype="pdf", filename="big.pdf")
    with pytest.raises(Rejected) as refused:
        parse_email(bytes(msg), 1000)
    assert (refused.value.status, refused.value.reason) == (413, "too_large")


def test_replies_share_the_thread_of_their_root() -> None:
    index = ThreadIndex()
    first = parse_email(bytes(message(From="a@example.com", Message_ID="<root@x>")), 10)
    # A reply with only In-Reply-To, then a reply to the reply with only In-Reply-To.
    second = parse_email(
        bytes(message(From="b@example.com", Message_ID="<r1@x>", In_Reply_To="<root@x>")), 10
    )
    third = parse_email(
        bytes(message(From="a@example.com", Message_ID="<r2@x>", In_Reply_To="<r1@x>")), 10
    )
    # A client that sends the References chain, unknown to this process.
    fourth = parse_email(
        bytes(
            message(
                From="a@example.com",
                Message_ID="<r3@x>",
                In_Reply_To="<r2@x>",
                References="<root@x> <r1@x> <r2@x>",
            )
        ),
        10,
    )
    threads = {
        to_inquiry(p, "acme", index.root_of(p), 0.0).thread_id
        for p in (first, second, third, fourth)
    }
    assert len(threads) == 1
    other = parse_email(bytes(message(From="a@example.com", Message_ID="<new@x>")), 10)
    assert to_inquiry(other, "acme", index.root_of(other), 0.0).thread_id not in threads


def test_the_inquiry_id_is_stable_per_message_id() -> None:
    parsed = parse_email(bytes(message(From="a@example.com", Message_ID="<same@x>")), 10)
    one, two = (to_inquiry(parsed, "acme", "<same@x>", 0.0) for _ in range(2))
    assert one.id == two.id
    assert one.channel == inquiry_pb2.CHANNEL_EMAIL
    assert one.external_id == "<same@x>"


def test_html_to_text_drops_scripts() -> None:
    assert html_to_text("<script>alert(1)</script><div>Hello</div>") == "Hello"

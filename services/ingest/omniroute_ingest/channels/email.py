"""Email: RFC 5322 messages (from the SMTP listener or `POST /v1/email/{workspace}/raw`).

MIME is parsed with the standard library's modern policy: the text comes from
the plain part (or the HTML part, reduced to text), encodings are decoded,
attachments are stored and referenced. The customer is the From address.
Replies are threaded: the thread is the root of References, or the thread of
the message named by In-Reply-To, or the message itself, so a reply lands in
the same conversation (thread id) and the router can prefer the last agent.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from html.parser import HTMLParser

from fastapi import APIRouter, Request

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.attachments import AttachmentStore
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.rest import ERRORS
from omniroute_ingest.errors import Rejected, invalid
from omniroute_ingest.ids import new_id, stable_id
from omniroute_ingest.publisher import Accepted
from omniroute_ingest.schemas import AcceptedOut, Workspace

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass
class ParsedAttachment:
    """An attachment as found in the message (bytes still in memory)."""

    name: str
    content_type: str
    data: bytes


@dataclass
class ParsedEmail:
    """What ingest takes from a message."""

    from_address: str
    from_name: str
    subject: str
    text: str
    message_id: str
    in_reply_to: str
    references: list[str]
    language: str
    attachments: list[ParsedAttachment] = field(default_factory=list)


class _TextOf(HTMLParser):
    """Visible text of an HTML part (scripts and styles dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML body."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    return re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n\n", text)).strip()


def parse_email(raw: bytes, max_attachment_bytes: int) -> ParsedEmail:
    """Parse an RFC 5322 message; raises `Rejected` (422/413) naming what is wrong."""
    if not raw.strip():
        raise invalid("message", "empty")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        sender = _first_address(message)
        text = _text(message)
        attachments = _attachments(message, max_attachment_bytes)
        subject = str(message.get("Subject", "") or "").strip()
    except Rejected:
        raise
    except Exception as exc:  # the email package raises many kinds on broken input
        raise invalid(
            "message", f"not a parsable RFC 5322 message ({type(exc).__name__})"
        ) from None
    if sender is None:
        raise invalid("From", "missing or not an email address")
    return ParsedEmail(
        from_address=sender.addr_spec.lower(),
        from_name=sender.display_name,
        subject=subject[:1000],
        text=text,
        message_id=(_ids(message.get("Message-ID")) or [""])[0],
        in_reply_to=(_ids(message.get("In-Reply-To")) or [""])[0],
        references=_ids(message.get("References")),
        language=str(message.get("Content-Language", "") or "").split(",")[0].strip()[:35],
        attachments=attachments,
    )


def _first_address(message: EmailMessage) -> Address | None:
    header = message.get("From")
    addresses = getattr(header, "addresses", ()) if header is not None else ()
    for address in addresses:
        if address.username and address.domain:
            return address
    return None


def _ids(header: object) -> list[str]:
    return _MESSAGE_ID.findall(str(header or ""))


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if isinstance(content, bytes):
        content = content.decode(part.get_content_charset() or "utf-8", "replace")
    if part.get_content_subtype() == "html":
        content = html_to_text(content)
    return content.strip()[:200_000]


def _attachments(message: EmailMessage, limit: int) -> list[ParsedAttachment]:
    found = []
    for index, part in enumerate(message.iter_attachments()):
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        name = part.get_filename() or f"attachment-{index + 1}"
        if len(data) > limit:
            raise Rejected(
                413,
                "too_large",
                f"attachments[{index}]: larger than {limit} bytes",
                [{"field": f"attachments[{index}]", "message": f"larger than {limit} bytes"}],
            )
        found.append(ParsedAttachment(name, part.get_content_type(), data))
    return found


class ThreadIndex:
    """Message-ID -> thread root, for replies that name only their parent (bounded, per process).

    A reply normally carries the whole References chain, whose first entry is
    the root; the index covers clients that send only In-Reply-To.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._roots: OrderedDict[str, str] = OrderedDict()
        self._max_entries = max_entries

    def root_of(self, parsed: ParsedEmail) -> str:
        """The thread root Message-ID of `parsed` (remembered for later replies)."""
        if parsed.references:
            root = self._roots.get(parsed.references[0], parsed.references[0])
        elif parsed.in_reply_to:
            root = self._roots.get(parsed.in_reply_to, parsed.in_reply_to)
        else:
            root = parsed.message_id
        if parsed.message_id and root:
            self._roots[parsed.message_id] = root
            self._roots.move_to_end(parsed.message_id)
            while len(self._roots) > self._max_entries:
                self._roots.popitem(last=False)
        return root


def to_inquiry(
    parsed: ParsedEmail, workspace: str, thread_root: str, now: float
) -> inquiry_pb2.Inquiry:
    """The canonical inquiry of a parsed message (attachments are added by the caller)."""
    inquiry_id = stable_id(workspace, "email", parsed.message_id) if parsed.message_id else new_id()
    thread = thread_root or parsed.message_id
    return inquiry_pb2.Inquiry(
        id=inquiry_id,
        workspace=workspace,
        channel=inquiry_pb2.CHANNEL_EMAIL,
        customer=inquiry_pb2.Customer(
            name=parsed.from_name[:200],
            contact_address=parsed.from_address,
            language=parsed.language,
        ),
        subject=parsed.subject,
        body=parsed.text,
        language=parsed.language,
        thread_id="email-"
        + (stable_id(workspace, "email-thread", thread) if thread else inquiry_id),
        received_at=timestamp(now),
        external_id=parsed.message_id,
        attributes={"email.reply": "true" if parsed.in_reply_to or parsed.references else "false"},
    )


class EmailIntake:
    """Turns raw messages into published inquiries; shared by SMTP and the HTTP endpoint."""

    def __init__(self, intake: Intake, store: AttachmentStore) -> None:
        self.intake = intake
        self.store = store
        self.threads = ThreadIndex()

    async def accept(self, raw: bytes, workspace: str) -> Accepted:
        """Parse, store attachments, publish; raises `Rejected` (4xx, or 503 broker)."""
        self.intake.metrics.received.labels("email").inc()
        # MIME parsing is CPU work on attacker-shaped input: off the event loop.
        parsed = await asyncio.to_thread(
            parse_email, raw, self.intake.settings.ingest_max_attachment_bytes
        )
        inquiry = to_inquiry(parsed, workspace, self.threads.root_of(parsed), self.intake.clock())
        for attachment in parsed.attachments:
            inquiry.attachments.append(
                await asyncio.to_thread(
                    self.store.save,
                    workspace,
                    inquiry.id,
                    attachment.name,
                    attachment.content_type,
                    attachment.data,
                )
            )
        return await self.intake.accept(inquiry)


def router(emails: EmailIntake) -> APIRouter:
    """`POST /v1/email/{workspace}/raw`: one RFC 5322 message as the request body."""
    api = APIRouter(tags=["email"])

    @api.post(
        "/v1/email/{workspace}/raw",
        status_code=202,
        response_model=AcceptedOut,
        responses=ERRORS,
        summary="Submit a raw RFC 5322 message",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def post_raw(workspace: Workspace, request: Request) -> AcceptedOut:
        """Publish the message as an email inquiry (202 once the broker acknowledged)."""
        emails.intake.authorize(request, "email", workspace)
        accepted = await emails.accept(await request.body(), workspace)
        return AcceptedOut(id=accepted.id, duplicate=accepted.duplicate)

    return api

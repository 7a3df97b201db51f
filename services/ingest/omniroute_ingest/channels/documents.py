"""Fax and postal mail: scanned documents (PDF or TIFF) with their sender's details.

`POST /v1/documents/{workspace}` takes a multipart upload (from a fax server
or a mail-room scanner): `file` plus `channel` (fax or postal_mail),
`sender_name`, `sender_address` (fax number or postal address), `subject`,
`notes`, `language` and `external_id`. The file's bytes are checked (a real
PDF or TIFF, within the size limit), stored, and referenced by the inquiry.
The drop folder (`dropfolder`) turns files into the same inquiries.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.attachments import AttachmentStore, safe_name
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.rest import ERRORS
from omniroute_ingest.errors import Rejected, invalid
from omniroute_ingest.ids import stable_id
from omniroute_ingest.schemas import AcceptedOut, Workspace

DOCUMENT_CHANNELS = {
    "fax": inquiry_pb2.CHANNEL_FAX,
    "postal_mail": inquiry_pb2.CHANNEL_POSTAL_MAIL,
    "postal": inquiry_pb2.CHANNEL_POSTAL_MAIL,
}


#: The file extension of each content type `sniff` detects.
EXTENSIONS = {"application/pdf": ".pdf", "image/tiff": ".tif"}


def sniff(data: bytes) -> str | None:
    """The content type of a PDF or TIFF by its magic bytes, else None."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


@dataclass
class DocumentMeta:
    """What came with a document."""

    channel: str = "fax"
    sender_name: str = ""
    sender_address: str = ""
    subject: str = ""
    notes: str = ""
    language: str = ""
    external_id: str = ""


def check_document(name: str, data: bytes, limit: int) -> str:
    """The content type of a usable document; raises `Rejected` saying why not."""
    if not data:
        raise invalid("file", "empty")
    if len(data) > limit:
        raise Rejected(
            413,
            "too_large",
            f"file: larger than {limit} bytes",
            [{"field": "file", "message": f"larger than {limit} bytes"}],
        )
    content_type = sniff(data)
    if content_type is None:
        raise Rejected(
            415,
            "unsupported_media",
            "file: not a PDF or TIFF document",
            [{"field": "file", "message": "not a PDF or TIFF document"}],
        )
    return content_type


def document_inquiry(
    meta: DocumentMeta, workspace: str, data: bytes, now: float
) -> inquiry_pb2.Inquiry:
    """The inquiry of a document (the attachment is added by the caller).

    Its id is derived from the sender's id for it (fax job id) or from the
    content, so the same document sent twice is published once.
    """
    channel = DOCUMENT_CHANNELS.get(meta.channel.strip().lower())
    if channel is None:
        raise invalid("channel", "must be fax or postal_mail")
    digest = hashlib.sha256(data).hexdigest()
    inquiry_id = stable_id(workspace, "document", meta.external_id or digest)
    return inquiry_pb2.Inquiry(
        id=inquiry_id,
        workspace=workspace,
        channel=channel,
        customer=inquiry_pb2.Customer(
            name=meta.sender_name[:200],
            contact_address=meta.sender_address[:500],
            language=meta.language[:35],
        ),
        subject=meta.subject[:1000] or ("Fax" if channel == inquiry_pb2.CHANNEL_FAX else "Letter"),
        body=meta.notes[:20_000],
        language=meta.language[:35],
        thread_id="document-" + inquiry_id,
        received_at=timestamp(now),
        external_id=meta.external_id[:500],
        attributes={"document.sha256": digest},
    )


async def accept_document(
    intake: Intake,
    store: AttachmentStore,
    workspace: str,
    name: str,
    data: bytes,
    meta: DocumentMeta,
) -> AcceptedOut:
    """Check, store and publish a document; raises `Rejected` (4xx, or 503 broker)."""
    content_type = check_document(name, data, intake.settings.ingest_max_attachment_bytes)
    inquiry = document_inquiry(meta, workspace, data, intake.clock())
    intake.metrics.received.labels(
        inquiry_pb2.Channel.Name(inquiry.channel).removeprefix("CHANNEL_").lower()
    ).inc()
    # Stored under the extension of what the bytes are, never the client's:
    # "invoice.html" holding a PDF is kept as "invoice.pdf".
    stored = Path(safe_name(name, "document")).stem + EXTENSIONS[content_type]
    inquiry.attachments.append(
        await asyncio.to_thread(store.save, workspace, inquiry.id, stored, content_type, data)
    )
    accepted = await intake.accept(inquiry)
    return AcceptedOut(id=accepted.id, duplicate=accepted.duplicate)


def router(intake: Intake, store: AttachmentStore) -> APIRouter:
    """The document upload route."""
    api = APIRouter(tags=["documents"])

    @api.post(
        "/v1/documents/{workspace}",
        status_code=202,
        response_model=AcceptedOut,
        responses={**ERRORS, 415: {"description": "Not a PDF or TIFF."}},
        summary="Upload a fax or scanned letter",
    )
    async def upload(
        workspace: Workspace,
        request: Request,
        file: Annotated[UploadFile, File(description="The PDF or TIFF document.")],
        channel: Annotated[str, Form(max_length=20, description="fax or postal_mail")] = "fax",
        sender_name: Annotated[str, Form(max_length=200)] = "",
        sender_address: Annotated[
            str, Form(max_length=500, description="Fax number or postal address.")
        ] = "",
        subject: Annotated[str, Form(max_length=1000)] = "",
        notes: Annotated[str, Form(max_length=20_000)] = "",
        language: Annotated[str, Form(max_length=35)] = "",
        external_id: Annotated[
            str, Form(max_length=500, description="The sender system's id (fax job id).")
        ] = "",
    ) -> AcceptedOut:
        """Publish the document as a fax or postal-mail inquiry (202 once acknowledged)."""
        label = "fax" if channel.strip().lower() == "fax" else "postal_mail"
        intake.authorize(request, label, workspace)
        data = await file.read(intake.settings.ingest_max_attachment_bytes + 1)
        meta = DocumentMeta(
            channel, sender_name, sender_address, subject, notes, language, external_id
        )
        return await accept_document(
            intake, store, workspace, file.filename or "document", data, meta
        )

    return api

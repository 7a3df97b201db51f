"""SMS: the webhook an SMS provider posts for an inbound message (Twilio's form).

`POST /v1/sms/{workspace}` with form fields From, To, Body, MessageSid (and
NumMedia/MediaUrlN/MediaContentTypeN for MMS, kept as references). The
signature is checked when INGEST_SMS_AUTH_TOKEN is set. Messages from one
number to one workspace share a thread, so the router can prefer the agent
who answered that customer last; a re-delivered MessageSid keeps its id.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.rest import SIGNED_ERRORS
from omniroute_ingest.channels.webhooks import require, signed_form
from omniroute_ingest.ids import stable_id
from omniroute_ingest.schemas import Workspace

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["From", "MessageSid"],
                    "properties": {
                        "From": {"type": "string"},
                        "To": {"type": "string"},
                        "Body": {"type": "string"},
                        "MessageSid": {"type": "string"},
                        "NumMedia": {"type": "string"},
                    },
                }
            }
        },
    }
}


def sms_inquiry(fields: dict[str, str], workspace: str, now: float) -> inquiry_pb2.Inquiry:
    """The canonical inquiry of an inbound SMS/MMS (fields as the provider posts them)."""
    sender = fields["From"].strip()
    inquiry = inquiry_pb2.Inquiry(
        id=stable_id(workspace, "sms", fields["MessageSid"]),
        workspace=workspace,
        channel=inquiry_pb2.CHANNEL_SMS,
        customer=inquiry_pb2.Customer(contact_address=sender),
        body=fields.get("Body", "")[:10_000],
        thread_id="sms-" + stable_id(workspace, "sms-thread", sender),
        received_at=timestamp(now),
        external_id=fields["MessageSid"],
        attributes={"sms.to": fields.get("To", "")[:100]},
    )
    count = fields.get("NumMedia", "0")
    for index in range(min(int(count) if count.isdigit() else 0, 10)):
        url = fields.get(f"MediaUrl{index}", "")
        if url:
            inquiry.attachments.add(
                name=f"media-{index}",
                content_type=fields.get(f"MediaContentType{index}", ""),
                uri=url[:2000],
            )
    return inquiry


def router(intake: Intake) -> APIRouter:
    """The SMS webhook route."""
    api = APIRouter(tags=["sms"])

    @api.post(
        "/v1/sms/{workspace}",
        responses=SIGNED_ERRORS,
        response_class=Response,
        summary="Inbound SMS webhook",
        openapi_extra=FORM_BODY,
    )
    async def inbound_sms(workspace: Workspace, request: Request) -> Response:
        """Publish the message; answers empty TwiML (200) once the broker acknowledged."""
        fields = await signed_form(request, intake, "sms")
        intake.metrics.received.labels("sms").inc()
        require(fields, "From", "MessageSid")
        accepted = await intake.accept(sms_inquiry(fields, workspace, intake.clock()))
        return Response(EMPTY_TWIML, media_type="text/xml", headers={"X-Inquiry-Id": accepted.id})

    return api

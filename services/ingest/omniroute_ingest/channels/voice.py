"""Voice: the call-arrival and call-ended webhooks of a telephony provider (Twilio's form).

- `POST /v1/voice/{workspace}/calls`: CallSid, From (caller), To (called
  number), Digits (the IVR selection) and Language (the caller's language
  choice, e.g. "es"). The call becomes an inquiry (id derived from CallSid,
  thread = the call) and the answer is TwiML that puts the caller in the queue.
  Before enqueueing, the answer tells the caller their place in line and the
  estimated wait (from the router's queue snapshot; waiting up to
  `INGEST_POSITION_WAIT_S` for the snapshot that lists the new call), and
  names a `waitUrl` the provider calls while the caller waits.
- `POST /v1/voice/{workspace}/calls/{CallSid}/wait`: the hold loop's TwiML,
  the caller's current place and wait, then a pause.
- Callbacks: while the caller holds (and in the arrival answer when the
  queue is closed and its `when_closed` policy for voice is `callback`), the
  TwiML offers a callback with a `<Gather>`: pressing 1 posts to
  `POST /v1/voice/{workspace}/calls/{CallSid}/callback`, which asks the
  router to call back the caller's number (`From`, E.164) instead, keeping
  the call's place in line, and hangs up; the call ending then is no
  abandon (the router keeps the callback). Another digit goes back to the hold loop.
- `POST /v1/voice/{workspace}/calls/status`: CallSid, CallStatus and
  QueueResult. A call that ended (completed, canceled, busy, no-answer,
  failed) without being bridged to an agent becomes a TaskEvent
  TYPE_ABANDONED for its inquiry. Ingest cannot know whether the router has
  assigned it meanwhile; it publishes and the router decides.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.callbacks import CALLBACK_DIGIT, check_number
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.queues import request_callback
from omniroute_ingest.channels.rest import SIGNED_ERRORS
from omniroute_ingest.channels.webhooks import require, signed_form
from omniroute_ingest.errors import invalid
from omniroute_ingest.ids import stable_id
from omniroute_ingest.positions import (
    Place,
    PlaceState,
    describe,
    describe_callback,
    offers_callback,
)
from omniroute_ingest.schemas import Workspace

CallSid = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
#: Seconds of hold between two announcements of the place in line.
HOLD_S = 30

ENDED = frozenset({"completed", "canceled", "busy", "no-answer", "failed"})
#: QueueResult values saying the caller reached an agent (then hanging up is not abandoning).
SERVED = frozenset({"bridged", "bridging-in-process", "redirected"})


def call_inquiry_id(workspace: str, call_id: str) -> str:
    """The inquiry id of a call (stable, so the call-ended event needs no state)."""
    return stable_id(workspace, "voice", call_id)


def voice_inquiry(fields: dict[str, str], workspace: str, now: float) -> inquiry_pb2.Inquiry:
    """The canonical inquiry of an arriving call."""
    language = fields.get("Language", "").strip()[:35]
    return inquiry_pb2.Inquiry(
        id=call_inquiry_id(workspace, fields["CallSid"]),
        workspace=workspace,
        channel=inquiry_pb2.CHANNEL_VOICE,
        customer=inquiry_pb2.Customer(contact_address=fields["From"].strip(), language=language),
        subject="Phone call",
        language=language,
        thread_id="call-" + fields["CallSid"],
        received_at=timestamp(now),
        external_id=fields["CallSid"],
        attributes={"voice.called": fields.get("To", "")[:100]},
    )


def _urls(workspace: str, call_sid: str) -> tuple[str, str]:
    """The call's hold loop (waitUrl) and callback (the Gather's action) URLs."""
    base = f"/v1/voice/{quote(workspace)}/calls/{quote(call_sid, safe='')}"
    return f"{base}/wait", f"{base}/callback"


def _offer_callback(callback_url: str, said: str, prompt: str) -> str:
    """`said`, then `prompt` to press the callback digit, as one interruptible Gather."""
    return (
        f'<Gather numDigits="1" timeout="3" action={quoteattr(callback_url)} method="POST">'
        f"<Say>{escape(said)} {escape(prompt)}</Say></Gather>"
    )


def _may_call_back(place: Place | None) -> bool:
    return place is not None and place.state in (PlaceState.WAITING, PlaceState.HELD)


class CallEndedOut(BaseModel):
    """What the call-ended event caused."""

    inquiry_id: str
    abandoned: bool


def router(intake: Intake) -> APIRouter:
    """The voice webhook routes."""
    api = APIRouter(tags=["voice"])

    @api.post(
        "/v1/voice/{workspace}/calls",
        responses=SIGNED_ERRORS,
        response_class=Response,
        summary="Call arrival webhook",
    )
    async def call_arrived(workspace: Workspace, request: Request) -> Response:
        """Publish the call as an inquiry; answers TwiML that enqueues the caller."""
        fields = await signed_form(request, intake, "voice")
        intake.metrics.received.labels("voice").inc()
        require(fields, "CallSid", "From")
        inquiry = voice_inquiry(fields, workspace, intake.clock())
        digits = fields.get("Digits", "").strip()
        if digits:
            if not digits.replace("#", "").replace("*", "").isdigit() or len(digits) > 20:
                raise invalid("Digits", "only 0-9, * and # are allowed")
            intake.understanding.apply_ivr(inquiry, digits)
        accepted = await intake.accept(inquiry)
        place = await intake.view.wait_place(
            workspace, accepted.id, intake.settings.ingest_position_wait_s
        )
        wait_url, callback_url = _urls(workspace, fields["CallSid"])
        said = f"<Say>{escape(describe(place))}</Say>"
        if offers_callback(place, "voice"):
            # Closed, and the queue's policy for voice is `callback`: offered up front.
            said = _offer_callback(
                callback_url,
                describe(place),
                f"To be called back when we open instead, press {CALLBACK_DIGIT}.",
            )
        twiml = (
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            f"{said}"
            f"<Enqueue waitUrl={quoteattr(wait_url)}>{escape(workspace)}</Enqueue></Response>"
        )
        return Response(twiml, media_type="text/xml", headers={"X-Inquiry-Id": accepted.id})

    @api.post(
        "/v1/voice/{workspace}/calls/{call_sid}/wait",
        responses=SIGNED_ERRORS,
        response_class=Response,
        summary="Hold announcement (the queue's waitUrl)",
    )
    async def call_waiting(workspace: Workspace, call_sid: CallSid, request: Request) -> Response:
        """TwiML for a caller on hold: their place in line and estimated wait, then a pause."""
        await signed_form(request, intake, "voice")
        inquiry_id = call_inquiry_id(workspace, call_sid)
        place = await intake.view.wait_place(workspace, inquiry_id, 0)
        said = f"<Say>{escape(describe(place))}</Say>"
        if _may_call_back(place):
            said = _offer_callback(
                _urls(workspace, call_sid)[1],
                describe(place),
                f"To be called back instead of waiting, keeping your place, press {CALLBACK_DIGIT}.",
            )
        twiml = (
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            f'{said}<Pause length="{HOLD_S}"/></Response>'
        )
        return Response(twiml, media_type="text/xml", headers={"X-Inquiry-Id": inquiry_id})

    @api.post(
        "/v1/voice/{workspace}/calls/{call_sid}/callback",
        responses={
            **SIGNED_ERRORS,
            404: {"description": "The router lists no such call waiting."},
            409: {"description": "An agent already has the call."},
        },
        response_class=Response,
        summary="The caller's IVR choice to be called back (the hold loop's Gather action)",
    )
    async def call_back(workspace: Workspace, call_sid: CallSid, request: Request) -> Response:
        """Digit 1: the router calls the caller back (`From`) instead; the call hangs up."""
        fields = await signed_form(request, intake, "voice")
        inquiry_id = call_inquiry_id(workspace, call_sid)
        if fields.get("Digits", "").strip() != CALLBACK_DIGIT:
            wait_url = _urls(workspace, call_sid)[0]
            twiml = (
                '<?xml version="1.0" encoding="UTF-8"?><Response>'
                f'<Redirect method="POST">{escape(wait_url)}</Redirect></Response>'
            )
            return Response(twiml, media_type="text/xml", headers={"X-Inquiry-Id": inquiry_id})
        require(fields, "From")
        number = check_number(fields["From"], "From")
        place, _ = await request_callback(
            intake, workspace, inquiry_id, inquiry_pb2.CHANNEL_VOICE, number
        )
        twiml = (
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            f"<Say>{escape(describe_callback(place.position))} We will call the number you are "
            "calling from. Goodbye.</Say><Hangup/></Response>"
        )
        return Response(twiml, media_type="text/xml", headers={"X-Inquiry-Id": inquiry_id})

    @api.post(
        "/v1/voice/{workspace}/calls/status",
        responses=SIGNED_ERRORS,
        response_model=CallEndedOut,
        summary="Call status (ended) webhook",
    )
    async def call_status(workspace: Workspace, request: Request) -> CallEndedOut:
        """Publish an abandon event when the call ended before an agent took it."""
        fields = await signed_form(request, intake, "voice")
        require(fields, "CallSid", "CallStatus")
        inquiry_id = call_inquiry_id(workspace, fields["CallSid"])
        status = fields["CallStatus"].strip().lower()
        queue_result = fields.get("QueueResult", "").strip().lower()
        if status not in ENDED or queue_result in SERVED:
            return CallEndedOut(inquiry_id=inquiry_id, abandoned=False)
        await intake.abandon(
            workspace, inquiry_id, inquiry_pb2.CHANNEL_VOICE, f"caller hung up ({status})"
        )
        return CallEndedOut(inquiry_id=inquiry_id, abandoned=True)

    return api

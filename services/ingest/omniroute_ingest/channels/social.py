"""Social media: the webhook in the common platform form (Meta's Graph webhooks).

- `GET /v1/social/{workspace}/webhook?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`
  answers the challenge when the token is INGEST_SOCIAL_VERIFY_TOKEN.
- `POST /v1/social/{workspace}/webhook` with `X-Hub-Signature-256` (checked
  when INGEST_SOCIAL_APP_SECRET is set) carries entries of direct messages
  (`entry[].messaging[]`) and public mentions/comments (`entry[].changes[]`).
  Each becomes an inquiry: a direct message threads per sender, a mention
  per post. Our own echoes and events without text are skipped.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.rest import SIGNED_ERRORS
from omniroute_ingest.errors import Rejected, from_validation_errors
from omniroute_ingest.ids import stable_id
from omniroute_ingest.schemas import Workspace
from omniroute_ingest.signatures import hub_signature_valid

log = logging.getLogger(__name__)

Id = Annotated[str, Field(min_length=1, max_length=200)]


class _Loose(BaseModel):
    # Platforms add fields over time: unknown ones are ignored, known ones validated.
    model_config = ConfigDict(extra="ignore")


class Party(_Loose):
    id: Id
    name: str = ""
    username: str = ""


class MediaPayload(_Loose):
    url: str = ""


class MediaAttachment(_Loose):
    type: str = ""
    payload: MediaPayload = MediaPayload()


class DirectMessage(_Loose):
    mid: Id
    text: Annotated[str, Field(max_length=20_000)] = ""
    is_echo: bool = False
    attachments: list[MediaAttachment] = []


class Messaging(_Loose):
    sender: Party
    recipient: Party | None = None
    timestamp: int = 0
    message: DirectMessage | None = None


class ChangeValue(_Loose):
    from_: Annotated[Party | None, Field(alias="from")] = None
    text: Annotated[str, Field(max_length=20_000)] = ""
    message: Annotated[str, Field(max_length=20_000)] = ""
    id: str = ""
    comment_id: str = ""
    media_id: str = ""
    post_id: str = ""


class Change(_Loose):
    field: Annotated[str, Field(max_length=100)]
    value: ChangeValue


class Entry(_Loose):
    id: str = ""
    time: int = 0
    messaging: list[Messaging] = []
    changes: list[Change] = []


class Notification(_Loose):
    """A webhook notification: `object` is the platform object (page, instagram, ...)."""

    object: Annotated[str, Field(min_length=1, max_length=100)]
    entry: Annotated[list[Entry], Field(max_length=1000)]


class SocialOut(BaseModel):
    """The inquiries the notification produced (ids), in order."""

    accepted: list[str]


MENTION_FIELDS = frozenset({"mention", "mentions", "comments", "feed"})


def social_inquiries(note: Notification, workspace: str, now: float) -> list[inquiry_pb2.Inquiry]:
    """The inquiries of one notification (direct messages and public mentions)."""
    platform = note.object
    found = []
    for entry in note.entry:
        for event in entry.messaging:
            msg = event.message
            if msg is None or msg.is_echo or not (msg.text.strip() or msg.attachments):
                continue
            inquiry = inquiry_pb2.Inquiry(
                id=stable_id(workspace, "social", platform, msg.mid),
                workspace=workspace,
                channel=inquiry_pb2.CHANNEL_SOCIAL,
                customer=inquiry_pb2.Customer(
                    id=f"{platform}:{event.sender.id}",
                    name=event.sender.name or event.sender.username,
                    contact_address=f"{platform}:{event.sender.id}",
                ),
                body=msg.text,
                thread_id="social-dm-" + stable_id(workspace, platform, event.sender.id),
                received_at=timestamp(now),
                external_id=msg.mid,
                attributes={
                    "social.platform": platform,
                    "social.type": "direct_message",
                    "social.public": "false",
                },
            )
            for index, media in enumerate(msg.attachments[:10]):
                if media.payload.url:
                    inquiry.attachments.add(
                        name=f"{media.type or 'media'}-{index}", uri=media.payload.url[:2000]
                    )
            found.append(inquiry)
        for change in entry.changes:
            value = change.value
            text = value.text or value.message
            item_id = value.comment_id or value.id
            if (
                change.field not in MENTION_FIELDS
                or not text.strip()
                or value.from_ is None
                or not item_id
            ):
                continue
            post = value.post_id or value.media_id or item_id
            found.append(
                inquiry_pb2.Inquiry(
                    id=stable_id(workspace, "social", platform, item_id),
                    workspace=workspace,
                    channel=inquiry_pb2.CHANNEL_SOCIAL,
                    customer=inquiry_pb2.Customer(
                        id=f"{platform}:{value.from_.id}",
                        name=value.from_.name or value.from_.username,
                        contact_address=f"{platform}:{value.from_.id}",
                    ),
                    body=text,
                    thread_id="social-post-" + stable_id(workspace, platform, post),
                    received_at=timestamp(now),
                    external_id=item_id,
                    attributes={
                        "social.platform": platform,
                        "social.type": "mention",
                        "social.public": "true",
                        "social.field": change.field,
                    },
                )
            )
    return found


def router(intake: Intake) -> APIRouter:
    """The social webhook routes."""
    api = APIRouter(tags=["social"])
    settings = intake.settings

    @api.get(
        "/v1/social/{workspace}/webhook",
        response_class=PlainTextResponse,
        summary="Webhook verification challenge",
        responses={403: {"description": "Wrong verify token."}},
    )
    async def verify(
        workspace: Workspace,
        request: Request,
        mode: Annotated[str, Query(alias="hub.mode", max_length=50)] = "",
        token: Annotated[str, Query(alias="hub.verify_token", max_length=500)] = "",
        challenge: Annotated[str, Query(alias="hub.challenge", max_length=500)] = "",
    ) -> PlainTextResponse:
        """Echo the challenge when the verify token is ours (compared in constant time)."""
        request.state.channel = "social"
        intake.limit_peer(request)
        expected = settings.ingest_social_verify_token.encode()
        if mode != "subscribe" or not expected or not hmac.compare_digest(token.encode(), expected):
            raise Rejected(403, "bad_signature", "hub.verify_token: does not match")
        return PlainTextResponse(challenge)

    @api.post(
        "/v1/social/{workspace}/webhook",
        response_model=SocialOut,
        responses=SIGNED_ERRORS,
        summary="Social notifications (direct messages, mentions)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": Notification.model_json_schema()}},
            }
        },
    )
    async def notify(workspace: Workspace, request: Request) -> SocialOut:
        """Publish every direct message and mention; 200 once the broker acknowledged all."""
        request.state.channel = "social"
        intake.limit_peer(request)
        raw = await request.body()
        intake.metrics.received.labels("social").inc()
        if not settings.ingest_social_app_secret and not settings.ingest_allow_anonymous:
            raise Rejected(
                403,
                "bad_signature",
                "X-Hub-Signature-256: cannot be checked (no INGEST_SOCIAL_APP_SECRET)",
            )
        if settings.ingest_social_app_secret:
            signature = request.headers.get("x-hub-signature-256", "")
            if not signature:
                log.warning("social webhook without signature", extra={"path": request.url.path})
                raise Rejected(401, "bad_signature", "X-Hub-Signature-256: missing")
            if not hub_signature_valid(settings.ingest_social_app_secret, raw, signature):
                log.warning(
                    "social webhook with a wrong signature", extra={"path": request.url.path}
                )
                raise Rejected(403, "bad_signature", "X-Hub-Signature-256: does not match")
        try:
            note = Notification.model_validate_json(raw)
        except ValidationError as exc:
            raise from_validation_errors(_as_dicts(exc)) from None
        accepted = [
            (await intake.accept(inquiry)).id
            for inquiry in social_inquiries(note, workspace, intake.clock())
        ]
        return SocialOut(accepted=accepted)

    return api


def _as_dicts(exc: ValidationError) -> list[dict[str, Any]]:
    return [dict(e) for e in exc.errors()]

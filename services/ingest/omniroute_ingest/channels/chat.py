"""Chat: a conversation is started, the customer posts messages, and may leave.

- `POST /v1/chat/{workspace}/conversations` starts one (optionally with the
  first message); the first customer message publishes the inquiry (id
  derived from the conversation id, thread = the conversation).
- `POST .../conversations/{id}/messages`: later messages belong to the
  conversation: each is published as an inquiry of its own id on the same
  thread, and the router joins it to the conversation's open inquiry and has
  it delivered to the agent handling it (a new inquiry, preferring the last
  agent, once the conversation's inquiry was finished).
- The answer that publishes the inquiry carries a system message with the
  customer's place in line and estimated wait (from the router's queue
  snapshot, waiting up to `INGEST_POSITION_WAIT_S` for the one that lists
  it); `GET /v1/workspaces/{workspace}/inquiries/{inquiry_id}/position`
  gives the current figures later.
- `POST .../conversations/{id}/callback` (`{"number": "+15550001111"}`): the
  customer asks to be called back instead of waiting (the chat widget's
  action): the inquiry keeps its place in line and is offered to an agent as
  an outbound call; leaving afterwards is no abandon. The answer that
  publishes the inquiry says `callback_offered` when its queue is closed and
  offers chat customers a callback (`when_closed` policy `callback`).
- `POST .../conversations/{id}/leave`: the customer left before the
  conversation ended: a TaskEvent TYPE_ABANDONED. Ingest cannot know whether
  the router has already assigned it; it publishes and the router decides.
- `POST .../conversations/{id}/end`: the conversation ended normally.

Conversations live on Kafka (`chat_state`): any replica serves any request
of any conversation, with no sticky routing; each replica's cache is bounded
in bytes (`INGEST_CHAT_MAX_BYTES`) and forgets conversations idle for
`INGEST_CHAT_IDLE_TTL_S` (then 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from omniroute.codec import timestamp
from omniroute.kafka import BrokerUnavailable, RecordTooLarge
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.callbacks import check_number
from omniroute_ingest.channels.chat_state import ChatStore, Conversation, Conversations, StartIn
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.queues import request_callback
from omniroute_ingest.channels.rest import ERRORS
from omniroute_ingest.errors import Rejected
from omniroute_ingest.ids import new_id, stable_id
from omniroute_ingest.positions import Place, describe, describe_callback, offers_callback
from omniroute_ingest.schemas import Workspace, _Model

__all__ = ["Conversation", "Conversations", "StartIn", "chat_inquiry", "router"]

Text = Annotated[str, Field(min_length=1, max_length=20_000)]


class MessageIn(_Model):
    """A customer message in a conversation."""

    text: Text


class CallbackIn(_Model):
    """The number to call the customer back at (personal data: never logged)."""

    number: Annotated[str, Field(max_length=40, description="E.164, e.g. +15550001111.")]


class LeaveIn(_Model):
    """Why the customer left (free text, e.g. "closed the window")."""

    reason: Annotated[str, Field(max_length=200)] = "customer left the chat"


class ConversationOut(BaseModel):
    """The state of a conversation after the request."""

    conversation_id: str
    inquiry_id: str
    published: bool = Field(description="The inquiry is on the topic (the first message was sent).")
    abandoned: bool = False
    ended: bool = False
    position: int | None = Field(
        default=None, description="Place in line when this answer published the inquiry (1 = next)."
    )
    estimated_wait_s: float | None = Field(
        default=None, description="Expected seconds until an agent takes it (null: not known)."
    )
    system_message: str = Field(
        default="", description="What to show the customer: place in line and estimated wait."
    )
    callback_offered: bool = Field(
        default=False,
        description="The queue is closed and offers a callback (show the customer the "
        "callback action: POST .../callback).",
    )
    callback: bool = Field(default=False, description="This answer published a callback request.")


def chat_inquiry(
    conversation_id: str,
    conversation: Conversation,
    text: str,
    now: float,
    message_id: str = "",
) -> inquiry_pb2.Inquiry:
    """The inquiry of a conversation's first customer message (the conversation's
    inquiry id), or of a later one (`message_id`), which the router joins to it."""
    start = conversation.start
    return inquiry_pb2.Inquiry(
        id=message_id or conversation.inquiry_id,
        workspace=conversation.workspace,
        channel=inquiry_pb2.CHANNEL_CHAT,
        customer=inquiry_pb2.Customer(**start.customer.model_dump()),
        subject=start.subject,
        body=text,
        language=start.language or start.customer.language,
        thread_id="chat-" + conversation_id,
        received_at=timestamp(now),
        external_id=conversation_id,
        attributes=start.attributes,
    )


def router(intake: Intake, store: ChatStore) -> APIRouter:
    """The chat routes."""
    api = APIRouter(tags=["chat"])

    async def save(conversation_id: str, c: Conversation) -> None:
        try:
            await store.save(conversation_id, c)
        except BrokerUnavailable:
            raise intake.unavailable("chat") from None
        except RecordTooLarge as exc:  # a retry would fail the same way: never a 503
            raise Rejected(413, "too_large", f"conversation: {exc}") from None

    def out(conversation_id: str, c: Conversation, queued: Place | None = None) -> ConversationOut:
        answer = ConversationOut(
            conversation_id=conversation_id,
            inquiry_id=c.inquiry_id,
            published=c.published,
            abandoned=c.abandoned,
            ended=c.ended,
        )
        if queued is not None:
            answer.position = queued.position
            answer.estimated_wait_s = queued.estimated_wait_s
        return answer

    async def publish_first(conversation_id: str, c: Conversation, text: str) -> Place | None:
        """Publish the inquiry; its place in line once the router lists it (or None)."""
        await intake.accept(chat_inquiry(conversation_id, c, text, intake.clock()))
        c.published = True
        return await intake.view.wait_place(
            c.workspace, c.inquiry_id, intake.settings.ingest_position_wait_s
        )

    def with_message(answer: ConversationOut, place: Place | None) -> ConversationOut:
        answer.system_message = describe(place)
        if offers_callback(place, "chat"):
            answer.callback_offered = True
            answer.system_message += " You can ask to be called back when we open instead."
        return answer

    @api.post(
        "/v1/chat/{workspace}/conversations",
        status_code=201,
        response_model=ConversationOut,
        responses=ERRORS,
        summary="Start a chat",
    )
    async def start(workspace: Workspace, body: StartIn, request: Request) -> ConversationOut:
        """Start a conversation; with a first message its inquiry is published at once."""
        client = intake.authorize(request, "chat", workspace)
        intake.check_steering(client, body.attributes, body.customer.segment)
        intake.metrics.received.labels("chat").inc()
        conversation_id = new_id()
        # The first message is published, never kept: only the start's metadata stays.
        kept = body.model_copy(update={"message": ""})
        c = Conversation(workspace, kept, stable_id(workspace, "chat", conversation_id))
        if not body.message.strip():
            await save(conversation_id, c)
            return out(conversation_id, c)
        place = await publish_first(conversation_id, c, body.message)  # 503: no conversation
        c.messages = 1
        await save(conversation_id, c)
        return with_message(out(conversation_id, c, place), place)

    @api.post(
        "/v1/chat/{workspace}/conversations/{conversation_id}/messages",
        status_code=202,
        response_model=ConversationOut,
        responses={**ERRORS, 404: {"description": "No such conversation."}},
        summary="Post a customer message",
    )
    async def message(
        workspace: Workspace, conversation_id: str, body: MessageIn, request: Request
    ) -> ConversationOut:
        """The first message publishes the inquiry; later ones join it (the router decides)."""
        intake.authorize(request, "chat", workspace)
        c = await store.get(workspace, conversation_id)
        if c.ended:
            raise Rejected(409, "invalid", "conversation_id: the conversation has ended")
        if c.published:
            later = chat_inquiry(conversation_id, c, body.text, intake.clock(), new_id())
            await intake.accept(later, understand=False)
            c.messages += 1
            return out(conversation_id, c)
        place = await publish_first(conversation_id, c, body.text)
        c.messages += 1
        await save(conversation_id, c)
        return with_message(out(conversation_id, c, place), place)

    @api.post(
        "/v1/chat/{workspace}/conversations/{conversation_id}/callback",
        status_code=202,
        response_model=ConversationOut,
        responses={
            **ERRORS,
            404: {"description": "No such conversation, or the router lists its inquiry no more."},
            409: {"description": "Nothing to call back (no message yet, ended, or being handled)."},
        },
        summary="The customer asks to be called back instead of waiting",
    )
    async def callback(
        workspace: Workspace, conversation_id: str, body: CallbackIn, request: Request
    ) -> ConversationOut:
        """The inquiry keeps its place and reaches an agent as a call to `number`."""
        intake.authorize(request, "chat", workspace)
        number = check_number(body.number, "number")
        c = await store.get(workspace, conversation_id)
        if c.ended or not c.published:
            state = "has ended" if c.ended else "has no message yet"
            raise Rejected(409, "invalid", f"conversation_id: the conversation {state}")
        place, _ = await request_callback(
            intake, workspace, c.inquiry_id, inquiry_pb2.CHANNEL_CHAT, number
        )
        answer = out(conversation_id, c)
        answer.callback = True
        answer.system_message = describe_callback(place.position)
        return answer

    @api.post(
        "/v1/chat/{workspace}/conversations/{conversation_id}/leave",
        response_model=ConversationOut,
        responses={**ERRORS, 404: {"description": "No such conversation."}},
        summary="The customer left",
    )
    async def leave(
        workspace: Workspace, conversation_id: str, request: Request, body: LeaveIn | None = None
    ) -> ConversationOut:
        """Publish an abandon event when the customer leaves before the conversation ended."""
        intake.authorize(request, "chat", workspace)
        c = await store.get(workspace, conversation_id)
        if not c.ended and c.published:
            reason = body.reason if body else LeaveIn().reason
            await intake.abandon(workspace, c.inquiry_id, inquiry_pb2.CHANNEL_CHAT, reason)
            c.abandoned = True
        if not c.ended:
            c.ended = True
            await save(conversation_id, c)
        return out(conversation_id, c)

    @api.post(
        "/v1/chat/{workspace}/conversations/{conversation_id}/end",
        response_model=ConversationOut,
        responses={**ERRORS, 404: {"description": "No such conversation."}},
        summary="The conversation ended normally",
    )
    async def end(workspace: Workspace, conversation_id: str, request: Request) -> ConversationOut:
        """Mark the conversation ended (served); leaving afterwards is not abandoning."""
        intake.authorize(request, "chat", workspace)
        c = await store.get(workspace, conversation_id)
        if not c.ended:
            c.ended = True
            await save(conversation_id, c)
        return out(conversation_id, c)

    return api

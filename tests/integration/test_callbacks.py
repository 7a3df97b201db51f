"""Callbacks end to end: a customer waiting on chat or voice asks to be called back
(chat action, IVR digit, HTTP API) through ingest; the inquiry keeps its place, the
customer leaving ends nothing, and an agent with a voice slot gets it as an outbound
call with the number; the outcome is recorded. Ingest, the broker, the router and
agent-state run as processes."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from omniroute.embedded import Broker
from omniroute.v1 import agent_state_pb2
from omniroute_ingest.channels.voice import call_inquiry_id
from tests.support.system import (
    CHAT,
    VOICE,
    Assignments,
    Desk,
    System,
    eventually,
    inquiry_body,
    make_agent,
    metric_value,
    new_workspace,
    reload_routing,
    running,
)

pytestmark = pytest.mark.integration

CLOSED_WS = "cb-closed-" + uuid.uuid4().hex[:8]
MADRID = ZoneInfo("Europe/Madrid")
TODAY = datetime.now(MADRID).date()
CLOSED_DAYS = f"{{{TODAY}: closed, {TODAY + timedelta(days=1)}: closed}}"
SHOP_OPENS = datetime.combine(TODAY + timedelta(days=2), time(0), tzinfo=MADRID).timestamp()


def routing(shop_exceptions: str = CLOSED_DAYS) -> str:
    return f"""\
workspaces:
  {CLOSED_WS}:
    queues:
      - name: shop
        hours:
          timezone: Europe/Madrid
          weekly: {{mon-sun: "00:00-24:00"}}
          exceptions: {shop_exceptions}
          when_closed: {{default: hold, voice: callback, chat: callback}}
default:
  queues:
    - name: support
"""


@pytest.fixture(scope="module")
def routing_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("callbacks") / "routing.yaml"
    path.write_text(routing())
    return path


@pytest.fixture(scope="module")
def system(broker: Broker, routing_file: Path) -> Iterator[System]:
    # The voice and chat answers wait for the snapshot that lists the new inquiry.
    env = {"INGEST_POSITION_WAIT_S": "30"}
    yield from running(System(broker, routing_config=str(routing_file), extra_env=env))


def call(
    system: System,
    path: str,
    body: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """POST JSON (`body`) or a provider's form (`form`), or GET; (status, JSON or text)."""
    data, headers = None, {}
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(f"{system.ingest_url}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def callbacks_counted(system: System, outcome: str) -> float:
    line = f'omniroute_router_callbacks_total{{outcome="{outcome}"}}'
    return metric_value(system.router_metrics_url(), line) or 0.0


async def position(system: System, workspace: str, inquiry_id: str, state: str) -> dict[str, Any]:
    """The inquiry's place once the router's snapshot says `state`."""

    async def check() -> dict[str, Any]:
        status, answer = call(system, f"/v1/workspaces/{workspace}/inquiries/{inquiry_id}/position")
        assert (status, answer.get("state")) == (200, state), answer
        return dict(answer)

    return await eventually(check)


async def first_offer(desk: Desk, agent_id: str) -> agent_state_pb2.Offer:
    """The agent's first open offer as its desk sees it (WatchOffers sends open offers first)."""
    stream = desk.stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id=agent_id))
    try:
        return await asyncio.wait_for(anext(aiter(stream)), timeout=15)
    finally:
        stream.cancel()


async def test_a_chat_customer_is_called_back_keeping_the_place_even_after_leaving(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    before = callbacks_counted(system, "requested")
    status, started = call(system, f"/v1/chat/{ws}/conversations", {"message": "Hello?"})
    assert status == 201 and started["position"] == 1
    conversation, chat = started["conversation_id"], started["inquiry_id"]
    later = system.post_inquiry(inquiry_body(ws, "chat"))
    await position(system, ws, later, "waiting")

    # Refused at the edge, naming the field; nothing published.
    status, silent = call(system, f"/v1/chat/{ws}/conversations", {})
    status, early = call(
        system,
        f"/v1/chat/{ws}/conversations/{silent['conversation_id']}/callback",
        {"number": "+15550001111"},
    )
    assert status == 409 and early["message"].startswith("conversation_id:")
    path = f"/v1/chat/{ws}/conversations/{conversation}/callback"
    status, refused = call(system, path, {"number": "555-0100"})
    assert (status, refused["fields"][0]["field"]) == (422, "number")

    status, answer = call(system, path, {"number": "+1 555 000 1111"})
    assert status == 202 and answer["callback"] is True
    assert answer["system_message"].startswith("We will call you back")
    # A retried request changes nothing twice: the router sees one.
    status, _ = call(system, path, {"number": "+15550001111"})
    assert status == 202
    place = await position(system, ws, chat, "callback")
    assert place["position"] == 1  # still first in line, ahead of the later chat
    status, queues = call(system, f"/v1/workspaces/{ws}/queues")
    assert [(q["name"], q["depth"], q["callbacks"]) for q in queues["queues"]] == [
        ("support", 2, 1)
    ]
    # The customer closes the chat window: no abandon for a callback.
    status, left = call(system, f"/v1/chat/{ws}/conversations/{conversation}/leave", {})
    assert status == 200 and left["abandoned"] is True  # published; the router decides

    # A chat-only agent gets the later chat, never the callback; a voice agent gets that.
    await desk.login(make_agent(ws, f"{ws}-chat", {}, {CHAT: 2}))
    offer = await assignments.wait_for(lambda a: a.inquiry_id == later)
    assert offer.agent_id == f"{ws}-chat"
    caller = f"{ws}-caller"
    await desk.login(make_agent(ws, caller, {}, {VOICE: 1}))
    offer = await assignments.wait_for(lambda a: a.inquiry_id == chat)
    assert offer.agent_id == caller and offer.channel == VOICE
    assert (offer.callback.number, offer.callback.origin_channel) == ("+15550001111", CHAT)
    assert "callback_requested:chat" in offer.history
    assert not [a for a in assignments.records if a.inquiry_id == chat and a.agent_id != caller]
    # The agent's desk sees the number to call on the offer.
    seen = await first_offer(desk, caller)
    assert seen.assignment.callback.number == "+15550001111"

    # The outcome is recorded like any other: accepted, completed, gone from the line.
    await desk.accept(caller, chat)
    await desk.complete(caller, chat)

    async def finished() -> None:
        status, _ = call(system, f"/v1/workspaces/{ws}/inquiries/{chat}/position")
        assert status == 404
        assert callbacks_counted(system, "requested") == before + 1

    await eventually(finished)
    answered = f'omniroute_router_answered_total{{channel="voice",queue="support",within_sla="unknown",workspace="{ws}"}}'  # fmt: skip
    assert metric_value(system.router_metrics_url(), answered) == 1


async def test_a_caller_presses_1_hangs_up_and_is_called_back_on_their_number(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    sid = "CA" + uuid.uuid4().hex
    status, twiml = call(system, f"/v1/voice/{ws}/calls", form={"CallSid": sid, "From": "+34600000002"})  # fmt: skip
    assert status == 200 and "You are next in line." in twiml
    call_id = call_inquiry_id(ws, sid)
    assert (await position(system, ws, call_id, "waiting"))["position"] == 1
    status, hold = call(system, f"/v1/voice/{ws}/calls/{sid}/wait", form={"CallSid": sid})
    action = f"/v1/voice/{ws}/calls/{sid}/callback"
    assert f'<Gather numDigits="1" timeout="3" action="{action}"' in hold and "press 1" in hold
    # Another digit: back to the hold loop; a caller id that is no number: 422 naming it.
    _, other = call(system, action, form={"CallSid": sid, "Digits": "2", "From": "+34600000002"})
    assert "<Redirect" in other and f"/v1/voice/{ws}/calls/{sid}/wait" in other
    status, refused = call(system, action, form={"CallSid": sid, "Digits": "1", "From": "anonymous"})  # fmt: skip
    assert (status, refused["fields"][0]["field"]) == (422, "From")

    status, bye = call(system, action, form={"CallSid": sid, "Digits": "1", "From": "+34600000002"})
    assert status == 200 and "<Hangup/>" in bye
    await position(system, ws, call_id, "callback")
    # The caller hangs up: the provider's status webhook publishes an abandon, which
    # the router does not apply to a callback.
    status, ended = call(
        system,
        f"/v1/voice/{ws}/calls/status",
        form={"CallSid": sid, "CallStatus": "completed", "QueueResult": "hangup"},
    )
    assert status == 200 and ended["abandoned"] is True

    await desk.login(make_agent(ws, f"{ws}-caller", {}, {VOICE: 1}))
    offer = await assignments.wait_for(lambda a: a.inquiry_id == call_id)
    assert (offer.callback.number, offer.callback.origin_channel) == ("+34600000002", VOICE)
    abandoned = f'omniroute_router_abandoned_total{{channel="voice",queue="support",within_sla="unknown",workspace="{ws}"}}'  # fmt: skip
    assert (metric_value(system.router_metrics_url(), abandoned) or 0.0) == 0.0


async def test_the_http_api_checks_at_the_edge_and_the_router_refuses_other_channels(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    mail = system.post_inquiry(inquiry_body(ws, "email"))
    await position(system, ws, mail, "waiting")
    path = f"/v1/workspaces/{ws}/inquiries/{mail}/callback"
    for body, field in (
        ({"number": "+15550001111", "channel": "email"}, "channel"),
        ({"number": "0044 20 7946 0000", "channel": "chat"}, "number"),
        ({"channel": "chat"}, "number"),
    ):
        status, refused = call(system, path, body)
        assert (status, refused["fields"][0]["field"]) == (422, field), refused
    status, unknown = call(
        system,
        f"/v1/workspaces/{ws}/inquiries/nobody/callback",
        {"number": "+15550001111", "channel": "voice"},
    )
    assert status == 404 and unknown["message"].startswith("inquiry_id:")

    # An email said to be a chat: on the broker (ingest cannot tell), refused by the
    # router, which knows its channel: it stays an email, counted, never a call.
    refused_before = callbacks_counted(system, "wrong_channel") + callbacks_counted(
        system, "not_realtime"
    )
    status, answer = call(system, path, {"number": "+15550001111", "channel": "chat"})
    assert status == 202 and answer["state"] == "waiting"

    async def refused_by_the_router() -> None:
        counted = callbacks_counted(system, "wrong_channel") + callbacks_counted(
            system, "not_realtime"
        )
        assert counted == refused_before + 1

    await eventually(refused_by_the_router)
    await desk.login(make_agent(ws, f"{ws}-caller", {}, {VOICE: 1, CHAT: 1}))
    chat = system.post_inquiry(inquiry_body(ws, "chat"))
    assert (await assignments.wait_for(lambda a: a.inquiry_id == chat)).agent_id == f"{ws}-caller"
    await position(system, ws, mail, "waiting")  # no email slot anywhere: still waiting

    # An agent has the chat: too late to ask for a callback.
    await desk.accept(f"{ws}-caller", chat)
    await position(system, ws, chat, "in_progress")
    status, late = call(
        system,
        f"/v1/workspaces/{ws}/inquiries/{chat}/callback",
        {"number": "+15550001111", "channel": "chat"},
    )
    assert status == 409 and late["message"].startswith("inquiry_id:")


async def test_a_closed_queue_offers_a_callback_that_is_called_when_it_opens(
    system: System, desk: Desk, assignments: Assignments, routing_file: Path
) -> None:
    ws = CLOSED_WS
    sid = "CA" + uuid.uuid4().hex
    status, twiml = call(system, f"/v1/voice/{ws}/calls", form={"CallSid": sid, "From": "+34600000003"})  # fmt: skip
    assert status == 200 and "We are closed at the moment." in twiml
    assert "To be called back when we open instead, press 1." in twiml and "<Gather" in twiml
    status, started = call(system, f"/v1/chat/{ws}/conversations", {"message": "Hello?"})
    assert status == 201 and started["callback_offered"] is True
    chat = started["inquiry_id"]
    await position(system, ws, chat, "held")
    path = f"/v1/chat/{ws}/conversations/{started['conversation_id']}/callback"
    status, _ = call(system, path, {"number": "+34600000004"})
    assert status == 202
    held = await position(system, ws, chat, "callback")
    assert held["opens_at"] == SHOP_OPENS
    await desk.login(make_agent(ws, f"{ws}-caller", {}, {VOICE: 1}))
    # The caller did not take the offer and hangs up: abandoned as usual.
    call(
        system,
        f"/v1/voice/{ws}/calls/status",
        form={"CallSid": sid, "CallStatus": "completed", "QueueResult": "hangup"},
    )

    async def call_gone() -> None:
        status, _ = call(system, f"/v1/workspaces/{ws}/inquiries/{call_inquiry_id(ws, sid)}/position")  # fmt: skip
        assert status == 404

    await eventually(call_gone)

    # The shop opens: the callback is the voice agent's call to make.
    reload_routing(system, routing_file, routing(shop_exceptions="{}"))
    try:
        offer = await assignments.wait_for(lambda a: a.inquiry_id == chat)
        assert offer.agent_id == f"{ws}-caller" and offer.callback.number == "+34600000004"
        assert offer.history[:3] == [
            "closed:shop:callback_offered", "callback_requested:chat", "opened:shop",
        ]  # fmt: skip
        gone = call_inquiry_id(ws, sid)
        assert not [a for a in assignments.records if a.inquiry_id == gone]
    finally:
        reload_routing(system, routing_file, routing())

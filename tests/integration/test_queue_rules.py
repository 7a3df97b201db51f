"""Queue rules end to end: walk-ins by site, live configuration (SIGHUP), business hours
and overflow, through ingest, the broker, the router and agent-state as processes."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from omniroute.embedded import Broker
from omniroute.v1 import inquiry_pb2, queue_pb2
from tests.support.kafka import TopicTail
from tests.support.system import (
    CHAT,
    EMAIL,
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

IN_PERSON = inquiry_pb2.CHANNEL_IN_PERSON

# Workspaces of their own for the hours and overflow tests; every other
# workspace gets `default`, whose queue `supervisors` offers to tier 3 only.
CLOSED_WS = "closed-" + uuid.uuid4().hex[:8]
OVERFLOW_WS = "overflow-" + uuid.uuid4().hex[:8]


MADRID = ZoneInfo("Europe/Madrid")
# The shop is open round the clock but closed today and tomorrow (Madrid): it
# opens at midnight after tomorrow, even if the tests run across a midnight.
TODAY = datetime.now(MADRID).date()
SHOP_OPENS = datetime.combine(TODAY + timedelta(days=2), time(0), tzinfo=MADRID).timestamp()
CLOSED_DAYS = f"{{{TODAY}: closed, {TODAY + timedelta(days=1)}: closed}}"


def routing(shop_exceptions: str = CLOSED_DAYS, default: str = "") -> str:
    """The module's routing file; `shop_exceptions`: the dated exceptions of CLOSED_WS's
    shop (default: closed today and tomorrow); `default`: the default workspace's queues."""
    return f"""\
workspaces:
  {CLOSED_WS}:
    queues:
      - name: shop
        match: {{channels: [chat, voice, email]}}
        hours:
          timezone: Europe/Madrid
          weekly: {{mon-sun: "00:00-24:00"}}
          exceptions: {shop_exceptions}
          when_closed: {{default: hold, email: after_hours_queue, voice: callback}}
          after_hours_queue: overnight
      - name: overnight
        match: {{segments: [nobody]}}
      - name: general
  {OVERFLOW_WS}:
    queues:
      - name: experts
        match: {{kinds: [complaint]}}
        required_skills: {{complaints: 4}}
        overflow:
          - {{to: anyone, after_wait_s: 3}}
      - name: anyone
default:
  queues:
{
        default
        or '''    - name: supervisors
      match: {segments: [escalated]}
      ladder:
        - {after_s: 0, tiers: [3]}
    - name: general
'''
    }"""


ROUTING = routing()


@pytest.fixture(scope="module")
def routing_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("queue-rules") / "routing.yaml"
    path.write_text(ROUTING)
    return path


@pytest.fixture(scope="module")
def system(broker: Broker, routing_file: Path) -> Iterator[System]:
    # The voice and chat answers wait for the snapshot that lists the new inquiry.
    env = {"INGEST_POSITION_WAIT_S": "30"}
    yield from running(System(broker, routing_config=str(routing_file), extra_env=env))


def post(system: System, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"{system.ingest_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status in (201, 202), response.status
        return dict(json.loads(response.read()))


def walk_in(system: System, workspace: str, location: str) -> str:
    answer = post(
        system,
        f"/v1/walk-in/{workspace}",
        {"location": location, "locationType": "store", "reason": "Return a phone"},
    )
    return str(answer["id"])


async def test_a_walk_in_goes_only_to_an_agent_of_its_site(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    # Madrid's agent logs in first: the longest idle, and still not offered Sevilla's visit.
    madrid = make_agent(ws, f"{ws}-madrid", {}, {IN_PERSON: 1, CHAT: 1})
    madrid.site = "store-madrid"
    sevilla = make_agent(ws, f"{ws}-sevilla", {}, {IN_PERSON: 1})
    sevilla.site = "Store-Sevilla"  # sites compare ignoring case
    await desk.login(madrid)
    await desk.login(sevilla)
    assert (await desk.agent(madrid.id)).site == "store-madrid"

    visit = walk_in(system, ws, "store-sevilla")
    offer = await assignments.wait_for(lambda a: a.inquiry_id == visit)
    assert offer.agent_id == sevilla.id

    # Nobody at Bilbao: the visit waits, although Madrid's agent is free.
    bilbao_visit = walk_in(system, ws, "store-bilbao")
    chat = system.post_inquiry(inquiry_body(ws, "chat"))
    assert (await assignments.wait_for(lambda a: a.inquiry_id == chat)).agent_id == madrid.id

    bilbao = make_agent(ws, f"{ws}-bilbao", {}, {IN_PERSON: 1})
    bilbao.site = "store-bilbao"
    await desk.login(bilbao)
    offer = await assignments.wait_for(lambda a: a.inquiry_id == bilbao_visit)
    assert offer.agent_id == bilbao.id
    # Only one offer was ever made for it, to Bilbao.
    assert [a.agent_id for a in assignments.records if a.inquiry_id == bilbao_visit] == [bilbao.id]


def reloads(system: System, result: str) -> float:
    url = system.router_metrics_url()
    return metric_value(url, f'omniroute_router_config_reloads_total{{result="{result}"}}') or 0.0


def depth(system: System, workspace: str, queue: str) -> float | None:
    url = system.router_metrics_url()
    line = f'omniroute_router_queue_depth{{queue="{queue}",workspace="{workspace}"}}'
    return metric_value(url, line)


async def test_sighup_refuses_an_invalid_file_and_applies_a_valid_one(
    system: System, desk: Desk, assignments: Assignments, routing_file: Path
) -> None:
    ws = new_workspace()
    await desk.login(make_agent(ws, f"{ws}-rep", {}, {CHAT: 2}))
    held = system.post_inquiry(inquiry_body(ws, "chat", customer={"segment": "escalated"}))

    async def waits_for_a_supervisor() -> None:
        assert depth(system, ws, "supervisors") == 1

    await eventually(waits_for_a_supervisor)
    router = system.processes["router"]
    assert router.process is not None

    # An invalid file: refused, with its file, line and field in the log; nothing changes.
    refused_before = reloads(system, "refused")
    reload_routing(system, routing_file, ROUTING + "      strategy: fastest\n")

    async def refused() -> None:
        assert reloads(system, "refused") == refused_before + 1
        line = ROUTING.count("\n") + 1
        error = f"{routing_file}:{line}: default.queues[1].strategy: unknown strategy"
        assert error in router.log()

    await eventually(refused)
    assert router.process.poll() is None
    probe = system.post_inquiry(inquiry_body(ws, "chat"))  # routed by the old rules still
    assert (await assignments.wait_for(lambda a: a.inquiry_id == probe)).queue == "general"
    assert depth(system, ws, "supervisors") == 1

    # A valid file without the queue: its inquiry moves to the queue that takes it now.
    applied_before = reloads(system, "applied")
    reload_routing(system, routing_file, routing(default="    - name: general\n"))
    offer = await assignments.wait_for(lambda a: a.inquiry_id == held)
    assert offer.queue == "general" and offer.agent_id == f"{ws}-rep"
    assert "requeued:supervisors:general:reconfigured" in offer.history
    assert reloads(system, "applied") == applied_before + 1
    reload_routing(system, routing_file, ROUTING)

    async def restored() -> None:
        assert reloads(system, "applied") == applied_before + 2

    await eventually(restored)


async def test_a_closed_queue_holds_chats_and_calls_until_it_opens_and_sends_email_on(
    system: System, desk: Desk, assignments: Assignments, routing_file: Path
) -> None:
    ws = CLOSED_WS
    await desk.login(make_agent(ws, f"{ws}-ana", {}, {CHAT: 2, VOICE: 1, EMAIL: 1}))
    chat = system.post_inquiry(inquiry_body(ws, "chat"))
    call = system.post_inquiry(inquiry_body(ws, "voice"))
    mail = system.post_inquiry(inquiry_body(ws, "email"))
    # The email goes on to the after-hours queue and is offered there.
    offer = await assignments.wait_for(lambda a: a.inquiry_id == mail)
    assert offer.queue == "overnight"
    assert "closed:shop:after_hours:overnight" in offer.history

    # The chat is held, and the call too (held and offered a callback).
    url = system.router_metrics_url()
    held = 'omniroute_router_closed_arrivals_total{{policy="{}",queue="shop"}}'

    async def counted() -> None:
        assert metric_value(url, held.format("hold")) == 1
        assert metric_value(url, held.format("callback")) == 1
        assert depth(system, ws, "shop") == 0  # held, not waiting

    await eventually(counted)
    # The queue snapshot says the shop is closed until when, and holds both.
    async with TopicTail(
        system.broker.bootstrap, system.topics["TOPIC_QUEUE_SNAPSHOTS"], queue_pb2.QueueSnapshot
    ) as snapshots:

        def shop_holds_both(snapshot: queue_pb2.QueueSnapshot) -> bool:
            shop = next((q for q in snapshot.queues if q.name == "shop"), None)
            return snapshot.workspace == ws and shop is not None and len(shop.held_ids) == 2

        snapshot = await snapshots.wait_for(shop_holds_both)
    shop = snapshot.queues[0]
    assert shop.closed and shop.timezone == "Europe/Madrid"
    assert shop.opens_at.seconds == SHOP_OPENS
    assert list(shop.held_ids) == [chat, call]
    assert shop.scheduled == 2 and shop.waiting == 0
    assert not [a for a in assignments.records if a.inquiry_id in (chat, call)]
    # Not offered although the agent has free chat and voice slots.
    assert {c.channel: c.load for c in (await desk.agent(f"{ws}-ana")).capacities} == {
        CHAT: 0, VOICE: 0, EMAIL: 1,
    }  # fmt: skip

    # The shop opens (no more closed days): the chat and the call are offered.
    reload_routing(system, routing_file, routing(shop_exceptions="{}"))
    offer = await assignments.wait_for(lambda a: a.inquiry_id == chat)
    assert offer.queue == "shop"
    assert offer.history[:2] == ["closed:shop:hold", "opened:shop"]
    offer = await assignments.wait_for(lambda a: a.inquiry_id == call)
    assert offer.history[:2] == ["closed:shop:callback_offered", "opened:shop"]
    reload_routing(system, routing_file, ROUTING)


async def test_overflow_moves_a_waiting_inquiry_to_the_next_queue_and_counts_it(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = OVERFLOW_WS
    await desk.login(make_agent(ws, f"{ws}-ana", {"complaints": 2}, {CHAT: 1}))
    complaint = system.post_inquiry(inquiry_body(ws, "chat", kind="complaint"))
    offer = await assignments.wait_for(lambda a: a.inquiry_id == complaint)
    # Nobody has complaints 4: after 3 s it overflowed to `anyone`, without that skill.
    assert offer.queue == "anyone" and offer.agent_id == f"{ws}-ana"
    assert "overflow:experts:anyone:wait" in offer.history
    moved = 'omniroute_router_overflows_total{queue="experts",to_queue="anyone",trigger="wait"}'
    assert metric_value(system.router_metrics_url(), moved) == 1


def post_form(system: System, path: str, form: dict[str, str]) -> str:
    """A voice provider's webhook (unsigned: the test system allows it); the TwiML."""
    request = urllib.request.Request(
        f"{system.ingest_url}{path}", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(response.read().decode())


def test_callers_and_chatters_hear_that_the_queue_is_closed_and_when_it_opens(
    system: System,
) -> None:
    ws = CLOSED_WS
    opening = datetime.fromtimestamp(SHOP_OPENS, MADRID)
    said = f"We open on {opening:%A} {opening.day} {opening:%B} at 00:00 (Europe/Madrid time)"
    call_sid = "CA" + uuid.uuid4().hex
    twiml = post_form(
        system, f"/v1/voice/{ws}/calls", {"CallSid": call_sid, "From": "+34600000001"}
    )
    assert "We are closed at the moment." in twiml and said in twiml
    hold = post_form(system, f"/v1/voice/{ws}/calls/{call_sid}/wait", {"CallSid": call_sid})
    assert said in hold

    chat = post(system, f"/v1/chat/{ws}/conversations", {"message": "Hello?"})
    assert said in str(chat["system_message"])

    with urllib.request.urlopen(f"{system.ingest_url}/v1/workspaces/{ws}/queues", timeout=15) as r:
        queues = {q["name"]: q for q in json.loads(r.read())["queues"]}
    assert queues["shop"]["open"] is False and queues["shop"]["opens_at"] == SHOP_OPENS
    assert queues["general"]["open"] is True and queues["general"]["opens_at"] is None

"""Inquiries near the record size limit, through the whole system, on both brokers.

One size budget (`omniroute.sizes`, from KAFKA_MAX_REQUEST_BYTES) holds
everywhere: ingest refuses an inquiry above its inquiry limit with 413
naming it, before publishing; one just under it is routed and offered whole;
content that grows downstream (a conversation's messages joining the
inquiry) is cut to fit, with a marker, and still offered; a record a channel
team publishes straight to `inquiries` above the limit goes to the
dead-letter topic with the reason (without its value when the letter could
not carry it), and the inquiries behind it are routed. Before the budget, a
796 KB inquiry ingest accepted crashed every router worker that took its
partition (its copy in the router's contents table, 1,061,648 bytes, was
above Faust's producer limit).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from omniroute.codec import encode
from omniroute.embedded import Broker
from omniroute.settings import BrokerKind, CommonSettings
from omniroute.v1 import agent_state_pb2, dead_letter_pb2, inquiry_pb2, task_pb2
from tests.support.kafka import TopicTail
from tests.support.system import (
    CHAT,
    Assignments,
    Desk,
    System,
    eventually,
    make_agent,
    metric_value,
    new_workspace,
    running,
)

pytestmark = pytest.mark.integration

#: The budget the services run with (the default KAFKA_MAX_REQUEST_BYTES).
SIZES = CommonSettings.from_env().sizes
#: A character of four bytes in UTF-8 (and in the protobuf), sent as such in JSON.
WIDE = "\U0001f600"


@pytest.fixture(scope="module")
def system(broker: Broker) -> Iterator[System]:
    yield from running(System(broker))


@pytest.fixture
async def dead_letters(system: System) -> AsyncIterator[TopicTail[dead_letter_pb2.DeadLetter]]:
    topic = system.topics["TOPIC_DEAD_LETTERS"]
    async with TopicTail(system.broker.bootstrap, topic, dead_letter_pb2.DeadLetter) as tail:
        yield tail


@pytest.fixture
async def published(system: System) -> AsyncIterator[TopicTail[inquiry_pb2.Inquiry]]:
    topic = system.topics["TOPIC_INQUIRIES"]
    async with TopicTail(system.broker.bootstrap, topic, inquiry_pb2.Inquiry) as tail:
        yield tail


def post(
    system: System, body: dict[str, Any], path: str = "/v1/inquiries"
) -> tuple[int, dict[str, Any]]:
    """POST to ingest as UTF-8 JSON (not \\u escapes); (status, answer)."""
    request = urllib.request.Request(
        f"{system.ingest_url}{path}",
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def held_offer(system: System, agent_id: str) -> task_pb2.Assignment:
    """The assignment a desk connecting now is shown for the agent's open offer."""
    desk = Desk(system.agent_state_target)
    try:
        stream = desk.stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id=agent_id))
        async for offer in stream:
            if offer.status == agent_state_pb2.Offer.STATUS_OPEN:
                stream.cancel()
                return offer.assignment
        raise AssertionError("WatchOffers ended without the open offer")
    finally:
        await desk.close()


def router_alive(system: System) -> None:
    router = system.processes["router"].process
    assert router is not None and router.poll() is None, "the router worker exited"
    assert system.router_partitions() > 0


async def test_ingest_offers_an_inquiry_just_under_the_limit_and_refuses_one_above_with_413(
    system: System,
    desk: Desk,
    assignments: Assignments,
    published: TopicTail[inquiry_pb2.Inquiry],
) -> None:
    ws = new_workspace()
    await desk.login(make_agent(ws, f"{ws}-ann", {}, {CHAT: 2}))
    # About 4 KB below the limit: room for what ingest adds (id, times, language).
    under = WIDE * ((SIZES.inquiry_bytes - 4_000) // 4)
    status, answer = post(system, {"workspace": ws, "channel": "chat", "subject": "under", "body": under})  # fmt: skip
    assert status == 202, answer
    offer = await assignments.wait_for(lambda a: a.inquiry_id == answer["id"], timeout_s=60)
    assert offer.agent_id == f"{ws}-ann" and offer.inquiry.body == under  # whole, not cut
    assert (await held_offer(system, f"{ws}-ann")).inquiry.body == under

    over = WIDE * ((SIZES.inquiry_bytes + 4_000) // 4)  # the request body is below 1 MB
    status, answer = post(system, {"workspace": ws, "channel": "chat", "subject": "over", "body": over})  # fmt: skip
    assert status == 413, answer
    assert answer["error"] == "too_large"
    assert f"limit of {SIZES.inquiry_bytes} bytes" in answer["message"]
    assert "KAFKA_MAX_REQUEST_BYTES" in answer["message"]
    # A batch with one such inquiry publishes none of them.
    batch = {
        "inquiries": [
            {"workspace": ws, "channel": "chat", "subject": "batch-small"},
            {"workspace": ws, "channel": "chat", "subject": "batch-over", "body": over},
        ]
    }
    status, answer = post(system, batch, "/v1/inquiries/batch")
    assert status == 413, answer
    assert answer["message"].startswith("inquiries[1]: Inquiry: ")
    # Nothing was published: the inquiry posted after them is on the topic, they are not.
    status, after = post(system, {"workspace": ws, "channel": "chat", "subject": "after"})
    assert status == 202, after
    await published.wait_for(lambda i: i.id == after["id"])
    refused = {"over", "batch-small", "batch-over"}
    assert not [i for i in published.records if i.workspace == ws and i.subject in refused]
    router_alive(system)


async def test_a_conversation_grown_past_the_limit_is_offered_cut_to_fit(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    thread = uuid.uuid4().hex
    half = "c" * (SIZES.inquiry_bytes * 2 // 3)  # each message fits; both do not
    first = inquiry_pb2.Inquiry(id=f"{ws}-1", workspace=ws, channel=CHAT, thread_id=thread, body=half)  # fmt: skip
    second = inquiry_pb2.Inquiry(id=f"{ws}-2", workspace=ws, channel=CHAT, thread_id=thread, body=half)  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=system.broker.bootstrap)
    await producer.start()
    try:
        for message in (first, second):  # nobody is logged in: the second joins the first
            await producer.send_and_wait(
                system.topics["TOPIC_INQUIRIES"], encode(message), key=ws.encode()
            )
    finally:
        await producer.stop()
    joined = 'omniroute_router_conversation_messages_total{delivery="waiting"}'

    async def second_joined() -> None:
        assert (metric_value(system.router_metrics_url(), joined) or 0) >= 1

    await eventually(second_joined, timeout_s=60)  # before anyone can be offered the first
    await desk.login(make_agent(ws, f"{ws}-ann", {}, {CHAT: 2}))
    offer = await assignments.wait_for(lambda a: a.workspace == ws, timeout_s=60)
    assert offer.inquiry_id == first.id
    assert offer.ByteSize() <= SIZES.assignment_bytes
    assert offer.inquiry.body.startswith(half[:1000])
    assert "more bytes not shown" in offer.inquiry.body
    held = await held_offer(system, f"{ws}-ann")
    assert held.inquiry.body == offer.inquiry.body
    assert not [a for a in assignments.records if a.inquiry_id == second.id]  # it joined
    router_alive(system)


async def test_records_published_straight_to_the_topic_above_the_limit_are_dead_lettered(
    system: System,
    broker_kind: BrokerKind,
    desk: Desk,
    assignments: Assignments,
    dead_letters: TopicTail[dead_letter_pb2.DeadLetter],
) -> None:
    ws = new_workspace()
    await desk.login(make_agent(ws, f"{ws}-ann", {}, {CHAT: 5}))

    def inquiry(name: str, body_bytes: int) -> inquiry_pb2.Inquiry:
        made = inquiry_pb2.Inquiry(id=f"{ws}-{name}", workspace=ws, channel=CHAT)
        made.body = "d" * (body_bytes - made.ByteSize() - 4)
        return made

    near = inquiry("near", SIZES.inquiry_bytes - 100)  # fits: routed whole
    over = inquiry("over", SIZES.inquiry_bytes + 50_000)  # its letter can carry it
    huge = inquiry("huge", 1_046_000)  # the broker takes it; its letter could not
    giant = inquiry("giant", 3_000_000)  # above Apache Kafka's message.max.bytes
    good = inquiry_pb2.Inquiry(id=f"{ws}-good", workspace=ws, channel=CHAT, body="behind them")
    # A channel team's producer with a limit above the services' own.
    producer = AIOKafkaProducer(
        bootstrap_servers=system.broker.bootstrap, max_request_size=8_000_000
    )
    await producer.start()
    try:
        for sent in (near, over, huge):
            await producer.send_and_wait(
                system.topics["TOPIC_INQUIRIES"], encode(sent), key=ws.encode()
            )
        if broker_kind is BrokerKind.KAFKA:
            with pytest.raises(MessageSizeTooLargeError):
                await producer.send_and_wait(
                    system.topics["TOPIC_INQUIRIES"], encode(giant), key=ws.encode()
                )
        else:  # the embedded broker takes records of several megabytes
            await producer.send_and_wait(
                system.topics["TOPIC_INQUIRIES"], encode(giant), key=ws.encode()
            )
        await producer.send_and_wait(system.topics["TOPIC_INQUIRIES"], encode(good), key=ws.encode())  # fmt: skip
    finally:
        await producer.stop()

    # The partition is not blocked: the inquiries behind the large ones are offered.
    offered = {
        a.inquiry_id: a
        for a in await assignments.wait_count(lambda a: a.workspace == ws, 2, timeout_s=60)
    }
    assert set(offered) == {near.id, good.id}
    assert offered[near.id].inquiry.body == near.body  # whole

    expected = {over.id: over, huge.id: huge}
    if broker_kind is BrokerKind.TANSU:
        expected[giant.id] = giant
    letters = await dead_letters.wait_count(
        lambda d: d.key == ws.encode(), len(expected), timeout_s=60
    )
    for letter in letters:
        assert letter.service == "router" and "above the limit of" in letter.reason
        assert f"limit of {SIZES.inquiry_bytes} bytes" in letter.reason
    carried = [inquiry_pb2.Inquiry.FromString(d.value) for d in letters if d.value]
    assert [i.id for i in carried] == [over.id]  # the one whose letter fits carries it
    left = [d for d in letters if not d.value]
    assert len(left) == len(expected) - 1
    assert all("is not copied here" in d.reason and d.offset >= 0 for d in left)
    # Each large record was dead-lettered once (the stream moved past it, no loop).
    assert sorted(d.offset for d in letters) == sorted({d.offset for d in letters})
    router_alive(system)

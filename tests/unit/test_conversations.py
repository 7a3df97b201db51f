"""Conversations: which message joins which open inquiry, and the state kept for them."""

from __future__ import annotations

import base64

import pytest
from prometheus_client import CollectorRegistry

from omniroute.v1 import agent_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.content import DeskContent
from omniroute_ingest.channels.chat_state import Conversation, Conversations, StartIn
from omniroute_router.config import ConfigError, WorkspaceConfig, parse
from omniroute_router.contents import InquiryContents
from omniroute_router.conversations import Conversations as RouterConversations
from omniroute_router.conversations import Join, Redelivery, ThreadIndex, redelivery
from omniroute_router.convert import inquiry_from_proto
from omniroute_router.metrics import RouterMetrics
from omniroute_router.model import QueuedInquiry
from omniroute_router.reservations import AgentStateUnavailable, ReservationRefused
from omniroute_router.routing import WorkspaceRouter

NOW = 1_800_000_000.0
CONFIG = WorkspaceConfig(conversation_window_s=3600)


def message(inquiry_id: str, thread: str = "sms-t1", at: float = NOW) -> QueuedInquiry:
    proto = inquiry_pb2.Inquiry(
        id=inquiry_id, workspace="acme", channel=inquiry_pb2.CHANNEL_SMS, thread_id=thread
    )
    return inquiry_from_proto(proto, at)


def opened(core: WorkspaceRouter, index: ThreadIndex, inquiry: QueuedInquiry, at: float) -> None:
    assert core.admit(inquiry, at)
    index.opened(core, inquiry, at)


def test_a_message_joins_its_threads_open_inquiry_within_the_window() -> None:
    core, index = WorkspaceRouter("acme", CONFIG), ThreadIndex()
    assert index.find(core, message("m1"), NOW) is None  # nothing open: a new inquiry
    opened(core, index, message("m1"), NOW)
    assert index.find(core, message("m2"), NOW + 60) == Join("m1", "")  # waiting: no agent
    assert index.find(core, message("x", thread="sms-other"), NOW + 60) is None
    assert index.find(core, message("y", thread=""), NOW + 60) is None
    # Offered: the message goes to that agent.
    core.offer_made("m1", "ann", "r1", NOW + 100)
    assert index.find(core, message("m3"), NOW + 120) == Join("m1", "ann")
    index.joined(core, "sms-t1", Join("m1", "ann"), NOW + 3000)
    # The window runs from the last joined message, not the first.
    assert index.find(core, message("m4"), NOW + 3000 + 3500) == Join("m1", "ann")
    assert index.find(core, message("m5"), NOW + 3000 + 3700) is None


def test_a_finished_inquiry_is_joined_no_more() -> None:
    core, index = WorkspaceRouter("acme", CONFIG), ThreadIndex()
    opened(core, index, message("m1"), NOW)
    core.offer_made("m1", "ann", "r1", NOW)
    core.accepted("m1", "ann", NOW)
    core.resolved("m1", "ann", NOW + 50)
    assert index.find(core, message("m2"), NOW + 60) is None
    # A message that joined counts as finished for the core: never queued, never swept.
    core.absorbed("m9", NOW)
    assert not core.is_new("m9") and not core.admit(message("m9"), NOW)


def test_the_index_is_rebuilt_from_a_restored_core() -> None:
    core, index = WorkspaceRouter("acme", CONFIG), ThreadIndex()
    opened(core, index, message("m1"), NOW)
    # A takeover: the workspace's state rebuilt from the tables in a new core object.
    restored = WorkspaceRouter("acme", CONFIG)
    for inquiry in core.inquiries.values():
        restored.restore_inquiry(inquiry)
    assert index.find(restored, message("m2"), NOW + 10) == Join("m1", "")


def test_a_joined_message_is_added_to_the_inquirys_content() -> None:
    contents = InquiryContents()
    first = inquiry_pb2.Inquiry(id="m1", workspace="acme", body="Where is it?")
    contents.keep("acme", "m1", first.SerializeToString())
    later = inquiry_pb2.Inquiry(id="m2", body="Order 12", attachments=[{"name": "photo"}])
    contents.add_message("acme", "m1", later)
    contents.add_message("acme", "gone", later)  # routing ended: nothing to add to
    stored = inquiry_pb2.Inquiry.FromString(base64.b64decode(contents.table["acme/m1"]))
    assert stored.body == "Where is it?\n\nOrder 12"
    assert [a.name for a in stored.attachments] == ["photo"]
    assert "acme/gone" not in contents.table


def conversation_message(message_id: str) -> task_pb2.ConversationMessage:
    return task_pb2.ConversationMessage(
        workspace="acme", inquiry_id="m1", agent_id="ann", message={"id": message_id}
    )


def test_delivered_messages_are_kept_while_the_reservation_is_held() -> None:
    kept = DeskContent(per_reservation=2)
    assert kept.deliver("ann", "r1", conversation_message("a"))
    assert not kept.deliver("ann", "r1", conversation_message("a"))  # the same message
    kept.deliver("ann", "r1", conversation_message("b"))
    dropped = kept.deliver("ann", "r1", conversation_message("c"))  # beyond the bound: a goes
    assert [r.key for r in dropped if r.value is None] == ["held/r1/messages/a"]
    assert [m.message.id for m in kept.messages("r1")] == ["b", "c"]
    held_elsewhere = agent_pb2.Agent(id="ann", reservations=[{"reservation_id": "r2"}])
    assert [r.key for r in kept.prune("ann", held_elsewhere)] == [
        "held/r1/messages/b",
        "held/r1/messages/c",
    ]  # r1 was let go: its messages get tombstones
    assert kept.messages("r1") == []


def test_a_chat_conversation_record_round_trips_and_never_goes_back_a_version() -> None:
    start = StartIn(subject="Refund", attributes={"page": "checkout"})
    newer = Conversation("acme", start, "i-1", published=True, messages=2, version=3)
    assert Conversation.from_json(newer.to_json()) == newer
    cache = Conversations(max_bytes=1_000_000, ttl_s=3600)
    assert cache.offer("c1", newer, now=0)
    older = Conversation("acme", start, "i-1", version=2)
    assert not cache.offer("c1", older, now=1)  # read late from the topic: ignored
    assert cache.get("acme", "c1", now=2).published
    size = cache.bytes
    cache.add("c1", Conversation("acme", start, "i-1", version=4), now=3)
    assert cache.bytes == size and len(cache) == 1  # replaced, not counted twice


def test_the_conversation_window_is_configured_per_workspace() -> None:
    config = parse("workspaces:\n  acme:\n    conversation_window_s: 900\n")
    assert config.workspaces["acme"].conversation_window_s == 900
    assert WorkspaceConfig().conversation_window_s == 86400
    with pytest.raises(ConfigError, match="conversation_window_s"):
        parse("workspaces:\n  acme:\n    conversation_window_s: -1\n")


class FakeAgentState:
    """agent-state's DeliverMessage: refuses when the agent no longer holds the inquiry."""

    def __init__(self, held: bool) -> None:
        self.held = held
        self.reachable = True
        self.delivered: list[task_pb2.ConversationMessage] = []

    async def deliver_message(self, message: task_pb2.ConversationMessage) -> object:
        if not self.reachable:
            raise AgentStateUnavailable("agent-state unavailable")
        if not self.held:
            raise ReservationRefused("ann holds no reservation of the inquiry")
        self.delivered.append(message)
        return object()


async def test_a_message_for_an_inquiry_the_agent_let_go_becomes_a_new_inquiry() -> None:
    for held in (True, False):
        core = WorkspaceRouter("acme", CONFIG)
        agent_state = FakeAgentState(held)
        conversations = RouterConversations(
            agent_state,  # type: ignore[arg-type]
            InquiryContents(),
            RouterMetrics(CollectorRegistry()),
        )
        first = message("m1")
        assert core.admit(first, NOW)
        conversations.opened(core, first, NOW)
        core.offer_made("m1", "ann", "r1", NOW)
        core.accepted("m1", "ann", NOW)
        # The agent resolved it at agent-state; the router has not heard yet.
        proto = inquiry_pb2.Inquiry(id="m2", workspace="acme", thread_id="sms-t1", body="hi")
        joined = await conversations.join(core, proto, message("m2"), NOW + 5)
        assert joined is held
        assert core.is_new("m2") is not held  # not absorbed: the caller queues it
        assert [m.message.id for m in agent_state.delivered] == (["m2"] if held else [])


def test_a_message_is_redelivered_only_while_its_agent_holds_the_inquiry() -> None:
    core = WorkspaceRouter("acme", CONFIG)
    assert core.admit(message("m1"), NOW)
    to_ann = task_pb2.ConversationMessage(workspace="acme", inquiry_id="m1", agent_id="ann")
    assert redelivery(core, to_ann) is Redelivery.DROPPED  # waiting: the next offer shows it
    core.offer_made("m1", "ann", "r1", NOW)
    assert redelivery(core, to_ann) is Redelivery.RETRY
    core.accepted("m1", "ann", NOW)
    assert redelivery(core, to_ann) is Redelivery.RETRY
    to_bob = task_pb2.ConversationMessage(workspace="acme", inquiry_id="m1", agent_id="bob")
    assert redelivery(core, to_bob) is Redelivery.DROPPED  # held by another agent now
    core.resolved("m1", "ann", NOW + 5)
    assert redelivery(core, to_ann) is Redelivery.DROPPED


async def test_a_failed_delivery_is_kept_and_retried_also_by_the_next_owner() -> None:
    core = WorkspaceRouter("acme", CONFIG)
    agent_state = FakeAgentState(held=True)
    contents = InquiryContents()
    conversations = RouterConversations(
        agent_state,  # type: ignore[arg-type]
        contents,
        RouterMetrics(CollectorRegistry()),
    )
    first = message("m1")
    assert core.admit(first, NOW)
    conversations.opened(core, first, NOW)
    core.offer_made("m1", "ann", "r1", NOW)
    agent_state.reachable = False
    for message_id in ("m2", "m3"):
        proto = inquiry_pb2.Inquiry(id=message_id, workspace="acme", thread_id="sms-t1")
        assert await conversations.join(core, proto, message(message_id), NOW + 5)
    assert [m.message.id for m in contents.undelivered("acme", "m1")] == ["m2", "m3"]
    await conversations.redeliver(core, limit=10)  # still unreachable: kept, in order
    assert [m.message.id for m in contents.undelivered("acme", "m1")] == ["m2", "m3"]

    # The worker dies; the next owner rebuilds the workspace from the tables.
    restored = WorkspaceRouter("acme", CONFIG)
    for inquiry in core.inquiries.values():
        restored.restore_inquiry(inquiry)
    successor = RouterConversations(
        agent_state,  # type: ignore[arg-type]
        InquiryContents(contents.table),
        RouterMetrics(CollectorRegistry()),
    )
    agent_state.reachable = True
    await successor.redeliver(restored, limit=10)
    assert [m.message.id for m in agent_state.delivered] == ["m2", "m3"]
    assert contents.undelivered("acme", "m1") == []
    assert "acme/m1#undelivered" not in contents.table


async def test_a_failed_delivery_is_dropped_once_the_agent_lets_the_inquiry_go() -> None:
    core = WorkspaceRouter("acme", CONFIG)
    agent_state = FakeAgentState(held=True)
    contents = InquiryContents()
    conversations = RouterConversations(
        agent_state,  # type: ignore[arg-type]
        contents,
        RouterMetrics(CollectorRegistry()),
    )
    assert core.admit(message("m1"), NOW)
    conversations.opened(core, message("m1"), NOW)
    core.offer_made("m1", "ann", "r1", NOW)
    agent_state.reachable = False
    proto = inquiry_pb2.Inquiry(id="m2", workspace="acme", thread_id="sms-t1")
    assert await conversations.join(core, proto, message("m2"), NOW + 5)
    core.offer_failed("m1", "ann", "r1", "declined", NOW + 6)  # back in the queue
    agent_state.reachable = True
    await conversations.redeliver(core, limit=10)
    assert agent_state.delivered == []
    assert contents.undelivered("acme", "m1") == []

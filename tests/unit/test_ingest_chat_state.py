"""ingest's chat state: bounded in bytes, forgotten when idle, the first message never kept."""

from __future__ import annotations

import pytest

from omniroute_ingest.channels.chat import Conversation, Conversations, StartIn
from omniroute_ingest.errors import Rejected


def conversation(subject: str = "") -> Conversation:
    return Conversation("acme", StartIn(subject=subject), inquiry_id="i")


def test_beyond_the_byte_budget_the_least_recently_active_go_first() -> None:
    one_kb = "x" * 1000
    probe = Conversations(max_bytes=1_000_000, ttl_s=3600)
    probe.add("a", conversation(one_kb), now=0)
    budget = int(probe.bytes * 3.5)  # room for three
    chats = Conversations(max_bytes=budget, ttl_s=3600)
    for name in ("a", "b", "c"):
        chats.add(name, conversation(one_kb), now=0)
    chats.get("acme", "a", now=1)  # a is active again; b is now the oldest
    chats.add("d", conversation(one_kb), now=2)
    assert chats.bytes <= budget and len(chats) == 3
    with pytest.raises(Rejected) as gone:
        chats.get("acme", "b", now=3)
    assert gone.value.status == 404
    for name in ("a", "c", "d"):
        chats.get("acme", name, now=3)


def test_an_idle_conversation_is_forgotten_and_activity_keeps_one_alive() -> None:
    chats = Conversations(max_bytes=1_000_000, ttl_s=10)
    chats.add("busy", conversation(), now=0)
    chats.add("idle", conversation(), now=0)
    for now in (5, 10, 15):
        chats.get("acme", "busy", now=now)
    with pytest.raises(Rejected):
        chats.get("acme", "idle", now=15)
    assert len(chats) == 1 and chats.bytes > 0
    with pytest.raises(Rejected):
        chats.get("acme", "busy", now=26)
    assert chats.bytes == 0


def test_another_workspace_cannot_reach_a_conversation() -> None:
    chats = Conversations(max_bytes=1_000_000, ttl_s=10)
    chats.add("c1", conversation(), now=0)
    with pytest.raises(Rejected):
        chats.get("globex", "c1", now=1)

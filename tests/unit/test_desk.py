"""The desk's edge: request validation, tokens, event framing, the snapshot board."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import HTTPException
from pydantic import ValidationError

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2, queue_pb2, task_pb2
from omniroute_desk.app import (
    Completion,
    StatusChange,
    Transfer,
    bearer_token,
    event,
    workspace_of,
)
from omniroute_desk.feed import AssignmentIndex, SnapshotBoard
from omniroute_desk.settings import DeskSettings


def test_away_needs_a_reason_and_unknown_statuses_are_refused() -> None:
    with pytest.raises(ValidationError, match="reason is required"):
        StatusChange(status="away", request_id="r1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="status"):
        StatusChange(status="asleep", request_id="r1")  # type: ignore[arg-type]
    assert StatusChange(status="away", reason="lunch", request_id="r1").reason == "lunch"  # type: ignore[arg-type]


def test_each_outcome_requires_its_details() -> None:
    with pytest.raises(ValidationError, match="follow_up_at is required"):
        Completion(outcome="follow_up", request_id="r1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="time zone"):
        Completion(outcome="follow_up", follow_up_at="2026-11-24T09:00:00", request_id="r1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="escalation_reason is required"):
        Completion(outcome="escalated", escalation_reason="  ", request_id="r1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="request_id"):
        Completion(outcome="resolved", request_id="")  # type: ignore[arg-type]
    done = Completion(outcome="follow_up", follow_up_at="2026-11-24T09:00:00Z", request_id="r1")  # type: ignore[arg-type]
    assert done.follow_up_at is not None and done.follow_up_at.tzinfo is not None


def test_a_transfer_names_a_colleague_or_a_queue() -> None:
    for neither_or_both in ({}, {"target_agent_id": "lou", "target_queue": "tech"}):
        with pytest.raises(ValidationError, match="target_agent_id or target_queue is required"):
            Transfer(request_id="r1", **neither_or_both)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="note"):
        Transfer(target_queue="tech", note="x" * 2001, request_id="r1")
    to_queue = Transfer(target_queue="tech", note="modem resets", request_id="r1")
    assert (to_queue.target_agent_id, to_queue.target_queue) == ("", "tech")


def test_a_supervisor_token_names_exactly_one_workspace() -> None:
    tokens = {"sup-acme": "acme", "sup-globex": "globex"}
    assert workspace_of(tokens, "sup-acme") == "acme"
    assert workspace_of(tokens, "sup-globex") == "globex"
    assert workspace_of(tokens, "sup-acm") == ""
    assert workspace_of(tokens, "") == ""
    assert workspace_of({}, "anything") == ""


def test_the_bearer_token_is_required() -> None:
    assert bearer_token("Bearer abc ") == "abc"
    assert bearer_token("bearer abc") == "abc"
    for header in ("", "Bearer", "Bearer   ", "Basic abc", "abc"):
        with pytest.raises(HTTPException) as refused:
            bearer_token(header)
        assert refused.value.status_code == 401


def test_an_event_is_one_server_sent_event_whatever_the_data_holds() -> None:
    framed = event("offer", {"body": "line one\n\nline two <script>"})
    name, data, end = framed.decode().split("\n", 2)
    assert name == "event: offer" and end == "\n"
    assert json.loads(data.removeprefix("data: ")) == {"body": "line one\n\nline two <script>"}


def test_token_settings_are_json_objects_and_empty_means_none() -> None:
    assert DeskSettings(desk_supervisor_tokens="").desk_supervisor_tokens == {}  # type: ignore[arg-type]
    parsed = DeskSettings(desk_supervisor_tokens='{"t": "acme"}')  # type: ignore[arg-type]
    assert parsed.desk_supervisor_tokens == {"t": "acme"}
    with pytest.raises(ValidationError, match="desk_demo_agents"):
        DeskSettings(desk_demo_agents="{not json")  # type: ignore[arg-type]


def test_the_board_keeps_the_newest_snapshot_and_wakes_its_workspace() -> None:
    async def scenario() -> None:
        board = SnapshotBoard()
        first = queue_pb2.QueueSnapshot(workspace="acme", taken_at=timestamp(100.0))
        assert await board.put(first)
        assert not await board.put(
            queue_pb2.QueueSnapshot(workspace="acme", taken_at=timestamp(99.0))
        )
        assert await board.next("acme", 0.0, 1.0) == first
        assert await board.next("globex", 0.0, 0.01) is None
        waiting = asyncio.create_task(board.next("acme", 100.0, 5.0))
        await asyncio.sleep(0)
        newer = queue_pb2.QueueSnapshot(workspace="acme", taken_at=timestamp(101.0))
        await board.put(newer)
        assert await waiting == newer

    asyncio.run(scenario())


def test_waiters_on_the_board_cancelled_twice_end_cleanly() -> None:
    # A server shutting down cancels each stream's task, then again while it
    # unwinds. With waiters just woken by another workspace's snapshot, the old
    # lock-based board raised "Lock is not acquired" and left tasks pending.
    async def scenario() -> None:
        board = SnapshotBoard()
        waiters = [asyncio.create_task(board.next("acme", 0.0, 30.0)) for _ in range(3)]
        await asyncio.sleep(0)
        await board.put(queue_pb2.QueueSnapshot(workspace="globex", taken_at=timestamp(1.0)))
        for waiter in waiters:
            waiter.cancel()
        await asyncio.sleep(0)
        for waiter in waiters:
            waiter.cancel()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(result, asyncio.CancelledError) for result in results), results
        snapshot = queue_pb2.QueueSnapshot(workspace="acme", taken_at=timestamp(2.0))
        assert await board.put(snapshot)
        assert await board.next("acme", 0.0, 1.0) == snapshot

    asyncio.run(scenario())


def test_the_assignment_index_keeps_the_latest_offer_with_content_up_to_its_limit() -> None:
    index = AssignmentIndex(limit=2)
    index.put(task_pb2.Assignment(inquiry_id="q0", workspace="acme"))  # no content: not kept
    for n, inquiry_id in enumerate(["q1", "q2", "q1", "q3"]):
        index.put(
            task_pb2.Assignment(
                inquiry_id=inquiry_id,
                workspace="acme",
                attempt=n,
                inquiry=inquiry_pb2.Inquiry(id=inquiry_id, subject=f"s{n}"),
            )
        )
    assert index.get("acme", "q0") is None
    assert index.get("acme", "q2") is None  # the oldest, dropped past the limit
    q1 = index.get("acme", "q1")
    assert q1 is not None and q1.inquiry.subject == "s2"
    assert index.get("other", "q3") is None and index.get("acme", "q3") is not None

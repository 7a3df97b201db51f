"""What desks are shown for held reservations: kept, moved, ended and restored (content.py)."""

from __future__ import annotations

import pytest

from omniroute.sizes import SizeBudget
from omniroute.v1 import agent_pb2, checkpoint_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.checkpoint import chunks
from omniroute_agent_state.content import DeskContent, assignment_key, message_key
from omniroute_agent_state.roster import InvalidRequest
from tests.unit.test_agent_state_roster import T0, agent, roster


def assignment(inquiry_id: str, body: str = "My order never came") -> task_pb2.Assignment:
    made = task_pb2.Assignment(inquiry_id=inquiry_id, history=["queued:general"])
    made.inquiry.body = body
    made.callback.number = "+15550001111"
    return made


def message(inquiry_id: str, message_id: str, agent_id: str = "ann") -> task_pb2.ConversationMessage:  # fmt: skip
    return task_pb2.ConversationMessage(
        inquiry_id=inquiry_id, agent_id=agent_id, message=inquiry_pb2.Inquiry(id=message_id)
    )


def holding(agent_id: str, *reservation_ids: str) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        id=agent_id, reservations=[{"reservation_id": r} for r in reservation_ids]
    )


def test_an_assignment_is_kept_written_and_ended_with_its_reservation() -> None:
    content = DeskContent()
    (written,) = content.offered("ann", "r1", assignment("q1"))
    assert written.key == assignment_key("r1") and written.value is not None
    assert written.value.assignment.callback.number == "+15550001111"
    assert content.offered("ann", "r2", task_pb2.Assignment()) == []  # none sent: none kept
    content.deliver("ann", "r1", message("q1", "m1"))
    assert content.prune("ann", holding("ann", "r1")) == []  # still held
    ended = content.prune("ann", holding("ann"))
    assert {(r.key, r.value) for r in ended} == {
        (assignment_key("r1"), None),
        (message_key("r1", "m1"), None),
    }
    assert content.assignment("r1") is None and content.records() == []


def test_a_transferred_task_takes_its_content_to_the_target() -> None:
    content = DeskContent()
    content.offered("ann", "r1", assignment("q1"))
    content.deliver("ann", "r1", message("q1", "m1"))
    moved = content.moved("r1", agent_pb2.Reservation(reservation_id="r9", agent_id="bob"))
    assert [r.key for r in moved] == [assignment_key("r9"), message_key("r9", "m1")]
    target = content.assignment("r9")
    assert target is not None and (target.agent_id, target.reservation_id) == ("bob", "r9")
    assert target.inquiry.body == "My order never came"
    assert [m.message.id for m in content.messages("r9")] == ["m1"]
    # The source's content ends with its reservation; the target's stays.
    assert {r.key for r in content.prune("ann", holding("ann"))} == {
        assignment_key("r1"),
        message_key("r1", "m1"),
    }
    assert content.assignment("r9") is not None


def test_a_restart_takes_back_what_is_held_and_forgets_the_rest() -> None:
    before = DeskContent()
    before.offered("ann", "r1", assignment("q1"))
    before.deliver("ann", "r1", message("q1", "m1"))
    before.offered("ann", "gone", assignment("q2"))
    after = DeskContent()
    forgotten = after.restore(before.records(), {"ann": holding("ann", "r1")})
    assert [(r.key, r.value) for r in forgotten] == [(assignment_key("gone"), None)]
    restored = after.assignment("r1")
    assert restored is not None and list(restored.history) == ["queued:general"]
    assert [m.message.id for m in after.messages("r1")] == ["m1"]
    assert after.deliver("ann", "r1", message("q1", "m1")) == []  # a retry after the restart


def test_a_checkpoint_carries_the_content_and_a_large_one_gets_a_chunk_of_its_own() -> None:
    content = DeskContent()
    content.offered("ann", "big", assignment("q1", body="x" * 2000))
    content.offered("ann", "small", assignment("q2"))
    parts = chunks("cp", [], [], [], -1, budget=500, contents=content.records())
    assert [len(p.contents) for p in parts] == [1, 1]  # one over the budget: alone
    carried = [c for p in parts for c in p.contents]
    assert [c.reservation_id for c in carried] == ["big", "small"]
    assert all(isinstance(c, checkpoint_pb2.HeldContent) for c in carried)


def test_an_agent_id_may_not_take_a_key_agent_state_keeps_for_itself() -> None:
    for reserved in ("held/r1", "fence/router/0"):
        with pytest.raises(InvalidRequest, match=r"agent\.id"):
            roster().upsert(agent(reserved, chat=1), "admin", T0)


def test_content_above_the_size_budget_is_held_cut_so_its_record_and_checkpoint_fit() -> None:
    sizes = SizeBudget(200_000)
    content = DeskContent(sizes=sizes)
    (offered,) = content.offered("ann", "r1", assignment("q1", body="b" * 500_000))
    (delivered,) = content.deliver("ann", "r1", _big_message("q1", "m2", 300_000))
    for record in (offered, delivered):
        assert record.value is not None
        assert record.value.ByteSize() <= sizes.record_bytes
    kept = content.assignment("r1")
    assert kept is not None and kept.inquiry.body.startswith("bbbb")
    assert "more bytes not shown" in kept.inquiry.body
    assert kept.callback.number == "+15550001111"  # only the text was cut
    parts = chunks("c1", [], [], [], -1, contents=content.records())
    assert all(part.ByteSize() <= sizes.record_bytes for part in parts)


def test_content_restored_from_before_the_budget_is_cut_to_it() -> None:
    big = checkpoint_pb2.HeldContent(reservation_id="r1", agent_id="ann")
    big.assignment.CopyFrom(assignment("q1", body="b" * 500_000))
    content = DeskContent(sizes=SizeBudget(200_000))
    assert content.restore([big], {"ann": holding("ann", "r1")}) == []
    kept = content.assignment("r1")
    assert kept is not None and kept.ByteSize() <= SizeBudget(200_000).assignment_bytes


def _big_message(inquiry_id: str, message_id: str, size: int) -> task_pb2.ConversationMessage:
    made = message(inquiry_id, message_id)
    made.message.body = "m" * size
    return made


def test_a_restart_gives_the_messages_back_in_the_order_delivered() -> None:
    before = DeskContent()
    before.offered("ann", "r1", assignment("q1"))
    written = [r for m in ("m1", "m2", "m3") for r in before.deliver("ann", "r1", message("q1", m))]  # fmt: skip
    # Read back from a checkpoint and then from several partitions (m1 again: written
    # while the checkpoint was taken, so also in the records after it).
    checkpoint = before.records()[:2]  # the assignment and m1
    tail = [written[2].value, written[0].value, written[1].value]
    after = DeskContent()
    after.restore([*checkpoint, *(v for v in tail if v is not None)], {"ann": holding("ann", "r1")})
    assert [m.message.id for m in after.messages("r1")] == ["m1", "m2", "m3"]
    # The next message follows them, also when the oldest is dropped for it.
    after.per_reservation = 3
    kept = after.deliver("ann", "r1", message("q1", "m4"))
    assert [(r.key, r.value is None) for r in kept] == [
        (message_key("r1", "m4"), False),
        (message_key("r1", "m1"), True),
    ]
    assert kept[0].value is not None and kept[0].value.sequence == 4
    assert [m.message.id for m in after.messages("r1")] == ["m2", "m3", "m4"]

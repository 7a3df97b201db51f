"""Checkpoints, the pure parts: cutting the state into chunks, and what the roster keeps."""

from __future__ import annotations

from omniroute.v1 import agent_state_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.checkpoint import chunks
from omniroute_agent_state.repair import repair
from omniroute_agent_state.roster import Roster
from tests.unit.test_agent_state_roster import T0, agent, ready, roster

CHAT = inquiry_pb2.CHANNEL_CHAT
TaskEvent = task_pb2.TaskEvent


def test_chunks_hold_everything_once_in_order_and_copied() -> None:
    agents = [agent(f"a{i}", chat=3) for i in range(40)]
    fences = [agent_state_pb2.RouterFence(group="g", partition=p, generation=1) for p in range(3)]
    events = [TaskEvent(event_id=f"e{i}", inquiry_id=f"q{i}") for i in range(30)]
    parts = chunks("cp", agents, fences, events, previous_manifest_offset=7, budget=500)
    assert len(parts) > 3
    assert all(p.ByteSize() < 1000 for p in parts)
    assert [p.index for p in parts] == list(range(len(parts)))
    assert {(p.checkpoint_id, p.previous_manifest_offset) for p in parts} == {("cp", 7)}
    assert [a.id for p in parts for a in p.agents] == [a.id for a in agents]
    assert [f.partition for p in parts for f in p.fences] == [0, 1, 2]
    assert [e.event_id for p in parts for e in p.task_events] == [e.event_id for e in events]
    agents[0].name = "changed after the checkpoint was taken"
    assert parts[0].agents[0].name != agents[0].name


def test_an_empty_roster_is_one_empty_chunk() -> None:
    (only,) = chunks("cp", [], [], [], previous_manifest_offset=-1)
    assert (only.index, len(only.agents), only.previous_manifest_offset) == (0, 0, -1)


def test_the_last_event_of_a_held_inquiry_outlives_the_retention_and_the_restart() -> None:
    r = roster(event_retention_s=10.0, offer_ttl_s=1000.0)
    ready(r, agent("ann", chat=3))
    r.reserve("ann", "held", CHAT, "ws", T0)
    r.accept("ann", "held", T0)
    r.reserve("ann", "gone", CHAT, "ws", T0)
    r.withdraw("ws", "gone", "abandoned", T0)
    r.reserve("ann", "young", CHAT, "ws", T0 + 15)
    r.expire(T0 + 20)  # forgets what is older than 10 s
    assert ("ws", "gone") not in r.last_events and ("ws", "held") not in r.last_events
    kept = r.kept_events()
    assert [(e.inquiry_id, e.type) for e in kept] == [
        ("held", TaskEvent.TYPE_ACCEPTED),  # held, older than the retention
        ("young", TaskEvent.TYPE_OFFERED),
    ]
    # A roster restored from the checkpoint keeps the same, and the repair
    # finds every open reservation's last event: nothing to publish again.
    again = Roster(r.policy)
    again.restore(list(r.agents.values()), T0 + 20, fences=[], task_events=kept)
    assert again.kept_events() == kept
    assert not repair(again.agents.values(), kept, T0 + 20).changes
    # Once the held inquiry moves on, its old event is no longer kept.
    again.complete("ann", "held", TaskEvent(resolution=task_pb2.RESOLUTION_RESOLVED), T0 + 21)
    assert [e.inquiry_id for e in again.kept_events()] == ["young", "held"]
    assert again.kept_events()[-1].type == TaskEvent.TYPE_COMPLETED

"""The recovery repair in isolation: recovered records against the last task events."""

from __future__ import annotations

import itertools

from omniroute.v1 import agent_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.repair import Gap, repair, repair_event_id
from omniroute_agent_state.roster import Policy, Roster

CHAT = inquiry_pb2.CHANNEL_CHAT
TaskEvent = task_pb2.TaskEvent
T0 = 1_700_000_000.0
LATER = T0 + 30


def roster() -> Roster:
    """A roster with predictable ids and two available chat agents of workspace ws."""
    counter = itertools.count(1)
    built = Roster(Policy(offer_ttl_s=300), new_id=lambda: f"id-{next(counter)}")
    for agent_id in ("ann", "bob"):
        built.upsert(
            agent_pb2.Agent(
                id=agent_id,
                workspace="ws",
                tier=agent_pb2.TIER_REPRESENTATIVE,
                capacities=[agent_pb2.ChannelCapacity(channel=CHAT, capacity=2)],
            ),
            "admin",
            T0,
        )
        built.set_status(agent_id, agent_pb2.AGENT_STATUS_AVAILABLE, "", "admin", T0)
    return built


def kinds(events: list[TaskEvent]) -> list[tuple[str, str, str]]:
    return [(TaskEvent.Type.Name(e.type), e.inquiry_id, e.agent_id) for e in events]


def test_a_reservation_whose_offered_was_lost_gets_it_with_a_deterministic_id() -> None:
    r = roster()
    reservation, _, _, lost = r.reserve("ann", "q-1", CHAT, "ws", T0)

    found = repair(r.agents.values(), [], LATER)

    assert kinds(found.changes.task_events) == [("TYPE_OFFERED", "q-1", "ann")]
    offered = found.changes.task_events[0]
    assert offered.reservation_id == reservation.reservation_id
    assert offered.event_id == repair_event_id(reservation.reservation_id, TaskEvent.TYPE_OFFERED)
    assert offered.event_id != lost.task_events[0].event_id  # a new id, but the same each time
    assert offered.event_id == repair(r.agents.values(), [], LATER).changes.task_events[0].event_id
    assert (offered.workspace, offered.channel) == ("ws", CHAT)
    assert not found.changes.agent_events and not found.unrepaired


def test_nothing_is_repaired_when_the_topic_has_the_events_the_records_imply() -> None:
    r = roster()
    published = r.reserve("ann", "q-1", CHAT, "ws", T0)[3].task_events
    published += r.reserve("bob", "q-2", CHAT, "ws", T0)[3].task_events
    published += r.accept("bob", "q-2", T0).task_events

    found = repair(r.agents.values(), published, LATER)

    assert not found.changes and not found.unrepaired


def test_an_accepted_reservation_gets_what_is_missing_of_offered_and_accepted() -> None:
    r = roster()
    offered = r.reserve("ann", "q-1", CHAT, "ws", T0)[3].task_events
    r.reserve("bob", "q-2", CHAT, "ws", T0)
    r.accept("ann", "q-1", T0)
    r.accept("bob", "q-2", T0)

    found = repair(r.agents.values(), offered, LATER)

    assert kinds(found.changes.task_events) == [
        ("TYPE_ACCEPTED", "q-1", "ann"),
        ("TYPE_OFFERED", "q-2", "bob"),
        ("TYPE_ACCEPTED", "q-2", "bob"),
    ]


def test_an_older_reservation_of_the_inquiry_does_not_stand_for_the_new_one() -> None:
    r = roster()
    published = r.reserve("ann", "q-1", CHAT, "ws", T0)[3].task_events
    published += r.decline("ann", "q-1", "busy", T0).task_events
    r.reserve("bob", "q-1", CHAT, "ws", T0)  # its OFFERED lost

    found = repair(r.agents.values(), published, LATER)

    assert kinds(found.changes.task_events) == [("TYPE_OFFERED", "q-1", "bob")]
    assert not found.unrepaired


def test_a_lost_transfer_is_published_as_the_transfer() -> None:
    r = roster()
    published = r.reserve("ann", "q-1", CHAT, "ws", T0)[3].task_events
    published += r.accept("ann", "q-1", T0).task_events
    moved, _ = r.transfer("ann", "q-1", "bob", "language", T0)

    found = repair(r.agents.values(), published, LATER)

    assert kinds(found.changes.task_events) == [("TYPE_TRANSFERRED", "q-1", "ann")]
    transferred = found.changes.task_events[0]
    assert (transferred.target_agent_id, transferred.reservation_id) == (
        "bob",
        moved.reservation_id,
    )
    assert not found.unrepaired


def test_a_lost_ending_is_reported_not_invented() -> None:
    """The record says the reservation is gone, not whether it was declined or completed."""
    r = roster()
    published = r.reserve("ann", "q-1", CHAT, "ws", T0)[3].task_events
    published += r.reserve("bob", "q-2", CHAT, "ws", T0)[3].task_events
    published += r.accept("bob", "q-2", T0).task_events
    r.decline("ann", "q-1", "busy", T0)  # its DECLINED lost
    r.complete("bob", "q-2", TaskEvent(resolution=task_pb2.RESOLUTION_RESOLVED), T0)  # lost

    found = repair(r.agents.values(), published, LATER)

    assert not found.changes
    assert sorted((g.gap, g.inquiry_id, g.agent_id) for g in found.unrepaired) == [
        (Gap.END_MISSING, "q-1", "ann"),
        (Gap.END_MISSING, "q-2", "bob"),
    ]


def test_an_ending_whose_release_is_missing_from_the_record_is_reported() -> None:
    r = roster()
    reserved = r.reserve("ann", "q-1", CHAT, "ws", T0)[3].task_events
    before = {a.id: agent_pb2.Agent() for a in r.agents.values()}
    for agent_id, copy in before.items():
        copy.CopyFrom(r.agents[agent_id])
    declined = r.decline("ann", "q-1", "busy", T0).task_events  # the record's write lost

    found = repair(before.values(), reserved + declined, LATER)

    assert not found.changes
    assert [(g.gap, g.inquiry_id) for g in found.unrepaired] == [(Gap.RELEASE_MISSING, "q-1")]


def test_a_transfer_to_a_queue_whose_record_was_lost_is_released_not_reported() -> None:
    """The TRANSFERRED is written first (events_first): a kill before the agent record
    leaves the reservation in the record and the transfer on the topic. The restart
    frees the slot; nothing is published again (the router routes from the event)."""
    r = roster()
    published = r.reserve("ann", "q-1", CHAT, "ws", T0)[3].task_events
    published += r.accept("ann", "q-1", T0).task_events
    held = r.agents["ann"].reservations[0].reservation_id
    before = agent_pb2.Agent()
    before.CopyFrom(r.agents["ann"])
    queues = {"tech": True}
    moved = r.transfer_to_queue("ann", "q-1", "tech", "modem", queues, T0)
    assert moved.events_first

    found = repair([before, r.agents["bob"]], published + moved.task_events, LATER)

    assert not found.changes and not found.unrepaired
    assert [(x.agent_id, x.inquiry_id, x.reservation_id) for x in found.released] == [
        ("ann", "q-1", held)
    ]
    # The roster frees it as the transfer did, once.
    restarted = roster()
    restarted.restore([before], LATER, task_events=published + moved.task_events)
    released = restarted.release_recovered("ann", held, "transferred", LATER)
    ann = restarted.agents["ann"]
    assert not ann.reservations and [c.load for c in ann.capacities] == [0]
    assert [(e.change, e.reason) for e in released.agent_events] == [
        (agent_pb2.AgentEvent.CHANGE_RELEASED, "transferred")
    ]
    assert not restarted.release_recovered("ann", held, "transferred", LATER)
    # A retry of the transfer is now answered by its natural key: nothing changes.
    assert not restarted.transfer_to_queue("ann", "q-1", "tech", "modem", queues, LATER)


def test_the_same_transfer_to_a_queue_made_twice_is_one_event_id() -> None:
    """A dead process's write that reaches the broker only after the restart read the
    topic: the retry makes the transfer again, and consumers see the same event id."""
    ids = []
    for _ in range(2):
        r = roster()
        reservation = r.reserve("ann", "q-1", CHAT, "ws", T0)[0]
        r.accept("ann", "q-1", T0)
        (event,) = r.transfer_to_queue("ann", "q-1", "tech", "", {"tech": True}, T0).task_events
        ids.append(event.event_id)
    assert ids[0] == ids[1]
    assert ids[0] != repair_event_id(reservation.reservation_id, TaskEvent.TYPE_TRANSFERRED)

"""The roster's rules in isolation: no gRPC, no Kafka, time passed in."""

from __future__ import annotations

import itertools

import pytest

from omniroute.v1 import agent_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.roster import (
    Changes,
    Finished,
    InvalidRequest,
    NotPossible,
    Policy,
    Refused,
    Reserved,
    ReserveRequest,
    Roster,
    UnknownAgent,
)

VOICE, CHAT, EMAIL = inquiry_pb2.CHANNEL_VOICE, inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL
OFFLINE, AVAILABLE = agent_pb2.AGENT_STATUS_OFFLINE, agent_pb2.AGENT_STATUS_AVAILABLE
AWAY, WRAP_UP = agent_pb2.AGENT_STATUS_AWAY, agent_pb2.AGENT_STATUS_WRAP_UP
TaskEvent = task_pb2.TaskEvent
T0 = 1_700_000_000.0


def roster(**policy: object) -> Roster:
    """A roster with predictable ids."""
    counter = itertools.count(1)
    return Roster(Policy(**policy), new_id=lambda: f"id-{next(counter)}")  # type: ignore[arg-type]


def agent(agent_id: str = "ann", total: int = 0, **capacity: int) -> agent_pb2.Agent:
    """A representative of workspace ws with the given capacities (voice=1, chat=3...)."""
    channels = {"voice": VOICE, "chat": CHAT, "email": EMAIL}
    return agent_pb2.Agent(
        id=agent_id,
        workspace="ws",
        tier=agent_pb2.TIER_REPRESENTATIVE,
        skills={"billing": 3},
        languages=["en"],
        total_capacity=total,
        capacities=[
            agent_pb2.ChannelCapacity(channel=channels[name], capacity=n)  # type: ignore[arg-type]
            for name, n in capacity.items()
        ],
    )


def ready(r: Roster, profile: agent_pb2.Agent, now: float = T0) -> None:
    """Create the agent and log it in."""
    r.upsert(profile, "admin", now)
    r.set_status(profile.id, AVAILABLE, "", profile.id, now)


def load(r: Roster, agent_id: str, channel: int) -> int:
    """The agent's load on a channel."""
    return next(c.load for c in r.get(agent_id).capacities if c.channel == channel)


def test_a_new_agent_is_offline_and_cannot_be_reserved() -> None:
    r = roster()
    r.upsert(agent(chat=3), "admin", T0)
    assert r.get("ann").status == OFFLINE
    with pytest.raises(NotPossible, match="not available"):
        r.reserve("ann", "inq-1", CHAT, "ws", T0)


def test_reserve_is_compare_and_set_on_the_channel_slot() -> None:
    r = roster()
    ready(r, agent(chat=2))
    r.reserve("ann", "inq-1", CHAT, "ws", T0)
    r.reserve("ann", "inq-2", CHAT, "ws", T0)
    with pytest.raises(NotPossible, match="no free chat slot"):
        r.reserve("ann", "inq-3", CHAT, "ws", T0)
    assert load(r, "ann", CHAT) == 2


def test_total_capacity_limits_across_channels() -> None:
    r = roster()
    ready(r, agent(total=2, chat=3, email=5))
    r.reserve("ann", "inq-1", CHAT, "ws", T0)
    r.reserve("ann", "inq-2", EMAIL, "ws", T0)
    with pytest.raises(NotPossible):
        r.reserve("ann", "inq-3", EMAIL, "ws", T0)


def test_an_inquiry_holds_one_reservation_at_a_time() -> None:
    r = roster()
    ready(r, agent("ann", chat=3))
    ready(r, agent("bob", chat=3))
    first, *_ = r.reserve("ann", "inq-1", CHAT, "ws", T0)
    again, holder, already, changes = r.reserve("bob", "inq-1", CHAT, "ws", T0)
    assert already and holder.id == "ann" and again.reservation_id == first.reservation_id
    assert not changes.agent_events and not changes.task_events
    assert load(r, "bob", CHAT) == 0


def test_a_resolved_inquiry_is_never_reserved_again() -> None:
    r = roster()
    ready(r, agent("ann", chat=3))
    ready(r, agent("bob", chat=3))
    r.reserve("ann", "inq-1", CHAT, "ws", T0)
    r.accept("ann", "inq-1", T0)
    r.complete("ann", "inq-1", TaskEvent(resolution=task_pb2.RESOLUTION_RESOLVED), T0 + 1)
    # A router that lost its record of the resolution asks again, for anyone.
    with pytest.raises(Finished, match="resolved") as refused:
        r.reserve("bob", "inq-1", CHAT, "ws", T0 + 2)
    last = refused.value.last_event
    assert (last.type, last.resolution, last.agent_id) == (
        TaskEvent.TYPE_COMPLETED,
        task_pb2.RESOLUTION_RESOLVED,
        "ann",
    )
    assert load(r, "bob", CHAT) == 0 and load(r, "ann", CHAT) == 0
    # The same id in another workspace is another inquiry.
    cat = agent("cat", chat=1)
    cat.workspace = "other"
    ready(r, cat)
    r.reserve("cat", "inq-1", CHAT, "other", T0 + 2)


def test_a_follow_up_or_an_escalation_is_routed_again() -> None:
    r = roster()
    ready(r, agent("ann", chat=3))
    ready(r, agent("bob", chat=3))
    follow_up = TaskEvent(resolution=task_pb2.RESOLUTION_FOLLOW_UP)
    follow_up.follow_up.due_at.FromSeconds(int(T0 + 60))
    escalate = TaskEvent(resolution=task_pb2.RESOLUTION_ESCALATED)
    escalate.escalation.target_tier = agent_pb2.TIER_SPECIALIST
    for inquiry, outcome in (("later", follow_up), ("harder", escalate)):
        r.reserve("ann", inquiry, CHAT, "ws", T0)
        r.accept("ann", inquiry, T0)
        r.complete("ann", inquiry, outcome, T0 + 1)
        _, holder, already, _ = r.reserve("bob", inquiry, CHAT, "ws", T0 + 2)
        assert holder.id == "bob" and not already


def test_reserve_publishes_reserved_and_offered() -> None:
    r = roster(offer_ttl_s=20)
    ready(r, agent(chat=1))
    reservation, _, _, changes = r.reserve("ann", "inq-1", CHAT, "ws", T0)
    assert [e.change for e in changes.agent_events] == [agent_pb2.AgentEvent.CHANGE_RESERVED]
    assert [e.type for e in changes.task_events] == [TaskEvent.TYPE_OFFERED]
    assert reservation.expires_at.seconds == int(T0 + 20)


def test_decline_and_complete_release_exactly_one_slot() -> None:
    r = roster()
    ready(r, agent(chat=3))
    for inquiry in ("a", "b", "c"):
        r.reserve("ann", inquiry, CHAT, "ws", T0)
    r.accept("ann", "a", T0 + 1)
    r.decline("ann", "b", "busy", T0 + 2)
    assert load(r, "ann", CHAT) == 2
    r.complete("ann", "a", TaskEvent(resolution=task_pb2.RESOLUTION_RESOLVED), T0 + 3)
    assert load(r, "ann", CHAT) == 1
    # A retried decline or completion releases nothing more and changes nothing.
    assert not r.complete("ann", "a", TaskEvent(), T0 + 4)
    assert not r.decline("ann", "b", "busy", T0 + 4)
    assert load(r, "ann", CHAT) == 1
    with pytest.raises(NotPossible):  # nothing to complete that was never accepted
        r.complete("ann", "c", TaskEvent(), T0 + 4)


def test_idle_since_is_set_when_the_load_drops_to_zero() -> None:
    r = roster()
    ready(r, agent(chat=3))
    r.reserve("ann", "a", CHAT, "ws", T0 + 10)
    r.decline("ann", "a", "", T0 + 20)
    assert r.get("ann").idle_since.seconds == int(T0 + 20)


def test_an_expired_offer_times_out_and_the_agent_goes_away() -> None:
    r = roster(offer_ttl_s=5)
    ready(r, agent(voice=1))
    r.reserve("ann", "call", VOICE, "ws", T0)
    assert not r.expire(T0 + 4).changes.task_events
    changes = r.expire(T0 + 5).changes
    assert [e.type for e in changes.task_events] == [TaskEvent.TYPE_OFFER_TIMEOUT]
    ann = r.get("ann")
    assert (ann.status, ann.away_reason) == (AWAY, "missed_offer")
    assert load(r, "ann", VOICE) == 0


def test_an_accepted_task_never_expires() -> None:
    r = roster(offer_ttl_s=5)
    ready(r, agent(voice=1))
    r.reserve("ann", "call", VOICE, "ws", T0)
    r.accept("ann", "call", T0 + 1)
    assert not r.expire(T0 + 60).changes.task_events
    assert load(r, "ann", VOICE) == 1


def test_completion_outcomes_are_validated_and_recorded() -> None:
    r = roster()
    ready(r, agent(chat=3))
    r.reserve("ann", "a", CHAT, "ws", T0)
    r.accept("ann", "a", T0)
    with pytest.raises(InvalidRequest, match=r"follow_up\.due_at"):
        r.complete("ann", "a", TaskEvent(resolution=task_pb2.RESOLUTION_FOLLOW_UP), T0)
    escalate = TaskEvent(resolution=task_pb2.RESOLUTION_ESCALATED)
    escalate.escalation.target_tier = agent_pb2.TIER_SPECIALIST
    escalate.escalation.target_skill = "retention"
    escalate.escalation.reason = "needs authority"
    changes = r.complete("ann", "a", escalate, T0)
    (event,) = changes.task_events
    assert event.type == TaskEvent.TYPE_COMPLETED
    assert event.resolution == task_pb2.RESOLUTION_ESCALATED
    assert event.escalation.target_skill == "retention"


def test_wrap_up_after_a_call_ends_by_itself() -> None:
    r = roster(wrap_up_by_channel={"voice": 30.0})
    ready(r, agent(voice=1))
    r.reserve("ann", "call", VOICE, "ws", T0)
    r.accept("ann", "call", T0)
    r.complete("ann", "call", TaskEvent(), T0 + 100)
    assert r.get("ann").status == WRAP_UP
    assert not r.expire(T0 + 129).changes.agent_events
    r.expire(T0 + 130)
    assert r.get("ann").status == AVAILABLE


def test_invalid_requests_name_the_field() -> None:
    r = roster()
    with pytest.raises(InvalidRequest, match=r"agent\.id"):
        r.upsert(agent_pb2.Agent(workspace="ws", tier=1), "admin", T0)  # type: ignore[arg-type]
    with pytest.raises(UnknownAgent):
        r.get("nobody")
    ready(r, agent(chat=1))
    with pytest.raises(InvalidRequest, match="channel"):
        r.reserve("ann", "inq", 0, "ws", T0)
    with pytest.raises(InvalidRequest, match="reason"):
        r.set_status("ann", AWAY, "", "ann", T0)


def test_versions_rise_with_every_change() -> None:
    r = roster()
    ready(r, agent(chat=1))
    before = r.get("ann").version
    changes = r.reserve("ann", "a", CHAT, "ws", T0)[3]
    assert changes.agent_events[0].agent.version == before + 1


def test_restore_keeps_the_highest_version_and_reindexes_reservations() -> None:
    r = roster()
    ready(r, agent(chat=2))
    r.reserve("ann", "a", CHAT, "ws", T0)
    snapshots = [r.get("ann").__deepcopy__()]
    old = agent_pb2.Agent()
    old.CopyFrom(snapshots[0])
    old.version -= 1
    fresh = roster()
    fresh.restore([snapshots[0], old], T0)
    assert load(fresh, "ann", CHAT) == 1
    assert fresh.reserve("bob-does-not-exist", "a", CHAT, "ws", T0)[2]  # already reserved


def test_a_voice_task_blocks_other_channels_when_configured() -> None:
    r = roster()
    profile = agent(voice=1, chat=3)
    profile.voice_blocks_other_channels = True
    ready(r, profile)
    r.reserve("ann", "call", VOICE, "ws", T0)
    with pytest.raises(NotPossible):
        r.reserve("ann", "chat-1", CHAT, "ws", T0)
    r.decline("ann", "call", "", T0)
    r.reserve("ann", "chat-1", CHAT, "ws", T0)  # free again once the call is gone


def test_capacity_cannot_be_lowered_below_the_load() -> None:
    r = roster()
    ready(r, agent(chat=3))
    r.reserve("ann", "a", CHAT, "ws", T0)
    r.reserve("ann", "b", CHAT, "ws", T0)
    with pytest.raises(NotPossible, match="chat capacity 1"):
        r.upsert(agent(chat=1), "admin", T0)
    r.upsert(agent(chat=2), "admin", T0)
    assert load(r, "ann", CHAT) == 2 and len(r.get("ann").reservations) == 2


def test_away_needs_a_known_reason_code() -> None:
    r = roster(away_reasons=frozenset({"break", "lunch"}))
    ready(r, agent(chat=1))
    with pytest.raises(InvalidRequest, match="reason 'nap'"):
        r.set_status("ann", AWAY, "nap", "ann", T0)
    changes = r.set_status("ann", AWAY, "lunch", "ann", T0 + 1)
    (event,) = changes.agent_events
    assert (event.actor, event.reason, event.occurred_at.seconds) == ("ann", "lunch", T0 + 1)
    assert (event.agent.status, event.agent.away_reason) == (AWAY, "lunch")


def test_a_wrap_up_the_agent_starts_ends_at_the_longest_maximum() -> None:
    r = roster(wrap_up_by_channel={"voice": 30.0, "email": 120.0})
    ready(r, agent(chat=1))
    r.set_status("ann", WRAP_UP, "", "ann", T0)
    assert r.get("ann").wrap_up_until.seconds == int(T0 + 120)
    r.expire(T0 + 120)
    assert r.get("ann").status == AVAILABLE


def test_a_silent_desktop_goes_offline_and_its_offers_are_withdrawn() -> None:
    r = roster(session_timeout_s=10)
    ready(r, agent(chat=3))
    lapses_at, changes = r.heartbeat("ann", T0)
    assert lapses_at == T0 + 10 and r.get("ann").session_active
    assert [e.reason for e in changes.agent_events] == ["session_started"]
    assert not r.heartbeat("ann", T0 + 5)[1].agent_events  # later heartbeats are no change
    r.reserve("ann", "offered", CHAT, "ws", T0 + 6)
    r.reserve("ann", "in-work", CHAT, "ws", T0 + 6)
    r.accept("ann", "in-work", T0 + 6)
    assert not r.expire(T0 + 14).changes.agent_events
    changes = r.expire(T0 + 15).changes
    assert [(e.type, e.inquiry_id, e.reason) for e in changes.task_events] == [
        (TaskEvent.TYPE_WITHDRAWN, "offered", "session_timeout")
    ]
    ann = r.get("ann")
    assert ann.status == OFFLINE and not ann.session_active
    assert load(r, "ann", CHAT) == 1  # the accepted task stays with the agent
    assert changes.agent_events[-1].reason == "session_timeout"


def test_an_offline_agent_must_log_in_before_heartbeats() -> None:
    r = roster(session_timeout_s=10)
    r.upsert(agent(chat=1), "admin", T0)
    with pytest.raises(NotPossible, match="offline"):
        r.heartbeat("ann", T0)


def test_logout_ends_the_session() -> None:
    r = roster(session_timeout_s=10)
    ready(r, agent(chat=1))
    r.heartbeat("ann", T0)
    r.set_status("ann", OFFLINE, "", "ann", T0 + 1)
    assert not r.get("ann").session_active and "ann" not in r.sessions


def test_restore_gives_desktop_sessions_a_fresh_term() -> None:
    r = roster(session_timeout_s=10)
    ready(r, agent(chat=1))
    r.heartbeat("ann", T0)
    fresh = roster(session_timeout_s=10)
    fresh.restore([r.get("ann")], T0 + 100)
    assert fresh.sessions == {"ann": T0 + 110}


def test_transfer_moves_an_accepted_task_to_an_agent_with_room() -> None:
    r = roster()
    ready(r, agent("ann", chat=2))
    ready(r, agent("bob", chat=1))
    r.reserve("ann", "a", CHAT, "ws", T0)
    with pytest.raises(NotPossible, match="accept it first"):
        r.transfer("ann", "a", "bob", "", T0)
    r.accept("ann", "a", T0)
    r.reserve("bob", "b", CHAT, "ws", T0)
    with pytest.raises(NotPossible, match="no free slot"):
        r.transfer("ann", "a", "bob", "", T0)
    r.decline("bob", "b", "", T0)
    moved, changes = r.transfer("ann", "a", "bob", "billing question", T0)
    assert moved.accepted and moved.agent_id == "bob"
    assert (load(r, "ann", CHAT), load(r, "bob", CHAT)) == (0, 1)
    (event,) = changes.task_events
    assert (event.type, event.agent_id, event.target_agent_id) == (
        TaskEvent.TYPE_TRANSFERRED,
        "ann",
        "bob",
    )
    assert r.holder[("ws", "a")] == "bob"
    r.complete("bob", "a", TaskEvent(), T0)
    assert load(r, "bob", CHAT) == 0


QUEUES = {"billing": True, "tech": True, "vip": False}


def test_transfer_to_a_queue_frees_the_slot_and_publishes_the_queue_and_note() -> None:
    r = roster(wrap_up_by_channel={"chat": 30})
    ready(r, agent("ann", chat=2))
    r.reserve("ann", "a", CHAT, "ws", T0)
    with pytest.raises(NotPossible, match="accept it first"):
        r.transfer_to_queue("ann", "a", "tech", "", QUEUES, T0)
    offered = r.get("ann").reservations[0].reservation_id
    r.accept("ann", "a", T0)
    changes = r.transfer_to_queue("ann", "a", "tech", "modem resets", QUEUES, T0 + 5)
    assert load(r, "ann", CHAT) == 0 and not r.get("ann").reservations
    assert r.get("ann").status == AVAILABLE  # not finished by them: no wrap-up
    assert ("ws", "a") not in r.holder
    (event,) = changes.task_events
    assert (event.type, event.agent_id, event.reservation_id) == (
        TaskEvent.TYPE_TRANSFERRED,
        "ann",
        offered,
    )
    assert (event.target_queue, event.note, event.target_agent_id) == ("tech", "modem resets", "")
    assert r.last_event("ws", "a") == event
    # A retry changes nothing; the inquiry can be reserved again (it is not resolved).
    assert r.transfer_to_queue("ann", "a", "tech", "modem resets", QUEUES, T0 + 6) == Changes()
    ready(r, agent("bob", chat=1))
    assert not r.reserve("bob", "a", CHAT, "ws", T0 + 7)[2]


def test_transfer_to_a_queue_is_validated() -> None:
    r = roster()
    ready(r, agent("ann", chat=2))
    r.reserve("ann", "a", CHAT, "ws", T0)
    r.accept("ann", "a", T0)
    with pytest.raises(InvalidRequest, match="target_queue: 'nope' is not a queue of workspace"):
        r.transfer_to_queue("ann", "a", "nope", "", QUEUES, T0)
    with pytest.raises(NotPossible, match="target_queue: queue 'vip' takes no transfers"):
        r.transfer_to_queue("ann", "a", "vip", "", QUEUES, T0)
    with pytest.raises(InvalidRequest, match="target_queue is required"):
        r.transfer_to_queue("ann", "a", "", "", QUEUES, T0)
    with pytest.raises(InvalidRequest, match="target_queue is longer"):
        r.transfer_to_queue("ann", "a", "x" * 201, "", QUEUES, T0)
    with pytest.raises(InvalidRequest, match="note is longer"):
        r.transfer_to_queue("ann", "a", "tech", "x" * 2001, QUEUES, T0)
    with pytest.raises(NotPossible, match="holds no offer or task"):
        r.transfer_to_queue("ann", "other", "tech", "", QUEUES, T0)
    assert load(r, "ann", CHAT) == 1  # nothing refused changed anything


def test_list_filters_by_skill_language_tier_and_free_channel() -> None:
    r = roster()
    ready(r, agent("ann", chat=1))
    senior = agent("bob", chat=1, email=2)
    senior.tier = agent_pb2.TIER_SPECIALIST
    senior.skills["billing"] = 5
    senior.languages[:] = ["es-MX"]
    ready(r, senior)
    r.reserve("ann", "a", CHAT, "ws", T0)
    assert [a.id for a in r.list("ws", skill="billing", min_proficiency=4)] == ["bob"]
    assert [a.id for a in r.list("ws", language="es")] == ["bob"]
    assert [a.id for a in r.list("ws", tier=agent_pb2.TIER_SPECIALIST)] == ["bob"]
    assert [a.id for a in r.list("ws", free_on_channel=CHAT)] == ["bob"]
    assert [a.id for a in r.list("ws", status=AVAILABLE)] == ["ann", "bob"]
    assert r.list("other") == []


def test_load_stays_exact_under_any_sequence_of_operations() -> None:
    """Thousands of random calls (seeded): load always equals the reservations held."""
    import random

    rng = random.Random(7)
    r = roster(offer_ttl_s=5, session_timeout_s=8, wrap_up_by_channel={"voice": 3})
    names = ["ann", "bob", "cal"]
    for name in names:
        profile = agent(name, total=4, voice=1, chat=3, email=2)
        profile.voice_blocks_other_channels = name == "bob"
        ready(r, profile)
    now = T0
    for step in range(3000):
        now += rng.random()
        who, inquiry = rng.choice(names), f"inq-{rng.randrange(40)}"
        channel = rng.choice([VOICE, CHAT, EMAIL])
        operation = rng.randrange(9)
        try:
            if operation <= 2:
                on_a_call = any(x.channel == VOICE for x in r.get(who).reservations)
                already = r.reserve(who, inquiry, channel, "ws", now)[2]
                blocked = r.get(who).voice_blocks_other_channels and on_a_call
                assert already or not (blocked and channel != VOICE), step
            elif operation == 3:
                r.accept(who, inquiry, now)
            elif operation == 4:
                r.decline(who, inquiry, "", now)
            elif operation == 5:
                r.complete(who, inquiry, TaskEvent(), now)
            elif operation == 6 and rng.random() < 0.5:
                r.transfer(who, inquiry, rng.choice(names), "", now)
            elif operation == 6:
                r.transfer_to_queue(who, inquiry, rng.choice(["billing", "vip"]), "", QUEUES, now)
            elif operation == 7:
                r.set_status(who, rng.choice([AVAILABLE, AVAILABLE, AWAY, OFFLINE]), "break", who, now)  # fmt: skip
            else:
                r.heartbeat(who, now)
        except (NotPossible, InvalidRequest):
            pass
        r.expire(now)
        for a in r.agents.values():
            for slot in a.capacities:
                held = sum(1 for x in a.reservations if x.channel == slot.channel)
                assert 0 <= slot.load == held <= slot.capacity, (step, a.id)
            assert sum(c.load for c in a.capacities) <= a.total_capacity
        holders = {
            (a.workspace, x.inquiry_id): a.id for a in r.agents.values() for x in a.reservations
        }
        assert holders == r.holder  # one reservation per inquiry, and the index agrees


def test_a_batch_is_decided_in_order_each_as_reserve_decides_it() -> None:
    r = roster()
    ready(r, agent(chat=2))
    ready(r, agent("bob", chat=1))
    results, changes = r.reserve_many(
        [
            ReserveRequest("ann", "one", CHAT, "ws"),
            ReserveRequest("ann", "two", CHAT, "ws"),
            ReserveRequest("ann", "three", CHAT, "ws"),  # full by now
            ReserveRequest("bob", "one", CHAT, "ws"),  # the first already holds it
            ReserveRequest("nobody", "four", CHAT, "ws"),
            ReserveRequest("bob", "", CHAT, "ws"),
            ReserveRequest("bob", "five", CHAT, "ws"),
        ],
        T0,
    )
    kinds = [
        type(x.error).__name__ if isinstance(x, Refused) else (x.agent.id, x.already)
        for x in results
    ]
    assert kinds == [
        ("ann", False),
        ("ann", False),
        "NotPossible",
        ("ann", True),
        "UnknownAgent",
        "InvalidRequest",
        ("bob", False),
    ]
    made = [x for x in results if isinstance(x, Reserved)]
    # Copies, as each agent was right after its own reservation.
    assert [len(x.agent.reservations) for x in made] == [1, 2, 2, 1]
    full = results[2]
    assert (
        isinstance(full, Refused) and full.agent is not None and len(full.agent.reservations) == 2
    )
    assert [e.inquiry_id for e in changes.task_events] == ["one", "two", "five"]
    assert [e.agent.version for e in changes.agent_events] == [3, 4, 3]
    assert load(r, "ann", CHAT) == 2 and load(r, "bob", CHAT) == 1


def test_the_site_is_kept_published_and_bounded() -> None:
    r = roster()
    profile = agent(chat=1)
    profile.site = "store-12"
    changes = r.upsert(profile, "admin", T0)
    assert r.get("ann").site == "store-12"
    assert changes.agent_events[0].agent.site == "store-12"
    # Presence changes keep it.
    r.set_status("ann", AVAILABLE, "", "ann", T0)
    assert r.get("ann").site == "store-12"
    profile.site = "x" * 201
    with pytest.raises(InvalidRequest, match=r"agent\.site"):
        r.upsert(profile, "admin", T0)
    assert r.get("ann").site == "store-12"

"""The roster's rules in isolation: no gRPC, no Kafka, time passed in."""

from __future__ import annotations

import itertools

import pytest

from omniroute.v1 import agent_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.roster import InvalidRequest, NotPossible, Policy, Roster, UnknownAgent

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
    with pytest.raises(NotPossible):  # a second completion finds nothing to release
        r.complete("ann", "a", TaskEvent(), T0 + 4)
    assert load(r, "ann", CHAT) == 1


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
    assert not r.expire(T0 + 4).task_events
    changes = r.expire(T0 + 5)
    assert [e.type for e in changes.task_events] == [TaskEvent.TYPE_OFFER_TIMEOUT]
    ann = r.get("ann")
    assert (ann.status, ann.away_reason) == (AWAY, "missed_offer")
    assert load(r, "ann", VOICE) == 0


def test_an_accepted_task_never_expires() -> None:
    r = roster(offer_ttl_s=5)
    ready(r, agent(voice=1))
    r.reserve("ann", "call", VOICE, "ws", T0)
    r.accept("ann", "call", T0 + 1)
    assert not r.expire(T0 + 60).task_events
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
    assert not r.expire(T0 + 129).agent_events
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

"""The simulation's customers and agents, driven through the router's core."""

from __future__ import annotations

import math

import pytest

from omniroute_router.config import parse as parse_routing
from omniroute_simulator import models
from omniroute_simulator.runner import replicate, summary
from omniroute_simulator.scenario import parse
from omniroute_simulator.simulation import Outcome, Simulation

ROUTING = parse_routing(
    """
workspaces:
  acme:
    service_levels: {voice: 20, chat: 60}
    queues:
      - name: calls
        match: {channels: [voice]}
        ladder:
          - {after_s: 0, tiers: [1]}
          - {after_s: 60, tiers: [1, 2]}
      - name: chats
        match: {channels: [chat]}
default: null
"""
).for_workspace("acme")
assert ROUTING is not None


def scenario(arrivals: str, agents: str, extra: str = "", duration_s: int = 36000) -> str:
    return f"""
workspace: acme
duration_s: {duration_s}
warmup_s: 0
handle_time_s: {{distribution: constant, mean: 60}}
{extra}
arrivals:
{arrivals}
agents:
{agents}
"""


def run(text: str, seed: int = 1) -> Outcome:
    assert ROUTING is not None
    return Simulation(parse(text), ROUTING, seed).run()


def test_the_same_seed_gives_the_same_run() -> None:
    s = models.mmn(200, 180, 14, 7200)
    config = models.single_queue_config()
    a = summary(replicate(s, config, 2, seed=5), s, config, 5)
    b = summary(replicate(s, config, 2, seed=5), s, config, 5)
    c = summary(replicate(s, config, 2, seed=6), s, config, 6)
    assert a == b
    assert a["overall"]["offered"] != c["overall"]["offered"]


def test_without_patience_nobody_abandons_and_everyone_is_answered() -> None:
    out = run(
        scenario(
            "  - {channel: voice, rate_per_hour: 100}",
            "  - {name: reps, count: 2, capacity: {voice: 1}}",
        )
    )
    assert out.drained and out.records
    assert all(r.wait >= 0 and r.abandoned_after < 0 for r in out.records)


def test_with_nobody_to_answer_every_customer_leaves_after_their_patience() -> None:
    out = run(
        scenario(
            "  - {channel: voice, rate_per_hour: 100, patience_s: 30}",
            "  - {name: reps, count: 1, skills: [french], capacity: {chat: 1}}",
        )
    )
    assert out.records
    assert all(r.abandoned_after == pytest.approx(30) and r.wait < 0 for r in out.records)


def test_declined_offers_go_to_someone_else() -> None:
    out = run(
        scenario(
            "  - {channel: voice, rate_per_hour: 20}",
            "  - {name: grumpy, count: 3, decline_probability: 1, accept_delay_s: 5, capacity: {voice: 1}}\n"
            "  - {name: keen, count: 1, capacity: {voice: 1}}",
        )
    )
    assert out.records
    assert {r.answered_by for r in out.records} == {"keen-1"}


def test_agents_answer_only_on_shift() -> None:
    out = run(
        scenario(
            "  - {channel: voice, rate_per_hour: 30}",
            "  - {name: day, count: 2, capacity: {voice: 1}, start_s: 3600, end_s: 7200}\n"
            "  - {name: night, count: 2, capacity: {voice: 1}, start_s: 10800}",
            duration_s=14400,
        )
    )
    for r in out.records:
        answered_at = r.arrived + r.wait
        if r.answered_by.startswith("day"):
            assert 3600 <= answered_at <= 7200
        else:
            assert answered_at >= 10800
    early = [r for r in out.records if r.arrived < 3600]
    assert early and all(r.arrived + r.wait >= 3600 for r in early)


def test_the_ladder_brings_specialists_in_after_a_minute() -> None:
    out = run(
        scenario(
            "  - {channel: voice, rate_per_hour: 10}",
            "  - {name: reps, count: 1, capacity: {voice: 1}, start_s: 999999}\n"
            "  - {name: specialists, count: 3, tier: 2, capacity: {voice: 1}}",
        )
    )
    assert out.records
    assert all(r.wait == pytest.approx(60, abs=1e-3) for r in out.records)


def test_follow_ups_come_back_to_the_same_agents_and_double_the_work() -> None:
    base = (
        "  - {channel: voice, rate_per_hour: 20}",
        "  - {name: reps, count: 3, capacity: {voice: 1}}",
    )
    once = run(scenario(*base))
    twice = run(scenario(*base, extra="follow_up_probability: 0.5\nfollow_up_after_s: 600"))
    ratio = twice.busy_s["reps"] / once.busy_s["reps"]
    # Each follow-up may be followed up again: 1 + 0.5 + 0.25 + ... = 2 times the work.
    assert ratio == pytest.approx(2.0, rel=0.1)


def test_escalations_reach_the_next_tier() -> None:
    agents = (
        "  - {name: reps, count: 3, capacity: {voice: 1}}\n"
        "  - {name: specialists, count: 3, tier: 2, capacity: {voice: 1}}"
    )
    calls = "  - {channel: voice, rate_per_hour: 20}"
    plain = run(scenario(calls, agents))
    escalating = run(scenario(calls, agents, extra="escalation_probability: 1"))
    assert plain.busy_s["specialists"] == 0  # calls go to tier 1 first and tier 1 has room
    # Every call is handled again by a specialist: about as much work as the reps did.
    assert escalating.busy_s["specialists"] == pytest.approx(escalating.busy_s["reps"], rel=0.15)


def test_calls_block_other_channels_when_the_agent_says_so() -> None:
    out = run(
        scenario(
            "  - {channel: voice, rate_per_hour: 40}\n  - {channel: chat, rate_per_hour: 40}",
            "  - {name: reps, count: 2, voice_blocks: true, capacity: {voice: 1, chat: 2}}",
        )
    )
    assert out.drained and out.records


def test_summary_holds_every_figure_with_an_interval() -> None:
    s = models.mmn(200, 180, 14, 7200, patience_s=300)
    config = models.single_queue_config()
    data = summary(replicate(s, config, 3, seed=1), s, config, 1)
    for section in (data["overall"], data["queues"]["default"]):
        for key in ("offered", "answered", "abandoned", "service_level", "p_wait", "asa_s", "abandon_rate"):  # fmt: skip
            assert set(section[key]) == {"mean", "ci95", "low", "high"}
            assert math.isfinite(section[key]["mean"])
    assert 0 < data["overall"]["occupancy"]["mean"] < 1
    # One queue, one contact at a time: the queue's agent time is all of the busy time.
    assert data["queues"]["default"]["occupancy"]["mean"] == pytest.approx(
        data["overall"]["occupancy"]["mean"], rel=1e-9
    )
    assert 0 < data["agent_groups"]["agents"]["occupancy"]["mean"] < 1

"""The routing core's indexes against a plain scan: same offers, same figures.

`WorkspaceRouter` files waiting inquiries by what can serve them and moves
them on timers (ladder steps, sticky windows, follow-ups falling due), so that
no event or tick costs more with a longer queue. The reference here is the rule
as written, with no index: every waiting inquiry in order, every free agent
checked. Random workspaces and random event sequences must give the same
offers, the same ladder notices and the same queue figures.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute_router.config import LadderStep, PriorityRule, Queue, QueueMatch, WorkspaceConfig
from omniroute_router.decisions import Authority
from omniroute_router.matching import eligible, reach
from omniroute_router.model import AgentStatus, AgentView, InquiryState, QueuedInquiry
from omniroute_router.routing import REMEMBER_FINISHED_S, WorkspaceRouter

T0 = 1_000_000.0
SKILLS = ("billing", "technical", "sales")
CHANNELS = ("chat", "voice", "email")

CONFIG = WorkspaceConfig(
    queues=(
        Queue(
            name="billing",
            match=QueueMatch(skills=frozenset({"billing"})),
            strategy="highest_proficiency",
            required_skills=(("billing", 2),),
            ladder=(
                LadderStep(after_s=0, tiers=frozenset({1}), min_proficiency=4),
                LadderStep(after_s=25, tiers=frozenset({1}), min_proficiency=1),
                LadderStep(after_s=60, tiers=frozenset({1, 2})),
                LadderStep(after_s=150, tiers=frozenset({3})),
            ),
        ),
        Queue(
            name="voice",
            match=QueueMatch(channels=frozenset({"voice"})),
            priority=2,
            strategy="least_occupied",
            ladder=(
                LadderStep(after_s=0, tiers=frozenset({1})),
                LadderStep(after_s=40, tiers=frozenset({1, 2, 3})),
            ),
        ),
        Queue(name="general"),
    ),
    priority_rules=(PriorityRule(boost=2, segments=frozenset({"vip"})),),
    aging_s=20.0,
    reoffer_block_s=30.0,
    max_failed_offers=2,
    sticky_wait_s=40.0,
)


def free_after(agent: AgentView, channel: str, planned: dict[tuple[str, str], int]) -> bool:
    if agent.load.get(channel, 0) + planned.get((agent.id, channel), 0) >= agent.capacity.get(
        channel, 0
    ):
        return False
    if agent.total_capacity:
        extra = sum(n for (a, _), n in planned.items() if a == agent.id)
        return agent.total_load + extra < agent.total_capacity
    return True


def step_by_time(r: WorkspaceRouter, inquiry: QueuedInquiry, now: float) -> int:
    ladder = r.queues[inquiry.queue].ladder
    waited = max(0.0, now - inquiry.queued_at)
    by_time = max(i for i, step in enumerate(ladder) if step.after_s <= waited)
    return min(max(by_time, inquiry.forced_step), len(ladder) - 1)


def waiting(r: WorkspaceRouter, now: float) -> list[QueuedInquiry]:
    """Waiting inquiries in order by a full sort (follow-ups due count as released)."""
    found = [
        i
        for i in r.inquiries.values()
        if not i.verify
        and (
            i.state is InquiryState.WAITING
            or (i.state is InquiryState.SCHEDULED and i.due_at <= now)
        )
    ]
    aging = r.config.aging_s
    return sorted(
        found, key=lambda i: (-(i.priority + (now - i.arrived_at) // aging), i.arrived_at, i.id)
    )


def reference_plan(
    r: WorkspaceRouter,
    now: float,
    inquiry_ids: Collection[str] | None = None,
    agent_ids: Collection[str] | None = None,
) -> list[tuple[str, str, int]]:
    """The plan as the rules say it, by scanning everything: (inquiry, agent, step)."""
    free = {
        a.id: a
        for a in r.agents.values()
        if a.status is AgentStatus.AVAILABLE
        and any(a.free_on(ch) for ch in a.capacity)
        and (agent_ids is None or a.id in agent_ids)
    }
    planned: dict[tuple[str, str], int] = {}
    offers = []
    for inquiry in waiting(r, now):
        if not free:
            break
        if inquiry_ids is not None and inquiry.id not in inquiry_ids:
            continue
        step_index = step_by_time(r, inquiry, now)
        step = r.queues[inquiry.queue].ladder[step_index]
        fits = [
            a
            for a in free.values()
            if eligible(a, inquiry, step, now) and free_after(a, inquiry.channel, planned)
        ]
        if not fits:
            continue
        strategy = r.queues[inquiry.queue].strategy
        preferred = [a for a in fits if a.id == inquiry.preferred_agent]
        if preferred:
            agent = preferred[0]
        elif strategy == "least_occupied":
            agent = min(fits, key=lambda a: (a.tier, a.occupancy, a.idle_since, a.id))
        elif strategy == "highest_proficiency":
            agent = min(
                fits,
                key=lambda a: (
                    a.tier,
                    -sum(a.skills.get(s, 0) for s in inquiry.skills),
                    a.idle_since,
                    a.id,
                ),
            )
        else:
            agent = min(fits, key=lambda a: (a.tier, a.total_load > 0, a.idle_since, a.id))
        planned[(agent.id, inquiry.channel)] = planned.get((agent.id, inquiry.channel), 0) + 1
        if not any(free_after(agent, ch, planned) for ch in agent.capacity):
            del free[agent.id]
        offers.append((inquiry.id, agent.id, step_index))
    return offers


def reference_stats(r: WorkspaceRouter, now: float) -> dict[str, tuple[int, float, int, int, int]]:
    """Per queue by a full pass: waiting, oldest wait, scheduled, offered, in progress."""
    stats = {name: [0, 0.0, 0, 0, 0] for name in r.queues}
    for i in r.inquiries.values():
        row = stats[i.queue]
        if i.state is InquiryState.WAITING:
            row[0] += 1
            row[1] = max(row[1], now - i.arrived_at)
        elif i.state is InquiryState.SCHEDULED:
            row[2] += 1
        elif i.state is InquiryState.OFFERED:
            row[3] += 1
        else:
            row[4] += 1
    return {name: tuple(row) for name, row in stats.items()}  # type: ignore[misc]


def random_agent(n: int, rng: random.Random, version: int, now: float) -> AgentView:
    capacity = {ch: rng.randint(0, 3) for ch in rng.sample(CHANNELS, rng.randint(1, 3))}
    return AgentView(
        id=f"a{n}",
        workspace="acme",
        skills={s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(0, 3))},
        languages=rng.choice((("en",), ("es-MX",), ("en", "es"), ("de",))),
        tier=rng.choice((1, 1, 1, 2, 3)),
        capacity=capacity,
        load={ch: rng.randint(0, c) for ch, c in capacity.items() if rng.random() < 0.4},
        total_capacity=rng.choice((0, 0, 2, 4)),
        voice_blocks=rng.random() < 0.3,
        status=rng.choice(
            (AgentStatus.AVAILABLE, AgentStatus.AVAILABLE, AgentStatus.AVAILABLE, AgentStatus.AWAY)
        ),
        idle_since=now - rng.randint(0, 500),
        version=version,
    )


def random_inquiry(n: int, rng: random.Random, now: float) -> QueuedInquiry:
    return QueuedInquiry(
        id=f"q{n}",
        workspace="acme",
        channel=rng.choice(CHANNELS),
        queue="",
        arrived_at=now - rng.choice((0, 0, rng.randint(0, 200))),
        kind=rng.choice(("question", "complaint")),
        language=rng.choice(("en", "en-GB", "es", "", "fr")),
        segment=rng.choice(("", "", "vip")),
        priority=rng.randint(0, 2),
        skills={s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(0, 2))},
        thread_id=rng.choice(("", "", "t1", "t2")),
    )


class Run:
    """One random workspace driven by random events, checked after each plan."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = T0
        self.router = WorkspaceRouter("acme", CONFIG)
        self.versions: dict[str, int] = {}
        self.agents = 0
        self.inquiries = 0
        self.checked = 0
        for _ in range(self.rng.randint(2, 10)):
            self.new_agent()
        for _ in range(self.rng.randint(0, 30)):
            self.new_inquiry()

    def new_agent(self) -> None:
        n = (
            self.agents
            if self.agents < 3 or self.rng.random() < 0.3
            else self.rng.randrange(self.agents)
        )
        self.agents = max(self.agents, n + 1)
        version = self.versions.get(f"a{n}", 0) + 1
        self.versions[f"a{n}"] = version
        self.router.update_agent(random_agent(n, self.rng, version, self.now))

    def new_inquiry(self) -> None:
        self.inquiries += 1
        verify = self.rng.random() < 0.1  # found by the sweep: not offered before checked
        self.router.admit(random_inquiry(self.inquiries, self.rng, self.now), self.now, verify)

    def plan(self) -> None:
        r, rng, now = self.router, self.rng, self.now
        inquiry_ids = agent_ids = None
        roll = rng.random()
        if roll < 0.3 and r.agents:
            agent_ids = rng.sample(sorted(r.agents), rng.randint(1, min(2, len(r.agents))))
        elif roll < 0.5 and r.inquiries:
            inquiry_ids = rng.sample(sorted(r.inquiries), rng.randint(1, min(3, len(r.inquiries))))
        expected = reference_plan(r, now, inquiry_ids, agent_ids)
        got = [(o.inquiry_id, o.agent_id, o.step) for o in r.plan(now, inquiry_ids, agent_ids)]
        assert got == expected
        self.checked += 1
        for inquiry_id, agent_id, _ in got:
            if rng.random() < 0.8:
                agent = r.agents[agent_id]
                channel = r.inquiries[inquiry_id].channel
                load = dict(agent.load)
                load[channel] = load.get(channel, 0) + 1
                self.versions[agent_id] += 1
                r.update_agent(
                    AgentView(
                        **{**agent.__dict__, "load": load, "version": self.versions[agent_id]}
                    )
                )
                r.offer_made(inquiry_id, agent_id, f"r-{inquiry_id}-{now}", now, now + 20)

    def outcome(self) -> None:
        r, rng, now = self.router, self.rng, self.now
        held = [
            i
            for i in r.inquiries.values()
            if i.state in (InquiryState.OFFERED, InquiryState.ACCEPTED)
        ]
        if not held:
            return
        inquiry = rng.choice(held)
        agent = inquiry.agent_id
        if inquiry.state is InquiryState.OFFERED:
            if rng.random() < 0.5:
                r.offer_failed(inquiry.id, agent, inquiry.reservation_id, "declined", now)
            else:
                r.accepted(inquiry.id, agent, now)
            return
        roll = rng.random()
        if roll < 0.4:
            r.resolved(inquiry.id, agent, now)
        elif roll < 0.7:
            r.follow_up(inquiry.id, agent, now + rng.randint(0, 120), now)
        else:
            r.escalated(inquiry.id, agent, rng.randint(0, 4), rng.choice(("", "sales")), "", now)

    def housekeeping(self) -> None:
        r, now = self.router, self.now
        expected = sorted(
            (i.id, step_by_time(r, i, now))
            for i in r.inquiries.values()
            if i.state is InquiryState.WAITING and not i.verify and step_by_time(r, i, now) > i.step
        )
        r.drain_notices()
        r.housekeeping(now)
        got = sorted((n.inquiry_id, n.step) for n in r.drain_notices() if n.reason == "wait")
        assert got == expected

    def check_stats(self) -> None:
        r, now = self.router, self.now
        got = {
            name: (s.waiting, s.oldest_wait_s, s.scheduled, s.offered, s.in_progress)
            for name, s in r.queue_stats(now).items()
        }
        assert got == reference_stats(r, now)

    def step(self) -> None:
        rng = self.rng
        self.now += rng.choice((0.0, 0.5, 1.0, 5.0, 13.0, 30.0, 61.0))
        roll = rng.random()
        if roll < 0.2:
            self.new_inquiry()
        elif roll < 0.35:
            self.new_agent()
        elif roll < 0.6:
            self.outcome()
        elif roll < 0.65 and self.router.inquiries:
            self.router.abandoned(rng.choice(sorted(self.router.inquiries)), self.now)
        elif roll < 0.75:
            self.housekeeping()
        elif roll < 0.8:
            unverified = sorted(i.id for i in self.router.inquiries.values() if i.verify)
            if unverified:
                self.router.reconcile(rng.choice(unverified), Authority(), self.now)
        self.plan()
        self.check_stats()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32))
def test_the_indexed_plan_makes_the_offers_of_a_full_scan(seed: int) -> None:
    run = Run(seed)
    for _ in range(60):
        run.step()
    assert run.checked == 60


def test_a_restored_workspace_plans_as_the_one_it_was_saved_from() -> None:
    run = Run(7)
    for _ in range(40):
        run.step()
    saved, now = run.router, run.now
    restored = WorkspaceRouter("acme", CONFIG)
    for agent in saved.agents.values():
        restored.restore_agent(AgentView.from_dict(agent.to_dict()))
    for inquiry in saved.inquiries.values():
        restored.restore_inquiry(QueuedInquiry.from_dict(inquiry.to_dict()))
    assert restored.plan(now + 1) == saved.plan(now + 1)
    assert restored.queue_stats(now + 1) == saved.queue_stats(now + 1)


def test_finished_ids_and_threads_expire_oldest_first_whatever_order_they_came_in() -> None:
    r = WorkspaceRouter("acme", CONFIG)
    r.restore_finished("late", T0 + 100)
    r.restore_finished("early", T0)
    r.restore_thread("t", "a1", T0)
    r.restore_thread("t", "a2", T0 + 200)  # the same thread again, later
    r.forget_old(T0 + REMEMBER_FINISHED_S + 50)
    assert set(r.finished) == {"late"}
    assert r.drain_changes().inquiries == {"early"}
    r.forget_old(T0 + 31 * 24 * 3600)
    assert r.finished == {} and r.threads == {}


def test_an_absorbed_inquiry_is_forgotten_like_a_finished_one() -> None:
    # An inquiry that joined a conversation counts as finished: it is forgotten
    # after the same retention, not kept for the life of the worker.
    r = WorkspaceRouter("acme", CONFIG)
    r.absorbed("joined", T0)
    r.drain_changes()
    r.forget_old(T0 + REMEMBER_FINISHED_S + 1)
    assert r.is_new("joined")
    assert r.drain_changes().inquiries == {"joined"}


class CountingAgents(dict[str, AgentView]):
    """Free agents that count how many of them a caller looked at."""

    looked = 0

    def values(self) -> Iterator[AgentView]:  # type: ignore[override]
        for agent in super().values():
            self.looked += 1
            yield agent


def scanned_reach(
    free: dict[str, AgentView], planned: dict[tuple[str, str], int]
) -> set[tuple[str, str]]:
    """Every (channel, language) pair an agent of `free` has a slot left for: the rule as written."""
    return {
        (channel, language)
        for agent in free.values()
        for channel in agent.capacity
        if agent.free_on(channel) and free_after(agent, channel, planned)
        for language in {""} | {lang.lower().split("-")[0] for lang in agent.languages}
    }


@pytest.mark.parametrize("seed", range(30))
def test_reach_finds_the_wanted_pairs_a_full_scan_finds(seed: int) -> None:
    rng = random.Random(seed)
    free = {f"a{n}": random_agent(n, rng, 1, T0) for n in range(rng.randint(0, 12))}
    planned = {
        (agent_id, channel): rng.randint(1, 2)
        for agent_id, agent in free.items()
        for channel in agent.capacity
        if rng.random() < 0.3
    }
    pairs = [(ch, lang) for ch in CHANNELS for lang in ("", "en", "es", "de", "fr")]
    wanted = set(rng.sample(pairs, rng.randint(0, len(pairs))))
    assert reach(free, planned, wanted) == scanned_reach(free, planned) & wanted


def test_reach_looks_at_no_agent_for_an_empty_queue_and_stops_once_everything_is_reached() -> None:
    free = CountingAgents(
        (
            f"a{n}",
            AgentView(
                id=f"a{n}",
                workspace="acme",
                languages=("en",),
                capacity={"chat": 2, "email": 3},
                status=AgentStatus.AVAILABLE,
            ),
        )
        for n in range(1000)
    )
    assert reach(free, {}, set()) == set()
    assert free.looked == 0
    wanted = {("chat", "en"), ("email", "")}
    assert reach(free, {}, wanted) == wanted
    assert free.looked == 1
    # A pair nobody serves: every agent is looked at, as before.
    assert reach(free, {}, wanted | {("chat", "fr")}) == wanted
    assert free.looked == 1 + 1000

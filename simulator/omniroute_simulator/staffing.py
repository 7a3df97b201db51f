"""The fewest agents per group that reach every queue's service-level target.

Every candidate staffing is simulated with the same seeds (common random
numbers: the same customers arrive with the same needs), so two staffings
differ only by the agents. The search first scales all groups together in
proportion to the work they can take (a binary search on the total), then
takes agents away one group at a time while every queue still meets its
target.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from omniroute_router.config import WorkspaceConfig
from omniroute_router.model import AgentStatus, AgentView
from omniroute_simulator import erlang
from omniroute_simulator.runner import replicate
from omniroute_simulator.scenario import AgentGroup, Scenario, Stream
from omniroute_simulator.simulation import Outcome
from omniroute_simulator.statistics import Estimate, estimates


@dataclass
class Staffing:
    """A head count per group and what it achieved."""

    counts: dict[str, int]
    service_levels: dict[str, Estimate]  # per queue
    occupancy: dict[str, float]  # per group
    evaluations: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def can_serve(group: AgentGroup, stream: Stream) -> bool:
    """Whether agents of `group` may ever take contacts of `stream` (skills, language, channel)."""
    agent = AgentView(
        id="",
        workspace="",
        skills=group.skills,
        languages=group.languages,
        capacity=group.capacity,
        status=AgentStatus.AVAILABLE,
    )
    return (
        agent.free_on(stream.channel)
        and agent.speaks(stream.language)
        and all(group.skills.get(skill, 0) >= level for skill, level in stream.skills.items())
    )


def work_shares(scenario: Scenario) -> dict[str, float]:
    """Erlangs of work each group could take: each stream's load split evenly over its groups."""
    shares = dict.fromkeys((g.name for g in scenario.agents), 0.0)
    for stream in scenario.arrivals:
        groups = [g for g in scenario.agents if can_serve(g, stream)]
        if not groups:
            raise ValueError(f"no agent group can serve the arrivals {stream.name!r}")
        handle = (stream.handle_time or scenario.handle_time).mean
        for g in groups:
            slots = g.capacity.get(stream.channel, 1)
            shares[g.name] += stream.mean_rate * handle / len(groups) / slots
    return shares


def allocate(shares: dict[str, float], total: int) -> dict[str, int]:
    """`total` agents split in proportion to `shares` (largest remainder)."""
    weight = sum(shares.values())
    exact = {g: total * s / weight for g, s in shares.items()}
    counts = {g: math.floor(v) for g, v in exact.items()}
    left = total - sum(counts.values())
    for g in sorted(exact, key=lambda g: counts[g] - exact[g])[:left]:
        counts[g] += 1
    return counts


def erlang_bracket(scenario: Scenario, config: WorkspaceConfig, target: float) -> tuple[int, int]:
    """A first guess at the total: every stream pooled on one group (Erlang C) below,
    every stream on agents of its own above."""
    total_rate = sum(s.mean_rate for s in scenario.arrivals)
    work = sum(
        s.mean_rate * (s.handle_time or scenario.handle_time).mean for s in scenario.arrivals
    )
    shortest = min(config.service_levels[s.channel] for s in scenario.arrivals)
    low = erlang.agents_for_target(total_rate, work / total_rate, shortest, target).agents
    high = sum(
        erlang.agents_for_target(
            s.mean_rate,
            (s.handle_time or scenario.handle_time).mean,
            config.service_levels[s.channel],
            target,
        ).agents
        for s in scenario.arrivals
        if s.mean_rate > 0
    )
    return low, max(low, high)


def find_staffing(
    scenario: Scenario,
    config: WorkspaceConfig,
    target: float,
    replications: int = 3,
    seed: int = 1,
    progress: Callable[[dict[str, int], bool], None] | None = None,
) -> Staffing:
    """The fewest agents per group whose simulated service level reaches `target` in every queue."""
    shares = work_shares(scenario)
    evaluations = 0
    cache: dict[tuple[int, ...], tuple[bool, list[Outcome]]] = {}

    def meets(counts: dict[str, int]) -> bool:
        nonlocal evaluations
        key = tuple(counts[g.name] for g in scenario.agents)
        if key not in cache:
            evaluations += 1
            outcomes = replicate(scenario.with_counts(counts), config, replications, seed)
            ok = all(
                (sl := estimates(outcomes, scenario.duration_s, q)["service_level"].mean) >= target
                or math.isnan(sl)
                for q in outcomes[0].queues
            )
            cache[key] = (ok, outcomes)
            if progress:
                progress(counts, ok)
        return cache[key][0]

    low, high = erlang_bracket(scenario, config, target)
    while not meets(allocate(shares, high)):  # the bracket is a guess: widen it upwards
        low = high + 1
        high = math.ceil(high * 1.25)
        if high > 100 * max(1, math.ceil(sum(shares.values()))):
            raise ValueError("no staffing up to 100 times the offered load reaches the target")
    while low > 1 and meets(allocate(shares, low)):  # and downwards (abandonment helps)
        high, low = low, max(1, low - max(1, low // 20))
    while low < high:
        mid = (low + high) // 2
        if meets(allocate(shares, mid)):
            high = mid
        else:
            low = mid + 1
    counts = allocate(shares, high)
    improved = True
    while improved:
        improved = False
        for group in sorted(counts, key=lambda g: -counts[g]):
            if counts[group] == 0:
                continue
            fewer = {**counts, group: counts[group] - 1}
            if meets(fewer):
                counts = fewer
                improved = True
                break
    meets(counts)
    outcomes = cache[tuple(counts[g.name] for g in scenario.agents)][1]
    queues = outcomes[0].queues
    return Staffing(
        counts=counts,
        service_levels={
            q: estimates(outcomes, scenario.duration_s, q)["service_level"] for q in queues
        },
        occupancy={
            g: sum(o.busy_s[g] for o in outcomes) / sum(o.staffed_s[g] for o in outcomes)
            if sum(o.staffed_s[g] for o in outcomes)
            else math.nan
            for g in outcomes[0].groups
        },
        evaluations=evaluations,
    )

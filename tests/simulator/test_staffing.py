"""Staffing search on the multi-skill example: dedicated, pooled and chained agents.

Six call types of 15 erlangs each, 5-minute handle time, 80% in 20 s. Erlang C
says dedicated groups need 6 x 19 = 114 agents and one fully pooled group 98;
agents with two skills each in a chain should land close to the pooled figure.
The search asks every queue to reach the target in the simulation, so noise
can only add an agent or two; the horizon here is short (a test budget), the
README gives the figures of longer runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from omniroute_router import config as routing_config
from omniroute_simulator.scenario import load
from omniroute_simulator.staffing import allocate, find_staffing, work_shares

EXAMPLES = Path(__file__).parents[2] / "simulator" / "examples"
CONFIG = routing_config.load(EXAMPLES / "multiskill-routing.yaml").for_workspace("multiskill")


def staff(name: str, hours: float) -> tuple[int, dict[str, int]]:
    assert CONFIG is not None
    scenario = load(EXAMPLES / f"multiskill-{name}.yaml")
    scenario = dataclasses.replace(scenario, duration_s=hours * 3600, warmup_s=1800)
    result = find_staffing(scenario, CONFIG, 0.8, replications=1, seed=7)
    print(f"  {name:<10}{result.total:>6}   {result.counts}  ({result.evaluations} runs)")
    return result.total, result.counts


def test_multiskill_dedicated_pooled_and_chained() -> None:
    print("\n  structure   agents   per group")
    pooled, _ = staff("pooled", 10)
    dedicated, counts = staff("dedicated", 10)
    chained, _ = staff("chained", 10)
    assert 96 <= pooled <= 102  # Erlang C: 98
    assert 112 <= dedicated <= 120  # Erlang C: 6 x 19 = 114
    assert all(18 <= n <= 21 for n in counts.values())
    # Two skills each recover most of pooling's gain.
    assert pooled - 1 <= chained < dedicated - 6


def test_work_is_shared_over_the_groups_that_can_take_it() -> None:
    chained = load(EXAMPLES / "multiskill-chained.yaml")
    shares = work_shares(chained)
    assert sum(shares.values()) == 90.0 or abs(sum(shares.values()) - 90.0) < 1e-9
    assert len(set(round(v, 9) for v in shares.values())) == 1
    assert sum(allocate(shares, 100).values()) == 100

"""Validation: the simulator on the production routing core against exact queueing results.

Single skill, one queue, every agent in it, accept delay 0 (models.mmn). Each
case runs seeded replications; a figure's tolerance comes from its confidence
interval across replications. Every simulated figure must contain the exact
value in its 99.9% interval (about fifty figures are checked, so each one at
99.9% keeps the chance of a false alarm over the whole file near 5%), and where
the interval is narrow enough to tell, be within the issue's tolerance: one
point for service level and P(wait), 0.2 points for the abandon rate.

`make test` runs horizons that fit a test budget of about a minute; there the
grid's widest intervals (high load, β 0.5, nobody abandons: long busy
periods) are wider than one point. `make validate-sim`
(OMNIROUTE_SIM_VALIDATION=full) runs ten times longer replications and adds
more until every 99.9% interval is inside its tolerance (at most
MAX_REPLICATIONS), and asserts the tolerance everywhere.
"""

from __future__ import annotations

import heapq
import math
import os
import random
from dataclasses import dataclass

import pytest

from omniroute_simulator import erlang, models
from omniroute_simulator.runner import replicate
from omniroute_simulator.simulation import Contact, Simulation
from omniroute_simulator.statistics import Estimate, estimate, estimates, per_replication

FULL = os.environ.get("OMNIROUTE_SIM_VALIDATION") == "full"
HANDLE = 180.0
TARGET = 20.0
PATIENCE = 300.0
POINT = 0.01
LEVEL = 0.999
REPLICATIONS = 10
MAX_REPLICATIONS = 60
TOLERANCES = {"service_level": POINT, "p_wait": POINT, "abandon_rate": 0.2 * POINT}


@dataclass
class Checked:
    figures: dict[str, Estimate]
    contacts: int
    replications: int
    little: Estimate  # abandon rate - mean wait / mean patience, per replication


def simulate(
    load: float, agents: int, patience: float, hours: float, seed: int, full: bool = False
) -> Checked:
    """Replications of M/M/n(+M); in full mode more of them until intervals are narrow.

    Full mode stops when every checked figure's 99.9% interval is inside its
    tolerance (then containing the exact value means being within tolerance
    of it), or at MAX_REPLICATIONS.
    """
    scenario = models.mmn(load / HANDLE * 3600, HANDLE, agents, hours * 3600, 1800.0, patience)
    config = models.single_queue_config(TARGET)
    outcomes = replicate(scenario, config, REPLICATIONS, seed)
    while full and len(outcomes) < MAX_REPLICATIONS:
        figures = estimates(outcomes, scenario.duration_s, level=LEVEL)
        if all(figures[k].half_width <= tol for k, tol in TOLERANCES.items()):
            break
        outcomes += replicate(scenario, config, REPLICATIONS, seed + len(outcomes))
    rates = per_replication(outcomes, scenario.duration_s)
    theta = 0.0 if math.isinf(patience) else 1 / patience
    return Checked(
        figures=estimates(outcomes, scenario.duration_s, level=LEVEL),
        contacts=sum(len(o.records) for o in outcomes),
        replications=len(outcomes),
        little=estimate([r["abandon_rate"] - theta * r["mean_wait_s"] for r in rates], LEVEL),
    )


def check(name: str, got: Estimate, exact: float, tolerance: float, within: bool) -> None:
    """The exact value inside the 99.9% interval; the mean within `tolerance` when `within`
    or when the interval is narrow enough to tell; in full mode the interval inside it too."""
    print(
        f"  {name:<14} simulated {got.mean:.5f} ± {got.half_width:.5f} (99.9%)  exact {exact:.5f}"
    )
    assert got.covers(exact), f"{name}: exact {exact:.5f} outside {got.low:.5f}..{got.high:.5f}"
    if FULL:
        assert got.half_width <= tolerance, (
            f"{name}: the interval ±{got.half_width:.5f} is still wider than ±{tolerance} "
            f"after {MAX_REPLICATIONS} replications: longer runs needed to show the tolerance"
        )
    if within or got.half_width <= tolerance:
        assert abs(got.mean - exact) <= tolerance, f"{name}: {got.mean:.5f} vs exact {exact:.5f}"


def test_validation_erlang_c_textbook_case() -> None:
    """100 calls per 30 min, 3 min handle, 14 agents, 20 s: P(wait) 0.17413, SL 0.88835, ASA 7.84 s."""
    run = simulate(10.0, 14, math.inf, hours=200 if FULL else 60, seed=1, full=FULL)
    exact = erlang.erlang_c(10 / HANDLE, HANDLE, 14, TARGET)
    print(f"\nErlang C: {run.contacts} contacts in {run.replications} replications")
    check("service level", run.figures["service_level"], exact.service_level, POINT, True)
    check("P(wait)", run.figures["p_wait"], exact.p_wait, POINT, True)
    check("ASA s", run.figures["asa_s"], exact.asa_s, 1.0, True)
    assert run.figures["abandon_rate"].mean == 0


def test_validation_erlang_a_textbook_case() -> None:
    """The same with patience of mean 5 min: P(wait) 0.14526, P(abandon) 0.013984, SL 0.916792."""
    run = simulate(10.0, 14, PATIENCE, hours=200 if FULL else 80, seed=2, full=FULL)
    exact = erlang.erlang_a(10 / HANDLE, HANDLE, 14, TARGET, PATIENCE)
    print(f"\nErlang A: {run.contacts} contacts in {run.replications} replications")
    check("service level", run.figures["service_level"], exact.service_level, POINT, True)
    check("P(wait)", run.figures["p_wait"], exact.p_wait, POINT, True)
    check("abandon rate", run.figures["abandon_rate"], exact.p_abandon, 0.2 * POINT, True)
    check("ASA s", run.figures["asa_s"], exact.asa_s, 1.0, True)
    assert run.little.covers(0.0), f"P(abandon) - θ·E[wait] = {run.little}"


# Quick horizons give each case 40,000 contacts (160,000 at 200 erlangs), 10 replications.
GRID = [
    (load, beta, patience)
    for load in (10, 50, 200)
    for beta in (0.5, 1.0)
    for patience in (math.inf, PATIENCE)
]


@pytest.mark.parametrize(("load", "beta", "patience"), GRID)
def test_validation_grid_at_square_root_staffing(load: float, beta: float, patience: float) -> None:
    agents = erlang.square_root_staffing(load, beta)
    calls_per_hour = load / HANDLE * 3600
    # Quick mode: 4,000 contacts a replication, 16,000 (four hours) at 200 erlangs, where a
    # shorter replication's service level is too skewed (most hours have no congestion at
    # all) for a t interval over ten of them to hold.
    per_replication = 40000 if FULL else (16000 if load >= 200 else 4000)
    hours = 0.5 + per_replication / calls_per_hour
    # Disjoint seed ranges: no two cases share a customer (replications use seed, seed + 1, ...).
    seed = 1000 * (GRID.index((load, beta, patience)) + 1)
    run = simulate(load, agents, patience, hours, seed, full=FULL)
    exact = erlang.erlang_a(load / HANDLE, HANDLE, agents, TARGET, patience)
    print(
        f"\n{load} erlangs, β {beta}, n {agents}, patience {patience:g} s: "
        f"{run.contacts} contacts in {run.replications} replications"
    )
    check("service level", run.figures["service_level"], exact.service_level, POINT, False)
    check("P(wait)", run.figures["p_wait"], exact.p_wait, POINT, False)
    if math.isinf(patience):
        assert run.figures["abandon_rate"].mean == 0
        return
    check("abandon rate", run.figures["abandon_rate"], exact.p_abandon, 0.2 * POINT, False)
    # Little's law for the abandoning: P(abandon) = θ · E[time in queue of every arrival].
    assert run.little.covers(0.0), f"P(abandon) - θ·E[wait] = {run.little}"


def test_validation_every_wait_equals_the_fifo_recursion() -> None:
    """Customer by customer, the core routes an M/M/n queue as first come, first served.

    The same recorded arrivals and handle times through an independent n-server
    FIFO recursion (each customer starts when they arrive or when the earliest
    agent frees, whichever is later) give the same wait for every customer: the
    statistical checks above test randomness and measurement, not the routing.
    """
    rng = random.Random(3)
    t = 0.0
    contacts = []
    for i in range(30000):
        t += rng.expovariate(200 / 3600)
        handle = rng.expovariate(1 / HANDLE)
        contacts.append((t, Contact(stream="calls", channel="voice", handle_s=handle, id=f"c{i}")))
    free = [0.0] * 12
    expected = {}
    for at, contact in contacts:
        start = max(at, heapq.heappop(free))
        expected[contact.id] = start - at
        heapq.heappush(free, start + contact.handle_s)
    scenario = models.mmn(200, HANDLE, 12, t + 1, warmup_s=0)
    outcome = Simulation(scenario, models.single_queue_config(), 1, recorded=contacts).run()
    waits = {r.contact.id: r.wait for r in outcome.records}
    assert len(waits) == len(expected)
    assert sum(1 for w in expected.values() if w > 0) > 10000  # a queue that really queues
    mismatched = [i for i, w in expected.items() if abs(waits[i] - w) > 1e-6]
    assert not mismatched, f"{len(mismatched)} waits differ, first {mismatched[:3]}"


def test_validation_counts_every_arrival_of_the_window_to_its_answer() -> None:
    """What is measured: every customer arriving in [warm-up, duration), followed to the end.

    Overloaded at the end (arrivals 20% above capacity for the last hour), so
    hundreds of counted customers are still waiting when `duration_s` comes;
    they are answered after it, not counted as missed or dropped (end-of-horizon
    censoring would bias the service level low). The counted set, each wait and
    the service level agree with an independent FIFO recursion over all
    arrivals, warm-up included.
    """
    rng = random.Random(4)
    agents, warmup, duration = 10, 3600.0, 4 * 3600.0
    t = 0.0
    contacts = []
    while t < duration + 1800:
        load = 8.0 if t < duration - 3600 else 12.0
        t += rng.expovariate(load / HANDLE)
        contacts.append(
            (
                t,
                Contact(
                    stream="calls",
                    channel="voice",
                    handle_s=rng.expovariate(1 / HANDLE),
                    id=f"c{len(contacts)}",
                ),
            )
        )
    free = [0.0] * agents
    expected = {}
    for at, contact in contacts:
        start = max(at, heapq.heappop(free))
        heapq.heappush(free, start + contact.handle_s)
        if warmup <= at < duration:
            expected[contact.id] = start - at
    scenario = models.mmn(3600, HANDLE, agents, duration, warmup_s=warmup)
    outcome = Simulation(scenario, models.single_queue_config(TARGET), 1, recorded=contacts).run()
    waits = {r.contact.id: r.wait for r in outcome.records}
    assert outcome.drained
    assert waits.keys() == expected.keys()
    late = [r for r in outcome.records if r.arrived + r.wait > duration]
    assert len(late) > 50  # dozens were still waiting when the period ended
    assert all(abs(waits[i] - w) < 1e-6 for i, w in expected.items())
    within = sum(1 for w in expected.values() if w <= TARGET) / len(expected)
    rates = per_replication([outcome], duration)[0]
    assert rates["service_level"] == pytest.approx(within, abs=1e-12)
    assert rates["offered"] == len(expected)

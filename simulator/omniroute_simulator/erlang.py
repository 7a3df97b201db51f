"""Exact queueing results: Erlang C (M/M/n) and Erlang A (M/M/n+M).

The simulator is validated against these, and operations managers use them
on their own (`omniroute-simulate erlang ...`). Rates are per second, times in
seconds. Service level is the share of all arrivals answered within the
target: in Erlang A a customer who abandons counts as not answered in time.

Erlang A is solved exactly from its birth-death chain (arrival rate λ,
departures min(k, n)·μ + max(k - n, 0)·θ in state k), truncated where the
remaining probability is below 1e-15. A customer who finds i others waiting
ahead enters service after i + 1 phases with rates n·μ + j·θ (j = i .. 0) and
leaves at rate θ meanwhile; its wait distribution is computed by
uniformisation of that pure-death chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueFigures:
    """The exact steady-state figures of one queue."""

    agents: int
    offered_load: float  # erlangs: arrival rate x mean handle time
    p_wait: float  # share of arrivals that wait at all
    p_abandon: float  # share of arrivals that leave before being answered
    service_level: float  # share of arrivals answered within the target
    asa_s: float  # mean wait of the answered
    mean_wait_s: float  # mean time in queue of every arrival (answered or not)
    occupancy: float  # share of agent time busy


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of M/M/n/n (the stable recursion)."""
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(rate: float, handle_s: float, agents: int, target_s: float) -> QueueFigures:
    """Erlang C: Poisson arrivals, exponential handle times, nobody abandons."""
    load = rate * handle_s
    if agents <= load:
        raise ValueError(f"{agents} agents cannot carry {load:.2f} erlangs without abandonment")
    b = erlang_b(agents, load)
    p_wait = agents * b / (agents - load * (1 - b))
    drain = agents / handle_s - rate  # rate at which a queue empties
    asa = p_wait / drain
    return QueueFigures(
        agents=agents,
        offered_load=load,
        p_wait=p_wait,
        p_abandon=0.0,
        service_level=1 - p_wait * math.exp(-drain * target_s),
        asa_s=asa,
        mean_wait_s=asa,
        occupancy=load / agents,
    )


def erlang_a(
    rate: float, handle_s: float, agents: int, target_s: float, patience_s: float
) -> QueueFigures:
    """Erlang A: as Erlang C, and customers leave after an exponential patience."""
    if not math.isfinite(patience_s):
        return erlang_c(rate, handle_s, agents, target_s)
    mu, theta, n = 1 / handle_s, 1 / patience_s, agents
    # Stationary distribution, unnormalised, in logs to survive large n.
    logs = [0.0]
    k = 0
    while True:
        k += 1
        death = min(k, n) * mu + max(k - n, 0) * theta
        logs.append(logs[-1] + math.log(rate / death))
        if k > n and logs[-1] - max(logs) < math.log(1e-17):
            break
    top = max(logs)
    weights = [math.exp(x - top) for x in logs]
    total = sum(weights)
    pi = [w / total for w in weights]
    p_wait = sum(pi[n:])
    # Tagged customer who finds i waiting ahead: served with probability
    # s_i = prod_{j<=i} r_j / (r_j + θ), r_j = nμ + jθ; mean wait when served
    # s_i * sum_{j<=i} 1 / (r_j + θ) (competing exponentials).
    ahead = pi[n:]
    served = 0.0
    wait_served = 0.0
    s, w = 1.0, 0.0
    served_given: list[float] = []
    for i, p in enumerate(ahead):
        r = n * mu + i * theta
        s *= r / (r + theta)
        w += 1 / (r + theta)
        served += p * s
        wait_served += p * s * w
        served_given.append(s)
    p_abandon = p_wait - served
    answered = 1 - p_abandon
    mean_queue = sum(p * i for i, p in enumerate(ahead))
    within = (1 - p_wait) + _served_within(ahead, n * mu, theta, target_s)
    return QueueFigures(
        agents=agents,
        offered_load=rate * handle_s,
        p_wait=p_wait,
        p_abandon=p_abandon,
        service_level=within,
        asa_s=wait_served / answered,
        mean_wait_s=mean_queue / rate,
        occupancy=rate * answered * handle_s / agents,
    )


def _served_within(ahead: list[float], service: float, theta: float, target_s: float) -> float:
    """P(wait, then answered within target) by uniformisation of the tagged customer's chain."""
    if target_s <= 0:
        return 0.0
    size = len(ahead)
    uniform = service + size * theta + theta
    p = list(ahead)  # probability of still waiting with i ahead
    mean_steps = uniform * target_s
    steps = int(mean_steps + 12 * math.sqrt(mean_steps) + 30)
    log_weight = -mean_steps  # log Poisson(m; Λt), m = 0
    served_so_far = 0.0
    result = 0.0
    for m in range(steps + 1):
        # Poisson weight of exactly m jumps times served within m jumps.
        result += math.exp(log_weight) * served_so_far
        moved = [p[i] * (service + i * theta) / uniform for i in range(size)]
        stay = [p[i] * (1 - (service + i * theta + theta) / uniform) for i in range(size)]
        served_so_far += moved[0]
        p = [stay[i] + (moved[i + 1] if i + 1 < size else 0.0) for i in range(size)]
        log_weight += math.log(mean_steps) - math.log(m + 1)
    return result


def square_root_staffing(load: float, beta: float) -> int:
    """The QED rule: n = ceil(R + β·√R)."""
    return math.ceil(load + beta * math.sqrt(load) - 1e-9)


def agents_for_target(
    rate: float,
    handle_s: float,
    target_s: float,
    service_level: float,
    patience_s: float = math.inf,
) -> QueueFigures:
    """The fewest agents whose exact service level reaches `service_level`."""
    load = rate * handle_s
    n = max(1, math.floor(load) + 1 if math.isinf(patience_s) else 1)
    while True:
        figures = erlang_a(rate, handle_s, n, target_s, patience_s)
        if figures.service_level >= service_level:
            return figures
        n += 1

"""Figures across replications: means with 95% confidence intervals.

Each replication gives one value of each rate (service level, P(wait), ...);
the figure is their mean and a Student-t interval over the replications, so
the correlation inside one run does not make the interval look narrower than
it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omniroute_simulator.simulation import Outcome, Record

# Two-sided 95% Student-t quantiles by degrees of freedom.
_T95 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip


# Two-sided 99.9% quantiles: for checking many figures at once (Bonferroni).
_T999 = [
    636.62, 31.599, 12.924, 8.610, 6.869, 5.959, 5.408, 5.041, 4.781, 4.587,
    4.437, 4.318, 4.221, 4.140, 4.073, 4.015, 3.965, 3.922, 3.883, 3.850,
    3.819, 3.792, 3.768, 3.745, 3.725, 3.707, 3.690, 3.674, 3.659, 3.646,
]  # fmt: skip


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided `level` quantile of Student's t with `df` degrees of freedom."""
    if level == 0.95:
        table, z = _T95, 1.95996
    elif level == 0.999:
        table, z = _T999, 3.29053
    else:
        raise ValueError("levels 0.95 and 0.999 are tabulated")
    if df <= len(table):
        return table[df - 1]
    # Cornish-Fisher expansion beyond the table (error well below 0.5%).
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Estimate:
    """A mean over replications and the half-width of its 95% interval (0 for one)."""

    mean: float
    half_width: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, float | None]:
        if math.isnan(self.mean):
            return {"mean": None, "ci95": None, "low": None, "high": None}
        return {
            "mean": self.mean,
            "ci95": self.half_width,
            "low": self.low,
            "high": self.high,
        }


def estimate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean and half-width (95% unless told) of per-replication values (NaNs left out)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return Estimate(math.nan, math.nan)
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Estimate(mean, 0.0)
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return Estimate(mean, t_quantile(n - 1, level) * math.sqrt(var / n))


@dataclass
class Tally:
    """Counts and sums over the measured arrivals of one queue in one replication."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    within: int = 0
    waited: int = 0
    wait_answered_s: float = 0.0
    wait_all_s: float = 0.0

    def add(self, r: Record, end: float) -> None:
        self.offered += 1
        if r.wait >= 0:
            self.answered += 1
            self.wait_answered_s += r.wait
            self.wait_all_s += r.wait
            if r.wait <= r.target_s:
                self.within += 1
            if r.offered_at > r.arrived:
                self.waited += 1
        elif r.abandoned_after >= 0:
            self.abandoned += 1
            self.waited += 1
            self.wait_all_s += r.abandoned_after
        else:  # still waiting when the run stopped
            self.waited += 1
            self.wait_all_s += max(0.0, end - r.arrived)

    def rates(self) -> dict[str, float]:
        n = self.offered
        nan = math.nan
        return {
            "offered": float(n),
            "answered": float(self.answered),
            "abandoned": float(self.abandoned),
            "service_level": self.within / n if n else nan,
            "p_wait": self.waited / n if n else nan,
            "asa_s": self.wait_answered_s / self.answered if self.answered else nan,
            "abandon_rate": self.abandoned / n if n else nan,
            "mean_wait_s": self.wait_all_s / n if n else nan,
        }


def tallies(outcome: Outcome, end: float) -> dict[str, Tally]:
    """Per queue and "overall"."""
    result = {q: Tally() for q in outcome.queues}
    overall = Tally()
    for r in outcome.records:
        result[r.queue].add(r, end)
        overall.add(r, end)
    result["overall"] = overall
    return result


RATES = (
    "offered",
    "answered",
    "abandoned",
    "service_level",
    "p_wait",
    "asa_s",
    "abandon_rate",
    "mean_wait_s",
)


def summarize(outcomes: Sequence[Outcome], end: float) -> dict[str, Any]:
    """The figures of `summary.json`: per queue, overall and per agent group."""
    per_rep = [tallies(o, end) for o in outcomes]
    names = list(per_rep[0])
    queues: dict[str, Any] = {}
    for name in names:
        rates = [t[name].rates() for t in per_rep]
        queues[name] = {key: estimate([r[key] for r in rates]).as_dict() for key in RATES}
    groups: dict[str, Any] = {}
    for group in outcomes[0].groups:
        occupancy = [
            o.busy_s[group] / o.staffed_s[group] if o.staffed_s[group] else math.nan
            for o in outcomes
        ]
        groups[group] = {"occupancy": estimate(occupancy).as_dict()}
    overall_occupancy = [
        sum(o.busy_s.values()) / sum(o.staffed_s.values())
        if sum(o.staffed_s.values())
        else math.nan
        for o in outcomes
    ]
    for name in outcomes[0].queues:
        share = [
            o.queue_busy_s[name] / sum(o.staffed_s.values())
            if sum(o.staffed_s.values())
            else math.nan
            for o in outcomes
        ]
        queues[name]["occupancy"] = estimate(share).as_dict()
    overall = queues.pop("overall")
    overall["occupancy"] = estimate(overall_occupancy).as_dict()
    return {"queues": queues, "overall": overall, "agent_groups": groups}


def per_replication(
    outcomes: Sequence[Outcome], end: float, queue: str = "overall"
) -> list[dict[str, float]]:
    """Each replication's figures for one queue."""
    return [tallies(o, end)[queue].rates() for o in outcomes]


def estimates(
    outcomes: Sequence[Outcome], end: float, queue: str = "overall", level: float = 0.95
) -> dict[str, Estimate]:
    """The same figures as `summarize`, as `Estimate`s, for one queue (tests, staffing)."""
    rates = per_replication(outcomes, end, queue)
    return {key: estimate([r[key] for r in rates], level) for key in RATES}

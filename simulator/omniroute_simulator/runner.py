"""Replications of a scenario and what they write: summary.json, CSVs over time, the report.

Each replication is a `Simulation` with its own seed (`seed`, `seed + 1`, ...),
so a run is reproducible and two configurations compared with the same seed
see the same customers (common random numbers).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omniroute_router.config import RoutingConfig, WorkspaceConfig
from omniroute_simulator.scenario import Scenario, ScenarioError
from omniroute_simulator.simulation import Contact, Outcome, Simulation
from omniroute_simulator.statistics import summarize


def workspace_config(routing: RoutingConfig, scenario: Scenario) -> WorkspaceConfig:
    """The scenario's workspace rules; every arriving channel needs a service-level target."""
    config = routing.for_workspace(scenario.workspace)
    if config is None:
        raise ScenarioError(
            f"{scenario.source}: workspace: {scenario.workspace!r} is not in the routing configuration"
        )
    for i, stream in enumerate(scenario.arrivals):
        if stream.channel not in config.service_levels:
            raise ScenarioError(
                f"{scenario.source}: arrivals[{i}].channel: the routing configuration has no "
                f"service_levels.{stream.channel} for workspace {scenario.workspace!r}, "
                "so its service level cannot be measured"
            )
    return config


def replicate(
    scenario: Scenario,
    config: WorkspaceConfig,
    replications: int,
    seed: int,
    recorded: list[tuple[float, Contact]] | None = None,
) -> list[Outcome]:
    """Run `replications` independent replications (seeds `seed`, `seed + 1`, ...)."""
    return [
        Simulation(scenario, config, seed + r, recorded=recorded).run() for r in range(replications)
    ]


@dataclass
class Series:
    """Figures over time, averaged over replications, for the CSVs and the report."""

    times: list[float]  # end of each interval
    queues: dict[str, list[dict[str, float]]]  # queue -> one row per interval
    occupancy: dict[str, list[float]]  # agent group -> one value per interval
    waits: dict[str, list[float]]  # queue -> every answered wait, all replications


def series(outcomes: Sequence[Outcome], scenario: Scenario) -> Series:
    """Per-interval figures: arrivals binned by when they came, depth and occupancy sampled."""
    times = [t for t, _, _ in outcomes[0].samples]
    edges = [0.0, *times]
    reps = len(outcomes)
    queues: dict[str, list[dict[str, float]]] = {}
    waits: dict[str, list[float]] = {q: [] for q in outcomes[0].queues}
    for q in outcomes[0].queues:
        rows = []
        for k, t in enumerate(times):
            rows.append(
                {
                    "from_s": edges[k],
                    "to_s": t,
                    "offered": 0.0,
                    "answered": 0.0,
                    "within_target": 0.0,
                    "abandoned": 0.0,
                    "waiting": sum(o.samples[k][1].get(q, 0) for o in outcomes) / reps,
                }
            )
        queues[q] = rows
    for o in outcomes:
        for r in o.records:
            at = _bin(times, r.arrived)
            if at is None:
                continue
            row = queues[r.queue][at]
            row["offered"] += 1 / reps
            if r.wait >= 0:
                row["answered"] += 1 / reps
                waits[r.queue].append(r.wait)
                if r.wait <= r.target_s:
                    row["within_target"] += 1 / reps
            elif r.abandoned_after >= 0:
                row["abandoned"] += 1 / reps
    for rows in queues.values():
        for row in rows:
            row["service_level"] = (
                row["within_target"] / row["offered"] if row["offered"] else math.nan
            )
    occupancy = {
        g: [sum(o.samples[k][2][g] for o in outcomes) / reps for k in range(len(times))]
        for g in outcomes[0].groups
    }
    return Series(times, queues, occupancy, waits)


def _bin(times: list[float], t: float) -> int | None:
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        if times[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < len(times) else None


def summary(
    outcomes: Sequence[Outcome], scenario: Scenario, config: WorkspaceConfig, seed: int
) -> dict[str, Any]:
    """The content of summary.json."""
    result = summarize(outcomes, scenario.duration_s)
    result["run"] = {
        "workspace": scenario.workspace,
        "replications": len(outcomes),
        "seed": seed,
        "duration_s": scenario.duration_s,
        "warmup_s": scenario.warmup_s,
        "service_level_targets_s": dict(config.service_levels),
        "events": sum(o.events for o in outcomes),
        "all_answered_or_gone": all(o.drained for o in outcomes),
        "confidence": "95% Student-t interval across replications (mean ± ci95)",
    }
    result["agent_groups"] = {
        g.name: {"count": g.count, "tier": g.tier, **result["agent_groups"][g.name]}
        for g in scenario.agents
    }
    return result


def write_outputs(
    out: Path,
    outcomes: Sequence[Outcome],
    scenario: Scenario,
    config: WorkspaceConfig,
    seed: int,
    title: str,
) -> dict[str, Any]:
    """Write summary.json, queue-<name>.csv, occupancy.csv and report.html into `out`."""
    from omniroute_simulator.report import render  # plotting only when writing

    out.mkdir(parents=True, exist_ok=True)
    data = summary(outcomes, scenario, config, seed)
    (out / "summary.json").write_text(json.dumps(_finite(data), indent=2) + "\n")
    over_time = series(outcomes, scenario)
    for queue, rows in over_time.queues.items():
        with (out / f"queue-{_safe(queue)}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["from_s"])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if math.isnan(v) else round(v, 6) for k, v in row.items()})
    with (out / "occupancy.csv").open("w", newline="") as f:
        writer2 = csv.writer(f)
        writer2.writerow(["to_s", *over_time.occupancy])
        for k, t in enumerate(over_time.times):
            writer2.writerow([t, *(round(v[k], 6) for v in over_time.occupancy.values())])
    (out / "report.html").write_text(render(title, data, over_time, scenario, config))
    return data


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _finite(value: Any) -> Any:
    """JSON has no NaN: figures with no data become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value

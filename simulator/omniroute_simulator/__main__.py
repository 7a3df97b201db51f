"""`omniroute-simulate`: what-if runs, staffing, replays and Erlang figures.

omniroute-simulate run --routing R.yaml --scenario S.yaml --out DIR
omniroute-simulate staff --routing R.yaml --scenario S.yaml --target 0.8
omniroute-simulate replay --file period.jsonl --routing R.yaml --compare-routing R2.yaml --scenario S.yaml
omniroute-simulate export --out period.jsonl      (from the Kafka topics)
omniroute-simulate erlang --calls-per-hour 200 --handle-s 180 --agents 12-16 --target-s 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omniroute.settings import CommonSettings
from omniroute_router import config as routing_config
from omniroute_router.config import ConfigError, WorkspaceConfig
from omniroute_simulator import erlang, replay
from omniroute_simulator.runner import replicate, summary, workspace_config, write_outputs
from omniroute_simulator.scenario import Scenario
from omniroute_simulator.scenario import load as load_scenario
from omniroute_simulator.staffing import find_staffing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="omniroute-simulate",
        description="Simulate the router's own routing core on a virtual clock.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="simulate a scenario; write summary, CSVs, report")
    _common(run)
    run.add_argument("--replications", type=_positive, default=5)
    run.add_argument("--out", type=Path, required=True, help="folder for the results")

    staff = commands.add_parser("staff", help="the fewest agents per group reaching a target")
    _common(staff)
    staff.add_argument("--target", type=float, required=True, help="service level, e.g. 0.8")
    staff.add_argument("--replications", type=_positive, default=3)

    rep = commands.add_parser("replay", help="re-run a recorded period under other rules")
    source = rep.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", type=Path, help="an exported JSON-lines recording")
    source.add_argument("--kafka", action="store_true", help="read the topics (KAFKA_BOOTSTRAP)")
    rep.add_argument("--routing", type=Path, required=True, help="the recorded configuration")
    rep.add_argument("--scenario", type=Path, required=True, help="workspace, agents, behaviour")
    rep.add_argument("--compare-routing", type=Path, help="the configuration to try")
    rep.add_argument("--compare-scenario", type=Path, help="the staffing to try")
    rep.add_argument("--since", type=float, help="epoch seconds: first arrival to replay")
    rep.add_argument("--until", type=float, help="epoch seconds: replay arrivals before this")
    rep.add_argument("--replications", type=_positive, default=3)
    rep.add_argument("--seed", type=int, default=1)
    rep.add_argument("--out", type=Path, help="folder for both runs' results and comparison.json")

    export = commands.add_parser("export", help="write the topics' inquiries and task events")
    export.add_argument("--out", type=Path, required=True, help="JSON-lines file to write")

    erl = commands.add_parser("erlang", help="exact Erlang C / Erlang A figures")
    erl.add_argument("--calls-per-hour", type=float, required=True)
    erl.add_argument("--handle-s", type=float, required=True, help="mean handle time")
    erl.add_argument("--target-s", type=float, default=20.0, help="answer within (seconds)")
    erl.add_argument("--patience-s", type=float, help="mean patience: Erlang A (else Erlang C)")
    how = erl.add_mutually_exclusive_group(required=True)
    how.add_argument("--agents", help="a head count or a range, e.g. 14 or 12-18")
    how.add_argument("--service-level", type=float, help="find the fewest agents reaching it")

    args = parser.parse_args(argv)
    try:
        match args.command:
            case "run":
                return _run(args)
            case "staff":
                return _staff(args)
            case "replay":
                return _replay(args)
            case "export":
                return _export(args)
            case _:
                return _erlang(args)
    except (ConfigError, replay.RecordingError, ValueError) as exc:
        print(f"omniroute-simulate: {exc}", file=sys.stderr)
        return 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--routing", type=Path, required=True, help="routing configuration YAML")
    p.add_argument("--scenario", type=Path, required=True, help="scenario YAML")
    p.add_argument("--seed", type=int, default=1)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _load(routing: Path, scenario: Path) -> tuple[Scenario, WorkspaceConfig]:
    sc = load_scenario(scenario)
    return sc, workspace_config(routing_config.load(routing), sc)


def _run(args: argparse.Namespace) -> int:
    scenario, config = _load(args.routing, args.scenario)
    started = time.perf_counter()
    outcomes = replicate(scenario, config, args.replications, args.seed)
    seconds = time.perf_counter() - started
    title = f"What-if: {args.scenario.name} under {args.routing.name}"
    data = write_outputs(args.out, outcomes, scenario, config, args.seed, title)
    contacts = sum(len(o.records) for o in outcomes)
    print(
        f"{args.replications} replication(s), {contacts} measured contacts, "
        f"{sum(o.events for o in outcomes)} events in {seconds:.1f} s"
    )
    print(_table(data))
    print(f"\nwritten: {args.out}/summary.json, queue-*.csv, occupancy.csv, report.html")
    return 0


def _staff(args: argparse.Namespace) -> int:
    scenario, config = _load(args.routing, args.scenario)
    if not 0 < args.target < 1:
        raise ValueError("--target: a service level between 0 and 1, e.g. 0.8")

    def progress(counts: dict[str, int], ok: bool) -> None:
        verdict = "meets" if ok else "misses"
        print(f"  tried {sum(counts.values()):>5} agents {counts}: {verdict}", file=sys.stderr)

    result = find_staffing(scenario, config, args.target, args.replications, args.seed, progress)
    print(f"\nFewest agents for service level {args.target:.0%} in every queue:")
    print(f"{'agent group':<24}{'agents':>8}{'occupancy':>11}")
    for group, count in result.counts.items():
        print(f"{group:<24}{count:>8}{result.occupancy[group]:>10.1%}")
    print(f"{'total':<24}{result.total:>8}")
    print(f"\n{'queue':<24}{'service level':>15}")
    for queue, est in result.service_levels.items():
        print(f"{queue:<24}{est.mean:>10.1%} ± {est.half_width * 100:.1f}")
    print(f"\n({result.evaluations} staffings simulated, {args.replications} replication(s) each)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    scenario, config = _load(args.routing, args.scenario)
    if args.file:
        events = replay.read_file(args.file)
    else:
        settings = CommonSettings.from_env()
        events = replay.read_kafka_sync(
            settings.kafka_bootstrap, settings.topic_inquiries, settings.topic_task_events
        )
    recorded = replay.recording(events, scenario, args.since, args.until, args.seed)
    runs: list[tuple[str, Scenario, WorkspaceConfig]] = [("as recorded", scenario, config)]
    if args.compare_routing or args.compare_scenario:
        other = load_scenario(args.compare_scenario) if args.compare_scenario else scenario
        rules = (
            workspace_config(routing_config.load(args.compare_routing), other)
            if args.compare_routing
            else config
        )
        runs.append(("alternative", other, rules))
    columns: list[tuple[str, dict[str, Any]]] = [("recorded", _recorded_figures(recorded, config))]
    for label, sc, rules in runs:
        period = dataclasses.replace(sc, duration_s=recorded.duration_s, warmup_s=0.0)
        outcomes = replicate(period, rules, args.replications, args.seed, recorded.contacts)
        if args.out:
            folder = args.out / label.replace(" ", "-")
            write_outputs(folder, outcomes, period, rules, args.seed, f"Replay: {label}")
        columns.append((f"simulated {label}", summary(outcomes, period, rules, args.seed)))
    print(
        f"Replay of {len(recorded.contacts)} contacts of workspace {recorded.workspace!r} "
        f"over {recorded.duration_s / 3600:.2f} h\n"
    )
    print(_side_by_side(columns))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        comparison = {label: data for label, data in columns}
        (args.out / "comparison.json").write_text(json.dumps(comparison, indent=2, default=str))
        print(f"\nwritten: {args.out}/comparison.json and a folder per simulated run")
    return 0


def _recorded_figures(recorded: replay.Recording, config: WorkspaceConfig) -> dict[str, Any]:
    """What the recording itself says happened, in summary.json's shape (overall only)."""
    n = len(recorded.contacts)
    within = sum(
        1
        for _, c in recorded.contacts
        if c.id in recorded.recorded_waits
        and recorded.recorded_waits[c.id] <= config.service_levels.get(c.channel, math.inf)
    )
    waits = list(recorded.recorded_waits.values())

    def exact(v: float | None) -> dict[str, float | None]:
        return {"mean": v, "ci95": 0.0}

    return {
        "overall": {
            "offered": exact(n),
            "answered": exact(len(waits)),
            "abandoned": exact(len(recorded.abandoned)),
            "service_level": exact(within / n),
            "p_wait": exact(None),
            "asa_s": exact(sum(waits) / len(waits) if waits else None),
            "abandon_rate": exact(len(recorded.abandoned) / n),
        },
        "queues": {},
    }


def _export(args: argparse.Namespace) -> int:
    settings = CommonSettings.from_env()
    events = replay.read_kafka_sync(
        settings.kafka_bootstrap, settings.topic_inquiries, settings.topic_task_events
    )
    n = replay.write_file(args.out, events)
    print(
        f"{n} events from {settings.topic_inquiries} and {settings.topic_task_events} -> {args.out}"
    )
    return 0


def _erlang(args: argparse.Namespace) -> int:
    rate = args.calls_per_hour / 3600
    patience = args.patience_s if args.patience_s else math.inf
    model = "Erlang A" if math.isfinite(patience) else "Erlang C"
    if args.service_level is not None:
        best = erlang.agents_for_target(
            rate, args.handle_s, args.target_s, args.service_level, patience
        )
        rows = [best]
    else:
        lo, _, hi = args.agents.partition("-")
        rows = []
        for n in range(int(lo), int(hi or lo) + 1):
            try:
                rows.append(erlang.erlang_a(rate, args.handle_s, n, args.target_s, patience))
            except ValueError:
                continue  # too few agents for Erlang C: the queue grows without end
    load = rate * args.handle_s
    print(f"{model}: {args.calls_per_hour:g} contacts/h, mean handle {args.handle_s:g} s "
          f"({load:.2f} erlangs), target {args.target_s:g} s")  # fmt: skip
    print(
        f"{'agents':>7}{'P(wait)':>10}{'service level':>15}{'ASA s':>9}{'P(abandon)':>12}{'occupancy':>11}"
    )
    for f in rows:
        print(f"{f.agents:>7}{f.p_wait:>10.5f}{f.service_level:>15.6f}{f.asa_s:>9.2f}"
              f"{f.p_abandon:>12.6f}{f.occupancy:>11.3f}")  # fmt: skip
    if not rows:
        print("  (no head count in the range can carry the load without abandonment)")
    return 0


def _fmt(est: dict[str, Any] | None, kind: str) -> str:
    if not est or est.get("mean") is None:
        return "-"
    mean, ci = est["mean"], est.get("ci95") or 0.0
    if kind == "pct":
        return f"{mean * 100:.1f}%" + (f" ±{ci * 100:.1f}" if ci else "")
    if kind == "s":
        return f"{mean:.1f} s" + (f" ±{ci:.1f}" if ci else "")
    return f"{mean:.0f}" + (f" ±{ci:.0f}" if ci >= 1 else "")


_ROWS = (
    ("offered", "n"),
    ("answered", "n"),
    ("abandoned", "n"),
    ("service_level", "pct"),
    ("p_wait", "pct"),
    ("asa_s", "s"),
    ("abandon_rate", "pct"),
)


def _table(data: dict[str, Any]) -> str:
    queues = [*data["queues"].items(), ("overall", data["overall"])]
    head = f"{'':<16}" + "".join(f"{name[:18]:>20}" for name, _ in queues)
    lines = [head]
    for key, kind in _ROWS:
        lines.append(f"{key:<16}" + "".join(f"{_fmt(q.get(key), kind):>20}" for _, q in queues))
    lines.append(
        f"{'occupancy':<16}" + "".join(f"{_fmt(q.get('occupancy'), 'pct'):>20}" for _, q in queues)
    )
    return "\n".join(lines)


def _side_by_side(columns: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [f"{'overall':<16}" + "".join(f"{label[:24]:>26}" for label, _ in columns)]
    for key, kind in _ROWS:
        lines.append(
            f"{key:<16}" + "".join(f"{_fmt(d['overall'].get(key), kind):>26}" for _, d in columns)
        )
    queues = {
        q for _, d in columns for q, figures in d["queues"].items() if figures["offered"]["mean"]
    }
    for queue in sorted(queues):
        lines.append(f"\nqueue {queue}")
        for key in ("offered", "service_level", "asa_s", "abandon_rate"):
            kind = dict(_ROWS)[key]
            lines.append(
                f"  {key:<14}"
                + "".join(
                    f"{_fmt(d['queues'].get(queue, {}).get(key), kind):>26}" for _, d in columns
                )
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""The routing core alone at scale: cost per event and per tick against queue length.

`python -m benchmarks.core_bench` builds one workspace (the `acme` rules of
deploy/routing.example.yaml) with 20,000 agents, every one of them busy except
a few who fit nothing waiting (they speak only German), and a queue of waiting
inquiries that arrived at 10 a second (so 10,000 waited up to 17 minutes and
1,000,000 up to 28 hours). Both queues are older than the longest ladder step
(600 s), so both hold every match kind the rules make (the core's costs grow
with the number of kinds, which the configuration bounds, not the queue), and
ladder steps fall due at the same rate in both. Then, with no broker and no
I/O, it times what the router does per input:

- a new inquiry: `admit` and `plan` narrowed to it (as the adapter does);
- a freed agent who fits nothing: `update_agent` and `plan` narrowed to it;
- a freed agent who fits the head of the queue: the same, one offer made;
- a tick: `housekeeping`, a full `plan` and the queue figures the gauges and
  the wallboard's snapshot show (`build_snapshot`), the clock 1 s further;

and the memory the workspace takes (the process's resident size before and
after building it), and the core's part of a restore: a new `WorkspaceRouter`
given every agent and inquiry back (`restore_agent`, `restore_inquiry`, as
the adapter does from its tables) up to its first tick done. The issue's target: each figure at 1,000,000 waiting
within 2x of the one at 10,000.

Times are this process's CPU time (`time.process_time`), as in sim_bench:
fair on a shared machine, where other work would otherwise count as ours.

`measure()` returns the figures as a `CoreFigures`, for other benchmarks
(router_bench) to call; `main()` prints them.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from omniroute_router import config as routing_config
from omniroute_router.model import AgentStatus, AgentView, QueuedInquiry
from omniroute_router.routing import WorkspaceRouter
from omniroute_router.snapshots import build_snapshot

WORKSPACE = "acme"
EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "routing.example.yaml"
ARRIVALS_PER_S = 10.0
T0 = 1_800_000_000.0
CAPACITY = {"voice": 1, "chat": 3, "email": 5, "sms": 3}
SKILLS = ("billing", "technical", "sales", "returns", "complaints")
KINDS = ("question", "request", "complaint", "order", "return", "service_problem")
IDLE_GERMANS = 20  # free agents nobody waiting fits: every plan looks at them


@dataclass(frozen=True)
class CoreFigures:
    """One scale point; times are means in milliseconds."""

    waiting: int
    agents: int
    build_s: float  # admitting every waiting inquiry, once
    restore_s: float  # a new core given the state back, up to its first tick done
    memory_mb: float  # resident size the workspace added
    new_inquiry_ms: float
    freed_fits_nothing_ms: float
    freed_fits_one_ms: float
    tick_ms: float

    def line(self) -> str:
        return (
            f"{self.waiting:>10,}{self.agents:>8,}{self.memory_mb:>10.0f}"
            f"{self.new_inquiry_ms:>10.3f}{self.freed_fits_nothing_ms:>12.3f}"
            f"{self.freed_fits_one_ms:>12.3f}{self.tick_ms:>10.2f}{self.build_s:>9.1f}"
            f"{self.restore_s:>11.1f}"
        )


HEADER = (
    f"{'waiting':>10}{'agents':>8}{'mem MB':>10}{'new ms':>10}{'freed-0 ms':>12}"
    f"{'freed-1 ms':>12}{'tick ms':>10}{'build s':>9}{'restore s':>11}"
)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _agent(n: int, rng: random.Random) -> AgentView:
    tier = 1 if n % 20 < 16 else (2 if n % 20 < 19 else 3)
    return AgentView(
        id=f"agent-{n:06d}",
        workspace=WORKSPACE,
        skills={s: rng.randint(1, 5) for s in rng.sample(SKILLS, 3)},
        languages=("en", "es") if n % 4 == 0 else ("en",),
        tier=tier,
        capacity=dict(CAPACITY),
        load=dict(CAPACITY),  # busy: no free slot
        status=AgentStatus.AVAILABLE,
        idle_since=T0 - n,
        version=1,
    )


def _inquiry(n: int, arrived: float, rng: random.Random) -> QueuedInquiry:
    skill = rng.choice(("billing", "technical", ""))
    return QueuedInquiry(
        id=f"inq-{n:08d}",
        workspace=WORKSPACE,
        channel=rng.choice(("chat", "chat", "email", "voice", "sms")),
        queue="",
        arrived_at=arrived,
        kind=rng.choice(KINDS),
        language="es" if rng.random() < 0.2 else "en",
        segment="vip" if rng.random() < 0.05 else "",
        skills={skill: rng.randint(1, 4)} if skill else {},
    )


def _german(n: int) -> AgentView:
    return AgentView(
        id=f"german-{n:03d}",
        workspace=WORKSPACE,
        skills={s: 5 for s in SKILLS},
        languages=("de",),
        tier=1,
        capacity=dict(CAPACITY),
        status=AgentStatus.AVAILABLE,
        idle_since=T0,
        version=1,
    )


def build(waiting: int, agents: int, seed: int) -> tuple[WorkspaceRouter, float]:
    """A workspace with `agents` busy agents and `waiting` inquiries; its clock now."""
    parsed = routing_config.load(EXAMPLE_CONFIG).for_workspace(WORKSPACE)
    assert parsed is not None
    rng = random.Random(seed)
    router = WorkspaceRouter(WORKSPACE, parsed)
    for n in range(agents):
        router.update_agent(_agent(n, rng))
    for n in range(IDLE_GERMANS):
        router.update_agent(_german(n))
    now = T0 + waiting / ARRIVALS_PER_S
    for n in range(waiting):
        arrived = T0 + n / ARRIVALS_PER_S
        router.admit(_inquiry(n, arrived, rng), arrived)
    router.housekeeping(now)
    router.plan(now)
    router.drain_changes()
    router.drain_notices()
    return router, now


def restore(router: WorkspaceRouter, now: float) -> float:
    """Seconds for a new core to take `router`'s state back and run its first tick."""
    started = time.process_time()
    restored = WorkspaceRouter(router.workspace, router.config)
    for agent in router.agents.values():
        restored.restore_agent(agent)
    for inquiry in router.inquiries.values():
        restored.restore_inquiry(inquiry)
    restored.housekeeping(now)
    restored.plan(now)
    return time.process_time() - started


def _mean_ms(samples: list[float]) -> float:
    return statistics.fmean(samples) * 1000


def measure(
    waiting: int, agents: int = 20_000, reps: int = 200, ticks: int = 20, seed: int = 1
) -> CoreFigures:
    """Build the workspace and time each operation `reps` times (ticks: `ticks` times)."""
    gc.collect()
    before = _rss_mb()
    started = time.process_time()
    router, now = build(waiting, agents, seed)
    build_s = time.process_time() - started
    gc.collect()
    memory = _rss_mb() - before
    rng = random.Random(seed + 1)

    new: list[float] = []
    for n in range(reps):
        inquiry = _inquiry(waiting + n, now, rng)
        started = time.process_time()
        router.admit(inquiry, now)
        router.plan(now, inquiry_ids=[inquiry.id])
        new.append(time.process_time() - started)
        router.abandoned(inquiry.id, now)  # the queue keeps its length

    nothing: list[float] = []
    german = router.agents["german-000"]
    for _ in range(reps):
        busy = replace(german, load={"chat": 3}, version=german.version + 1)
        router.update_agent(busy)
        freed = replace(busy, load={"chat": 2}, version=busy.version + 1)
        started = time.process_time()
        router.update_agent(freed)
        offers = router.plan(now, agent_ids=[freed.id])
        nothing.append(time.process_time() - started)
        assert not offers, "a German speaker fits nobody waiting"
        german = freed
    router.update_agent(replace(german, load={}, version=german.version + 1))

    one: list[float] = []
    for n in range(reps):
        helper = AgentView(
            id=f"helper-{n:04d}",
            workspace=WORKSPACE,
            skills={s: 5 for s in SKILLS},
            languages=("en", "es"),
            tier=1,
            capacity={"chat": 1},
            status=AgentStatus.AVAILABLE,
            idle_since=now,
            version=1,
        )
        started = time.process_time()
        router.update_agent(helper)
        offers = router.plan(now, agent_ids=[helper.id])
        one.append(time.process_time() - started)
        assert len(offers) == 1, offers
        router.abandoned(offers[0].inquiry_id, now)
        router.remove_agent(helper.id)

    tick: list[float] = []
    for _ in range(ticks):
        now += 1.0
        started = time.process_time()
        router.housekeeping(now)
        router.plan(now)
        build_snapshot(router, {}, now)
        tick.append(time.process_time() - started)
        router.drain_changes()
        router.drain_notices()

    restore_s = restore(router, now)
    return CoreFigures(
        waiting=waiting,
        agents=agents,
        build_s=build_s,
        restore_s=restore_s,
        memory_mb=memory,
        new_inquiry_ms=_mean_ms(new),
        freed_fits_nothing_ms=_mean_ms(nothing),
        freed_fits_one_ms=_mean_ms(one),
        tick_ms=_mean_ms(tick),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--agents", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args()
    print(
        f"routing core, one workspace, {args.agents:,} busy agents (+{IDLE_GERMANS} free who fit "
        f"nothing), arrivals {ARRIVALS_PER_S:g}/s; means of {args.reps} ops, {args.ticks} ticks\n"
    )
    print(HEADER)
    rows = []
    for waiting in args.waiting:
        row = measure(waiting, args.agents, args.reps, args.ticks)
        rows.append(row)
        print(row.line(), flush=True)
    if len(rows) > 1:
        low, high = rows[0], rows[-1]
        print(f"\nratio {high.waiting:,} / {low.waiting:,} waiting (target: at most 2):")
        for name in ("new_inquiry_ms", "freed_fits_nothing_ms", "freed_fits_one_ms", "tick_ms"):
            print(f"  {name:<24}{getattr(high, name) / getattr(low, name):>6.2f}x")


if __name__ == "__main__":
    main()

"""`make bench`: the router end to end through the broker, the broker's floor, and the
router at scale.

`make bench` runs on the embedded broker (Tansu); `make bench BROKER=kafka`
(`--broker kafka`) on Apache Kafka. `make bench ARGS=--quick` runs every
scenario smaller (a few minutes: a check, not figures);
`make bench ARGS=--only=burst,scale` runs some of them.

Scenarios:
- floor: a Faust agent on the same broker that consumes inquiries and
  produces one event each (what the router is compared with);
- steady: 100 and 5,000 simulated agents, 50 inquiries/s: routing latency
  (inquiry on the `inquiries` topic -> its assignment on `assignments`, from
  the records' timestamps), p50/p95/p99;
- burst: the same agents, a burst of inquiries: throughput and latency;
- drain: 5,000 agents come back from a break to 10,000 waiting inquiries;
- scale: one workspace with 20,000 agents and 1,000,000 waiting inquiries
  (`benchmarks/scale_bench.py`): the router worker's memory and restore time
  after a restart, the routing core's cost per new inquiry, per freed agent
  and per tick at 10,000 and 1,000,000 waiting, agent-state's restart.

For every end-to-end scenario it prints the events the router consumed per
routed inquiry (from its consumer group's committed offsets), and at the end
one table of every figure beside the issue's targets.

Simulated agents accept each offer after 50-200 ms and complete it after a
handle time drawn around a realistic average, compressed 1:600 (a 4-minute
chat takes 0.4 s) so that a run fits in a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks import scale_bench
from benchmarks.harness import (
    PARTITIONS,
    Consumed,
    EventCount,
    Processes,
    Services,
    difference,
    progress,
)
from devstack.brokers import BrokerKind, new_broker
from devstack.processes import ServiceProcess
from omniroute.codec import decode, encode, timestamp
from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2

SCENARIOS = ("floor", "steady", "burst", "drain", "scale")
SKILLS = ("billing", "technical", "sales", "returns")
CHANNELS = (inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL, inquiry_pb2.CHANNEL_VOICE)
TIME_SCALE = 600.0  # simulated seconds per real second
AVERAGE_HANDLE_S = {  # realistic averages, before compression
    inquiry_pb2.CHANNEL_CHAT: 240.0,
    inquiry_pb2.CHANNEL_EMAIL: 300.0,
    inquiry_pb2.CHANNEL_VOICE: 360.0,
}


@dataclass(frozen=True)
class Plan:
    """What a run measures, and how big (`--quick`: everything smaller)."""

    only: frozenset[str]
    quick: bool = False
    restore_limit_s: float = 600.0

    def wants(self, scenario: str) -> bool:
        """Whether `scenario` is part of this run."""
        return scenario in self.only

    @property
    def floor_count(self) -> int:
        return 1000 if self.quick else 5000

    @property
    def steady_count(self) -> int:
        return 250 if self.quick else 1000

    @property
    def many_agents(self) -> int:
        return 1000 if self.quick else 5000

    @property
    def big_burst(self) -> int:
        return 1000 if self.quick else 3000

    @property
    def backlog(self) -> int:
        return 2000 if self.quick else 10_000

    @property
    def scale_agents(self) -> int:
        return 2000 if self.quick else 20_000

    @property
    def scale_levels(self) -> tuple[int, ...]:
        return (10_000, 50_000) if self.quick else (10_000, 1_000_000)


@dataclass
class Figures:
    """One measured run."""

    name: str
    count: int
    seconds: float
    latencies: list[float]

    @property
    def throughput(self) -> float:
        """Items per second over the run."""
        return self.count / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def line(self) -> str:
        """A row of the results table."""
        return (
            f"{self.name:<44} {self.count:>7} {self.throughput:>10.0f}/s "
            f"{self.percentile(50):>9.1f} {self.percentile(95):>9.1f} {self.percentile(99):>9.1f}"
        )


@dataclass
class Results:
    """Everything a run measured (also the part measured before a failure)."""

    plan: Plan
    broker: str
    rows: list[Figures] = field(default_factory=list)
    events: list[EventCount] = field(default_factory=list)
    scale: scale_bench.ScaleResult | None = None

    def row(self, suffix: str) -> Figures | None:
        """The row whose name ends with `suffix`."""
        return next((r for r in self.rows if r.name.endswith(suffix)), None)


def make_inquiry(workspace: str, rng: random.Random) -> inquiry_pb2.Inquiry:
    """A realistic inquiry: one channel, one required skill, English or Spanish."""
    return inquiry_pb2.Inquiry(
        id=uuid.uuid4().hex,
        workspace=workspace,
        channel=rng.choice(CHANNELS),
        kind=inquiry_pb2.INQUIRY_KIND_QUESTION,
        subject="benchmark",
        language=rng.choice(("en", "en", "en", "es")),
        required_skills=[inquiry_pb2.SkillRequirement(name=rng.choice(SKILLS), min_proficiency=2)],
        received_at=timestamp(time.time()),
    )


def make_agent(workspace: str, n: int, rng: random.Random) -> agent_pb2.Agent:
    """The n-th agent of a workspace: two skills, English (every other one also Spanish).

    Skills rotate so that every workspace with 4 or more agents covers every
    skill in both languages: no inquiry of the benchmark is unroutable.
    """
    return agent_pb2.Agent(
        id=f"{workspace}-agent-{n}",
        workspace=workspace,
        name=f"Agent {n}",
        skills={SKILLS[(n + k) % len(SKILLS)]: rng.randint(2, 5) for k in (0, 1)},
        languages=["en", "es"] if n % 2 == 0 else ["en"],
        tier=agent_pb2.TIER_REPRESENTATIVE,
        capacities=[
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_CHAT, capacity=3),
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_EMAIL, capacity=5),
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_VOICE, capacity=1),
        ],
    )


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    inquiries: Iterable[inquiry_pb2.Inquiry],
    rate: float | None,
) -> None:
    """Publish inquiries keyed by workspace, at `rate` per second or as fast as possible."""
    started = time.monotonic()
    pending = []
    for n, inquiry in enumerate(inquiries):
        if rate:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        pending.append(await producer.send(topic, encode(inquiry), key=inquiry.workspace.encode()))
    await asyncio.gather(*pending)


class Outputs:
    """Reads an output topic and remembers when each inquiry id first appeared on it."""

    def __init__(self, bootstrap: str, topic: str, id_of: type) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=50
        )
        self.id_of = id_of
        self.first_seen: dict[str, float] = {}
        self.records: list[tuple[float, object]] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Outputs:
        """Start reading in the background."""
        await self.consumer.start()
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    message: Any = decode(self.id_of, record.value)
                    key = getattr(message, "inquiry_id", "") or getattr(message, "id", "")
                    self.first_seen.setdefault(key, record.timestamp / 1000)
                    self.records.append((record.timestamp / 1000, message))

    async def wait_for(self, ids: set[str], timeout_s: float, *watched: ServiceProcess) -> None:
        """Until every id has appeared; fail after `timeout_s`, or at once (with its log)
        when one of the `watched` processes died."""
        deadline = time.monotonic() + timeout_s
        while not ids <= self.first_seen.keys():
            for process in watched:
                if process.process is not None and process.process.poll() is not None:
                    raise RuntimeError(f"{process.module} exited:\n{process.log()[-5000:]}")
            if time.monotonic() > deadline:
                missing = len(ids - self.first_seen.keys())
                raise RuntimeError(f"{missing} of {len(ids)} never appeared in {timeout_s}s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop reading."""
        if self.task:
            self.task.cancel()
        await self.consumer.stop()


def figures(name: str, sent: dict[str, float], outputs: Outputs) -> Figures:
    """Latency per inquiry (output minus input record time) and throughput over the run."""
    latencies = [outputs.first_seen[i] - t for i, t in sent.items()]
    first_in = min(sent.values())
    last_out = max(outputs.first_seen[i] for i in sent)
    return Figures(name, len(sent), last_out - first_in, latencies)


class SentTimes:
    """Input record timestamps, read back from the topic for exactness."""

    @staticmethod
    async def read(bootstrap: str, topic: str, ids: set[str]) -> dict[str, float]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        found: dict[str, float] = {}
        try:
            while not ids <= found.keys():
                batches = await consumer.getmany(timeout_ms=500)
                if not batches:
                    break
                for records in batches.values():
                    for record in records:
                        inquiry = decode(inquiry_pb2.Inquiry, record.value)
                        if inquiry.id in ids:
                            found.setdefault(inquiry.id, record.timestamp / 1000)
        finally:
            await consumer.stop()
        return found


async def run_floor(broker: Broker, count: int, work: Path, processes: Processes) -> Figures:
    """The Faust forwarding agent: `count` inquiries in a burst."""
    suffix = uuid.uuid4().hex[:6]
    source, sink = f"floor-in-{suffix}", f"floor-out-{suffix}"
    env = {
        "KAFKA_BOOTSTRAP": broker.bootstrap,
        "KAFKA_BROKER_KIND": broker.kind,
        "KAFKA_PARTITIONS": str(PARTITIONS),
        "FLOOR_IN": source,
        "FLOOR_OUT": sink,
        "FLOOR_APP_ID": f"floor-{suffix}",
    }
    floor = processes.start("benchmarks.floor", env, work / "floor.log")
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    await producer.start()
    outputs = await Outputs(broker.bootstrap, sink, inquiry_pb2.Inquiry).start()
    rng = random.Random(1)
    try:
        warm = make_inquiry("floor", rng)
        progress("floor: waiting for the Faust worker to join")
        await publish(producer, source, [warm], None)
        await outputs.wait_for({warm.id}, 90, floor)
        batch = [make_inquiry(f"ws-{n % 16}", rng) for n in range(count)]
        progress(f"floor: {count} inquiries in a burst")
        await publish(producer, source, batch, None)
        await outputs.wait_for({i.id for i in batch}, 300, floor)
        sent = await SentTimes.read(broker.bootstrap, source, {i.id for i in batch})
        return figures("floor: Faust consume + produce one event", sent, outputs)
    finally:
        await outputs.stop()
        await producer.stop()
        processes.stop(floor)


class Desks:
    """Simulated agents: accept each offer, complete it after a compressed handle time."""

    def __init__(self, target: str, rng: random.Random) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = agent_state_pb2_grpc.AgentStateStub(self.channel)
        self.rng = rng
        self.tasks: set[asyncio.Task[None]] = set()

    async def login(self, agents: list[agent_pb2.Agent], status: int) -> None:
        """Create the agents with the given presence, 64 calls at a time."""
        limit = asyncio.Semaphore(64)

        async def one(agent: agent_pb2.Agent) -> None:
            async with limit:
                await self.stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=agent))
                await self.set_status(agent.id, status)

        await asyncio.gather(*(one(a) for a in agents))

    async def set_all(self, agent_ids: list[str], status: int) -> None:
        """Change the presence of many agents, 64 calls at a time."""
        limit = asyncio.Semaphore(64)

        async def one(agent_id: str) -> None:
            async with limit:
                await self.set_status(agent_id, status)

        await asyncio.gather(*(one(a) for a in agent_ids))

    async def set_status(self, agent_id: str, status: int) -> None:
        """Change one agent's presence."""
        reason = "break" if status == agent_pb2.AGENT_STATUS_AWAY else ""
        await self.stub.SetStatus(
            agent_state_pb2.SetStatusRequest(agent_id=agent_id, status=status, reason=reason)  # type: ignore[arg-type]
        )

    def offered(self, assignment: task_pb2.Assignment) -> None:
        """Work an offer in the background."""
        task = asyncio.create_task(self._work(assignment))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _work(self, a: task_pb2.Assignment) -> None:
        request = agent_state_pb2.TaskRequest(agent_id=a.agent_id, inquiry_id=a.inquiry_id)
        await asyncio.sleep(self.rng.uniform(0.05, 0.2))
        try:
            await self.stub.AcceptTask(request)
            average = AVERAGE_HANDLE_S.get(a.channel, 300.0) / TIME_SCALE
            await asyncio.sleep(self.rng.expovariate(1 / average))
            await self.stub.CompleteTask(
                agent_state_pb2.CompleteTaskRequest(
                    agent_id=a.agent_id,
                    inquiry_id=a.inquiry_id,
                    resolution=task_pb2.RESOLUTION_RESOLVED,
                )
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:  # the scenario closed its desks
                progress(f"desk {a.agent_id}: {exc.code().name} {exc.details()}")

    async def idle(self) -> None:
        """Until every offer handed over so far is worked off."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    async def close(self) -> None:
        """Wait for work in progress, then close."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.channel.close()


async def run_router(
    broker: Broker, agents: int, work: Path, processes: Processes, plan: Plan, results: Results
) -> None:
    """agent-state and one router worker; the steady flow, the burst and (with the many
    agents, when asked) the backlog, each with the events the router consumed for it."""
    services = Services(broker, work, f"{agents}-agents")
    progress(f"{agents} agents: starting agent-state and a router worker")
    agent_state = await services.start_agent_state(processes)
    router = await services.start_router(processes)
    topic = services.topics["TOPIC_INQUIRIES"]
    rng = random.Random(agents)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    outputs = Outputs(broker.bootstrap, services.topics["TOPIC_ASSIGNMENTS"], task_pb2.Assignment)
    consumed = Consumed(broker.bootstrap, services.app_id, services.input_topics())
    desks = Desks(services.target, rng)
    forwarder: asyncio.Task[None] | None = None
    try:
        await producer.start()
        await outputs.start()
        forwarder = asyncio.create_task(_forward(outputs, desks))
        workspaces = [f"bench-{services.suffix}-{n}" for n in range(8)]
        roster = [
            make_agent(workspaces[n % len(workspaces)], n // len(workspaces), rng)
            for n in range(agents)
        ]
        progress(f"{agents} agents: logging in")
        await desks.login(roster, agent_pb2.AGENT_STATUS_AVAILABLE)

        def batch(n: int) -> list[inquiry_pb2.Inquiry]:
            return [make_inquiry(rng.choice(workspaces), rng) for _ in range(n)]

        async def routed(inquiries: list[inquiry_pb2.Inquiry], timeout_s: float) -> None:
            await outputs.wait_for({i.id for i in inquiries}, timeout_s, router, agent_state)

        async def measure(
            name: str, inquiries: list[inquiry_pb2.Inquiry], rate: float | None
        ) -> None:
            progress(f"{agents} agents: {name} ({len(inquiries)} inquiries)")
            before = await consumed.settled()
            await publish(producer, topic, inquiries, rate)
            await routed(inquiries, 300)
            sent = await SentTimes.read(broker.bootstrap, topic, {i.id for i in inquiries})
            results.rows.append(figures(f"router, {agents} agents: {name}", sent, outputs))
            await desks.idle()
            after = await consumed.settled()
            results.events.append(
                EventCount(f"{agents} agents: {name}", len(inquiries), difference(after, before))
            )

        progress(f"{agents} agents: warm-up")
        warm = batch(50)
        await publish(producer, topic, warm, 50)
        await routed(warm, 120)
        await desks.idle()
        if plan.wants("steady"):
            await measure("steady 50 inquiries/s", batch(plan.steady_count), 50)
        if plan.wants("burst"):
            await measure("burst", batch(min(plan.big_burst, agents * 3)), None)
        if not (plan.wants("drain") and agents == plan.many_agents):
            return
        backlog = plan.backlog
        before = await consumed.settled()
        await desks.set_all([a.id for a in roster], agent_pb2.AGENT_STATUS_AWAY)
        waiting = batch(backlog)
        progress(f"{agents} agents on a break: {backlog} inquiries queue up")
        await publish(producer, topic, waiting, None)
        deadline = time.monotonic() + 300
        while services.router_metric("omniroute_router_queue_depth{") < backlog:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the backlog of {backlog} never fully queued")
            if router.process is not None and router.process.poll() is not None:
                raise RuntimeError(f"the router exited:\n{router.log()[-5000:]}")
            await asyncio.sleep(0.5)
        progress(f"{agents} agents back from the break: draining {backlog} waiting inquiries")
        back = time.time()
        await desks.set_all([a.id for a in roster], agent_pb2.AGENT_STATUS_AVAILABLE)
        await routed(waiting, 600)
        latencies = [outputs.first_seen[i.id] - back for i in waiting]
        name = f"router, {agents} agents: drain {backlog} waiting"
        results.rows.append(Figures(name, backlog, max(latencies), latencies))
        await desks.idle()
        after = await consumed.settled()
        label = f"{agents} agents: drain (break events counted)"
        results.events.append(EventCount(label, backlog, difference(after, before)))
    finally:
        if forwarder is not None:
            forwarder.cancel()
        await outputs.stop()
        await producer.stop()
        await desks.close()
        processes.stop(router)
        processes.stop(agent_state)


async def _forward(outputs: Outputs, desks: Desks) -> None:
    """Hand every new assignment to the simulated desks."""
    handed = 0
    while True:
        while handed < len(outputs.records):
            _, assignment = outputs.records[handed]
            handed += 1
            assert isinstance(assignment, task_pb2.Assignment)
            desks.offered(assignment)
        await asyncio.sleep(0.01)


async def main(kind: BrokerKind, plan: Plan) -> Results:
    """Run the chosen scenarios on a broker of `kind`; print the tables (also after a failure)."""
    work = Path(tempfile.mkdtemp(prefix="omniroute-bench-"))
    started = time.monotonic()
    chosen = ", ".join(s for s in SCENARIOS if plan.wants(s))
    quick = (
        " (quick: smaller counts, figures not comparable with the targets)" if plan.quick else ""
    )
    print(
        f"Omniroute benchmark ({kind} broker, {os.cpu_count()} cores; {chosen}{quick}; logs in {work})"
    )
    results = Results(plan, str(kind))
    processes = Processes()
    broker = new_broker(kind, log_path=work / "broker.log")
    current = asyncio.current_task()
    if current is not None:  # SIGTERM stops the run as Ctrl-C does: everything by pid
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    try:
        broker.start()
        if plan.wants("floor"):
            results.rows.append(await run_floor(broker, plan.floor_count, work, processes))
        if plan.wants("steady") or plan.wants("burst"):
            await run_router(broker, 100, work, processes, plan, results)
        if plan.only & {"steady", "burst", "drain"}:
            await run_router(broker, plan.many_agents, work, processes, plan, results)
        if plan.wants("scale"):
            results.scale = await scale_bench.run_scale(
                broker,
                work,
                processes,
                plan.scale_agents,
                plan.scale_levels,
                plan.quick,
                plan.restore_limit_s,
            )
    finally:
        processes.stop_all()
        broker.close()
        report(results, time.monotonic() - started)
    return results


def report(results: Results, elapsed: float) -> None:
    """Print the results, then one table of every figure beside its target."""
    rows = results.rows
    if rows:
        print()
        print(
            f"{'scenario':<44} {'count':>7} {'throughput':>12} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}"
        )
        for row in rows:
            print(row.line())
        print(
            "(latency: inquiry record on the topic -> assignment record; drain: agents back -> assignment)"
        )
    if results.events:
        print()
        print("Events the router consumed per routed inquiry (its committed input offsets):")
        for count in results.events:
            print(count.line())
    if results.scale is not None:
        print()
        results.scale.print()
    print()
    print_targets(results)
    print(f"total time {elapsed:.0f} s")


def print_targets(results: Results) -> None:
    """Every figure of the run beside the issue's target, met or missed."""
    lines: list[tuple[str, str, str, str]] = []
    quick = results.plan.quick

    def verdict(ok: bool | None) -> str:
        if ok is None:
            return "-"
        if quick:
            return "(quick run)"
        return "met" if ok else "MISSED"

    floor = results.row("Faust consume + produce one event")
    if floor:
        lines.append(("floor (events/s)", f"{floor.throughput:,.0f}", "", "-"))
    for row in results.rows:
        if row is floor:
            continue
        name = row.name.removeprefix("router, ")
        if name.endswith("steady 50 inquiries/s"):
            p99 = row.percentile(99)
            lines.append((f"{name}: p99", f"{p99:,.0f} ms", "< 100 ms", verdict(p99 < 100)))
        elif name.endswith("burst"):
            lines.append((f"{name}: inquiries/s", f"{row.throughput:,.0f}", "", "-"))
            big = name.startswith(f"{results.plan.many_agents} agents")
            if floor and big:
                ratio = row.throughput / floor.throughput
                lines.append(
                    (f"{name}: router/floor", f"{ratio:.2f}", ">= 0.25", verdict(ratio >= 0.25))
                )
            p99 = row.percentile(99) / 1000
            target = "< 3 s" if big else ""
            lines.append((f"{name}: p99", f"{p99:.1f} s", target, verdict(p99 < 3) if big else "-"))
        elif "drain" in name:
            lines.append(
                (f"{name}: all routed", f"{row.seconds:.1f} s", "< 10 s", verdict(row.seconds < 10))
            )
    for count in results.events:
        lines.append(
            (
                f"events per inquiry, {count.scenario}",
                f"{count.per_inquiry:.2f}",
                "fewer (was ~7)",
                "-",
            )
        )
    if results.scale is not None:
        lines += results.scale.target_lines(verdict)
    if not lines:
        return
    width = max(len(line[0]) for line in lines)
    measured = max(12, *(len(line[1]) for line in lines))
    print(f"{'figure':<{width}}  {'measured':>{measured}}  {'target':<16} verdict")
    for figure, value, target, outcome in lines:
        print(f"{figure:<{width}}  {value:>{measured}}  {target:<16} {outcome}")


def parse_only(text: str) -> frozenset[str]:
    """`--only burst,scale` -> the scenarios named (an error naming any unknown one)."""
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = names - set(SCENARIOS)
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(sorted(unknown)) or '(none)'}: choose from {', '.join(SCENARIOS)}"
        )
    return names


def cli(argv: list[str] | None = None) -> int:
    """`make bench [BROKER=kafka] [ARGS="--quick --only=burst,scale"]`."""
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--broker", type=BrokerKind, choices=list(BrokerKind), default=BrokerKind.TANSU
    )
    parser.add_argument("--quick", action="store_true", help="every scenario smaller (minutes)")
    parser.add_argument(
        "--only",
        type=parse_only,
        default=frozenset(SCENARIOS),
        help=f"comma-separated scenarios to run, of: {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--restore-limit",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="scale: give up waiting for a restarted router's restore after this long (600)",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(main(args.broker, Plan(args.only, args.quick, args.restore_limit)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: every process the benchmark started was stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # the tables above show what was measured before it
        print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())

"""`make bench`: the router end to end through the broker, and the broker's floor.

`make bench` runs on the embedded broker (Tansu); `make bench BROKER=kafka`
(`--broker kafka`) on Apache Kafka.

Prints, for 100 and 5,000 simulated agents:
- routing latency (inquiry on the `inquiries` topic -> its assignment on the
  `assignments` topic, from the records' timestamps) at a steady arrival rate
  the agents can absorb, p50/p95/p99;
- throughput (inquiries routed per second) for a burst of inquiries;
- for 5,000 agents, a backlog of 10,000 waiting inquiries drained when the
  agents come back from a break;
and the floor: a Faust agent on the same broker that consumes inquiries and
produces one event each, with the ratio router/floor.

Simulated agents accept each offer after 50-200 ms and complete it after a
handle time drawn around a realistic average, compressed 1:600 (a 4-minute
chat takes 0.4 s) so that a run fits in a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devstack.brokers import BrokerKind, new_broker
from devstack.processes import ServiceProcess
from omniroute.codec import decode, encode, timestamp
from omniroute.embedded import Broker, free_port, wait_for_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2

PARTITIONS = 4
SKILLS = ("billing", "technical", "sales", "returns")
CHANNELS = (inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL, inquiry_pb2.CHANNEL_VOICE)
TIME_SCALE = 600.0  # simulated seconds per real second
AVERAGE_HANDLE_S = {  # realistic averages, before compression
    inquiry_pb2.CHANNEL_CHAT: 240.0,
    inquiry_pb2.CHANNEL_EMAIL: 300.0,
    inquiry_pb2.CHANNEL_VOICE: 360.0,
}


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


def progress(text: str) -> None:
    """Say what the benchmark is doing (stderr, so results stay clean on stdout)."""
    print(f"  .. {text}", file=sys.stderr, flush=True)


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

    async def wait_for(self, ids: set[str], timeout_s: float) -> None:
        """Until every id has appeared (or fail after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while not ids <= self.first_seen.keys():
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


async def run_floor(broker: Broker, count: int, work: Path) -> Figures:
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
    floor = ServiceProcess("benchmarks.floor", env, log_path=work / "floor.log").start()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    await producer.start()
    outputs = await Outputs(broker.bootstrap, sink, inquiry_pb2.Inquiry).start()
    rng = random.Random(1)
    try:
        warm = make_inquiry("floor", rng)
        progress("floor: waiting for the Faust worker to join")
        await publish(producer, source, [warm], None)
        await outputs.wait_for({warm.id}, 90)
        batch = [make_inquiry(f"ws-{n % 16}", rng) for n in range(count)]
        progress(f"floor: {count} inquiries in a burst")
        await publish(producer, source, batch, None)
        await outputs.wait_for({i.id for i in batch}, 300)
        sent = await SentTimes.read(broker.bootstrap, source, {i.id for i in batch})
        return figures("floor: Faust consume + produce one event", sent, outputs)
    finally:
        await outputs.stop()
        await producer.stop()
        floor.stop()


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
            progress(f"desk {a.agent_id}: {exc.code().name} {exc.details()}")

    async def close(self) -> None:
        """Wait for work in progress, then close."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.channel.close()


async def run_router(broker: Broker, agents: int, work: Path, backlog: int) -> list[Figures]:
    """agent-state and one router worker; steady flow, burst and (optionally) backlog."""
    suffix = uuid.uuid4().hex[:6]
    ports = {name: free_port() for name in ("grpc", "grpc_metrics", "router_metrics")}
    topics = {
        "TOPIC_INQUIRIES": f"inquiries-{suffix}",
        "TOPIC_AGENT_EVENTS": f"agent-events-{suffix}",
        "TOPIC_TASK_EVENTS": f"task-events-{suffix}",
        "TOPIC_ASSIGNMENTS": f"assignments-{suffix}",
        "TOPIC_DEAD_LETTERS": f"dead-letters-{suffix}",
    }
    env = {
        "KAFKA_BOOTSTRAP": broker.bootstrap,
        "KAFKA_BROKER_KIND": broker.kind,
        "KAFKA_PARTITIONS": str(PARTITIONS),
        "AGENT_STATE_HOST": "127.0.0.1",
        # Loopback only: callers need no token here (deployments always require them).
        "AGENT_STATE_ALLOW_ANONYMOUS": "true",
        "METRICS_WORKSPACES": '["*"]',  # local: every workspace its own label
        "AGENT_STATE_PORT": str(ports["grpc"]),
        "AGENT_STATE_METRICS_PORT": str(ports["grpc_metrics"]),
        "AGENT_STATE_TARGET": f"127.0.0.1:{ports['grpc']}",
        "ROUTER_METRICS_HOST": "127.0.0.1",
        "ROUTER_METRICS_PORT": str(ports["router_metrics"]),
        "ROUTER_APP_ID": f"bench-router-{suffix}",
        "LOG_LEVEL": "WARNING",
        **topics,
    }
    agent_state = ServiceProcess("omniroute_agent_state", env, log_path=work / f"agent-state-{agents}.log").start()  # fmt: skip
    router = ServiceProcess("omniroute_router", env, log_path=work / f"router-{agents}.log").start()
    rng = random.Random(agents)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    outputs = Outputs(broker.bootstrap, topics["TOPIC_ASSIGNMENTS"], task_pb2.Assignment)
    desks: Desks | None = None
    results: list[Figures] = []
    try:
        wait_for_port("127.0.0.1", ports["grpc"], timeout_s=60)
        router.wait_until(lambda: _metric(ports["router_metrics"], "omniroute_router_partitions_assigned ") > 0, 120)  # fmt: skip
        await producer.start()
        await outputs.start()
        desks = Desks(env["AGENT_STATE_TARGET"], rng)
        forwarder = asyncio.create_task(_forward(outputs, desks))
        workspaces = [f"bench-{suffix}-{n}" for n in range(8)]
        roster = [
            make_agent(workspaces[n % len(workspaces)], n // len(workspaces), rng)
            for n in range(agents)
        ]
        progress(f"{agents} agents: logging in")
        await desks.login(roster, agent_pb2.AGENT_STATUS_AVAILABLE)

        async def measure(
            name: str, batch: list[inquiry_pb2.Inquiry], rate: float | None
        ) -> Figures:
            progress(f"{agents} agents: {name}")
            await publish(producer, topics["TOPIC_INQUIRIES"], batch, rate)
            await outputs.wait_for({i.id for i in batch}, 300)
            sent = await SentTimes.read(broker.bootstrap, topics["TOPIC_INQUIRIES"], {i.id for i in batch})  # fmt: skip
            return figures(f"router, {agents} agents: {name}", sent, outputs)

        def batch(n: int) -> list[inquiry_pb2.Inquiry]:
            return [make_inquiry(rng.choice(workspaces), rng) for _ in range(n)]

        await measure("warm-up", batch(50), 50)
        results.append(await measure("steady 50 inquiries/s", batch(1000), 50))
        slots = agents * 3
        results.append(await measure("burst", batch(min(3000, slots)), None))
        if backlog:
            progress(f"{agents} agents: waiting for work in progress to finish")
            if desks.tasks:
                await asyncio.wait(set(desks.tasks))
            await desks.set_all([a.id for a in roster], agent_pb2.AGENT_STATUS_AWAY)
            waiting = batch(backlog)
            progress(f"{agents} agents on a break: {backlog} inquiries queue up")
            await publish(producer, topics["TOPIC_INQUIRIES"], waiting, None)
            deadline = time.monotonic() + 300
            while _metric_sum(ports["router_metrics"], "omniroute_router_queue_depth{") < backlog:
                if time.monotonic() > deadline:
                    raise RuntimeError("the backlog never fully queued")
                await asyncio.sleep(0.5)
            progress(f"{agents} agents back from the break: draining {backlog} waiting inquiries")
            back = time.time()
            await desks.set_all([a.id for a in roster], agent_pb2.AGENT_STATUS_AVAILABLE)
            await outputs.wait_for({i.id for i in waiting}, 600)
            routed = [outputs.first_seen[i.id] - back for i in waiting]
            results.append(Figures(f"router, {agents} agents: drain {backlog} waiting", backlog, max(routed), routed))  # fmt: skip
        forwarder.cancel()
        return results
    finally:
        await outputs.stop()
        await producer.stop()
        if desks is not None:
            await desks.close()
        router.stop()
        agent_state.stop()


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


def _metric(port: int, prefix: str) -> float:
    return _metric_sum(port, prefix)


def _metric_sum(port: int, prefix: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


async def main(kind: BrokerKind) -> None:
    """Run every scenario on a broker of `kind` and print the table."""
    work = Path(tempfile.mkdtemp(prefix="omniroute-bench-"))
    started = time.monotonic()
    print(f"Omniroute benchmark ({kind} broker, {os.cpu_count()} cores; logs in {work})")
    rows: list[Figures] = []
    broker = new_broker(kind, log_path=work / "broker.log")
    try:
        broker.start()
        rows.append(await run_floor(broker, 5000, work))
        rows += await run_router(broker, 100, work, backlog=0)
        rows += await run_router(broker, 5000, work, backlog=10_000)
    finally:
        broker.close()
        report(rows, time.monotonic() - started)


def report(rows: list[Figures], elapsed: float) -> None:
    """Print the results table (also the part measured before a failure)."""
    if not rows:
        return
    floor = rows[0]
    print()
    print(
        f"{'scenario':<44} {'count':>7} {'throughput':>12} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}"
    )
    for row in rows:
        print(row.line())
    for burst in (r for r in rows if r.name.endswith("burst")):
        ratio = burst.throughput / floor.throughput
        print(f"ratio router/floor ({burst.name.split(':')[0]}): {ratio:.2f}")
    print(
        "(latency: inquiry record on the topic -> assignment record; drain: agents back -> assignment)"
    )
    print(f"total time {elapsed:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--broker", type=BrokerKind, choices=list(BrokerKind), default=BrokerKind.TANSU
    )
    asyncio.run(main(parser.parse_args().broker))

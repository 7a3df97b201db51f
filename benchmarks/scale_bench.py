"""The scale scenario of `make bench`: one workspace, 20,000 agents, 1,000,000 waiting.

End to end, on the broker: agent-state and one router worker with the example
routing configuration (`deploy/routing.example.yaml`, workspace `acme`); the
agents log in through agent-state (the router learns them from
`agent-events`) and go on a break, so nothing can be routed. The waiting
inquiries are then written straight into the router's table changelogs
(`inquiries` and `contents`), as the router itself would have written them:
each inquiry is converted, admitted and aged by the routing core
(`inquiry_from_proto`, `WorkspaceRouter.admit`, `housekeeping`) and
serialised by the router's table code (`RoutingTables.persist`,
`InquiryContents.keep`) and Faust's codecs, on the workspace's partition.
(Routing a million inquiries through the worker first would take the better
part of an hour.) For each level (10,000, then 1,000,000 waiting) the worker
is stopped, the changelogs filled up to the level, and a worker started again:

- restore: from its start to owning its partitions (group join), and to the
  whole queue back in the core (the queue-depth gauge at the level, set by
  its first tick, which also plans once over the queue);
- memory: the worker's resident size then (and its peak).

The costs per new inquiry, per freed agent and per tick come from the routing
core alone (`benchmarks/core_bench.py`, each level in a process of its own),
and agent-state's restart with 20,000 agents from
`benchmarks/agent_state_bench.py`, where those modules exist.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import multiprocessing
import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.serializers import codecs

from benchmarks.harness import (
    PARTITIONS,
    Consumed,
    Processes,
    Services,
    progress,
    rss_bytes,
)
from devstack.processes import ROOT, ServiceProcess
from omniroute.codec import encode, timestamp
from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2
from omniroute_router import config as routing_config
from omniroute_router.config import WorkspaceConfig
from omniroute_router.contents import InquiryContents
from omniroute_router.convert import inquiry_from_proto
from omniroute_router.routing import WorkspaceRouter
from omniroute_router.tables import RoutingTables

WORKSPACE = "acme"
EXAMPLE_CONFIG = ROOT / "deploy" / "routing.example.yaml"
ARRIVALS_PER_S = 50.0  # the waiting inquiries arrived at this rate, the last one just now
SKILLS = ("billing", "technical", "sales", "returns", "complaints")
KINDS = (
    inquiry_pb2.INQUIRY_KIND_QUESTION,
    inquiry_pb2.INQUIRY_KIND_REQUEST,
    inquiry_pb2.INQUIRY_KIND_COMPLAINT,
    inquiry_pb2.INQUIRY_KIND_ORDER,
    inquiry_pb2.INQUIRY_KIND_RETURN,
    inquiry_pb2.INQUIRY_KIND_SERVICE_PROBLEM,
)
CHANNELS = (
    inquiry_pb2.CHANNEL_CHAT,
    inquiry_pb2.CHANNEL_CHAT,
    inquiry_pb2.CHANNEL_EMAIL,
    inquiry_pb2.CHANNEL_VOICE,
    inquiry_pb2.CHANNEL_SMS,
)
CHUNK = 10_000
AGENT_HISTORY = 100_000  # records of agent changes before agent-state's restart
# Faust serialises a table's keys and values with "json" unless their type is bytes
# or a model with a codec of its own (faust/tables/base.py, _serializer_from_type);
# the router's tables have str keys and plain dict values.
TABLE_CODEC = "json"
# Chunks that arrived more recently than this are built by the core one by one; older
# ones have waited past every ladder step and are copies of the oldest, shifted.
FRESH_S = 3600.0


@dataclass
class Restore:
    """One restart of the router worker with `waiting` inquiries in its tables."""

    waiting: int
    joined_s: float  # start -> owns its partitions
    restored_s: float | None  # start -> the whole queue back in the core (None: not in time)
    rss: int
    peak_rss: int
    fill_s: float  # writing the changelogs up to this level (bench set-up, not the router)


@dataclass
class ScaleResult:
    """The scale scenario's figures."""

    agents: int
    quick: bool
    login_s: float = 0.0
    baseline_rss: int = 0  # the worker with the agents and an empty queue
    restores: list[Restore] = field(default_factory=list)
    core: list[Any] = field(default_factory=list)  # core_bench.CoreFigures per level
    core_missing: str = ""
    agent_state: dict[str, float] = field(default_factory=dict)
    agent_state_missing: str = ""

    def print(self) -> None:
        """The scenario's own table."""
        print(
            f"Scale: one workspace, {self.agents:,} agents (on a break), waiting inquiries in the router's tables"
        )
        print(
            f"  agents logged in through agent-state in {self.login_s:.0f} s; router worker with them and no queue: {_mb(self.baseline_rss)} resident"
        )
        if self.restores:
            print(
                f"  {'waiting':>10} {'joined s':>9} {'restored s':>11} {'RSS MB':>8} {'peak MB':>8} {'(fill s)':>9}"
            )
            for r in self.restores:
                print(
                    f"  {r.waiting:>10,} {r.joined_s:>9.1f} {_seconds(r.restored_s):>11} {r.rss / 2**20:>8.0f} {r.peak_rss / 2**20:>8.0f} {r.fill_s:>9.0f}"
                )
            print(
                "  (restored: worker start -> queue-depth gauge at the level, after its first tick's full plan)"
            )
        if self.core:
            print(
                "  routing core alone (benchmarks/core_bench.py): mean ms per operation, the "
                "memory the workspace takes, its restore (state given back, first tick)"
            )
            print(
                f"  {'waiting':>10} {'new inquiry':>12} {'freed, fits none':>17} {'freed, fits one':>16} {'tick':>8} {'mem MB':>7} {'restore s':>10}"
            )
            for c in self.core:
                print(
                    f"  {c.waiting:>10,} {c.new_inquiry_ms:>12.3f} {c.freed_fits_nothing_ms:>17.3f} {c.freed_fits_one_ms:>16.3f} {c.tick_ms:>8.2f} {c.memory_mb:>7.0f} {_core_restore(c):>10}"
                )
        elif self.core_missing:
            print(f"  routing core costs: {self.core_missing}")
        if self.agent_state:
            print(
                "  agent-state restart (benchmarks/agent_state_bench.py; ready: process start "
                "to gRPC port open): "
                + ", ".join(f"{k} {v:g}" for k, v in self.agent_state.items())
            )
        elif self.agent_state_missing:
            print(f"  agent-state restart: {self.agent_state_missing}")

    def target_lines(
        self, verdict: Callable[[bool | None], str]
    ) -> list[tuple[str, str, str, str]]:
        """Rows for the final table: figure, measured, target, verdict."""
        lines: list[tuple[str, str, str, str]] = []
        for r in self.restores:
            lines.append(
                (f"router restore, {r.waiting:,} waiting", _seconds(r.restored_s), "", "-")
            )
            lines.append((f"router memory, {r.waiting:,} waiting", _mb(r.rss), "", "-"))
        if len(self.core) >= 2:
            low, high = self.core[0], self.core[-1]
            for name, attr in (
                ("new inquiry", "new_inquiry_ms"),
                ("freed agent (fits none)", "freed_fits_nothing_ms"),
                ("freed agent (fits one)", "freed_fits_one_ms"),
                ("tick", "tick_ms"),
            ):
                a, b = getattr(low, attr), getattr(high, attr)
                ratio = b / a if a else float("inf")
                lines.append(
                    (
                        f"core cost per {name}, {high.waiting:,} / {low.waiting:,} waiting",
                        f"{b:.3f}/{a:.3f} ms = {ratio:.1f}x",
                        "<= 2x",
                        verdict(ratio <= 2),
                    )
                )
        elif self.core_missing:
            lines.append(
                ("core cost per operation", "not measured", "<= 2x", self.core_missing[:40])
            )
        restart = self.agent_state.get("restart_s")
        if restart is not None:
            lines.append(
                (
                    f"agent-state restart, {self.agents:,} agents",
                    f"{restart:.1f} s",
                    "< 10 s",
                    verdict(restart < 10),
                )
            )
        elif self.agent_state_missing:
            lines.append(("agent-state restart", "not measured", "< 10 s", "-"))
        return lines


def _core_restore(figures: Any) -> str:
    """The core's part of a restore (core_bench: state given back, first tick done)."""
    seconds = getattr(figures, "restore_s", None)
    return "-" if seconds is None else f"{seconds:.1f}"


def _seconds(value: float | None) -> str:
    return "not in time" if value is None else f"{value:.1f} s"


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"


def make_agent(n: int, rng: random.Random) -> agent_pb2.Agent:
    """The n-th agent of the workspace: three skills, English (every fourth one also Spanish)."""
    tier = agent_pb2.TIER_REPRESENTATIVE if n % 20 < 16 else agent_pb2.TIER_SPECIALIST
    return agent_pb2.Agent(
        id=f"agent-{n:06d}",
        workspace=WORKSPACE,
        name=f"Agent {n}",
        skills={s: rng.randint(1, 5) for s in rng.sample(SKILLS, 3)},
        languages=["en", "es"] if n % 4 == 0 else ["en"],
        tier=tier,
        capacities=[
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_CHAT, capacity=3),
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_EMAIL, capacity=5),
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_VOICE, capacity=1),
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_SMS, capacity=3),
        ],
    )


def make_inquiry(n: int, received: float, rng: random.Random) -> inquiry_pb2.Inquiry:
    """The n-th waiting inquiry as a channel would have published it."""
    skill = rng.choice(("billing", "technical", ""))
    return inquiry_pb2.Inquiry(
        id=f"inq-{n:08d}",
        workspace=WORKSPACE,
        channel=rng.choice(CHANNELS),
        kind=rng.choice(KINDS),
        subject="benchmark",
        body="Where is my order?",
        language="es" if rng.random() < 0.2 else "en",
        customer=inquiry_pb2.Customer(segment="vip" if rng.random() < 0.05 else "standard"),
        required_skills=[
            inquiry_pb2.SkillRequirement(name=skill, min_proficiency=rng.randint(1, 4))
        ]
        if skill
        else [],
        received_at=timestamp(received),
    )


async def log_in(target: str, agents: int, rng: random.Random) -> float:
    """Create the agents at agent-state and put them on a break; seconds taken."""
    started = time.monotonic()
    limit = asyncio.Semaphore(128)
    done = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = agent_state_pb2_grpc.AgentStateStub(channel)

        async def one(agent: agent_pb2.Agent) -> None:
            nonlocal done
            async with limit:
                await stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=agent))
                await stub.SetStatus(
                    agent_state_pb2.SetStatusRequest(
                        agent_id=agent.id, status=agent_pb2.AGENT_STATUS_AWAY, reason="break"
                    )
                )
            done += 1
            if done % 2000 == 0:
                progress(f"scale: {done:,} of {agents:,} agents logged in")

        await asyncio.gather(*(one(make_agent(n, rng)) for n in range(agents)))
    return time.monotonic() - started


async def workspace_partition(bootstrap: str, app_id: str) -> int:
    """The partition the router placed the workspace on (its `workspaces` table)."""
    topic = f"{app_id}-workspaces-changelog"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # metadata first: a consumer without a subscription knows nothing
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: int | None = None
        seen: list[tuple[bytes | None, bytes | None]] = []
        while True:
            batches = await consumer.getmany(timeout_ms=2000)
            if not batches:
                break
            for records in batches.values():
                for record in records:
                    seen.append((record.key, record.value))
                    if record.key == codecs.dumps(TABLE_CODEC, WORKSPACE) and record.value:
                        found = int(json.loads(record.value))
        if found is None:
            raise RuntimeError(
                f"the router never placed workspace {WORKSPACE!r} ({topic} holds {seen[:5]})"
            )
        return found
    finally:
        await consumer.stop()


def core_chunk(
    config: WorkspaceConfig, first: int, last: int, stop: int, now: float, rng: random.Random
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inquiries first..last as the router's tables hold them after waiting until `now`:
    converted, admitted when they arrived, aged by the core's housekeeping, then
    serialised by the router's own table code (`inquiries`, `contents` entries)."""
    router = WorkspaceRouter(WORKSPACE, config)
    tables = RoutingTables()
    contents = InquiryContents()
    for n in range(first, last):
        received = now - (stop - n) / ARRIVALS_PER_S
        proto = make_inquiry(n, received, rng)
        router.admit(inquiry_from_proto(proto, received), received)
        contents.keep(WORKSPACE, proto.id, encode(proto))
    router.housekeeping(now)  # the ladder steps their wait reached, as ticks did
    tables.persist(router, router.drain_changes())
    router.drain_notices()
    return dict(tables.inquiries), dict(contents.table)


def shifted(
    template: tuple[dict[str, Any], dict[str, Any]], offset: int, seconds: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The template chunk's inquiries as `offset` later ids that arrived `seconds` later.

    Used for chunks that waited longer than any ladder step or follow-up lasts (so
    the core would leave them in the same state as the template's): only ids and
    times differ, and the core's work for a million would take minutes."""
    inquiries: dict[str, Any] = {}
    contents: dict[str, Any] = {}
    for key, value in template[0].items():
        n = int(value["id"].removeprefix("inq-")) + offset
        inquiry_id = f"inq-{n:08d}"
        inquiries[f"{WORKSPACE}/{inquiry_id}"] = {
            **value,
            "id": inquiry_id,
            "arrived_at": value["arrived_at"] + seconds,
            "queued_at": value["queued_at"] + seconds,
        }
        proto = inquiry_pb2.Inquiry.FromString(base64.b64decode(template[1][key]))
        proto.id = inquiry_id
        proto.received_at.CopyFrom(timestamp(value["arrived_at"] + seconds))
        contents[f"{WORKSPACE}/{inquiry_id}"] = base64.b64encode(encode(proto)).decode()
    return inquiries, contents


async def fill(bootstrap: str, app_id: str, partition: int, start: int, stop: int) -> float:
    """Write inquiries start..stop into the router's changelogs, as the router writes them.

    They arrived at `ARRIVALS_PER_S`, the last one just now. The oldest chunk and
    every chunk younger than `FRESH_S` come from the core (`core_chunk`); chunks in
    between are the oldest one shifted in time (`shifted`)."""
    config = routing_config.load(EXAMPLE_CONFIG).for_workspace(WORKSPACE)
    if config is None:
        raise RuntimeError(f"{EXAMPLE_CONFIG} has no workspace {WORKSPACE!r}")
    begun = time.monotonic()
    now = time.time()
    rng = random.Random(start)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, max_request_size=8 << 20
    )
    await producer.start()
    topics = {
        "inquiries": f"{app_id}-inquiries-changelog",
        "contents": f"{app_id}-contents-changelog",
    }
    template: tuple[dict[str, Any], dict[str, Any]] | None = None
    try:
        for first in range(start, stop, CHUNK):
            last = min(stop, first + CHUNK)
            young = (stop - last) / ARRIVALS_PER_S < FRESH_S
            if template is None or young or last - first < CHUNK:
                chunk = core_chunk(config, first, last, stop, now, rng)
                template = template or chunk
            else:
                chunk = shifted(template, first - start, (first - start) / ARRIVALS_PER_S)
            pending = []
            for table, items in zip(topics.values(), chunk, strict=True):
                for key, value in items.items():
                    record = (codecs.dumps(TABLE_CODEC, key), codecs.dumps(TABLE_CODEC, value))
                    pending.append(
                        await producer.send(table, record[1], key=record[0], partition=partition)
                    )
            await asyncio.gather(*pending)
            if (last - start) % 100_000 == 0 or last == stop:
                progress(f"scale: {last:,} inquiries in the router's changelogs")
        await producer.flush()
    finally:
        await producer.stop()
    return time.monotonic() - begun


def _core_point(waiting: int, agents: int, quick: bool) -> Any:
    core_bench: Any = importlib.import_module("benchmarks.core_bench")
    return core_bench.measure(waiting, agents, reps=50 if quick else 200, ticks=5 if quick else 20)


async def core_costs(result: ScaleResult, levels: tuple[int, ...]) -> None:
    """The routing core's costs per operation at each level, each in a fresh process."""
    try:
        importlib.import_module("benchmarks.core_bench")
    except ImportError as exc:
        result.core_missing = f"benchmarks/core_bench.py not available ({exc})"
        progress(f"scale: {result.core_missing}")
        return
    context = multiprocessing.get_context("spawn")
    for waiting in levels:
        progress(f"scale: routing core alone with {waiting:,} waiting, {result.agents:,} agents")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            point = await asyncio.get_running_loop().run_in_executor(
                pool, _core_point, waiting, result.agents, result.quick
            )
        result.core.append(point)


async def agent_state_restart(result: ScaleResult, broker: Broker, work: Path) -> None:
    """agent-state's restart with the scenario's agents after a history of changes, from
    `benchmarks/agent_state_bench.py` (`restarts`: every topic in full, and from its
    latest checkpoint plus the tail; the figure is process start to gRPC port open)."""
    try:
        module: Any = importlib.import_module("benchmarks.agent_state_bench")
    except ImportError as exc:
        result.agent_state_missing = f"benchmarks/agent_state_bench.py not available ({exc})"
        progress(f"scale: {result.agent_state_missing}")
        return
    history = 20_000 if result.quick else AGENT_HISTORY
    progress(
        f"scale: agent-state restart with {result.agents:,} agents, {history:,} records of history"
    )
    lines: list[str] = await module.restarts(broker, work, result.agents, [history])
    for line in lines:
        # "<name>: full read|from checkpoint   <recovery> s   <ready> s  <records> <records>"
        found = re.search(r"(full read|from checkpoint)\s+([\d.]+) s\s+([\d.]+) s", line)
        if found:
            way = "full" if found[1] == "full read" else "checkpoint"
            result.agent_state[f"{way}_recovery_s"] = float(found[2])
            result.agent_state[f"{way}_ready_s"] = float(found[3])
    if "checkpoint_ready_s" in result.agent_state:
        result.agent_state["restart_s"] = result.agent_state["checkpoint_ready_s"]
    else:
        result.agent_state_missing = "agent_state_bench printed no restart figure: " + "; ".join(
            lines
        )


async def _restored(
    services: Services, router: ServiceProcess, level: int, started: float, limit_s: float
) -> float | None:
    """Seconds from `started` until the worker's queue-depth gauges add up to `level`
    (its first tick after loading the tables sets them); None past `limit_s`."""
    said = time.monotonic()
    while (depth := services.router_metric("omniroute_router_queue_depth{")) < level:
        if router.process is not None and router.process.poll() is not None:
            raise RuntimeError(f"the router exited while restoring:\n{router.log()[-5000:]}")
        if time.monotonic() - started > limit_s:
            return None
        if time.monotonic() - said > 30:
            progress(
                f"scale: restoring for {time.monotonic() - started:.0f} s (queue depth {depth:,.0f})"
            )
            said = time.monotonic()
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def run_scale(
    broker: Broker,
    work: Path,
    processes: Processes,
    agents: int,
    levels: tuple[int, ...],
    quick: bool,
    restore_limit_s: float = 900.0,
) -> ScaleResult:
    """The scale scenario (see the module's docstring)."""
    result = ScaleResult(agents, quick)
    services = Services(broker, work, "scale", extra={"ROUTING_CONFIG": str(EXAMPLE_CONFIG)})
    progress("scale: starting agent-state and a router worker")
    agent_state = await services.start_agent_state(processes)
    router = await services.start_router(processes)
    progress(f"scale: logging in {agents:,} agents (then on a break)")
    result.login_s = await log_in(services.target, agents, random.Random(agents))
    # The router has them all once it stops consuming agent-events.
    consumed = Consumed(broker.bootstrap, services.app_id, services.input_topics())
    settled = await consumed.settled(quiet_s=4, timeout_s=600)
    progress(f"scale: the router consumed {settled['agent-events']:,} agent events")
    result.baseline_rss = rss_bytes(router)[0]
    partition = await workspace_partition(broker.bootstrap, services.app_id)
    written = 0
    for level in levels:
        processes.stop(router)  # SIGTERM: a clean stop, as in a rolling restart
        progress(f"scale: router stopped; filling its tables up to {level:,} waiting inquiries")
        fill_s = await fill(broker.bootstrap, services.app_id, partition, written, level)
        written = level
        progress(f"scale: router worker starting with {level:,} waiting inquiries in its tables")
        started = time.monotonic()
        router = await services.start_router(processes, timeout_s=600)
        joined = time.monotonic() - started
        progress(f"scale: joined after {joined:.1f} s; restoring")
        restored = await _restored(services, router, level, started, restore_limit_s)
        rss, peak = rss_bytes(router)
        result.restores.append(Restore(level, joined, restored, rss, peak, fill_s))
        if restored is None:
            progress(f"scale: {level:,} waiting not restored within {restore_limit_s:.0f} s")
            break
        progress(
            f"scale: {level:,} waiting restored in {restored:.1f} s, {rss / 2**20:,.0f} MB resident"
        )
    processes.stop(router)
    processes.stop(agent_state)
    await core_costs(result, levels)
    await agent_state_restart(result, broker, work)
    return result

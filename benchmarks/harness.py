"""What the benchmarks share: the processes they start, the router's settings, its
metrics, its memory, and the events it consumed.

Every process a benchmark starts is registered in `Processes` and stopped by
its pid when the run ends, fails or is interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devstack.processes import ServiceProcess
from omniroute.embedded import Broker
from omniroute.ports import free_port

PARTITIONS = 4


def progress(text: str) -> None:
    """Say what the benchmark is doing (stderr, so results stay clean on stdout)."""
    print(f"  .. {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


class Processes:
    """The service processes a run started, stopped by pid in reverse order at the end."""

    def __init__(self) -> None:
        self.started: list[ServiceProcess] = []

    def start(self, module: str, env: Mapping[str, str], log_path: Path) -> ServiceProcess:
        """Start `python -m module` in a session of its own (a terminal's Ctrl-C reaches
        the benchmark only, which then stops everything in order)."""
        process = ServiceProcess(module, dict(env), log_path=log_path).start(new_session=True)
        self.started.append(process)
        return process

    def stop(self, process: ServiceProcess) -> None:
        """Stop one (SIGTERM, SIGKILL if it lingers) and forget it."""
        process.stop()
        if process in self.started:
            self.started.remove(process)

    def stop_all(self) -> None:
        """Stop every process still running, newest first."""
        while self.started:
            self.stop(self.started[-1])


@dataclass
class Services:
    """One agent-state and the router's settings, on topics and a consumer group of their own."""

    broker: Broker
    work: Path
    name: str
    extra: dict[str, str] = field(default_factory=dict)  # more settings (ROUTING_CONFIG, ...)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    ports: dict[str, int] = field(
        default_factory=lambda: {n: free_port() for n in ("grpc", "grpc_metrics", "router")}
    )

    @property
    def topics(self) -> dict[str, str]:
        """The topic settings, every name with this run's suffix."""
        return {
            "TOPIC_INQUIRIES": f"inquiries-{self.suffix}",
            "TOPIC_AGENT_EVENTS": f"agent-events-{self.suffix}",
            "TOPIC_TASK_EVENTS": f"task-events-{self.suffix}",
            "TOPIC_ASSIGNMENTS": f"assignments-{self.suffix}",
            "TOPIC_DEAD_LETTERS": f"dead-letters-{self.suffix}",
            "TOPIC_AGENT_SNAPSHOTS": f"agent-snapshots-{self.suffix}",
            "TOPIC_AGENT_CHECKPOINTS": f"agent-checkpoints-{self.suffix}",
            "TOPIC_QUEUE_SNAPSHOTS": f"queue-snapshots-{self.suffix}",
        }

    @property
    def app_id(self) -> str:
        """The router's Faust app id: its consumer group and its tables' prefix."""
        return f"bench-router-{self.suffix}"

    @property
    def target(self) -> str:
        """agent-state's gRPC address."""
        return f"127.0.0.1:{self.ports['grpc']}"

    @property
    def env(self) -> dict[str, str]:
        """Settings for agent-state and the router."""
        return {
            "KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "KAFKA_BROKER_KIND": self.broker.kind,
            "KAFKA_PARTITIONS": str(PARTITIONS),
            "AGENT_STATE_HOST": "127.0.0.1",
            # Loopback only: callers need no token here (deployments always require them).
            "AGENT_STATE_ALLOW_ANONYMOUS": "true",
            "METRICS_WORKSPACES": '["*"]',  # local: every workspace its own label
            "AGENT_STATE_PORT": str(self.ports["grpc"]),
            "AGENT_STATE_METRICS_PORT": str(self.ports["grpc_metrics"]),
            "AGENT_STATE_TARGET": self.target,
            "ROUTER_METRICS_HOST": "127.0.0.1",
            "ROUTER_METRICS_PORT": str(self.ports["router"]),
            "ROUTER_APP_ID": self.app_id,
            "LOG_LEVEL": "WARNING",
            **self.topics,
            **self.extra,
        }

    async def start_agent_state(self, processes: Processes) -> ServiceProcess:
        """agent-state, once it listens."""
        process = processes.start(
            "omniroute_agent_state", self.env, self.work / f"agent-state-{self.name}.log"
        )
        await until(lambda: _listening(self.ports["grpc"]), 90, "agent-state listening", process)
        return process

    async def start_router(self, processes: Processes, timeout_s: float = 180) -> ServiceProcess:
        """A router worker, once it owns partitions."""
        process = processes.start(
            "omniroute_router", self.env, self.work / f"router-{self.name}.log"
        )
        await until(
            lambda: self.router_metric("omniroute_router_partitions_assigned ") > 0,
            timeout_s,
            "the router owning partitions",
            process,
        )
        return process

    def router_metric(self, prefix: str) -> float:
        """The sum of the router's series whose line starts with `prefix` (0 if unreachable)."""
        return metric_sum(self.ports["router"], prefix)

    def input_topics(self) -> dict[str, str]:
        """The router's input topics (its own tick topic included), by the label printed."""
        return {
            self.topics["TOPIC_INQUIRIES"]: "inquiries",
            self.topics["TOPIC_AGENT_EVENTS"]: "agent-events",
            self.topics["TOPIC_TASK_EVENTS"]: "task-events",
            f"{self.app_id}-ticks": "ticks",
        }


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def metric_sum(port: int, prefix: str) -> float:
    """Sum of the series on a Prometheus endpoint whose line starts with `prefix`."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def rss_bytes(process: ServiceProcess) -> tuple[int, int]:
    """Resident memory of a running process now and at its peak (VmRSS, VmHWM), in bytes."""
    assert process.process is not None
    found = {"VmRSS:": 0, "VmHWM:": 0}
    for line in Path(f"/proc/{process.process.pid}/status").read_text().splitlines():
        name, *rest = line.split()
        if name in found:
            found[name] = int(rest[0]) * 1024  # kB
    return found["VmRSS:"], found["VmHWM:"]


class Consumed:
    """Events a consumer group has consumed, per input, from its committed offsets.

    The router commits its input offsets every second (Faust's commit
    interval); the difference between two readings is what it processed in
    between, whatever its metrics call it.
    """

    def __init__(self, bootstrap: str, group: str, topics: Mapping[str, str]) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = dict(topics)

    async def committed(self) -> dict[TopicPartition, int]:
        """The group's committed offset of every input partition (absent: none yet)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            partitions = [TopicPartition(t, p) for t in self.topics for p in range(PARTITIONS)]
            offsets = await admin.list_consumer_group_offsets(self.group, partitions=partitions)
        finally:
            await admin.close()
        return {tp: m.offset for tp, m in offsets.items() if m is not None and m.offset >= 0}

    async def read(self) -> dict[str, int]:
        """Committed offsets summed over partitions, per input label."""
        return self._by_label(await self.committed())

    def _by_label(self, committed: Mapping[TopicPartition, int]) -> dict[str, int]:
        found = dict.fromkeys(self.topics.values(), 0)
        for tp, offset in committed.items():
            if tp.topic in self.topics:
                found[self.topics[tp.topic]] += offset
        return found

    async def behind(self, committed: Mapping[TopicPartition, int]) -> bool:
        """Whether any input (ticks aside) holds a record past the committed offset: read
        from the broker, not from what the router reports."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await consumer.start()
        try:
            await consumer.topics()  # metadata first: an unsubscribed consumer knows nothing
            inputs = [t for t, label in self.topics.items() if label != "ticks"]
            partitions = [TopicPartition(t, p) for t in inputs for p in range(PARTITIONS)]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, committed.get(tp, 0))
            batches = await consumer.getmany(timeout_ms=1000, max_records=1)
            return any(batches.values())
        finally:
            await consumer.stop()

    async def settled(self, quiet_s: float = 3.0, timeout_s: float = 300.0) -> dict[str, int]:
        """Committed offsets once the router has processed every record on its inputs and
        nothing but ticks moved them for `quiet_s`."""
        deadline = time.monotonic() + timeout_s
        last = await self.committed()
        still_since = time.monotonic()
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the router did not catch up with its inputs in {timeout_s:.0f} s"
                )
            await asyncio.sleep(0.5)
            now = await self.committed()
            if _without_ticks(self._by_label(now)) != _without_ticks(self._by_label(last)):
                still_since = time.monotonic()
            elif time.monotonic() - still_since >= quiet_s and not await self.behind(now):
                return self._by_label(now)
            last = now


def _without_ticks(counts: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k != "ticks"}


@dataclass
class EventCount:
    """What the router consumed during a scenario, and how many inquiries it routed."""

    scenario: str
    routed: int
    consumed: dict[str, int]

    @property
    def per_inquiry(self) -> float:
        """Events consumed per routed inquiry, the router's own ticks left out."""
        if not self.routed:
            return float("nan")
        return sum(_without_ticks(self.consumed).values()) / self.routed

    def line(self) -> str:
        """One printed line with the split by input."""
        parts = ", ".join(
            f"{k} {v / self.routed:.2f}" for k, v in self.consumed.items() if k != "ticks"
        )
        return (
            f"{self.scenario:<44} {self.per_inquiry:>6.2f} per inquiry ({parts}; "
            f"ticks {self.consumed.get('ticks', 0)} in all, not counted)"
        )


def difference(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Per input, `after` minus `before`."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


async def until(
    condition: Callable[[], bool], timeout_s: float, what: str, *watched: ServiceProcess
) -> None:
    """Poll `condition` until true, without blocking the event loop (Ctrl-C stops the
    run at once); fail after `timeout_s`, or as soon as a `watched` process died, with
    its log."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        for process in watched:
            if process.process is not None and process.process.poll() is not None:
                raise RuntimeError(
                    f"{process.module} exited while waiting for {what}:\n{process.log()[-5000:]}"
                )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{what}: not reached within {timeout_s:.0f} s (logs in the run's folder)"
            )
        await asyncio.sleep(0.2)

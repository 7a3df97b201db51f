"""`make bench-agent-state`: agent-state alone, on the embedded broker (or Apache Kafka).

Prints:
- reservations per second: ReserveAgent one call at a time, ReserveAgent from
  many concurrent callers (group commit: concurrent calls share one write
  round), and ReserveAgents batches; with the records per write round
  (`omniroute_agent_state_write_round_records`);
- restart time with 20,000 agents after a long history (records on
  agent-events and agent-snapshots), reading every topic in full (as before
  checkpoints) and from the latest checkpoint plus the records after it.

The history is written straight to the topics as the service writes it
(each agent's record, once per change, with rising versions) so that a long
one takes seconds to make; the agents, reservations, checkpoints and the tail
after the checkpoint are made by the service through its gRPC API.

    python -m benchmarks.agent_state_bench [--broker kafka] [--agents 20000]
        [--history 100000,400000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from aiokafka import AIOKafkaProducer

from devstack.brokers import BrokerKind, new_broker
from devstack.processes import ServiceProcess
from omniroute.codec import encode
from omniroute.embedded import Broker, wait_for_port
from omniroute.ports import free_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2

CHAT, EMAIL = inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_EMAIL
AVAILABLE, AWAY = agent_pb2.AGENT_STATUS_AVAILABLE, agent_pb2.AGENT_STATUS_AWAY
ROUNDS = "omniroute_agent_state_write_round_records"
T = TypeVar("T")


def progress(text: str) -> None:
    print(f"  .. {text}", flush=True)


def make_agent(workspace: str, n: int) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        id=f"{workspace}-agent-{n}",
        workspace=workspace,
        name=f"Agent {n}",
        skills={"billing": 3, "technical": 2},
        languages=["en"],
        tier=agent_pb2.TIER_REPRESENTATIVE,
        capacities=[
            agent_pb2.ChannelCapacity(channel=CHAT, capacity=5),
            agent_pb2.ChannelCapacity(channel=EMAIL, capacity=5),
        ],
    )


def reserve(workspace: str, agent_id: str, inquiry_id: str) -> agent_state_pb2.ReserveAgentRequest:
    return agent_state_pb2.ReserveAgentRequest(
        agent_id=agent_id,
        inquiry_id=inquiry_id,
        channel=CHAT,
        workspace=workspace,
        assignment=task_pb2.Assignment(inquiry_id=inquiry_id, workspace=workspace, attempt=1),
    )


def scrape(port: int) -> dict[str, float]:
    """Every sample of the service's /metrics, by name with labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def in_parallel(
    call: Callable[[T], Awaitable[Any]], items: Sequence[T], concurrency: int
) -> list[Any]:
    """`call(item)` for every item, at most `concurrency` in flight; the results in order."""
    results: list[Any] = [None] * len(items)
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(items):
            index, position = position, position + 1
            results[index] = await call(items[index])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


class AgentState:
    """agent-state as its own process, on topics of its own."""

    def __init__(self, broker: Broker, work: Path, topics: dict[str, str], **env: str) -> None:
        self.grpc_port, self.metrics_port = free_port(), free_port()
        self.process = ServiceProcess(
            "omniroute_agent_state",
            {
                "KAFKA_BOOTSTRAP": broker.bootstrap,
                "KAFKA_BROKER_KIND": broker.kind,
                "KAFKA_PARTITIONS": "4",
                "AGENT_STATE_HOST": "127.0.0.1",
                "AGENT_STATE_PORT": str(self.grpc_port),
                "AGENT_STATE_METRICS_HOST": "127.0.0.1",
                "AGENT_STATE_METRICS_PORT": str(self.metrics_port),
                # Loopback only: callers need no token here.
                "AGENT_STATE_ALLOW_ANONYMOUS": "true",
                "OFFER_TTL_S": "3600",
                "OFFER_TTL_BY_CHANNEL": "{}",
                "LOG_LEVEL": "WARNING",
                **topics,
                **env,
            },
            log_path=work / f"agent-state-{uuid.uuid4().hex[:6]}.log",
        )
        self.ready_s = 0.0

    def start(self) -> AgentState:
        """Start it and wait until its gRPC port is open (after recovery)."""
        started = time.monotonic()
        self.process.start()

        def listening() -> bool:
            try:
                wait_for_port("127.0.0.1", self.grpc_port, timeout_s=0.05)
                return True
            except TimeoutError:
                return False

        self.process.wait_until(listening, timeout_s=600)
        self.ready_s = time.monotonic() - started
        return self

    def metrics(self) -> dict[str, float]:
        return scrape(self.metrics_port)

    def stop(self) -> None:
        self.process.stop()


def topics_of(suffix: str) -> dict[str, str]:
    return {
        "TOPIC_AGENT_EVENTS": f"agent-events-{suffix}",
        "TOPIC_TASK_EVENTS": f"task-events-{suffix}",
        "TOPIC_AGENT_SNAPSHOTS": f"agent-snapshots-{suffix}",
        "TOPIC_AGENT_CHECKPOINTS": f"agent-checkpoints-{suffix}",
    }


async def add_agents(
    stub: agent_state_pb2_grpc.AgentStateStub, workspace: str, count: int
) -> list[str]:
    """`count` agents, logged in; their ids."""
    agents = [make_agent(workspace, n) for n in range(count)]
    await in_parallel(
        lambda a: stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=a)), agents, 100
    )
    await in_parallel(
        lambda a: stub.SetStatus(agent_state_pb2.SetStatusRequest(agent_id=a.id, status=AVAILABLE)),
        agents,
        100,
    )
    return [a.id for a in agents]


async def throughput(broker: Broker, work: Path, count: int) -> list[str]:
    """Reservations per second: one at a time, concurrent single calls, batches."""
    service = AgentState(broker, work, topics_of(uuid.uuid4().hex[:6])).start()
    lines = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)

            async def measure(
                name: str, run: Callable[[str, list[str]], Awaitable[int]], agents: int
            ) -> None:
                workspace = f"ws-{uuid.uuid4().hex[:6]}"
                ids = await add_agents(stub, workspace, agents)
                before = service.metrics()
                started = time.monotonic()
                made = await run(workspace, ids)
                seconds = time.monotonic() - started
                after = service.metrics()
                rounds = after[f"{ROUNDS}_count"] - before[f"{ROUNDS}_count"]
                records = after[f"{ROUNDS}_sum"] - before[f"{ROUNDS}_sum"]
                lines.append(
                    f"{name:<46} {made:>7} {made / seconds:>10.0f}/s {records / rounds:>10.1f}"
                )
                progress(lines[-1])

            async def one_at_a_time(workspace: str, ids: list[str]) -> int:
                n = min(count, 1000)
                for i in range(n):
                    await stub.ReserveAgent(reserve(workspace, ids[i % len(ids)], f"q-{i}"))
                return n

            async def concurrent(workspace: str, ids: list[str]) -> int:
                await in_parallel(
                    lambda i: stub.ReserveAgent(reserve(workspace, ids[i % len(ids)], f"q-{i}")),
                    range(count),
                    200,
                )
                return count

            async def batches(workspace: str, ids: list[str]) -> int:
                size = 100

                def call(start: int) -> Awaitable[agent_state_pb2.ReserveAgentsResponse]:
                    return stub.ReserveAgents(  # type: ignore[no-any-return]
                        agent_state_pb2.ReserveAgentsRequest(
                            reservations=[
                                reserve(workspace, ids[i % len(ids)], f"q-{i}")
                                for i in range(start, min(start + size, count))
                            ]
                        )
                    )

                answers = await in_parallel(call, range(0, count, size), 4)
                return sum(
                    1 for answer in answers for r in answer.results if r.HasField("reserved")
                )

            slots = count // 5 + 1  # five chat slots each: every reservation fits
            await measure("ReserveAgent, one at a time", one_at_a_time, slots)
            await measure("ReserveAgent, 200 concurrent callers", concurrent, slots)
            await measure("ReserveAgents, batches of 100, 4 in flight", batches, slots)
    finally:
        service.stop()
    return lines


async def write_history(
    broker: Broker, topics: dict[str, str], agents: list[agent_pb2.Agent], records: int
) -> None:
    """`records` more records of the agents' earlier versions, as the service writes them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        sends = []
        for n in range(records // 2):
            agent = agents[n % len(agents)]
            old = agent_pb2.Agent()
            old.CopyFrom(agent)
            old.version = 1  # every agent is at version 2 or more: these are superseded
            old.status = AWAY if n % 2 else AVAILABLE
            event = agent_pb2.AgentEvent(
                event_id=uuid.uuid4().hex, change=agent_pb2.AgentEvent.CHANGE_STATUS, agent=old
            )
            sends.append(
                await producer.send(
                    topics["TOPIC_AGENT_EVENTS"], encode(event), key=old.workspace.encode()
                )
            )
            sends.append(
                await producer.send(
                    topics["TOPIC_AGENT_SNAPSHOTS"], encode(old), key=old.id.encode()
                )
            )
            if len(sends) >= 20_000:
                await asyncio.gather(*sends)
                sends = []
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def recovery_line(name: str, service: AgentState) -> str:
    m = service.metrics()
    read = {
        source: int(m.get(f'omniroute_agent_state_recovery_records{{source="{source}"}}', 0))
        for source in ("checkpoint", "agent_snapshots", "agent_events", "task_events")
    }
    tail = read["agent_snapshots"] + read["agent_events"] + read["task_events"]
    return (
        f"{name:<44} {m['omniroute_agent_state_recovery_seconds']:>8.2f} s "
        f"{service.ready_s:>8.2f} s {read['checkpoint']:>10} {tail:>10}"
    )


async def restarts(broker: Broker, work: Path, agents: int, histories: list[int]) -> list[str]:
    """Restart time after each history length: every topic in full, and from a checkpoint."""
    topics = topics_of(uuid.uuid4().hex[:6])
    lines = []
    workspace = f"ws-{uuid.uuid4().hex[:6]}"
    first = AgentState(broker, work, topics, CHECKPOINT_RECORDS="0").start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{first.grpc_port}") as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            ids = await add_agents(stub, workspace, agents)
            # Open offers on a tenth of them, made in batches as the router makes them.
            for start in range(0, agents // 10, 500):
                await stub.ReserveAgents(
                    agent_state_pb2.ReserveAgentsRequest(
                        reservations=[
                            reserve(workspace, ids[i], f"held-{i}")
                            for i in range(start, min(start + 500, agents // 10))
                        ]
                    )
                )
            records = {
                a.id: a
                for a in (
                    await stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace=workspace))
                ).agents
            }
    finally:
        first.stop()
    progress(f"{agents} agents made")
    written = 0
    for history in histories:
        await write_history(broker, topics, list(records.values()), history - written)
        written = history
        progress(f"history: {written} records")
        # Every topic in full: what a restart did before checkpoints (a checkpoint
        # topic of its own, empty).
        full = AgentState(
            broker,
            work,
            {**topics, "TOPIC_AGENT_CHECKPOINTS": f"none-{uuid.uuid4().hex[:6]}"},
            CHECKPOINT_RECORDS="0",
        ).start()
        lines.append(recovery_line(f"{agents} agents, {written} records: full read", full))
        progress(lines[-1])
        full.stop()
        # A service that takes a checkpoint, then a tail of changes after it.
        taking = AgentState(
            broker, work, topics, CHECKPOINT_RECORDS="10000", CHECKPOINT_CHECK_S="0.2"
        ).start()
        deadline = time.monotonic() + 300
        while not taking.metrics().get(
            'omniroute_agent_state_checkpoints_total{outcome="written"}'
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("no checkpoint written")
            await asyncio.sleep(0.2)
        await tail_of_changes(taking, ids[:1000], flip=len(lines) // 2)
        taking.stop()
        after = AgentState(broker, work, topics).start()
        lines.append(recovery_line(f"{agents} agents, {written} records: from checkpoint", after))
        progress(lines[-1])
        after.stop()
    return lines


async def tail_of_changes(service: AgentState, ids: list[str], flip: int) -> None:
    """One status change per agent of `ids`, through the service (`flip`: the other way)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        stub = agent_state_pb2_grpc.AgentStateStub(channel)
        await in_parallel(
            lambda i: stub.SetStatus(
                agent_state_pb2.SetStatusRequest(agent_id=ids[i], status=AWAY, reason="break")
                if (i + flip) % 2
                else agent_state_pb2.SetStatusRequest(agent_id=ids[i], status=AVAILABLE)
            ),
            range(len(ids)),
            100,
        )


async def main(kind: BrokerKind, agents: int, histories: list[int], count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="omniroute-bench-agent-state-"))
    started = time.monotonic()
    print(f"agent-state benchmark ({kind} broker, {os.cpu_count()} cores; logs in {work})")
    broker = new_broker(kind, log_path=work / "broker.log")
    reserving: list[str] = []
    restarting: list[str] = []
    try:
        broker.start()
        reserving = await throughput(broker, work, count)
        restarting = await restarts(broker, work, agents, histories)
    finally:
        broker.close()
        print()
        print(f"{'reservations':<46} {'count':>7} {'throughput':>12} {'records/round':>10}")
        for line in reserving:
            print(line)
        print()
        print(f"{'restart':<44} {'recovery':>10} {'ready':>10} {'checkpoint':>10} {'tail':>10}")
        for line in restarting:
            print(line)
        print(
            "(recovery: reading and restoring, omniroute_agent_state_recovery_seconds; ready: "
            "process start to gRPC port open; checkpoint, tail: records read)"
        )
        print(f"total time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="make bench-agent-state", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--broker", type=BrokerKind, choices=list(BrokerKind), default=BrokerKind.TANSU
    )
    parser.add_argument("--agents", type=int, default=20_000)
    parser.add_argument(
        "--history",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[100_000, 400_000],
        help="history lengths in records, comma-separated, increasing",
    )
    parser.add_argument("--reservations", type=int, default=5_000)
    args = parser.parse_args()
    asyncio.run(main(args.broker, args.agents, args.history, args.reservations))

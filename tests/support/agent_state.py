"""agent-state under test: the real gRPC server in-process, and readers of its topics.

`serving()` starts the service through its own factory on a free loopback
port against the session broker, with topics of its own, and gives a real
`grpc.aio` stub. `TopicTail` reads a topic from its beginning with aiokafka,
so a test asserts on what was really published.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import Message
from prometheus_client import CollectorRegistry

from omniroute.codec import decode
from omniroute.embedded import EmbeddedBroker
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2
from omniroute_agent_state.app import AgentStateServer, create_server
from omniroute_agent_state.settings import AgentStateSettings
from tests.support.processes import topic_env
from tests.support.system import make_agent

M = TypeVar("M", bound=Message)
T = TypeVar("T")


def agent_state_env(broker: EmbeddedBroker, **overrides: str) -> dict[str, str]:
    """Environment for one agent-state under test: its own topics, loopback, short timers."""
    suffix = uuid.uuid4().hex[:8]
    return {
        **topic_env(suffix),
        "TOPIC_AGENT_SNAPSHOTS": f"agent-snapshots-{suffix}",
        "KAFKA_BOOTSTRAP": broker.bootstrap,
        "KAFKA_PARTITIONS": "2",
        "AGENT_STATE_HOST": "127.0.0.1",
        "AGENT_STATE_PORT": "0",
        "EXPIRY_CHECK_S": "0.05",
        **overrides,
    }


def settings_from(env: dict[str, str]) -> AgentStateSettings:
    """The settings an operator's environment `env` gives, parsed as the service parses it."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return AgentStateSettings.from_env()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Running:
    """One agent-state served in-process, with a connected client."""

    server: AgentStateServer
    settings: AgentStateSettings
    registry: CollectorRegistry
    channel: grpc.aio.Channel
    stub: agent_state_pb2_grpc.AgentStateStub

    @property
    def target(self) -> str:
        """host:port of the gRPC server."""
        return f"127.0.0.1:{self.server.port}"


@asynccontextmanager
async def serving(settings: AgentStateSettings) -> AsyncIterator[Running]:
    """Start agent-state with `settings`, yield it with a stub, stop it."""
    registry = CollectorRegistry()
    server = await create_server(settings, registry)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Running(
            server, settings, registry, channel, agent_state_pb2_grpc.AgentStateStub(channel)
        )
    finally:
        await channel.close()
        await server.stop(0)


class TopicTail(Generic[M]):
    """Every record of a topic from its beginning, decoded, collected in the background."""

    def __init__(self, bootstrap: str, topic: str, message_type: type[M]) -> None:
        self.topic = topic
        self.message_type = message_type
        self.records: list[M] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> TopicTail[M]:
        """Connect and start collecting (the topic must exist)."""
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self.topic)
        deadline = time.monotonic() + 10
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self.topic} does not exist")
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for batch in batches.values():
                self.records.extend(decode(self.message_type, r.value) for r in batch)

    async def wait_for(self, matches: Callable[[M], bool], timeout_s: float = 15.0) -> M:
        """The first record for which `matches` is true; fails after `timeout_s`."""
        found = await self.wait_count(matches, 1, timeout_s)
        return found[0]

    async def wait_count(
        self, matches: Callable[[M], bool], count: int, timeout_s: float = 15.0
    ) -> list[M]:
        """At least `count` matching records, in order; fails after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [r for r in self.records if matches(r)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.topic}: wanted {count} matching, saw {len(found)} "
                    f"of {len(self.records)} records"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop collecting and disconnect."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


async def eventually(
    probe: Callable[[], Any], timeout_s: float = 15.0, interval_s: float = 0.05
) -> Any:
    """Poll `probe` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout_s}s (last: {value!r})")
        await asyncio.sleep(interval_s)


def load_of(agent: agent_pb2.Agent, channel: int) -> int:
    """The agent's load on `channel` (0 when it has no capacity there)."""
    return next((c.load for c in agent.capacities if c.channel == channel), 0)


async def available_agent(
    stub: agent_state_pb2_grpc.AgentStateStub,
    workspace: str,
    agent_id: str,
    capacity: dict[int, int],
    metadata: tuple[tuple[str, str], ...] | None = None,
) -> agent_pb2.Agent:
    """Create an agent and log it in."""
    agent = make_agent(workspace, agent_id, {"billing": 3}, capacity)
    await stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=agent), metadata=metadata)
    return await stub.SetStatus(
        agent_state_pb2.SetStatusRequest(
            agent_id=agent_id, status=agent_pb2.AGENT_STATUS_AVAILABLE
        ),
        metadata=metadata,
    )


def reserve(
    workspace: str, agent_id: str, inquiry_id: str, channel: int = inquiry_pb2.CHANNEL_CHAT
) -> agent_state_pb2.ReserveAgentRequest:
    """A ReserveAgent request as the router sends it."""
    return agent_state_pb2.ReserveAgentRequest(
        agent_id=agent_id,
        inquiry_id=inquiry_id,
        channel=channel,  # type: ignore[arg-type]
        workspace=workspace,
        assignment=task_pb2.Assignment(inquiry_id=inquiry_id, workspace=workspace, attempt=1),
    )

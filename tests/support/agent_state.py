"""agent-state under test: the real gRPC server in-process, and readers of its topics.

`serving()` starts the service through its own factory on a free loopback
port against the session broker, with topics of its own, and gives a real
`grpc.aio` stub; `tests.support.kafka.TopicTail` reads what it published.
`agent_state_service(broker, **settings)` does both steps from an operator's
settings; a module whose tests share one configuration declares its fixtures
with `service_fixture(**settings)` and `published_fixture(topic, type)`.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from prometheus_client import CollectorRegistry

from omniroute.embedded import Broker
from omniroute.kafka import EventProducer
from omniroute.ports import free_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2
from omniroute_agent_state.app import AgentStateServer, create_server
from omniroute_agent_state.journal import Journal
from omniroute_agent_state.settings import AgentStateSettings
from tests.support.kafka import TopicTail
from tests.support.processes import ServiceProcess, topic_env
from tests.support.system import make_agent, port_open

M = TypeVar("M", bound=Message)
T = TypeVar("T")


def agent_state_env(broker: Broker, **overrides: str) -> dict[str, str]:
    """Environment for one agent-state under test: its own topics, loopback, short timers."""
    suffix = uuid.uuid4().hex[:8]
    return {
        **topic_env(suffix),
        "KAFKA_BOOTSTRAP": broker.bootstrap,
        "KAFKA_PARTITIONS": "2",
        "AGENT_STATE_HOST": "127.0.0.1",
        # Loopback only: callers need no token here (deployments always require them).
        "AGENT_STATE_ALLOW_ANONYMOUS": "true",
        # Every workspace its own metric label (names here are the tests' own).
        "METRICS_WORKSPACES": '["*"]',
        "AGENT_STATE_PORT": "0",
        "EXPIRY_CHECK_S": "0.05",
        **overrides,
    }


class AgentStateRuns:
    """agent-state as a real process, started again after each kill, on one port."""

    def __init__(self, broker: Broker, **overrides: str) -> None:
        self.port = free_port()
        self.env = agent_state_env(
            broker,
            AGENT_STATE_PORT=str(self.port),
            AGENT_STATE_METRICS_PORT=str(free_port()),
            **overrides,
        )
        self.started: list[ServiceProcess] = []

    @property
    def target(self) -> str:
        """Where its gRPC clients connect."""
        return f"127.0.0.1:{self.port}"

    def start(self, **overrides: str) -> ServiceProcess:
        """Start one more process (with `overrides` to the environment); wait until it serves."""
        process = ServiceProcess("omniroute_agent_state", {**self.env, **overrides}).start()
        self.started.append(process)
        process.wait_until(lambda: port_open(self.port))
        return process

    def print_logs(self) -> None:
        """Print every process's log (on a test's failure)."""
        for process in self.started:
            print(process.log())

    def stop(self) -> None:
        """Stop every process started, by pid."""
        for process in self.started:
            process.stop()


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


async def make_topics(settings: AgentStateSettings) -> None:
    """agent-state's topics, made as the service makes them, for a test that writes first.

    Apache Kafka (as deployed) creates no topic on first use; the embedded broker does.
    """
    await Journal(settings, EventProducer(settings, "test-topics")).prepare()


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


def agent_state_service(broker: Broker, **settings: str) -> AbstractAsyncContextManager[Running]:
    """agent-state with its own topics on `broker` and `settings` (environment names and
    values, as an operator sets them) over `agent_state_env`'s; `async with` it."""
    return serving(settings_from(agent_state_env(broker, **settings)))


def service_fixture(**settings: str) -> Any:
    """A module's `service` fixture (`service = service_fixture(OFFER_TTL_S="2")`):
    one agent-state per test, configured as `agent_state_service` does."""

    @pytest.fixture
    async def service(broker: Broker) -> AsyncIterator[Running]:
        async with agent_state_service(broker, **settings) as running:
            yield running

    return service


def published_fixture(topic: str, message_type: type[M]) -> Any:
    """A fixture reading what the test's `service` published on its topic `topic` (the
    settings' name, e.g. `"topic_task_events"`), from the start, as `message_type`."""

    @pytest.fixture
    async def tail(service: Running) -> AsyncIterator[TopicTail[M]]:
        async with published(service, getattr(service.settings, topic), message_type) as reader:
            yield reader

    return tail


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


def published(service: Running, topic: str, message_type: type[M]) -> TopicTail[M]:
    """A reader of what `service` published on `topic` (use with `async with`)."""
    return TopicTail(service.settings.kafka_bootstrap, topic, message_type)


class OfferFeed:
    """An agent desktop's WatchOffers stream, collected in the background (`async with`)."""

    def __init__(self, stub: agent_state_pb2_grpc.AgentStateStub, agent_id: str) -> None:
        self.offers: list[agent_state_pb2.Offer] = []
        self._call = stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id=agent_id))
        self._task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for offer in self._call:
            self.offers.append(offer)

    async def wait_for(
        self, matches: Callable[[agent_state_pb2.Offer], bool], timeout_s: float = 15.0
    ) -> agent_state_pb2.Offer:
        """The first offer received for which `matches` is true."""
        return await eventually(  # type: ignore[no-any-return]
            lambda: next((o for o in self.offers if matches(o)), None), timeout_s
        )

    def about(self, inquiry_id: str) -> list[tuple[str, str]]:
        """(status, reason) of every offer received for the inquiry, in order."""
        return [
            (agent_state_pb2.Offer.Status.Name(o.status), o.reason)
            for o in self.offers
            if o.reservation.inquiry_id == inquiry_id
        ]

    async def __aenter__(self) -> OfferFeed:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._call.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

"""The whole system for integration tests: agent-state, router and ingest as processes.

One `System` per test module (starting a router worker takes seconds); tests
isolate themselves by workspace, so they never route each other's inquiries.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from omniroute.embedded import Broker, wait_for_port
from omniroute.ports import free_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2
from tests.support.kafka import TopicTail
from tests.support.processes import ServiceProcess, topic_env

T = TypeVar("T")


def metric_value(url: str, line_prefix: str) -> float | None:
    """The value of the first exposition line starting with `line_prefix`, if any."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class System:
    """Running services and the settings they share."""

    broker: Broker
    topics: dict[str, str] = field(default_factory=topic_env)
    partitions: int = 2
    routing_config: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Settings for every service."""
        return {
            "KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "KAFKA_PARTITIONS": str(self.partitions),
            "AGENT_STATE_HOST": "127.0.0.1",
            # Loopback only: callers need no token here (deployments always require them).
            "AGENT_STATE_ALLOW_ANONYMOUS": "true",
            # Every workspace its own metric label (names here are the tests' own).
            "METRICS_WORKSPACES": '["*"]',
            "AGENT_STATE_PORT": str(self.ports["agent_state"]),
            "AGENT_STATE_METRICS_PORT": str(self.ports["agent_state_metrics"]),
            "AGENT_STATE_TARGET": f"127.0.0.1:{self.ports['agent_state']}",
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": str(self.ports["ingest"]),
            # Loopback only: no API key needed here (tests of the keys set their own).
            "INGEST_ALLOW_ANONYMOUS": "true",
            "INGEST_RATE_PER_S": "0",
            "ROUTER_METRICS_HOST": "127.0.0.1",
            "ROUTER_METRICS_PORT": str(self.ports["router_metrics"]),
            "ROUTER_APP_ID": f"router-{self.topics['TOPIC_INQUIRIES']}",
            "ROUTING_CONFIG": self.routing_config,
            **self.topics,
            **self.extra_env,
        }

    def start(self, *services: str) -> System:
        """Start the named services (default: all three) and wait until each is ready.

        They start side by side, as under compose: each one's imports and the
        router's group join overlap, and none needs another to become ready.
        """
        self.allocate_ports()
        names = [s.replace("-", "_") for s in services or ("agent-state", "router", "ingest")]
        for name in names:
            getattr(self, "spawn_" + name)()
        for name in names:
            getattr(self, "wait_" + name)()
        return self

    def allocate_ports(self) -> None:
        """Free loopback ports for the services that have none yet (before a `spawn_*`)."""
        for name in ("agent_state", "agent_state_metrics", "ingest", "router_metrics", "desk"):
            self.ports.setdefault(name, free_port())

    def start_agent_state(self, **env: str) -> ServiceProcess:
        """Start agent-state (`env` overrides settings) and wait for its gRPC port."""
        proc = self.spawn_agent_state(**env)
        self.wait_agent_state()
        return proc

    def spawn_agent_state(self, **env: str) -> ServiceProcess:
        """Start agent-state without waiting (then `wait_agent_state`)."""
        proc = ServiceProcess("omniroute_agent_state", {**self.env, **env}).start()
        self.processes["agent-state"] = proc
        return proc

    def wait_agent_state(self) -> None:
        """Wait until agent-state accepts connections (after a start or restart)."""
        self.processes["agent-state"].wait_until(lambda: port_open(self.ports["agent_state"]))

    def start_router(self, name: str = "router", **env: str) -> ServiceProcess:
        """Start a router worker and wait until it owns partitions."""
        proc = self.spawn_router(name, **env)
        self.wait_router(name)
        return proc

    def spawn_router(self, name: str = "router", **env: str) -> ServiceProcess:
        """Start a router worker without waiting (start several, then `wait_router` each)."""
        settings = {**self.env, **env}
        proc = ServiceProcess("omniroute_router", settings).start()
        self.processes[name] = proc
        return proc

    def router_metrics_url(self, name: str = "router") -> str:
        """The metrics endpoint of the named router worker."""
        return f"http://127.0.0.1:{self.processes[name].env['ROUTER_METRICS_PORT']}/metrics"

    def router_partitions(self, name: str = "router") -> int:
        """Partitions the named worker says it owns (0 when it does not answer)."""
        url = self.router_metrics_url(name)
        return int(metric_value(url, "omniroute_router_partitions_assigned ") or 0)

    def wait_router(self, name: str = "router", timeout_s: float = 90) -> None:
        """Wait until the named router worker owns partitions."""
        self.processes[name].wait_until(lambda: self.router_partitions(name) > 0, timeout_s)

    def restart(self, name: str) -> ServiceProcess:
        """Start a stopped or killed process again with the same settings and wait until
        it is ready (a router worker: until it owns partitions again)."""
        proc = self.processes[name].start()
        if name == "agent-state":
            self.wait_agent_state()
        elif name == "ingest":
            self.wait_ingest()
        else:
            self.wait_router(name)
        return proc

    def start_ingest(self) -> ServiceProcess:
        """Start ingest and wait for its health endpoint."""
        proc = self.spawn_ingest()
        self.wait_ingest()
        return proc

    def spawn_ingest(self) -> ServiceProcess:
        """Start ingest without waiting (then `wait_ingest`)."""
        proc = ServiceProcess("omniroute_ingest", self.env).start()
        self.processes["ingest"] = proc
        return proc

    def wait_ingest(self) -> None:
        """Wait until ingest's health endpoint answers (after a start or restart)."""
        self.processes["ingest"].wait_until(lambda: http_ok(f"{self.ingest_url}/healthz"))

    def start_desk(self, **env: str) -> ServiceProcess:
        """Start the desk and wait for its health endpoint."""
        settings = {
            **self.env,
            "DESK_HOST": "127.0.0.1",
            "DESK_PORT": str(self.ports["desk"]),
            **env,
        }
        proc = ServiceProcess("omniroute_desk", settings).start()
        self.processes["desk"] = proc
        proc.wait_until(lambda: http_ok(f"{self.desk_url}/healthz"))
        return proc

    def stop(self) -> None:
        """Stop every process by pid: SIGTERM to all first, so they shut down side by side."""
        for proc in self.processes.values():
            if proc.process is not None and proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            proc.stop()

    def logs(self) -> str:
        """Every service's recent output, for failure reports."""
        return "\n".join(f"--- {n} ---\n{p.log()[-6000:]}" for n, p in self.processes.items())

    @property
    def ingest_url(self) -> str:
        """Base URL of ingest."""
        return f"http://127.0.0.1:{self.ports['ingest']}"

    @property
    def desk_url(self) -> str:
        """Base URL of the desk."""
        return f"http://127.0.0.1:{self.ports['desk']}"

    @property
    def agent_state_target(self) -> str:
        """gRPC address of agent-state."""
        return f"127.0.0.1:{self.ports['agent_state']}"

    def post_inquiry(self, body: dict[str, Any]) -> str:
        """POST an inquiry to ingest; returns its id (fails the test on a non-202)."""
        request = urllib.request.Request(
            f"{self.ingest_url}/v1/inquiries",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                assert response.status == 202, response.status
                return str(json.loads(response.read())["id"])
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"ingest answered {exc.code}: {exc.read()!r}") from None


def running(system: System, *services: str) -> Iterator[System]:
    """Start `system` for a fixture; print every service's log if anything fails."""
    try:
        system.start(*services)
        yield system
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()


def port_open(port: int) -> bool:
    """Whether something listens on the loopback `port` (waits at most 0.2 s)."""
    try:
        wait_for_port("127.0.0.1", port, timeout_s=0.2)
        return True
    except TimeoutError:
        return False


def http_ok(url: str) -> bool:
    """Whether `url` answers 200 (false while nothing listens yet)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def reload_routing(system: System, path: Path, text: str) -> None:
    """Write the routing file and tell the system's router to reload it (SIGHUP)."""
    path.write_text(text)
    router = system.processes["router"].process
    assert router is not None
    router.send_signal(signal.SIGHUP)


def decisions(history: Any) -> list[str]:
    """An assignment's history without the router's `reconciled:` entries.

    The router adds one when an event about an offer or task came late and it
    asked agent-state who holds it (CI saw it on a loaded machine); the routing
    decisions around it are what tests check.
    """
    return [entry for entry in history if not entry.startswith("reconciled:")]


def new_workspace() -> str:
    """A workspace of its own for one test."""
    return "ws-" + uuid.uuid4().hex[:8]


def make_agent(
    workspace: str,
    agent_id: str,
    skills: dict[str, int],
    capacity: dict[int, int],
    tier: int = 1,
    languages: tuple[str, ...] = ("en",),
) -> agent_pb2.Agent:
    """An agent profile for UpsertAgent."""
    return agent_pb2.Agent(
        id=agent_id,
        workspace=workspace,
        name=agent_id.title(),
        skills=skills,
        languages=languages,
        tier=tier,  # type: ignore[arg-type]
        capacities=[
            agent_pb2.ChannelCapacity(channel=ch, capacity=n)  # type: ignore[arg-type]
            for ch, n in capacity.items()
        ],
    )


class Desk:
    """An agent desktop and an administrator over real gRPC."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = agent_state_pb2_grpc.AgentStateStub(self.channel)

    async def login(self, agent: agent_pb2.Agent) -> None:
        """Create the agent and make it AVAILABLE."""
        await self.stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=agent))
        await self.set_status(agent.id, agent_pb2.AGENT_STATUS_AVAILABLE)

    async def set_status(self, agent_id: str, status: int, reason: str = "") -> agent_pb2.Agent:
        """Change the agent's presence."""
        return await self.stub.SetStatus(
            agent_state_pb2.SetStatusRequest(agent_id=agent_id, status=status, reason=reason)  # type: ignore[arg-type]
        )

    async def agent(self, agent_id: str) -> agent_pb2.Agent:
        """The agent as agent-state has it now."""
        return await self.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id=agent_id))

    async def accept(self, agent_id: str, inquiry_id: str) -> None:
        """Accept the offer."""
        await self.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id=agent_id, inquiry_id=inquiry_id))  # fmt: skip

    async def decline(self, agent_id: str, inquiry_id: str) -> None:
        """Decline the offer."""
        await self.stub.DeclineTask(agent_state_pb2.TaskRequest(agent_id=agent_id, inquiry_id=inquiry_id))  # fmt: skip

    async def complete(self, agent_id: str, inquiry_id: str, **outcome: Any) -> None:
        """Complete the task; RESOLVED unless `resolution` etc. say otherwise."""
        request = agent_state_pb2.CompleteTaskRequest(
            agent_id=agent_id,
            inquiry_id=inquiry_id,
            resolution=outcome.pop("resolution", task_pb2.RESOLUTION_RESOLVED),
            **outcome,
        )
        await self.stub.CompleteTask(request)

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()


Assignments = TopicTail[task_pb2.Assignment]


def read_assignments(system: System) -> Assignments:
    """A reader of the system's assignments topic (what the router offered to whom)."""
    return TopicTail(
        system.broker.bootstrap, system.topics["TOPIC_ASSIGNMENTS"], task_pb2.Assignment
    )


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = 30.0) -> T:
    """Retry `check` until it returns without AssertionError, up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def inquiry_body(workspace: str, channel: str = "chat", **fields: Any) -> dict[str, Any]:
    """A JSON inquiry for ingest."""
    return {"workspace": workspace, "channel": channel, "subject": "test", **fields}


CHAT, VOICE, EMAIL = inquiry_pb2.CHANNEL_CHAT, inquiry_pb2.CHANNEL_VOICE, inquiry_pb2.CHANNEL_EMAIL

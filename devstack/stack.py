"""Start and stop the broker (embedded Tansu, or Apache Kafka) and the four services.

Everything listens on 127.0.0.1. Processes are stopped by their pid
(SIGTERM, then SIGKILL if they linger); nothing is left running.

Authentication is on, as in a deployment, with tokens made afresh for each
run: at agent-state one for the router, one for the desk, one for the demo
(administrators) and a desktop token for each of the demo's `PEOPLE`; a
supervisor token for the wallboard; an API key at ingest. Only loopback
serves them, so there is no TLS.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devstack.brokers import BrokerKind, kafka_version, new_broker
from devstack.demo import PEOPLE, WORKSPACE
from devstack.processes import ROOT, ServiceProcess
from omniroute.embedded import Broker, wait_for_port


@dataclass(frozen=True)
class Ports:
    """The ports of the local stack; each overridable by the environment variable named."""

    broker: int = 9092  # BROKER_PORT
    ingest: int = 8080  # INGEST_PORT
    agent_state: int = 50051  # AGENT_STATE_PORT
    router_metrics: int = 9102  # ROUTER_METRICS_PORT
    agent_state_metrics: int = 9103  # AGENT_STATE_METRICS_PORT
    desk: int = 8090  # DESK_PORT

    @classmethod
    def from_env(cls) -> Ports:
        """Defaults, overridden by BROKER_PORT, INGEST_PORT, ... where set."""
        names = {
            "broker": "BROKER_PORT",
            "ingest": "INGEST_PORT",
            "agent_state": "AGENT_STATE_PORT",
            "router_metrics": "ROUTER_METRICS_PORT",
            "agent_state_metrics": "AGENT_STATE_METRICS_PORT",
            "desk": "DESK_PORT",
        }
        values: dict[str, int] = {}
        for attr, env in names.items():
            raw = os.environ.get(env)
            if raw:
                if not raw.isdigit() or not 0 < int(raw) < 65536:
                    raise SystemExit(f"{env}={raw!r} is not a port number")
                values[attr] = int(raw)
        return cls(**values)

    def check_free(self) -> None:
        """Exit with a clear message when a port is taken."""
        for name, port in self.__dict__.items():
            with socket.socket() as sock:
                # As the servers do: a port left in TIME_WAIT by the last run is free.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    env = name.upper() + "_PORT" if name != "broker" else "BROKER_PORT"
                    raise SystemExit(
                        f"port {port} ({name}) is in use; stop what uses it or set {env}"
                    ) from None


def _token() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Tokens:
    """This run's tokens (nothing outside loopback ever sees them)."""

    router: str = field(default_factory=_token)
    desk: str = field(default_factory=_token)
    demo: str = field(default_factory=_token)
    supervisor: str = field(default_factory=_token)
    ingest: str = field(default_factory=_token)  # ingest's API key
    desktops: dict[str, str] = field(
        default_factory=lambda: {person[0]: _token() for person in PEOPLE}
    )  # agent id -> desktop token


@dataclass
class Stack:
    """The running processes of the local stack."""

    ports: Ports
    log_dir: Path
    broker_kind: BrokerKind = BrokerKind.TANSU
    partitions: int = 4
    tokens: Tokens = field(default_factory=Tokens)
    broker: Broker | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The settings every service gets."""
        return {
            "KAFKA_BOOTSTRAP": f"127.0.0.1:{self.ports.broker}",
            "KAFKA_BROKER_KIND": str(self.broker_kind),
            "KAFKA_PARTITIONS": str(self.partitions),
            "AGENT_STATE_HOST": "127.0.0.1",
            "METRICS_WORKSPACES": '["*"]',  # local: every workspace its own label
            "AGENT_STATE_PORT": str(self.ports.agent_state),
            "AGENT_STATE_METRICS_PORT": str(self.ports.agent_state_metrics),
            "AGENT_STATE_TARGET": f"127.0.0.1:{self.ports.agent_state}",
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": str(self.ports.ingest),
            # One API key for the demo (and for you: it is printed at start).
            "INGEST_API_KEYS": json.dumps(
                {"demo": {"key": self.tokens.ingest, "workspaces": ["*"], "steer": True}}
            ),
            "ROUTER_METRICS_HOST": "127.0.0.1",
            "ROUTER_METRICS_PORT": str(self.ports.router_metrics),
            "ROUTING_CONFIG": os.environ.get(
                "ROUTING_CONFIG", str(ROOT / "deploy" / "routing.example.yaml")
            ),
            "AGENT_STATE_ADMIN_TOKENS": json.dumps(
                {"router": self.tokens.router, "desk": self.tokens.desk, "demo": self.tokens.demo}
            ),
            "AGENT_STATE_DESKTOP_TOKENS": json.dumps(
                {token: agent for agent, token in self.tokens.desktops.items()}
            ),
        }

    @property
    def desk_url(self) -> str:
        """Where a person opens the desk."""
        return f"http://127.0.0.1:{self.ports.desk}"

    def start(self) -> None:
        """Broker first, then agent-state, router and ingest; wait until each answers."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.broker = new_broker(
            self.broker_kind, self.ports.broker, self.log_dir / "broker.log"
        ).start()
        what = {
            BrokerKind.TANSU: "embedded, in memory",
            BrokerKind.KAFKA: f"Apache Kafka {kafka_version()}, KRaft, deleted on exit",
        }[self.broker_kind]
        print(f"  broker       127.0.0.1:{self.ports.broker} ({what})")
        self._spawn("agent-state", "omniroute_agent_state")
        wait_for_port("127.0.0.1", self.ports.agent_state, timeout_s=30)
        print(f"  agent-state  127.0.0.1:{self.ports.agent_state} (gRPC), metrics :{self.ports.agent_state_metrics}")  # fmt: skip
        self._spawn("router", "omniroute_router", AGENT_STATE_TOKEN=self.tokens.router)
        self._spawn("ingest", "omniroute_ingest")
        self._wait_http(f"http://127.0.0.1:{self.ports.ingest}/healthz", "ingest")
        print(f"  ingest       http://127.0.0.1:{self.ports.ingest} (API docs at /docs)")
        print(f"               API key for this run: Authorization: Bearer {self.tokens.ingest}")
        self._wait_router_joined()
        print(f"  router       metrics http://127.0.0.1:{self.ports.router_metrics}/metrics")
        self._spawn(
            "desk",
            "omniroute_desk",
            DESK_HOST="127.0.0.1",
            DESK_PORT=str(self.ports.desk),
            AGENT_STATE_TOKEN=self.tokens.desk,
            DESK_SUPERVISOR_TOKENS=json.dumps({self.tokens.supervisor: WORKSPACE}),
            DESK_DEMO_AGENTS=json.dumps(self.tokens.desktops),
        )
        self._wait_http(f"{self.desk_url}/healthz", "desk")
        people = " or ".join(person[1] for person in PEOPLE)
        print(f"  desk         {self.desk_url} (sign in as {people})")
        print(f"  wallboard    {self.desk_url}/wallboard#token={self.tokens.supervisor}")
        shown = self.log_dir.relative_to(Path.cwd()) if self.log_dir.is_relative_to(Path.cwd()) else self.log_dir  # fmt: skip
        print(f"  logs in {shown}/")

    def stop(self) -> None:
        """Stop every process by pid, services first, the broker last."""
        for proc in reversed(self.processes.values()):
            proc.stop()
        if self.broker is not None:
            self.broker.close()

    def check_alive(self) -> None:
        """Raise when a service died, naming its log."""
        for name, proc in self.processes.items():
            assert proc.process is not None
            if proc.process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.process.returncode}; see {proc.log_path}"
                )

    def _spawn(self, name: str, module: str, **env: str) -> None:
        settings = {**self.env, **env}
        process = ServiceProcess(module, settings, log_path=self.log_dir / f"{name}.log")
        # In a session of its own: Ctrl-C reaches us, and we stop them in order.
        self.processes[name] = process.start(new_session=True)

    def _wait_router_joined(self, timeout_s: float = 90) -> None:
        """Until the router worker owns partitions (it has joined its consumer group)."""
        url = f"http://127.0.0.1:{self.ports.router_metrics}/metrics"
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    for line in response.read().decode().splitlines():
                        if line.startswith("omniroute_router_partitions_assigned ") and float(line.split()[1]) > 0:  # fmt: skip
                            return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the router did not join its consumer group in {timeout_s}s")
            time.sleep(0.2)

    def _wait_http(self, url: str, name: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer on {url} in {timeout_s}s") from None
                time.sleep(0.2)

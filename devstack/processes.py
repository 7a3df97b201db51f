"""Run Omniroute services as real processes on loopback (`make run`, tests, benchmarks).

A service is started with `python -m <package>` and an environment of its
settings, exactly as an operator would start it; it is stopped by its pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_PATH = os.pathsep.join(
    str(ROOT / p)
    for p in ("lib", "services/ingest", "services/router", "services/agent-state", "services/desk")
)


@dataclass
class ServiceProcess:
    """One service process; `log()` shows what it printed when a test fails."""

    module: str
    env: dict[str, str]
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="svc-", suffix=".log")[1])
    )
    process: subprocess.Popen[bytes] | None = None

    def start(self, new_session: bool = False) -> ServiceProcess:
        """Start `python -m module` with the given settings.

        `new_session` keeps a terminal's Ctrl-C from reaching the process, so the
        caller can stop processes in its own order.
        """
        env = {**os.environ, "PYTHONPATH": SOURCE_PATH, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=new_session,
            )
        return self

    def wait_until(self, ready: Callable[[], bool], timeout_s: float = 60.0) -> None:
        """Poll `ready` until true; fail with the service's log if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.module} exited early:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.module} not ready in {timeout_s}s:\n{self.log()}")
            time.sleep(0.1)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 15.0) -> int | None:
        """Send `sig` to the process (by pid) and wait; SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        if sig != signal.SIGKILL:
            self.process.send_signal(signal.SIGCONT)  # a paused process acts on it only then
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the process dies without any clean-up, as in a crash."""
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the process freezes (no CPU, no I/O, sockets stay open), as in a long GC
        pause or a VM stall. `resume()` lets it carry on where it stopped."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause()`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def log(self) -> str:
        """The last part of what the process printed."""
        return self.log_path.read_text(errors="replace")[-30000:]

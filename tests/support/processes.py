"""Process helpers for the integration tests: per-test topics; services as processes;
pausing any process (the broker too) and stepping one process's wall clock."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.processes import ServiceProcess

__all__ = [
    "ServiceProcess",
    "WallClock",
    "pause_process",
    "paused",
    "resume_process",
    "topic_env",
]


@contextmanager
def paused(process: subprocess.Popen[bytes] | None) -> Iterator[None]:
    """SIGSTOP the process (a broker, a service) for the block; SIGCONT it whatever happens."""
    assert process is not None and process.poll() is None, "pause a running process"
    pause_process(process)
    try:
        yield
    finally:
        resume_process(process)


def topic_env(suffix: str | None = None) -> dict[str, str]:
    """Topic names of their own for one test, so tests never see each other's events."""
    suffix = suffix or uuid.uuid4().hex[:8]
    return {
        "TOPIC_INQUIRIES": f"inquiries-{suffix}",
        "TOPIC_AGENT_EVENTS": f"agent-events-{suffix}",
        "TOPIC_TASK_EVENTS": f"task-events-{suffix}",
        "TOPIC_ASSIGNMENTS": f"assignments-{suffix}",
        "TOPIC_DEAD_LETTERS": f"dead-letters-{suffix}",
        "TOPIC_AGENT_SNAPSHOTS": f"agent-snapshots-{suffix}",
        "TOPIC_AGENT_CHECKPOINTS": f"agent-checkpoints-{suffix}",
        "TOPIC_QUEUE_SNAPSHOTS": f"queue-snapshots-{suffix}",
    }


def _signal_process(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """`sig` to the process, or to its whole group when it leads one (a broker started
    through a wrapper script runs in a session of its own)."""
    if process.poll() is not None:
        return
    if os.getpgid(process.pid) == process.pid:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)


def pause_process(process: subprocess.Popen[bytes]) -> None:
    """SIGSTOP: the process freezes with its sockets open (a stalled VM, a long GC pause)."""
    _signal_process(process, signal.SIGSTOP)


def resume_process(process: subprocess.Popen[bytes]) -> None:
    """SIGCONT after `pause_process`."""
    _signal_process(process, signal.SIGCONT)


class WallClock:
    """One process's wall clock, steppable while it runs; its monotonic clock stays real.

    Debian's libfaketime (`apt-get install faketime`) is preloaded into the process
    and reads its offset from a file on every clock read (FAKETIME_NO_CACHE), so
    `step()` moves the process's `time.time()` at once. Known limit of libfaketime
    0.9.10 with a real monotonic clock (wolfcw/libfaketime#426): a blocking
    `time.sleep()` in the process fails with EINVAL; the services sleep only
    through asyncio, which is unaffected.
    """

    def __init__(self) -> None:
        self.offset_s = 0
        self.path = Path(tempfile.mkstemp(prefix="faketime-", suffix=".rc")[1])
        self._write()

    @staticmethod
    def library() -> str:
        """Path of libfaketime; fails with the install command when it is missing."""
        found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) + sorted(
            glob.glob("/usr/lib/faketime/libfaketime.so.1")
        )
        if not found:
            raise RuntimeError("libfaketime is missing: apt-get install faketime")
        return found[0]

    def env(self) -> dict[str, str]:
        """Settings that put a process started with them under this clock."""
        return {
            "LD_PRELOAD": self.library(),
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def step(self, seconds: int) -> None:
        """Move the wall clock by `seconds` (negative: back) from where it is now."""
        self.offset_s += seconds
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.offset_s:+d}\n")
        tmp.replace(self.path)  # a reader never sees a half-written offset

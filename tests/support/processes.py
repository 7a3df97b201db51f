"""Process helpers for the integration tests: per-test topics; services as processes."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from devstack.processes import ServiceProcess

__all__ = ["ServiceProcess", "paused", "topic_env"]


@contextmanager
def paused(process: subprocess.Popen[bytes] | None) -> Iterator[None]:
    """SIGSTOP the process (a broker, a service) for the block; SIGCONT it whatever happens."""
    assert process is not None and process.poll() is None, "pause a running process"
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


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
        "TOPIC_QUEUE_SNAPSHOTS": f"queue-snapshots-{suffix}",
    }

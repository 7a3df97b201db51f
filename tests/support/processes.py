"""Process helpers for the integration tests: per-test topics; services as processes."""

from __future__ import annotations

import uuid

from devstack.processes import ServiceProcess

__all__ = ["ServiceProcess", "topic_env"]


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

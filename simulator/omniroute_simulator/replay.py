"""Recorded periods: inquiries and task events from the topics or an exported file.

A replay re-runs what really arrived (when, on which channel, needing what,
how long each contact took, when a customer hung up) under another routing
configuration or staffing. The export format is JSON lines, one event each:

    {"type": "inquiry", "at": 1763900000.0, "id": "q1", "workspace": "acme",
     "channel": "voice", "kind": "question", "skills": {"billing": 1},
     "language": "en", "segment": "vip", "priority": 0}
    {"type": "task", "at": 1763900012.5, "inquiry_id": "q1", "workspace": "acme",
     "event": "accepted", "agent_id": "a7"}

Task events are `offered`, `accepted`, `declined`, `offer_timeout`,
`withdrawn`, `completed`, `abandoned` and `transferred`. From them each
contact gets its handle time (first acceptance to completion) and, for a
customer who hung up unanswered, the patience they showed. A customer who was
answered showed no limit to their patience, and is replayed as never
hanging up; a contact with no recorded handle time takes one from the
scenario's distribution.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omniroute.codec import InvalidEvent, decode, seconds
from omniroute.v1 import inquiry_pb2, task_pb2
from omniroute_router.config import CHANNELS
from omniroute_router.convert import channel_name, inquiry_from_proto
from omniroute_simulator.scenario import Scenario, ScenarioError
from omniroute_simulator.simulation import Contact

TASK_EVENTS = (
    "offered",
    "accepted",
    "declined",
    "offer_timeout",
    "withdrawn",
    "completed",
    "abandoned",
    "transferred",
)


class RecordingError(ValueError):
    """An exported file is unusable; the message names the file, line and field."""


@dataclass
class Recording:
    """What arrived in a recorded period and what became of it."""

    workspace: str
    start: float  # epoch seconds of the first arrival
    contacts: list[tuple[float, Contact]]  # seconds after `start`
    recorded_waits: dict[str, float]  # inquiry -> wait to first acceptance
    abandoned: set[str]

    @property
    def duration_s(self) -> float:
        return (self.contacts[-1][0] if self.contacts else 0.0) + 1.0


def read_file(path: str | Path) -> list[dict[str, Any]]:
    """Every event of an exported JSON-lines file, validated."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read recording: {exc.strerror}") from None
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordingError(f"{where}: not valid JSON: {exc.msg}") from None
        events.append(validate(event, where))
    return events


def validate(event: Any, where: str) -> dict[str, Any]:
    """One exported event checked field by field."""
    if not isinstance(event, dict):
        raise RecordingError(f"{where}: expected an object")

    def need(name: str, types: Any, check: Any = None) -> Any:
        value = event.get(name)
        if not isinstance(value, types) or isinstance(value, bool) or (check and not check(value)):
            raise RecordingError(f"{where}: {name}: missing or invalid ({value!r})")
        return value

    kind = need("type", str, lambda v: v in ("inquiry", "task"))
    need("at", (int, float), math.isfinite)
    need("workspace", str, bool)
    if kind == "inquiry":
        need("id", str, bool)
        need("channel", str, lambda v: v in CHANNELS)
        skills = event.get("skills", {})
        if not isinstance(skills, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and 1 <= v <= 5 for k, v in skills.items()
        ):
            raise RecordingError(f"{where}: skills: expected skill -> level 1..5")
        for name in ("kind", "language", "segment"):
            if not isinstance(event.get(name, ""), str):
                raise RecordingError(f"{where}: {name}: expected text")
        priority = event.get("priority", 0)
        if not isinstance(priority, int) or not 0 <= priority <= 10:
            raise RecordingError(f"{where}: priority: expected 0..10")
    else:
        need("inquiry_id", str, bool)
        need("event", str, lambda v: v in TASK_EVENTS)
        if not isinstance(event.get("agent_id", ""), str):
            raise RecordingError(f"{where}: agent_id: expected text")
    return event


def write_file(path: str | Path, events: Iterable[dict[str, Any]]) -> int:
    """Write events as JSON lines; returns how many."""
    n = 0
    with Path(path).open("w") as f:
        for event in events:
            f.write(json.dumps(event, sort_keys=True) + "\n")
            n += 1
    return n


def from_inquiry(inquiry: inquiry_pb2.Inquiry, at: float) -> dict[str, Any]:
    """The export form of an `Inquiry` event (the router's own conversion decides the fields)."""
    queued = inquiry_from_proto(inquiry, at)
    return {
        "type": "inquiry",
        "at": queued.arrived_at,
        "id": queued.id,
        "workspace": queued.workspace,
        "channel": queued.channel,
        "kind": queued.kind,
        "skills": queued.skills,
        "language": queued.language,
        "segment": queued.segment,
        "priority": queued.priority,
    }


def from_task(event: task_pb2.TaskEvent, at: float) -> dict[str, Any] | None:
    """The export form of a `TaskEvent` (None for an unspecified type)."""
    if event.type == task_pb2.TaskEvent.TYPE_UNSPECIFIED or not event.inquiry_id:
        return None
    name = task_pb2.TaskEvent.Type.Name(event.type).removeprefix("TYPE_").lower()
    occurred = seconds(event.occurred_at) if event.HasField("occurred_at") else at
    result: dict[str, Any] = {
        "type": "task",
        "at": occurred,
        "inquiry_id": event.inquiry_id,
        "workspace": event.workspace,
        "event": name,
        "agent_id": event.agent_id,
    }
    if event.channel:
        result["channel"] = channel_name(event.channel)
    return result


async def read_kafka(
    bootstrap: str,
    inquiries_topic: str,
    task_topic: str,
    fetch_max_wait_ms: int = 100,
    timeout_s: float = 60.0,
) -> list[dict[str, Any]]:
    """Every inquiry and task event on the topics, each read to its high watermark."""
    from omniroute.kafka import read_to_end

    events: list[dict[str, Any]] = []
    for record in await read_to_end(bootstrap, inquiries_topic, fetch_max_wait_ms, timeout_s):
        try:
            events.append(
                from_inquiry(decode(inquiry_pb2.Inquiry, record.value), record.timestamp / 1000)
            )
        except InvalidEvent:
            continue  # the router dead-letters these; they were never routed
    for record in await read_to_end(bootstrap, task_topic, fetch_max_wait_ms, timeout_s):
        try:
            task = from_task(decode(task_pb2.TaskEvent, record.value), record.timestamp / 1000)
        except InvalidEvent:
            continue
        if task is not None:
            events.append(task)
    events.sort(key=lambda e: e["at"])
    return events


def read_kafka_sync(bootstrap: str, inquiries_topic: str, task_topic: str) -> list[dict[str, Any]]:
    """`read_kafka` for the command line."""
    return asyncio.run(read_kafka(bootstrap, inquiries_topic, task_topic))


def recording(
    events: Iterable[dict[str, Any]],
    scenario: Scenario,
    since: float | None = None,
    until: float | None = None,
    seed: int = 1,
) -> Recording:
    """The contacts of the scenario's workspace that arrived in [since, until)."""
    arrivals: dict[str, dict[str, Any]] = {}
    accepted: dict[str, float] = {}
    completed: dict[str, float] = {}
    abandoned: dict[str, float] = {}
    for event in events:
        if event["workspace"] != scenario.workspace:
            continue
        if event["type"] == "inquiry":
            at = event["at"]
            if (since is None or at >= since) and (until is None or at < until):
                arrivals.setdefault(event["id"], event)
            continue
        inquiry_id, at = event["inquiry_id"], event["at"]
        match event["event"]:
            case "accepted":
                accepted.setdefault(inquiry_id, at)
            case "completed":
                completed[inquiry_id] = at
            case "abandoned":
                abandoned.setdefault(inquiry_id, at)
    if not arrivals:
        raise ScenarioError(
            f"the recording holds no inquiries of workspace {scenario.workspace!r} in that period"
        )
    rng = random.Random(f"{seed}:replay")
    start = min(e["at"] for e in arrivals.values())
    contacts = []
    waits = {}
    gone = set()
    for inquiry_id, e in sorted(arrivals.items(), key=lambda kv: (kv[1]["at"], kv[0])):
        arrived = e["at"]
        if inquiry_id in accepted and inquiry_id in completed:
            handle = max(0.0, completed[inquiry_id] - accepted[inquiry_id])
        else:
            handle = scenario.handle_time.sample(rng)
        patience = math.inf
        if inquiry_id in accepted:
            waits[inquiry_id] = max(0.0, accepted[inquiry_id] - arrived)
        elif inquiry_id in abandoned:
            patience = max(0.0, abandoned[inquiry_id] - arrived)
            gone.add(inquiry_id)
        contact = Contact(
            stream=e["channel"],
            channel=e["channel"],
            kind=e.get("kind", ""),
            skills=dict(e.get("skills", {})),
            language=e.get("language", ""),
            segment=e.get("segment", ""),
            priority=e.get("priority", 0),
            handle_s=handle,
            patience_s=patience,
            id=inquiry_id,
        )
        contacts.append((arrived - start, contact))
    return Recording(scenario.workspace, start, contacts, waits, gone)

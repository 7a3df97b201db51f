"""The rules a chaos scenario checks, as plain functions over what the system published.

Input is evidence gathered from the topics (inquiries, assignments, task-events,
agent-events, the router's inquiry table changelog), from agent-state at the end
(its reservations and agents) and from the simulated desks (which changes
agent-state confirmed to them). No I/O here: tests/unit feeds it made-up
evidence to show that every check catches what it is meant to catch.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from omniroute.v1 import agent_pb2, inquiry_pb2, task_pb2

Key = tuple[str, str]  # (workspace, inquiry id): inquiry ids are scoped by workspace

TaskType = task_pb2.TaskEvent
_ENDS_OFFER = {
    TaskType.TYPE_DECLINED,
    TaskType.TYPE_OFFER_TIMEOUT,
    TaskType.TYPE_WITHDRAWN,
    TaskType.TYPE_COMPLETED,
}
_CONFIRMED_TYPE = {
    "accepted": TaskType.TYPE_ACCEPTED,
    "declined": TaskType.TYPE_DECLINED,
    "completed": TaskType.TYPE_COMPLETED,
}
OPEN_STATES = {"offered": False, "accepted": True}  # router state -> task accepted?


@dataclass(frozen=True)
class Confirmed:
    """A change agent-state answered OK to a desk: its event must exist."""

    kind: str  # accepted, declined, completed
    workspace: str
    inquiry_id: str
    agent_id: str
    reservation_id: str


@dataclass(frozen=True)
class RouterEntry:
    """The router's persisted picture of one inquiry (latest changelog record)."""

    state: str  # waiting, offered, accepted, scheduled, finished
    agent_id: str = ""
    # Agents the router will not offer it to before a (router wall clock) time: they
    # declined or missed it, or escalated it.
    excluded: tuple[tuple[str, float], ...] = ()


@dataclass
class Evidence:
    """Everything one scenario's checks look at."""

    workspaces: set[str]
    accepted: set[Key]  # inquiries ingest answered 202 for
    inquiries: list[inquiry_pb2.Inquiry] = field(default_factory=list)
    assignments: list[task_pb2.Assignment] = field(default_factory=list)
    task_events: list[task_pb2.TaskEvent] = field(default_factory=list)  # partition order
    agent_events: list[agent_pb2.AgentEvent] = field(default_factory=list)
    router: dict[Key, RouterEntry] = field(default_factory=dict)
    reservations: dict[Key, tuple[str, bool]] = field(default_factory=dict)  # agent, accepted
    agents: list[agent_pb2.Agent] = field(default_factory=list)  # agent-state's, at the end
    now: float = 0.0  # wall-clock time of the end picture (for the router's exclusions)
    confirmed: list[Confirmed] = field(default_factory=list)
    cross_workspace: int = 0  # offers a desk received for another workspace
    # False where no offer can expire and no session lapse in real time (desks answer
    # within a second of offers that live far longer): every expiry is then early.
    expiries_allowed: bool = True


@dataclass
class Verdict:
    """The figures of one scenario; `clean` when every rule held."""

    sent: int = 0
    resolved: int = 0
    lost: int = 0
    stuck: int = 0
    waiting: int = 0  # unresolved but provably nobody could take them
    double_offers: int = 0
    reoffered: int = 0  # offered again after it was resolved
    overruns: int = 0
    unrecorded: int = 0  # confirmed changes or published offers with no task event
    cross: int = 0
    expired_early: int | None = None  # None: expiries allowed in this scenario
    agree: bool = True
    details: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Every rule held."""
        zeros = (
            self.lost,
            self.stuck,
            self.double_offers,
            self.reoffered,
            self.overruns,
            self.unrecorded,
            self.cross,
            self.expired_early or 0,
        )
        return self.agree and not any(zeros)

    def line(self, broker: str, scenario: str) -> str:
        """The one-line summary printed per scenario."""
        return (
            f"chaos[{broker}] {scenario}: sent {self.sent} resolved {self.resolved} "
            f"lost {self.lost} stuck {self.stuck} double-offers {self.double_offers} "
            f"overruns {self.overruns} agree {'yes' if self.agree else 'no'} "
            f"reoffered {self.reoffered} unrecorded {self.unrecorded} "
            f"cross-workspace {self.cross} waiting {self.waiting}"
            + ("" if self.expired_early is None else f" expired-early {self.expired_early}")
        )


def judge(evidence: Evidence) -> Verdict:
    """Apply every rule to the evidence."""
    verdict = Verdict(sent=len(evidence.accepted), cross=evidence.cross_workspace)
    events = [e for e in evidence.task_events if e.workspace in evidence.workspaces]
    resolved = resolved_keys(events)
    verdict.resolved = len(evidence.accepted & resolved)
    _lost_and_stuck(evidence, resolved, verdict)
    doubles, reoffered = double_offers(events)
    verdict.double_offers, verdict.reoffered = len(doubles), len(reoffered)
    verdict.details += doubles + reoffered
    records = [e.agent for e in evidence.agent_events] + list(evidence.agents)
    overruns = capacity_overruns(r for r in records if r.workspace in evidence.workspaces)
    verdict.overruns = len(overruns)
    verdict.details += overruns
    unrecorded = unrecorded_changes(evidence.confirmed, evidence.assignments, events)
    verdict.unrecorded = len(unrecorded)
    verdict.details += unrecorded
    disagreements = picture_disagreements(evidence.router, evidence.reservations)
    verdict.agree = not disagreements
    verdict.details += disagreements
    if evidence.cross_workspace:
        verdict.details.append(f"{evidence.cross_workspace} offers reached another workspace")
    if not evidence.expiries_allowed:
        early = expiries(events)
        verdict.expired_early = len(early)
        verdict.details += early
    return verdict


def expiries(events: Iterable[task_pb2.TaskEvent]) -> list[str]:
    """Offers that timed out, and offers withdrawn because a desk's session lapsed."""
    found = []
    for e in events:
        lapsed = e.type == TaskType.TYPE_WITHDRAWN and e.reason == "session_timeout"
        if e.type == TaskType.TYPE_OFFER_TIMEOUT or lapsed:
            kind = "session lapsed" if lapsed else "offer timed out"
            found.append(f"expired {(e.workspace, e.inquiry_id)}: {kind} on {e.agent_id}")
    return found


def resolved_keys(events: Iterable[task_pb2.TaskEvent]) -> set[Key]:
    """Inquiries completed as resolved, or abandoned by the customer."""
    done: set[Key] = set()
    for e in events:
        if (
            e.type == TaskType.TYPE_COMPLETED and e.resolution == task_pb2.RESOLUTION_RESOLVED
        ) or e.type == TaskType.TYPE_ABANDONED:
            done.add((e.workspace, e.inquiry_id))
    return done


def _lost_and_stuck(evidence: Evidence, resolved: set[Key], verdict: Verdict) -> None:
    """Every accepted inquiry ends resolved, or provably waits with nobody able to take it.

    Unresolved and still open in the router's picture: stuck (or waiting, when no
    agent of its workspace could take it). Unresolved and not open in the router's
    picture (never on the topic, dropped, or marked finished without a resolution):
    lost.
    """
    published = {(i.workspace, i.id): i for i in evidence.inquiries}
    for key in sorted(evidence.accepted - resolved):
        entry = evidence.router.get(key)
        if key not in published:
            verdict.lost += 1
            verdict.details.append(f"lost {key}: accepted by ingest, not on the inquiries topic")
        elif entry is None or entry.state == "finished":
            verdict.lost += 1
            seen = "finished" if entry else "absent"
            verdict.details.append(f"lost {key}: unresolved, {seen} in the router's picture")
        elif entry.state == "waiting" and not _able(evidence, key[0], entry):
            verdict.waiting += 1
        else:
            verdict.stuck += 1
            holder = f" on {entry.agent_id}" if entry.agent_id else ""
            verdict.details.append(f"stuck {key}: {entry.state}{holder} at the end")


def _able(evidence: Evidence, workspace: str, entry: RouterEntry) -> bool:
    """Whether some agent could take the waiting inquiry: AVAILABLE in its workspace,
    a free slot, and not excluded from it by the router (declined or missed it)."""
    excluded = {agent for agent, until in entry.excluded if until > evidence.now}
    return any(
        agent.workspace == workspace
        and agent.status == agent_pb2.AGENT_STATUS_AVAILABLE
        and any(c.load < c.capacity for c in agent.capacities)
        and agent.id not in excluded
        for agent in evidence.agents
    )


def double_offers(events: Iterable[task_pb2.TaskEvent]) -> tuple[list[str], list[str]]:
    """Offers made while another offer or task of the same inquiry was open, and offers
    made after the inquiry was resolved, from agent-state's task events in partition
    order (one workspace lives on one partition, so its events are totally ordered).
    A reservation is open from OFFERED until DECLINED, OFFER_TIMEOUT, WITHDRAWN or
    COMPLETED. Events are read as a consumer must: a re-sent event (same event id) is
    ignored, and a reservation once ended stays ended (a re-sent OFFERED can land
    after the reservation's end when the broker comes back).
    """
    open_by_key: dict[Key, set[str]] = defaultdict(set)
    ended: set[str] = set()
    seen: set[str] = set()
    resolved: set[Key] = set()
    doubles: list[str] = []
    reoffered: list[str] = []
    history: dict[Key, list[str]] = defaultdict(list)
    for e in events:
        key = (e.workspace, e.inquiry_id)
        history[key].append(f"{TaskType.Type.Name(e.type)[5:]}:{e.reservation_id[:8]}")
        if e.event_id and e.event_id in seen:
            continue
        seen.add(e.event_id)
        if e.type == TaskType.TYPE_OFFERED and e.reservation_id in ended:
            continue
        if e.type == TaskType.TYPE_OFFERED:
            others = open_by_key[key] - {e.reservation_id}
            if others:
                doubles.append(
                    f"double offer {key}: {e.reservation_id} to {e.agent_id} while "
                    f"{sorted(others)} open; its events in order: {' '.join(history[key])}"
                )
            if key in resolved:
                reoffered.append(f"offered after resolved {key}: {e.reservation_id} to {e.agent_id}")  # fmt: skip
            open_by_key[key].add(e.reservation_id)
        elif e.type in _ENDS_OFFER or e.type == TaskType.TYPE_TRANSFERRED:
            open_by_key[key].discard(e.reservation_id)
            ended.add(e.reservation_id)
        resolved |= resolved_keys([e])
    return doubles, reoffered


def capacity_overruns(records: Iterable[agent_pb2.Agent]) -> list[str]:
    """Every agent record in which a channel holds more than its capacity (by its load
    or by its reservations), or all channels together more than the total capacity."""
    found: list[str] = []
    for agent in records:
        held = Counter(r.channel for r in agent.reservations)
        total = 0
        for cap in agent.capacities:
            total += cap.load
            if cap.load > cap.capacity or held[cap.channel] > cap.capacity:
                found.append(
                    f"overrun {agent.workspace}/{agent.id} v{agent.version}: channel "
                    f"{cap.channel} load {cap.load} reservations {held[cap.channel]} "
                    f"capacity {cap.capacity}"
                )
        if agent.total_capacity and total > agent.total_capacity:
            found.append(
                f"overrun {agent.workspace}/{agent.id} v{agent.version}: total load {total} "
                f"above {agent.total_capacity}"
            )
    return found


def unrecorded_changes(
    confirmed: Iterable[Confirmed],
    assignments: Iterable[task_pb2.Assignment],
    events: list[task_pb2.TaskEvent],
) -> list[str]:
    """Changes the system said happened without their task event: a call agent-state
    answered OK to a desk, or an offer the router published for a reservation that
    agent-state never recorded (no OFFERED event)."""
    seen = {(e.type, e.workspace, e.inquiry_id, e.reservation_id) for e in events}
    seen_any_reservation = {(e.type, e.workspace, e.inquiry_id, e.agent_id) for e in events}
    found: list[str] = []
    for c in confirmed:
        kind = _CONFIRMED_TYPE[c.kind]
        if c.reservation_id:
            ok = (kind, c.workspace, c.inquiry_id, c.reservation_id) in seen
        else:
            ok = (kind, c.workspace, c.inquiry_id, c.agent_id) in seen_any_reservation
        if not ok:
            found.append(
                f"unrecorded {c.kind} of ({c.workspace}, {c.inquiry_id}) by {c.agent_id} "
                f"reservation {c.reservation_id or '?'}: answered OK, no task event"
            )
    workspaces = {e.workspace for e in events}
    for a in assignments:
        if a.workspace not in workspaces and events:
            continue
        if (TaskType.TYPE_OFFERED, a.workspace, a.inquiry_id, a.reservation_id) not in seen:
            found.append(
                f"unrecorded offer of ({a.workspace}, {a.inquiry_id}) to {a.agent_id}: "
                f"assignment for reservation {a.reservation_id or '(none)'} with no OFFERED event"
            )
    return found


def picture_disagreements(
    router: dict[Key, RouterEntry], reservations: dict[Key, tuple[str, bool]]
) -> list[str]:
    """Where the router's open offers and tasks differ from agent-state's reservations."""
    ours = {
        key: (entry.agent_id, OPEN_STATES[entry.state])
        for key, entry in router.items()
        if entry.state in OPEN_STATES
    }
    found: list[str] = []
    for key in sorted(set(ours) | set(reservations)):
        if ours.get(key) != reservations.get(key):
            found.append(
                f"disagree {key}: router {_describe(ours.get(key))}, "
                f"agent-state {_describe(reservations.get(key))}"
            )
    return found


def _describe(held: tuple[str, bool] | None) -> str:
    if held is None:
        return "nothing open"
    agent, accepted = held
    return f"{'accepted' if accepted else 'offered'} on {agent}"


def router_picture(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[Key, RouterEntry]:
    """The router's latest persisted state per inquiry, from its inquiry table's
    changelog (key, value) records in partition order. Values are the routing core's
    JSON; a finished inquiry keeps only its workspace; a tombstone forgets it."""
    by_table_key: dict[str, tuple[Key, RouterEntry] | None] = {}
    for raw_key, raw_value in records:
        table_key = _text(raw_key)
        if raw_value is None:
            by_table_key[table_key] = None
            continue
        value = json.loads(raw_value)
        if not isinstance(value, dict) or "workspace" not in value:
            continue
        workspace = str(value["workspace"])
        inquiry_id = str(value.get("id") or _strip_workspace(table_key, workspace))
        if "finished_at" in value:
            entry = RouterEntry("finished")
        else:
            excluded = value.get("excluded") or {}
            entry = RouterEntry(
                str(value.get("state", "waiting")),
                str(value.get("agent_id", "")),
                tuple(sorted((str(a), float(u)) for a, u in excluded.items())),
            )
        by_table_key[table_key] = ((workspace, inquiry_id), entry)
    return {held[0]: held[1] for held in by_table_key.values() if held is not None}


def _text(raw: bytes | None) -> str:
    text = (raw or b"").decode(errors="replace")
    if text.startswith('"'):
        try:
            return str(json.loads(text))
        except ValueError:
            pass
    return text


def _strip_workspace(table_key: str, workspace: str) -> str:
    for sep in ("/", "\x1f", ":"):
        if table_key.startswith(workspace + sep):
            return table_key[len(workspace) + 1 :]
    return table_key

"""Recovery repair: the task events the recovered agent records imply but the topic lacks.

One outbox batch writes to several topics (agent-events, agent-snapshots,
task-events), and those writes are not atomic: a service killed after the
agent record of a reservation was acknowledged but before its TaskEvent was
leaves a reservation that the roster recovers (and answers for:
`already_reserved`) while no consumer ever saw it offered. At start, before
serving, the adapter compares the recovered records with the last task event
of each inquiry and publishes what is missing:

- an open reservation whose inquiry's last event is not of this reservation:
  its OFFERED, and its ACCEPTED when the record holds it accepted; an accepted
  reservation that a TRANSFERRED moved here (the inquiry's last event is the
  ACCEPTED of another agent, who no longer holds it): the TRANSFERRED;
- an accepted reservation whose last event is its own OFFERED: its ACCEPTED.

And one release the records lack: a reservation whose last event is its own
TRANSFERRED to a queue is released (`Repair.released`; the roster frees the
slot and publishes the record). A transfer to a queue writes its event
before the agent record (`Changes.events_first`), so a kill between the two
leaves exactly this; the router routes the task again from the event.

Each repaired event has an `event_id` derived from the reservation id and
the type, so a repair published twice (a restart before its acknowledgement
was seen) is de-duplicated by consumers.

What the records cannot tell is reported, not invented: when the last event
opens a reservation (OFFERED/ACCEPTED) that no record holds any more, the
release was recorded but its ending event is missing, and the record does
not say which ending it was (declined, timed out, withdrawn, completed with
which outcome); and when the last event ends a reservation a record still
holds. The adapter logs and counts those; the router's reconciliation
(GetReservation for offers and tasks that stay silent) settles them.

Plain synchronous Python: no Kafka, no clock (`now` is passed in).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from omniroute.codec import timestamp
from omniroute_agent_state.roster import Agent, Changes, Reservation, TaskEvent

OPENING = frozenset({TaskEvent.TYPE_OFFERED, TaskEvent.TYPE_ACCEPTED})
# A fixed namespace: the same reservation and type give the same event id in every process.
_NAMESPACE = uuid.UUID("6f1d3c52-7a4e-4d0b-9a51-2c8e0b7f3a10")


class Gap(enum.Enum):
    """A disagreement between records and task events that the records cannot repair."""

    END_MISSING = "end_missing"  # last event opens a reservation no record holds
    RELEASE_MISSING = "release_missing"  # last event ends a reservation a record holds


@dataclass(frozen=True)
class Unrepaired:
    """One gap, for the log (ids only) and the metric."""

    gap: Gap
    workspace: str
    inquiry_id: str
    agent_id: str
    reservation_id: str


@dataclass(frozen=True)
class Release:
    """A reservation still held in the records whose ending event is on the topic."""

    agent_id: str
    inquiry_id: str
    reservation_id: str


@dataclass
class Repair:
    """The events to publish before serving, the releases to make, and what could not be
    repaired."""

    changes: Changes = field(default_factory=Changes)
    released: list[Release] = field(default_factory=list)
    unrepaired: list[Unrepaired] = field(default_factory=list)


def repair_event_id(reservation_id: str, kind: int) -> str:
    """The deterministic event id of a repaired event."""
    name = f"{reservation_id}/{TaskEvent.Type.Name(kind)}"  # type: ignore[arg-type]
    return uuid.uuid5(_NAMESPACE, name).hex


def repair(agents: Iterable[Agent], task_events: Iterable[TaskEvent], now: float) -> Repair:
    """Compare recovered `agents` with the recovered `task_events` (in publishing order).

    `task_events` may hold several events per inquiry (e.g. the last of each
    agent for it); the last one of each inquiry is what counts.
    """
    last: dict[tuple[str, str], TaskEvent] = {}
    for event in task_events:
        last[(event.workspace, event.inquiry_id)] = event
    held: dict[str, Agent] = {}  # reservation id -> the agent holding it
    found = Repair()
    for agent in agents:
        for reservation in agent.reservations:
            held[reservation.reservation_id] = agent
            previous = last.get((agent.workspace, reservation.inquiry_id))
            found.changes.task_events.extend(_missing(agent, reservation, previous, now))
            if (
                previous is not None
                and previous.reservation_id == reservation.reservation_id
                and previous.type not in OPENING
            ):
                if _to_a_queue(previous):
                    found.released.append(
                        Release(agent.id, reservation.inquiry_id, reservation.reservation_id)
                    )
                else:
                    found.unrepaired.append(_gap(Gap.RELEASE_MISSING, previous))
    for event in last.values():
        if event.type in OPENING and event.reservation_id not in held:
            if not _transferred_from(event, held.values()):
                found.unrepaired.append(_gap(Gap.END_MISSING, event))
    return found


def _missing(
    agent: Agent, reservation: Reservation, previous: TaskEvent | None, now: float
) -> list[TaskEvent]:
    """The events `reservation` implies after `previous`, the inquiry's last event."""
    if previous is not None and previous.reservation_id == reservation.reservation_id:
        if reservation.accepted and previous.type == TaskEvent.TYPE_OFFERED:
            return [_event(TaskEvent.TYPE_ACCEPTED, agent, reservation, now)]
        return []
    if (
        reservation.accepted
        and previous is not None
        and previous.type == TaskEvent.TYPE_ACCEPTED
        and previous.agent_id != agent.id
    ):
        # A warm transfer: the target holds a new reservation, accepted, never offered.
        moved = _event(TaskEvent.TYPE_TRANSFERRED, agent, reservation, now)
        moved.agent_id = previous.agent_id
        moved.target_agent_id = agent.id
        return [moved]
    events = [_event(TaskEvent.TYPE_OFFERED, agent, reservation, now)]
    if reservation.accepted:
        events.append(_event(TaskEvent.TYPE_ACCEPTED, agent, reservation, now))
    return events


def _to_a_queue(event: TaskEvent) -> bool:
    """Whether `event` handed its task to a queue (written before its agent record)."""
    return event.type == TaskEvent.TYPE_TRANSFERRED and bool(event.target_queue)


def _transferred_from(event: TaskEvent, holders: Iterable[Agent]) -> bool:
    """Whether another agent now holds the inquiry accepted (the TRANSFERRED is repaired)."""
    if event.type != TaskEvent.TYPE_ACCEPTED:
        return False
    return any(
        agent.id != event.agent_id
        and agent.workspace == event.workspace
        and any(r.inquiry_id == event.inquiry_id and r.accepted for r in agent.reservations)
        for agent in holders
    )


def _event(kind: int, agent: Agent, reservation: Reservation, now: float) -> TaskEvent:
    event = TaskEvent(
        event_id=repair_event_id(reservation.reservation_id, kind),
        type=kind,  # type: ignore[arg-type]
        inquiry_id=reservation.inquiry_id,
        workspace=agent.workspace,
        agent_id=agent.id,
        reservation_id=reservation.reservation_id,
        channel=reservation.channel,
        reason="recovered",
    )
    event.occurred_at.CopyFrom(timestamp(now))
    return event


def _gap(gap: Gap, event: TaskEvent) -> Unrepaired:
    return Unrepaired(gap, event.workspace, event.inquiry_id, event.agent_id, event.reservation_id)

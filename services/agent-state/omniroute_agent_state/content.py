"""What the desks are shown for each reservation held: the router's assignment and the messages.

The router's `Assignment` (the inquiry's content, its history, a callback's
number) comes with `ReserveAgent`; a customer's new message on an inquiry
the agent holds comes with `DeliverMessage`. Desks get them on `WatchOffers`,
also a desk that connects later (another device, a reload) and one that
reconnects after agent-state restarted: so each is kept while the agent
holds the reservation, and written durably with the change that brings it,
as a `HeldContent` record on the `agent-snapshots` topic (one record per
assignment and per message, never a growing list: each is at most the size
of the inquiry the router already published). When the reservation ends
(declined, expired, withdrawn, completed, transferred, the agent removed) its
records get tombstones, so the compacted topic forgets the customer's content
with the task. Checkpoints carry what is held, so a restart reads no history.

Each record must fit the record size budget (`omniroute.sizes`): an
assignment or message larger than `assignment_bytes` (a long history, a
conversation grown downstream, a record that bypassed ingest) is kept cut to
fit, its text ending in a marker that says so, rather than kept out: the
desk's copy after a restart or on another device is this record, and one that
could not be written would hold up every change after it. The full inquiry
stays on the `inquiries` topic.

Plain Python: it returns the records to write; the servicer puts them in the
outbox with the change they belong to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from omniroute.sizes import SizeBudget, fit_assignment, fit_message
from omniroute.v1 import agent_pb2, checkpoint_pb2, task_pb2

HELD_KEY_PREFIX = "held/"


@dataclass(frozen=True)
class ContentRecord:
    """One write to the snapshot topic: a content kept, or its tombstone (`value` None)."""

    key: str
    value: checkpoint_pb2.HeldContent | None


def assignment_key(reservation_id: str) -> str:
    """The snapshot-topic key of a reservation's assignment."""
    return f"{HELD_KEY_PREFIX}{reservation_id}"


def message_key(reservation_id: str, message_id: str) -> str:
    """The snapshot-topic key of a message delivered on a reservation."""
    return f"{HELD_KEY_PREFIX}{reservation_id}/messages/{message_id}"


def key_of(content: checkpoint_pb2.HeldContent) -> str:
    """The key a content record is written under."""
    if content.HasField("message"):
        return message_key(content.reservation_id, content.message.message.id)
    return assignment_key(content.reservation_id)


@dataclass
class _Held:
    """The content of one reservation: its assignment, its messages by id in delivery order."""

    agent_id: str
    assignment: checkpoint_pb2.HeldContent | None = None
    messages: dict[str, checkpoint_pb2.HeldContent] = field(default_factory=dict)
    last_sequence: int = 0  # the `sequence` of the latest message delivered


def in_delivery_order(
    messages: Iterable[checkpoint_pb2.HeldContent],
) -> list[checkpoint_pb2.HeldContent]:
    """`messages` of one reservation by their `sequence` (those without one first, as given)."""
    return sorted(messages, key=lambda content: content.sequence)


class DeskContent:
    """Assignments and messages per reservation held; what a restart must give back to desks."""

    def __init__(self, per_reservation: int = 50, sizes: SizeBudget | None = None) -> None:
        self.per_reservation = per_reservation
        #: Largest assignment or message kept: its record and checkpoint chunk must fit.
        self.limit = (sizes or SizeBudget()).assignment_bytes
        self._held: dict[str, _Held] = {}  # reservation id -> its content
        self._by_agent: dict[str, set[str]] = {}  # agent id -> reservation ids with content

    # -- queries --------------------------------------------------------------

    def assignment(self, reservation_id: str) -> task_pb2.Assignment | None:
        """The router's assignment of the reservation, when it came with one."""
        held = self._held.get(reservation_id)
        if held is None or held.assignment is None:
            return None
        return held.assignment.assignment

    def messages(self, reservation_id: str) -> list[task_pb2.ConversationMessage]:
        """The customer messages delivered on the reservation, oldest first."""
        held = self._held.get(reservation_id)
        return [] if held is None else [c.message for c in held.messages.values()]

    def records(self) -> list[checkpoint_pb2.HeldContent]:
        """Everything kept (what a checkpoint holds): each assignment, then its messages."""
        found = []
        for held in self._held.values():
            if held.assignment is not None:
                found.append(held.assignment)
            found.extend(held.messages.values())
        return found

    # -- changes --------------------------------------------------------------

    def offered(
        self, agent_id: str, reservation_id: str, assignment: task_pb2.Assignment
    ) -> list[ContentRecord]:
        """Keep the router's assignment of a new reservation; nothing when it sent none."""
        if not assignment.ByteSize():
            return []
        content = checkpoint_pb2.HeldContent(reservation_id=reservation_id, agent_id=agent_id)
        content.assignment.CopyFrom(assignment)
        fit_assignment(content.assignment, self.limit)
        self._hold(agent_id, reservation_id).assignment = content
        return [ContentRecord(key_of(content), content)]

    def deliver(
        self, agent_id: str, reservation_id: str, message: task_pb2.ConversationMessage
    ) -> list[ContentRecord]:
        """Keep a customer message; nothing when that message id was delivered already.

        At most `per_reservation` are kept: the oldest beyond that is dropped
        (its tombstone is among the records).
        """
        held = self._hold(agent_id, reservation_id)
        if message.message.id in held.messages:
            return []
        held.last_sequence += 1
        content = checkpoint_pb2.HeldContent(
            reservation_id=reservation_id, agent_id=agent_id, sequence=held.last_sequence
        )
        content.message.CopyFrom(message)
        fit_message(content.message, self.limit)
        held.messages[message.message.id] = content
        written = [ContentRecord(key_of(content), content)]
        while len(held.messages) > self.per_reservation:
            oldest = next(iter(held.messages))
            written.append(ContentRecord(key_of(held.messages.pop(oldest)), None))
        return written

    def moved(self, from_reservation_id: str, to: agent_pb2.Reservation) -> list[ContentRecord]:
        """A task transferred: the target's reservation gets the source's content.

        The source's records end with its reservation (`prune`).
        """
        source = self._held.get(from_reservation_id)
        if source is None:
            return []
        written: list[ContentRecord] = []
        if source.assignment is not None:
            assignment = task_pb2.Assignment()
            assignment.CopyFrom(source.assignment.assignment)
            assignment.agent_id = to.agent_id
            assignment.reservation_id = to.reservation_id
            written += self.offered(to.agent_id, to.reservation_id, assignment)
        for content in list(source.messages.values()):
            written += self.deliver(to.agent_id, to.reservation_id, content.message)
        return written

    def prune(self, agent_id: str, agent: agent_pb2.Agent | None) -> list[ContentRecord]:
        """Tombstones for the content of reservations `agent` no longer holds (None: removed)."""
        kept = self._by_agent.get(agent_id)
        if not kept:
            return []
        holds = set() if agent is None else {r.reservation_id for r in agent.reservations}
        written = []
        for reservation_id in [r for r in kept if r not in holds]:
            written += self._end(reservation_id)
        return written

    def restore(
        self,
        contents: Iterable[checkpoint_pb2.HeldContent],
        agents: Mapping[str, agent_pb2.Agent],
    ) -> list[ContentRecord]:
        """Take back the content recovered (in any order) for reservations still held.

        The messages of each are put back in the order they were delivered
        (their `sequence`): read from several partitions of the snapshot
        topic, or from a checkpoint and again from the records after it, they
        come in no particular order. Returns tombstones for the rest (a crash
        between a release and its tombstones), so the topic forgets them too.
        """
        holds = {
            (agent.id, r.reservation_id) for agent in agents.values() for r in agent.reservations
        }
        orphans: list[ContentRecord] = []
        for content in contents:
            if (content.agent_id, content.reservation_id) not in holds:
                orphans.append(ContentRecord(key_of(content), None))
                continue
            held = self._hold(content.agent_id, content.reservation_id)
            # Written before there was a budget, or under a larger one: cut to fit,
            # or no checkpoint holding it could ever be written.
            if content.HasField("message"):
                fit_message(content.message, self.limit)
            elif content.HasField("assignment"):
                fit_assignment(content.assignment, self.limit)
            if content.HasField("message"):
                held.messages[content.message.message.id] = content
                held.last_sequence = max(held.last_sequence, content.sequence)
            elif content.HasField("assignment"):
                held.assignment = content
        for held in self._held.values():
            ordered = in_delivery_order(held.messages.values())
            held.messages = {content.message.message.id: content for content in ordered}
        return orphans

    def _hold(self, agent_id: str, reservation_id: str) -> _Held:
        held = self._held.get(reservation_id)
        if held is None:
            held = self._held[reservation_id] = _Held(agent_id)
            self._by_agent.setdefault(agent_id, set()).add(reservation_id)
        return held

    def _end(self, reservation_id: str) -> list[ContentRecord]:
        held = self._held.pop(reservation_id)
        owned = self._by_agent.get(held.agent_id)
        if owned is not None:
            owned.discard(reservation_id)
            if not owned:
                del self._by_agent[held.agent_id]
        written = [ContentRecord(key_of(c), None) for c in held.messages.values()]
        if held.assignment is not None:
            written.append(ContentRecord(key_of(held.assignment), None))
        return written

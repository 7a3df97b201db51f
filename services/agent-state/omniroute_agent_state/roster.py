"""The roster: every agent's profile, presence, load and open offers, and the rules.

Plain synchronous Python over the protobuf `Agent` records: no gRPC, no
Kafka, no clock. Every method that changes something takes `now`, the wall
time in seconds since the epoch (for the timestamps on the wire), and
`mono`, a monotonic time in seconds (for every duration it measures: offer
expiry, wrap-up, desktop sessions, retention). A wall clock that steps
forward or back therefore never expires anything early or late; without
`mono` (unit tests) the wall time stands in for it. Each change returns the
events that describe it, for the caller to publish. Because nothing here
awaits, each method is atomic with respect to every other call on the same
event loop: a reservation is a compare-and-set.

Inquiry-scoped keys are (workspace, inquiry id): two workspaces may use the
same inquiry id without ever seeing each other's reservation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message

from omniroute.codec import MAX_SITE_LENGTH, seconds, timestamp
from omniroute.v1 import agent_pb2, agent_state_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.content import HELD_KEY_PREFIX, ContentRecord

Agent = agent_pb2.Agent
Reservation = agent_pb2.Reservation
RouterFence = agent_state_pb2.RouterFence
AgentEvent = agent_pb2.AgentEvent
TaskEvent = task_pb2.TaskEvent
OFFLINE, AVAILABLE, AWAY, WRAP_UP = (
    agent_pb2.AGENT_STATUS_OFFLINE,
    agent_pb2.AGENT_STATUS_AVAILABLE,
    agent_pb2.AGENT_STATUS_AWAY,
    agent_pb2.AGENT_STATUS_WRAP_UP,
)


# Keys of the snapshot topic that are not agent ids: router fences (journal.py)
# and what desks are shown (content.py). No agent id may start with them.
FENCE_KEY_PREFIX = "fence/"
RESERVED_ID_PREFIXES = (FENCE_KEY_PREFIX, HELD_KEY_PREFIX)


class RosterError(Exception):
    """A request the roster refuses; the subclass says which kind."""


class InvalidRequest(RosterError):
    """The request is malformed; the message names the field."""


class UnknownAgent(RosterError):
    """No agent with that id."""


class NotPossible(RosterError):
    """The request is valid but the agent's state does not allow it now."""


class Finished(NotPossible):
    """The inquiry was resolved: it is never offered again (FAILED_PRECONDITION).

    `last_event` is its COMPLETED event, so the caller can close it too.
    """

    def __init__(self, message: str, last_event: TaskEvent) -> None:
        super().__init__(message)
        self.last_event = last_event


class Fenced(RosterError):
    """A router worker acting for a partition it no longer owns (older generation)."""


# Versions above this are refused on restore: a forged or corrupt record must
# not make the next change overflow the int64 field (and stop expiry for all).
MAX_VERSION = 2**53
# Longest queue name and transfer note accepted (TransferTaskRequest).
MAX_QUEUE_NAME = 200
MAX_TRANSFER_NOTE = 2000

# The id of a transfer to a queue derives from the reservation it ends (uuid5), so the
# same transfer made twice (the retry after a restart that never read the first one's
# event, which a dead process's write delivered late) is one event to consumers.
_TRANSFER_NAMESPACE = uuid.UUID("0b8f6a7e-3c1d-4f25-8e9a-5d7c2b4a1e63")

# (workspace, inquiry id): the scope of every inquiry-scoped key.
InquiryKey = tuple[str, str]
# Aliases for annotations inside Roster, where `list` is the method.
Reservations = list[Reservation]
TaskEvents = list[TaskEvent]
Reasons = list[str]
M = TypeVar("M", bound=Message)


@dataclass
class _Saved:
    """What expiring one agent may change, to put back if it fails."""

    agent: Agent | None
    offers: dict[str, tuple[float, str]]
    wrap_up: float | None
    session: float | None
    held: set[InquiryKey]


def channel_name(channel: int) -> str:
    """CHANNEL_POSTAL_MAIL -> "postal_mail"."""
    return inquiry_pb2.Channel.Name(channel).removeprefix("CHANNEL_").lower()


@dataclass
class Policy:
    """Timing rules: offer time-to-live and wrap-up, per channel."""

    offer_ttl_s: float = 20.0
    offer_ttl_by_channel: dict[str, float] = field(default_factory=dict)
    wrap_up_by_channel: dict[str, float] = field(default_factory=dict)
    away_on_missed_offer: bool = True
    away_reasons: frozenset[str] = frozenset()  # empty: any reason
    session_timeout_s: float = 0.0  # 0: desktop sessions never lapse
    # How long the last task event of an inquiry is kept for GetReservation
    # and for answering retries by their natural key.
    event_retention_s: float = 3600.0

    def offer_ttl(self, channel: int) -> float:
        """How long an offer on `channel` stays open."""
        return self.offer_ttl_by_channel.get(channel_name(channel), self.offer_ttl_s)

    def wrap_up(self, channel: int) -> float:
        """Longest wrap-up after a task on `channel` (0: none)."""
        return self.wrap_up_by_channel.get(channel_name(channel), 0.0)

    def longest_wrap_up(self) -> float:
        """Limit of a wrap-up the agent starts itself (0: no limit)."""
        return max(self.wrap_up_by_channel.values(), default=0.0)


@dataclass
class Changes:
    """What one operation changed: events to publish, offers to push to desktops."""

    agent_events: list[AgentEvent] = field(default_factory=list)
    task_events: list[TaskEvent] = field(default_factory=list)
    fences: list[RouterFence] = field(default_factory=list)  # new highest generations
    # What desks are shown for held reservations, and tombstones (content.py).
    contents: list[ContentRecord] = field(default_factory=list)
    # The task events are to be acknowledged before the rest is written: a
    # change whose ending the agent record cannot tell (a transfer to a queue:
    # the released record names neither the queue nor the note), so a crash
    # between the writes leaves the event, which the restart completes
    # (repair.py), never the record alone.
    events_first: bool = False

    def then(self, more: Changes) -> Changes:
        """These changes followed by `more` (in publishing order)."""
        return Changes(
            self.agent_events + more.agent_events,
            self.task_events + more.task_events,
            self.fences + more.fences,
            self.contents + more.contents,
            self.events_first or more.events_first,
        )

    def add(self, more: Changes) -> None:
        """Append `more` to these changes (in place: a long batch stays linear)."""
        self.agent_events.extend(more.agent_events)
        self.task_events.extend(more.task_events)
        self.fences.extend(more.fences)
        self.contents.extend(more.contents)
        self.events_first = self.events_first or more.events_first

    def __bool__(self) -> bool:
        return bool(self.agent_events or self.task_events or self.fences or self.contents)


@dataclass
class Reserved:
    """One reservation of a batch made or found: the agent as it was right after it."""

    reservation: Reservation
    agent: Agent
    already: bool  # the inquiry already held it; nothing changed


@dataclass
class Refused:
    """One reservation of a batch refused: why, and the agent's record then (if known)."""

    error: RosterError
    agent: Agent | None = None


@dataclass(frozen=True)
class ReserveRequest:
    """What one reservation asks for (`Roster.reserve`'s arguments)."""

    agent_id: str
    inquiry_id: str
    channel: int
    workspace: str


Outcomes = list[Reserved | Refused]


@dataclass
class Expiry:
    """One expiry round: the changes, and the agents whose expiry failed (id -> error).

    A failure for one agent is rolled back and reported; the others proceed.
    """

    changes: Changes = field(default_factory=Changes)
    failed: dict[str, str] = field(default_factory=dict)


class Roster:
    """All agents this service knows, and the rules that change them."""

    def __init__(
        self, policy: Policy, new_id: Callable[[], str] = lambda: uuid.uuid4().hex
    ) -> None:
        self.policy = policy
        self.agents: dict[str, Agent] = {}
        # (workspace, inquiry id) -> agent holding its reservation.
        self.holder: dict[InquiryKey, str] = {}
        # Timers, in monotonic seconds. Derived from the records (restore()
        # rebuilds them), except sessions: a heartbeat is not a change worth
        # an event, so restore() grants every session a fresh term.
        self.offer_deadlines: dict[str, tuple[float, str]] = {}  # reservation -> (at, agent)
        self.wrap_up_deadlines: dict[str, float] = {}  # agent id -> end of its wrap-up
        self.sessions: dict[str, float] = {}  # agent id -> when its desktop session lapses
        # Highest router generation seen per (group, partition); journaled.
        self.fences: dict[tuple[str, int], int] = {}
        # (workspace, inquiry) -> (its last task event, monotonic time), oldest first;
        # and per agent: (workspace, inquiry, agent) -> the agent's last event for it,
        # which answers a retried decline or completion after the inquiry moved on.
        self.last_events: dict[InquiryKey, tuple[TaskEvent, float]] = {}
        self.agent_outcomes: dict[tuple[str, str, str], tuple[TaskEvent, float]] = {}
        # The last event of an inquiry still held but older than the retention:
        # kept while the reservation is open, for the recovery repair (checkpoints).
        self.held_events: dict[InquiryKey, TaskEvent] = {}
        self.new_id = new_id

    # -- queries --------------------------------------------------------------

    def get(self, agent_id: str) -> Agent:
        """The agent's current record; `UnknownAgent` when there is none."""
        agent = self.agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return agent

    def list(
        self,
        workspace: str,
        status: int = 0,
        skill: str = "",
        min_proficiency: int = 0,
        language: str = "",
        tier: int = 0,
        free_on_channel: int = 0,
    ) -> list[Agent]:
        """Agents of a workspace matching every filter given (0 or empty: any), by id."""
        wanted_language = language.lower().split("-")[0]
        found = []
        for agent in self.agents.values():
            if agent.workspace != workspace:
                continue
            if status and agent.status != status:
                continue
            if skill and agent.skills.get(skill, 0) < max(min_proficiency, 1):
                continue
            if language and not any(
                lang.lower().split("-")[0] == wanted_language for lang in agent.languages
            ):
                continue
            if tier and agent.tier != tier:
                continue
            if free_on_channel and not self.has_free_slot(agent, free_on_channel):
                continue
            found.append(agent)
        return sorted(found, key=lambda a: a.id)

    def reservation(self, workspace: str, inquiry_id: str) -> tuple[Reservation, Agent] | None:
        """The inquiry's open reservation and the agent holding it, if any."""
        _require(workspace, "workspace")
        _require(inquiry_id, "inquiry_id")
        holder_id = self.holder.get((workspace, inquiry_id))
        if holder_id is None:
            return None
        agent = self.agents[holder_id]
        return next(r for r in agent.reservations if r.inquiry_id == inquiry_id), agent

    def reservations(self, workspace: str) -> Reservations:
        """Every open reservation (offered or accepted) of the workspace, by agent."""
        _require(workspace, "workspace")
        return [
            r
            for agent in sorted(self.agents.values(), key=lambda a: a.id)
            if agent.workspace == workspace
            for r in agent.reservations
        ]

    def last_event(self, workspace: str, inquiry_id: str) -> TaskEvent | None:
        """The last task event of the inquiry, within the retention period."""
        kept = self.last_events.get((workspace, inquiry_id))
        return kept[0] if kept else None

    @staticmethod
    def has_free_slot(agent: Agent, channel: int) -> bool:
        """Whether the agent is AVAILABLE with room on `channel` (and in total)."""
        if agent.status != AVAILABLE:
            return False
        slot = next((c for c in agent.capacities if c.channel == channel), None)
        if slot is None or slot.load >= slot.capacity:
            return False
        total = sum(c.load for c in agent.capacities)
        if agent.total_capacity and total >= agent.total_capacity:
            return False
        if agent.voice_blocks_other_channels and channel != inquiry_pb2.CHANNEL_VOICE:
            return not any(r.channel == inquiry_pb2.CHANNEL_VOICE for r in agent.reservations)
        return True

    # -- fencing --------------------------------------------------------------

    def fence(self, fence: RouterFence | None) -> Changes:
        """Admit a call from a router worker, or refuse it (`Fenced`) as from an older owner.

        A call without a fence (empty group) is admitted: callers that are not
        router workers. A higher generation is remembered (and journaled:
        the returned changes carry it).
        """
        if fence is None or not fence.group:
            return Changes()
        if fence.partition < 0:
            raise InvalidRequest("fence.partition must not be negative")
        if fence.generation < 0:
            raise InvalidRequest("fence.generation must not be negative")
        key = (fence.group, fence.partition)
        seen = self.fences.get(key, -1)
        if fence.generation < seen:
            raise Fenced(
                f"fence: generation {fence.generation} of group {fence.group!r} is older than "
                f"{seen}, the generation that now owns partition {fence.partition}; "
                "this worker no longer owns it"
            )
        if fence.generation == seen:
            return Changes()
        self.fences[key] = fence.generation
        recorded = RouterFence()
        recorded.CopyFrom(fence)
        return Changes(fences=[recorded])

    # -- profile and presence -------------------------------------------------

    def upsert(self, profile: Agent, actor: str, now: float, mono: float | None = None) -> Changes:
        """Create an agent or replace its profile; presence, load and offers are kept."""
        _require(profile.id, "agent.id")
        _require(profile.workspace, "agent.workspace")
        if profile.id.startswith(RESERVED_ID_PREFIXES):
            raise InvalidRequest(
                f"agent.id must not start with {' or '.join(RESERVED_ID_PREFIXES)} "
                "(keys agent-state keeps for itself)"
            )
        if profile.tier not in (1, 2, 3):
            raise InvalidRequest(
                "agent.tier must be 1 (representative), 2 (specialist) or 3 (supervisor)"
            )
        for name, level in profile.skills.items():
            if not name or not 1 <= level <= 5:
                raise InvalidRequest(
                    f"agent.skills[{name!r}] must be a named skill with proficiency 1-5"
                )
        seen: set[int] = set()
        for slot in profile.capacities:
            if slot.channel not in inquiry_pb2.Channel.values() or slot.channel == 0:
                raise InvalidRequest(f"agent.capacities: unknown channel {slot.channel}")
            if slot.channel in seen:
                raise InvalidRequest(f"agent.capacities: {channel_name(slot.channel)} given twice")
            if slot.capacity < 0:
                raise InvalidRequest("agent.capacities[].capacity must not be negative")
            seen.add(slot.channel)
        if profile.total_capacity < 0:
            raise InvalidRequest("agent.total_capacity must not be negative")
        if len(profile.site) > MAX_SITE_LENGTH:
            raise InvalidRequest(f"agent.site: at most {MAX_SITE_LENGTH} characters")
        current = self.agents.get(profile.id)
        if current is not None and current.workspace != profile.workspace:
            raise InvalidRequest(
                f"agent.workspace: agent {profile.id!r} belongs to {current.workspace!r}"
            )
        loads = {c.channel: c.load for c in current.capacities} if current else {}
        wanted = {slot.channel: slot.capacity for slot in profile.capacities}
        for channel, load in loads.items():
            if load > wanted.get(channel, 0):
                raise NotPossible(
                    f"agent.capacities: {channel_name(channel)} capacity "
                    f"{wanted.get(channel, 0)} is below the {load} task(s) the agent holds there"
                )
        agent = Agent()
        agent.CopyFrom(profile)
        del agent.reservations[:]
        agent.ClearField("wrap_up_until")
        agent.session_active = False
        for slot in agent.capacities:
            slot.load = loads.get(slot.channel, 0)
        if current is None:
            agent.status = OFFLINE
            agent.status_since.CopyFrom(timestamp(now))
            agent.idle_since.CopyFrom(timestamp(now))
            agent.version = 0
        else:
            agent.status = current.status
            agent.away_reason = current.away_reason
            agent.status_since.CopyFrom(current.status_since)
            agent.idle_since.CopyFrom(current.idle_since)
            agent.reservations.extend(current.reservations)
            agent.version = current.version
            agent.session_active = current.session_active
            if current.HasField("wrap_up_until"):
                agent.wrap_up_until.CopyFrom(current.wrap_up_until)
        self.agents[agent.id] = agent
        return self._changed(agent, AgentEvent.CHANGE_UPSERTED, actor, "profile", now)

    def set_status(
        self,
        agent_id: str,
        status: int,
        reason: str,
        actor: str,
        now: float,
        mono: float | None = None,
    ) -> Changes:
        """Log in (AVAILABLE), log out (OFFLINE), go AWAY (with a reason) or WRAP_UP.

        Going OFFLINE or AWAY withdraws open offers, so the router re-routes them.
        Asking for the status (and AWAY reason) the agent already has changes
        nothing: a retried call is answered by its natural key.
        """
        mono = now if mono is None else mono
        agent = self.get(agent_id)
        if status not in (OFFLINE, AVAILABLE, AWAY, WRAP_UP):
            raise InvalidRequest("status must be OFFLINE, AVAILABLE, AWAY or WRAP_UP")
        if status == AWAY and not reason:
            raise InvalidRequest(
                "reason is required for AWAY (break, lunch, meeting, training, ...)"
            )
        reasons = self.policy.away_reasons
        if status == AWAY and reasons and reason not in reasons:
            raise InvalidRequest(f"reason {reason!r} is not one of {sorted(reasons)}")
        if agent.status == status and (status != AWAY or agent.away_reason == reason):
            return Changes()
        changes = Changes()
        if status in (OFFLINE, AWAY):
            changes.task_events += self._withdraw_open(
                agent, f"agent {_status_word(status)}", now, mono
            )
        self._set_status(agent, status, reason if status == AWAY else "", now)
        if status == WRAP_UP and self.policy.longest_wrap_up():
            self._start_wrap_up(agent, self.policy.longest_wrap_up(), now, mono)
        if status == OFFLINE:  # logging out ends the desktop session
            self.sessions.pop(agent_id, None)
            agent.session_active = False
        changes.agent_events += self._changed(
            agent, AgentEvent.CHANGE_STATUS, actor, reason or _status_word(status), now
        ).agent_events
        return changes

    # -- offers and tasks -----------------------------------------------------

    def reserve(
        self,
        agent_id: str,
        inquiry_id: str,
        channel: int,
        workspace: str,
        now: float,
        mono: float | None = None,
    ) -> tuple[Reservation, Agent, bool, Changes]:
        """Hold one slot of the agent's capacity on `channel` for an offer of the inquiry.

        An inquiry (of a workspace) holds at most one reservation: when it
        already has one (on any agent of the workspace), that one is returned
        with `already=True` and nothing changes. An inquiry whose last event
        (within the retention period) resolved it is refused (`Finished`); one
        completed with a follow-up or an escalation is routed again, so it is not.
        """
        mono = now if mono is None else mono
        _require(agent_id, "agent_id")
        _require(inquiry_id, "inquiry_id")
        if channel not in inquiry_pb2.Channel.values() or channel == 0:
            raise InvalidRequest("channel is required")
        scope = workspace or self.get(agent_id).workspace
        held = self.reservation(scope, inquiry_id)
        if held is not None:
            return held[0], held[1], True, Changes()
        last = self.last_event(scope, inquiry_id)
        if last is not None and _resolved(last):
            # A router that lost its record of the resolution (a worker killed
            # before its state was durable) must not offer it again.
            raise Finished(f"inquiry {inquiry_id!r} was resolved by {last.agent_id!r}", last)
        agent = self.get(agent_id)
        if workspace and agent.workspace != workspace:
            raise InvalidRequest(f"workspace: agent {agent_id!r} belongs to {agent.workspace!r}")
        if not self.has_free_slot(agent, channel):
            why = (
                "not available"
                if agent.status != AVAILABLE
                else f"no free {channel_name(channel)} slot"
            )
            raise NotPossible(f"agent {agent_id!r} cannot take it: {why}")
        slot = next(c for c in agent.capacities if c.channel == channel)
        slot.load += 1
        ttl = self.policy.offer_ttl(channel)
        reservation = agent.reservations.add(
            reservation_id=self.new_id(),
            agent_id=agent_id,
            inquiry_id=inquiry_id,
            channel=channel,  # type: ignore[arg-type]
            workspace=agent.workspace,
        )
        reservation.expires_at.CopyFrom(timestamp(now + ttl))
        self.holder[(agent.workspace, inquiry_id)] = agent_id
        self.offer_deadlines[reservation.reservation_id] = (mono + ttl, agent_id)
        changes = self._changed(agent, AgentEvent.CHANGE_RESERVED, "router", inquiry_id, now)
        changes.task_events.append(
            self._task_event(TaskEvent.TYPE_OFFERED, agent, reservation, now, mono)
        )
        return reservation, agent, False, changes

    def reserve_many(
        self, requests: Iterable[ReserveRequest], now: float, mono: float | None = None
    ) -> tuple[Outcomes, Changes]:
        """Decide each reservation in order, exactly as `reserve` does; one refusal stops none.

        Returns one result per request (in order) and every change together.
        A later request sees what the earlier ones did (the same inquiry twice:
        the second is `already`; the last slot twice: the second is refused).
        The records in the results are copies, as each was right after its
        own reservation.
        """
        results: Outcomes = []
        changes = Changes()
        for asked in requests:
            try:
                reservation, agent, already, made = self.reserve(
                    asked.agent_id, asked.inquiry_id, asked.channel, asked.workspace, now, mono
                )
            except RosterError as refusal:
                known = self.agents.get(asked.agent_id) if asked.agent_id else None
                results.append(Refused(refusal, _copy(known) if known is not None else None))
                continue
            results.append(Reserved(_copy(reservation), _copy(agent), already))
            changes.add(made)
        return results, changes

    def withdraw(
        self, workspace: str, inquiry_id: str, reason: str, now: float, mono: float | None = None
    ) -> tuple[Reservation | None, Agent | None, Changes]:
        """Take back the inquiry's open offer (not an accepted task), e.g. on abandon.

        Returns the withdrawn reservation and its agent after the withdrawal;
        (None, holder or None) when there is no open offer: nothing to do.
        """
        mono = now if mono is None else mono
        held = self.reservation(workspace, inquiry_id)
        if held is None:
            return None, None, Changes()
        reservation, agent = held
        if reservation.accepted:
            return None, agent, Changes()
        withdrawn = Reservation()
        withdrawn.CopyFrom(reservation)
        self._release(agent, reservation)
        changes = self._changed(
            agent, AgentEvent.CHANGE_RELEASED, "router", reason or "withdrawn", now
        )
        changes.task_events.append(
            self._task_event(
                TaskEvent.TYPE_WITHDRAWN, agent, withdrawn, now, mono, reason=reason or "withdrawn"
            )
        )
        return withdrawn, agent, changes

    def accept(
        self,
        agent_id: str,
        inquiry_id: str,
        now: float,
        mono: float | None = None,
        reservation_id: str = "",
    ) -> Changes:
        """The agent takes the offered inquiry: its slot stays held until completion."""
        mono = now if mono is None else mono
        agent, reservation = self._reservation(agent_id, inquiry_id, reservation_id)
        if reservation.accepted:
            return Changes()  # a retried accept
        reservation.accepted = True
        self.offer_deadlines.pop(reservation.reservation_id, None)
        changes = self._changed(agent, AgentEvent.CHANGE_ACCEPTED, agent_id, inquiry_id, now)
        changes.task_events.append(
            self._task_event(TaskEvent.TYPE_ACCEPTED, agent, reservation, now, mono)
        )
        return changes

    def decline(
        self,
        agent_id: str,
        inquiry_id: str,
        reason: str,
        now: float,
        mono: float | None = None,
        reservation_id: str = "",
    ) -> Changes:
        """The agent turns the offer down; the router offers it to someone else.

        A retry (the agent's last event for the inquiry is this decline) changes nothing.
        """
        mono = now if mono is None else mono
        if self._already(agent_id, inquiry_id, TaskEvent.TYPE_DECLINED, reservation_id):
            return Changes()
        agent, reservation = self._reservation(agent_id, inquiry_id, reservation_id)
        if reservation.accepted:
            raise NotPossible(f"inquiry {inquiry_id!r} was accepted; complete or transfer it")
        self._release(agent, reservation)
        changes = self._changed(agent, AgentEvent.CHANGE_RELEASED, agent_id, "declined", now)
        changes.task_events.append(
            self._task_event(TaskEvent.TYPE_DECLINED, agent, reservation, now, mono, reason=reason)
        )
        return changes

    def complete(
        self,
        agent_id: str,
        inquiry_id: str,
        outcome: task_pb2.TaskEvent,
        now: float,
        mono: float | None = None,
    ) -> Changes:
        """The agent is done: record the outcome, free the slot, maybe wrap up.

        A retry (the agent's last event for the inquiry is its completion) changes nothing.
        """
        mono = now if mono is None else mono
        if self._already(agent_id, inquiry_id, TaskEvent.TYPE_COMPLETED):
            return Changes()
        agent, reservation = self._reservation(agent_id, inquiry_id)
        if not reservation.accepted:
            raise NotPossible(f"inquiry {inquiry_id!r} was offered but not accepted")
        resolution = outcome.resolution or task_pb2.RESOLUTION_RESOLVED
        if resolution == task_pb2.RESOLUTION_FOLLOW_UP and not outcome.follow_up.HasField("due_at"):
            raise InvalidRequest("follow_up.due_at is required for a FOLLOW_UP")
        if resolution == task_pb2.RESOLUTION_ESCALATED:
            _check_escalation(outcome.escalation, agent.tier)
        self._release(agent, reservation)
        wrap_up = self.policy.wrap_up(reservation.channel)
        if wrap_up > 0 and agent.status == AVAILABLE:
            self._set_status(agent, WRAP_UP, "", now)
            self._start_wrap_up(agent, wrap_up, now, mono)
        changes = self._changed(agent, AgentEvent.CHANGE_RELEASED, agent_id, "completed", now)
        event = self._task_event(TaskEvent.TYPE_COMPLETED, agent, reservation, now, mono)
        event.resolution = resolution
        if resolution == task_pb2.RESOLUTION_FOLLOW_UP:
            event.follow_up.CopyFrom(outcome.follow_up)
        if resolution == task_pb2.RESOLUTION_ESCALATED:
            event.escalation.CopyFrom(outcome.escalation)
        changes.task_events.append(event)
        return changes

    # -- timers ---------------------------------------------------------------

    def expire(self, now: float, mono: float | None = None) -> Expiry:
        """Expire offers past their time-to-live, wrap-ups past their end, lapsed sessions.

        Durations are measured on `mono`. Each agent is handled on its own:
        when its expiry fails (a bug, a forged record), its record and timers
        are put back as they were, the failure is reported, and every other
        agent is still expired. Old last events are forgotten too.
        """
        mono = now if mono is None else mono
        due: dict[str, None] = {}  # agent ids, in a stable order
        for at, agent_id in self.offer_deadlines.values():
            if at <= mono:
                due[agent_id] = None
        for agent_id, at in self.wrap_up_deadlines.items():
            if at <= mono:
                due[agent_id] = None
        for agent_id, at in self.sessions.items():
            if at <= mono:
                due[agent_id] = None
        result = Expiry()
        for agent_id in due:
            saved = self._save(agent_id)
            try:
                result.changes = result.changes.then(self._expire_agent(agent_id, now, mono))
            except Exception as exc:  # one agent must not stop the others
                self._put_back(agent_id, saved)
                result.failed[agent_id] = f"{type(exc).__name__}: {exc}"
        self._forget_old_events(mono)
        return result

    def _expire_agent(self, agent_id: str, now: float, mono: float) -> Changes:
        changes = Changes()
        agent = self.agents.get(agent_id)
        if agent is None:  # timers of an agent no longer known
            self.sessions.pop(agent_id, None)
            self.wrap_up_deadlines.pop(agent_id, None)
            for rid, (_, holder) in list(self.offer_deadlines.items()):
                if holder == agent_id:
                    del self.offer_deadlines[rid]
            return changes
        expired = [
            r
            for r in agent.reservations
            if not r.accepted
            and r.reservation_id in self.offer_deadlines
            and self.offer_deadlines[r.reservation_id][0] <= mono
        ]
        open_ids = {r.reservation_id for r in agent.reservations}
        for rid, (at, holder) in list(self.offer_deadlines.items()):
            if holder == agent_id and at <= mono and rid not in open_ids:
                del self.offer_deadlines[rid]  # a timer whose offer is gone: nothing to do
        for reservation in expired:
            self._release(agent, reservation)
            changes.task_events.append(
                self._task_event(TaskEvent.TYPE_OFFER_TIMEOUT, agent, reservation, now, mono)
            )
        if expired and self.policy.away_on_missed_offer and agent.status == AVAILABLE:
            # A missed offer says the agent is not at the desk: its other
            # open offers would be missed too, so they go back to the router.
            changes.task_events += self._withdraw_open(agent, "missed_offer", now, mono)
            self._set_status(agent, AWAY, "missed_offer", now)
        if expired:
            changes.agent_events += self._changed(
                agent, AgentEvent.CHANGE_RELEASED, "system", "offer_timeout", now
            ).agent_events
        wrap_up_end = self.wrap_up_deadlines.get(agent_id)
        if wrap_up_end is not None and wrap_up_end <= mono:
            del self.wrap_up_deadlines[agent_id]
            if agent.status == WRAP_UP:
                self._set_status(agent, AVAILABLE, "", now)
                changes.agent_events += self._changed(
                    agent, AgentEvent.CHANGE_STATUS, "system", "wrap_up_over", now
                ).agent_events
        lapses_at = self.sessions.get(agent_id)
        if lapses_at is not None and lapses_at <= mono:
            changes = changes.then(self._session_lapsed(agent_id, now, mono))
        return changes

    def _save(self, agent_id: str) -> _Saved:
        agent = self.agents.get(agent_id)
        copy = None
        if agent is not None:
            copy = Agent()
            copy.CopyFrom(agent)
        return _Saved(
            copy,
            {k: v for k, v in self.offer_deadlines.items() if v[1] == agent_id},
            self.wrap_up_deadlines.get(agent_id),
            self.sessions.get(agent_id),
            {k for k, v in self.holder.items() if v == agent_id},
        )

    def _put_back(self, agent_id: str, saved: _Saved) -> None:
        if saved.agent is not None:
            self.agents[agent_id] = saved.agent
        self.offer_deadlines.update(saved.offers)
        for value, table in (
            (saved.wrap_up, self.wrap_up_deadlines),
            (saved.session, self.sessions),
        ):
            if value is None:
                table.pop(agent_id, None)
            else:
                table[agent_id] = value
        for key in saved.held:
            self.holder[key] = agent_id

    def _forget_old_events(self, mono: float) -> None:
        horizon = mono - self.policy.event_retention_s
        for table in (self.last_events, self.agent_outcomes):
            while table:
                key = next(iter(table))
                event, at = table[key]  # type: ignore[index]
                if at > horizon:
                    break
                del table[key]  # type: ignore[arg-type]
                if table is self.last_events and key in self.holder:
                    self.held_events[key] = event  # type: ignore[index]

    def kept_events(self) -> TaskEvents:
        """Every task event the roster keeps, in publishing order (what a checkpoint holds).

        The last event of each held inquiry older than the retention first,
        then each inquiry's and each agent's last event for it, oldest first;
        `restore` takes them back as it takes them from the topic.
        """
        timed = sorted(
            [*self.last_events.values(), *self.agent_outcomes.values()], key=lambda kept: kept[1]
        )
        events = [e for key, e in self.held_events.items() if key in self.holder]
        seen: set[str] = set()
        for event, _ in timed:
            if event.event_id not in seen:
                seen.add(event.event_id)
                events.append(event)
        return events

    # -- desktop sessions -----------------------------------------------------

    def heartbeat(
        self, agent_id: str, now: float, mono: float | None = None
    ) -> tuple[float, Changes]:
        """Start or extend the agent's desktop session; returns when it lapses (0: never).

        The answer is wall-clock time (for the desktop); the session itself is
        timed on `mono`. The first heartbeat of a session is a change
        (session_active); the rest only move the deadline. An OFFLINE agent
        must log in first.
        """
        mono = now if mono is None else mono
        agent = self.get(agent_id)
        if agent.status == OFFLINE:
            raise NotPossible(f"agent {agent_id!r} is offline; log in (SetStatus) first")
        if not self.policy.session_timeout_s:
            return 0.0, Changes()
        self.sessions[agent_id] = mono + self.policy.session_timeout_s
        lapses_at = now + self.policy.session_timeout_s
        if agent.session_active:
            return lapses_at, Changes()
        agent.session_active = True
        return lapses_at, self._changed(
            agent, AgentEvent.CHANGE_STATUS, agent_id, "session_started", now
        )

    def _session_lapsed(self, agent_id: str, now: float, mono: float) -> Changes:
        """The desktop went silent: OFFLINE, open offers withdrawn for re-routing."""
        del self.sessions[agent_id]
        agent = self.agents.get(agent_id)
        if agent is None or not agent.session_active:
            return Changes()
        agent.session_active = False
        if agent.status == OFFLINE:
            return self._changed(agent, AgentEvent.CHANGE_STATUS, "system", "session_ended", now)
        changes = Changes(task_events=self._withdraw_open(agent, "session_timeout", now, mono))
        self._set_status(agent, OFFLINE, "", now)
        return changes.then(
            self._changed(agent, AgentEvent.CHANGE_STATUS, "system", "session_timeout", now)
        )

    # -- transfer -------------------------------------------------------------

    def transfer(
        self,
        agent_id: str,
        inquiry_id: str,
        target_id: str,
        reason: str,
        now: float,
        mono: float | None = None,
    ) -> tuple[Reservation, Changes]:
        """Move an accepted task to another agent with room for it (compare-and-set).

        The target holds it as accepted at once (a warm transfer: the agents
        have agreed); the source's slot is freed. A retry (the inquiry was
        already transferred from this agent to the target, which holds it)
        returns the target's reservation and changes nothing.
        """
        mono = now if mono is None else mono
        _require(target_id, "target_agent_id")
        last = self._already(agent_id, inquiry_id, TaskEvent.TYPE_TRANSFERRED)
        if last is not None and last.target_agent_id == target_id:
            held = self.reservation(last.workspace, inquiry_id)
            if held is not None and held[1].id == target_id:
                return held[0], Changes()
        agent, held_here = self._reservation(agent_id, inquiry_id)
        if not held_here.accepted:
            raise NotPossible(f"inquiry {inquiry_id!r} is only offered; accept it first")
        if target_id == agent_id:
            raise InvalidRequest("target_agent_id must be another agent")
        target = self.get(target_id)
        if target.workspace != agent.workspace:
            raise InvalidRequest(f"target_agent_id: agent {target_id!r} is in another workspace")
        if not self.has_free_slot(target, held_here.channel):
            why = "not available" if target.status != AVAILABLE else "no free slot"
            raise NotPossible(
                f"agent {target_id!r} cannot take a {channel_name(held_here.channel)} task: {why}"
            )
        channel = held_here.channel
        self._release(agent, held_here)
        changes = self._changed(agent, AgentEvent.CHANGE_RELEASED, agent_id, "transferred", now)
        next(c for c in target.capacities if c.channel == channel).load += 1
        moved = target.reservations.add(
            reservation_id=self.new_id(),
            agent_id=target_id,
            inquiry_id=inquiry_id,
            channel=channel,
            accepted=True,
            workspace=target.workspace,
        )
        self.holder[(target.workspace, inquiry_id)] = target_id
        changes = changes.then(
            self._changed(target, AgentEvent.CHANGE_ACCEPTED, agent_id, "transfer", now)
        )
        event = self._task_event(TaskEvent.TYPE_TRANSFERRED, agent, moved, now, mono, reason=reason)
        event.target_agent_id = target_id
        changes.task_events.append(event)
        return moved, changes

    def transfer_to_queue(
        self,
        agent_id: str,
        inquiry_id: str,
        target_queue: str,
        note: str,
        queues: Mapping[str, bool],
        now: float,
        mono: float | None = None,
    ) -> Changes:
        """Hand an accepted task to a queue of the workspace: the router routes it again.

        `queues` are the workspace's queues (the router's, from its latest
        snapshot), each with whether it accepts transfers: `target_queue`
        must be one that does. The agent's slot is
        freed (the task is no longer theirs, no wrap-up: they did not finish
        it) and TRANSFERRED is published with the queue and the note, and
        with the agent's released reservation. A retry (the agent's last
        event of the inquiry is this transfer to the same queue) changes
        nothing.
        """
        mono = now if mono is None else mono
        _require(target_queue, "target_queue")
        if len(target_queue) > MAX_QUEUE_NAME:
            raise InvalidRequest(f"target_queue is longer than {MAX_QUEUE_NAME} characters")
        if len(note) > MAX_TRANSFER_NOTE:
            raise InvalidRequest(f"note is longer than {MAX_TRANSFER_NOTE} characters")
        last = self._already(agent_id, inquiry_id, TaskEvent.TYPE_TRANSFERRED)
        if last is not None and last.target_queue == target_queue:
            return Changes()
        agent, held = self._reservation(agent_id, inquiry_id)
        if not held.accepted:
            raise NotPossible(f"inquiry {inquiry_id!r} is only offered; accept it first")
        if target_queue not in queues:
            known = ", ".join(sorted(queues)[:20])
            raise InvalidRequest(
                f"target_queue: {target_queue!r} is not a queue of workspace "
                f"{agent.workspace!r} (its queues: {known})"
            )
        if not queues[target_queue]:
            raise NotPossible(
                f"target_queue: queue {target_queue!r} takes no transfers "
                "(accepts_transfers: false in the routing configuration)"
            )
        released = Reservation()
        released.CopyFrom(held)
        self._release(agent, held)
        changes = self._changed(agent, AgentEvent.CHANGE_RELEASED, agent_id, "transferred", now)
        event = self._task_event(TaskEvent.TYPE_TRANSFERRED, agent, released, now, mono)
        event.event_id = uuid.uuid5(_TRANSFER_NAMESPACE, released.reservation_id).hex
        event.target_queue = target_queue
        event.note = note
        changes.task_events.append(event)
        changes.events_first = True
        return changes

    # -- recovery -------------------------------------------------------------

    def restore(
        self,
        snapshots: Iterable[Agent],
        now: float,
        mono: float | None = None,
        fences: Iterable[RouterFence] = (),
        task_events: Iterable[TaskEvent] = (),
    ) -> Reasons:
        """Rebuild from the latest snapshot of each agent (highest version wins).

        Also the router fences (highest generation per partition) and the last
        task events (of each inquiry, and of each agent for it) still within
        the retention period, given in publishing order. Timers
        are rebuilt on `mono` from the wall-clock deadlines on the records,
        each at most its full duration away (the wall clock may have stepped
        while the service was down). Returns why records were refused (a
        version out of range), for the log.
        """
        mono = now if mono is None else mono
        refused = []
        for snapshot in snapshots:
            if not 0 <= snapshot.version <= MAX_VERSION:
                refused.append(f"agent {snapshot.id!r}: version {snapshot.version} out of range")
                continue
            current = self.agents.get(snapshot.id)
            if current is None or snapshot.version > current.version:
                self.agents[snapshot.id] = snapshot
        for fence in fences:
            key = (fence.group, fence.partition)
            if fence.group and fence.generation > self.fences.get(key, -1):
                self.fences[key] = fence.generation
        self.holder = {}
        self.offer_deadlines = {}
        self.wrap_up_deadlines = {}
        for agent in self.agents.values():
            for r in agent.reservations:
                r.workspace = agent.workspace  # records from before reservations named it
                self.holder[(agent.workspace, r.inquiry_id)] = agent.id
                if not r.accepted:
                    left = _clamp(seconds(r.expires_at) - now, self.policy.offer_ttl(r.channel))
                    self.offer_deadlines[r.reservation_id] = (mono + left, agent.id)
            if agent.status == WRAP_UP:
                limit = self.policy.longest_wrap_up()
                if not agent.HasField("wrap_up_until") and limit:
                    # a record from before wrap_up_until
                    agent.wrap_up_until.CopyFrom(timestamp(seconds(agent.status_since) + limit))
                if agent.HasField("wrap_up_until"):
                    left = seconds(agent.wrap_up_until) - now
                    left = _clamp(left, limit) if limit else max(left, 0.0)
                    self.wrap_up_deadlines[agent.id] = mono + left
            if agent.session_active and self.policy.session_timeout_s:
                # Desktops reconnect after a restart: give each a full term to do so.
                self.sessions[agent.id] = mono + self.policy.session_timeout_s
        retention = self.policy.event_retention_s
        for event in task_events:
            age = _clamp(now - seconds(event.occurred_at), retention)
            if not (event.workspace and event.inquiry_id):
                continue
            if age < retention:
                self._remember(event, mono - age)
            elif (event.workspace, event.inquiry_id) in self.holder:
                self.held_events[(event.workspace, event.inquiry_id)] = event
        return refused

    def remember(self, events: Iterable[TaskEvent], mono: float) -> None:
        """Take `events` published outside a call (the recovery repair) as the latest."""
        for event in events:
            self._remember(event, mono)

    def release_recovered(
        self, agent_id: str, reservation_id: str, reason: str, now: float
    ) -> Changes:
        """Free a recovered reservation whose ending event is on the topic (repair.py).

        The record of the ending was lost (a kill after a transfer's event was
        acknowledged and before its agent record was): the slot is freed as
        the ending freed it, and the record published. Nothing when the agent
        no longer holds it.
        """
        agent = self.agents.get(agent_id)
        held = next(
            (
                r
                for r in (agent.reservations if agent else ())
                if r.reservation_id == reservation_id
            ),
            None,
        )
        if agent is None or held is None:
            return Changes()
        self._release(agent, held)
        return self._changed(agent, AgentEvent.CHANGE_RELEASED, "system", reason, now)

    # -- helpers --------------------------------------------------------------

    def _reservation(
        self, agent_id: str, inquiry_id: str, reservation_id: str = ""
    ) -> tuple[Agent, Reservation]:
        _require(agent_id, "agent_id")
        _require(inquiry_id, "inquiry_id")
        agent = self.get(agent_id)
        for reservation in agent.reservations:
            if reservation.inquiry_id == inquiry_id:
                if reservation_id and reservation.reservation_id != reservation_id:
                    raise NotPossible(
                        f"reservation_id: {reservation_id!r} is not the agent's open "
                        f"reservation of inquiry {inquiry_id!r} (a newer offer replaced it)"
                    )
                return agent, reservation
        raise NotPossible(f"agent {agent_id!r} holds no offer or task for inquiry {inquiry_id!r}")

    def _already(
        self, agent_id: str, inquiry_id: str, kind: int, reservation_id: str = ""
    ) -> TaskEvent | None:
        """The agent's last event of the inquiry when it is `kind`: the call was made already."""
        _require(agent_id, "agent_id")
        _require(inquiry_id, "inquiry_id")
        agent = self.get(agent_id)
        if any(r.inquiry_id == inquiry_id for r in agent.reservations):
            return None
        kept = self.agent_outcomes.get((agent.workspace, inquiry_id, agent_id))
        last = kept[0] if kept else None
        if last is None or last.type != kind:
            return None
        if reservation_id and last.reservation_id != reservation_id:
            return None
        return last

    def _withdraw_open(self, agent: Agent, reason: str, now: float, mono: float) -> TaskEvents:
        """Release every open (not accepted) offer of the agent: WITHDRAWN events."""
        events = []
        for reservation in [r for r in agent.reservations if not r.accepted]:
            self._release(agent, reservation)
            events.append(
                self._task_event(
                    TaskEvent.TYPE_WITHDRAWN, agent, reservation, now, mono, reason=reason
                )
            )
        return events

    def _release(self, agent: Agent, reservation: Reservation) -> None:
        for slot in agent.capacities:
            if slot.channel == reservation.channel and slot.load > 0:
                slot.load -= 1
        self.holder.pop((agent.workspace, reservation.inquiry_id), None)
        self.offer_deadlines.pop(reservation.reservation_id, None)
        kept = [r for r in agent.reservations if r.inquiry_id != reservation.inquiry_id]
        del agent.reservations[:]
        agent.reservations.extend(kept)

    def _start_wrap_up(self, agent: Agent, length: float, now: float, mono: float) -> None:
        agent.wrap_up_until.CopyFrom(timestamp(now + length))
        self.wrap_up_deadlines[agent.id] = mono + length

    def _set_status(self, agent: Agent, status: int, reason: str, now: float) -> None:
        agent.status = status  # type: ignore[assignment]
        agent.away_reason = reason
        agent.status_since.CopyFrom(timestamp(now))
        agent.ClearField("wrap_up_until")  # set again by the callers that start a wrap-up
        self.wrap_up_deadlines.pop(agent.id, None)

    def _changed(self, agent: Agent, change: int, actor: str, reason: str, now: float) -> Changes:
        agent.version += 1
        if not any(c.load for c in agent.capacities) and not agent.reservations:
            if change in (AgentEvent.CHANGE_RELEASED, AgentEvent.CHANGE_STATUS) or not seconds(
                agent.idle_since
            ):
                agent.idle_since.CopyFrom(timestamp(now))
        event = AgentEvent(
            event_id=self.new_id(),
            change=change,  # type: ignore[arg-type]
            actor=actor,
            reason=reason,
        )
        event.agent.CopyFrom(agent)
        event.occurred_at.CopyFrom(timestamp(now))
        return Changes(agent_events=[event])

    def _task_event(
        self,
        kind: int,
        agent: Agent,
        reservation: Reservation,
        now: float,
        mono: float,
        reason: str = "",
    ) -> TaskEvent:
        event = TaskEvent(
            event_id=self.new_id(),
            type=kind,  # type: ignore[arg-type]
            inquiry_id=reservation.inquiry_id,
            workspace=agent.workspace,
            agent_id=agent.id,
            reservation_id=reservation.reservation_id,
            channel=reservation.channel,
            reason=reason,
        )
        event.occurred_at.CopyFrom(timestamp(now))
        self._remember(event, mono)
        return event

    def _remember(self, event: TaskEvent, mono: float) -> None:
        key = (event.workspace, event.inquiry_id)
        self.held_events.pop(key, None)
        self.last_events.pop(key, None)  # re-inserted last: the dict stays oldest first
        self.last_events[key] = (event, mono)
        by_agent = (event.workspace, event.inquiry_id, event.agent_id)
        self.agent_outcomes.pop(by_agent, None)
        self.agent_outcomes[by_agent] = (event, mono)


def _resolved(event: TaskEvent) -> bool:
    """Whether the event ended the inquiry for good (not a follow-up or an escalation)."""
    return event.type == TaskEvent.TYPE_COMPLETED and event.resolution in (
        task_pb2.RESOLUTION_RESOLVED,
        task_pb2.RESOLUTION_UNSPECIFIED,
    )


def _check_escalation(escalation: task_pb2.Escalation, tier: int) -> None:
    """An escalation the router can route: a known tier above the agent's, or a supervisor's.

    Representatives and specialists escalate to a higher tier (unset: the next
    one up), optionally to a skill or a named queue. A supervisor, the top
    tier, escalates sideways: to another supervisor with a skill
    (`target_skill`) or to a named queue (`target_queue`).
    """
    target = escalation.target_tier
    if target not in agent_pb2.Tier.values():
        raise InvalidRequest(
            f"escalation.target_tier: unknown tier {target} "
            "(2 specialist, 3 supervisor, or unset for the next tier up)"
        )
    for name in ("target_skill", "target_queue", "reason"):
        if len(getattr(escalation, name)) > 200:
            raise InvalidRequest(f"escalation.{name} is longer than 200 characters")
    if tier >= agent_pb2.TIER_SUPERVISOR:
        if target and target != agent_pb2.TIER_SUPERVISOR:
            raise InvalidRequest(
                "escalation.target_tier: a supervisor escalates to another supervisor "
                "(3, or unset), not down"
            )
        if not (escalation.target_skill or escalation.target_queue):
            raise InvalidRequest(
                "escalation.target_skill or escalation.target_queue is required for a "
                "supervisor (to another supervisor with the skill, or to a named queue)"
            )
    elif target and target <= tier:
        raise InvalidRequest(f"escalation.target_tier must be above the agent's tier {tier}")


def _copy(record: M) -> M:
    """A copy of a record: the roster keeps changing the original."""
    copy = type(record)()
    copy.CopyFrom(record)
    return copy


def _clamp(value: float, limit: float) -> float:
    """`value` within [0, limit]."""
    return max(0.0, min(value, limit))


def _require(value: str, name: str) -> None:
    if not value:
        raise InvalidRequest(f"{name} is required")


def _status_word(status: int) -> str:
    return agent_pb2.AgentStatus.Name(status).removeprefix("AGENT_STATUS_").lower()  # type: ignore[arg-type]

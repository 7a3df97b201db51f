"""The roster: every agent's profile, presence, load and open offers, and the rules.

Plain synchronous Python over the protobuf `Agent` records: no gRPC, no
Kafka, no clock (every method takes `now`, seconds since the epoch). Each
change returns the events that describe it, for the caller to publish.
Because nothing here awaits, each method is atomic with respect to every
other call on the same event loop: a reservation is a compare-and-set.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from omniroute.codec import seconds, timestamp
from omniroute.v1 import agent_pb2, inquiry_pb2, task_pb2

Agent = agent_pb2.Agent
AgentEvent = agent_pb2.AgentEvent
TaskEvent = task_pb2.TaskEvent
OFFLINE, AVAILABLE, AWAY, WRAP_UP = (
    agent_pb2.AGENT_STATUS_OFFLINE,
    agent_pb2.AGENT_STATUS_AVAILABLE,
    agent_pb2.AGENT_STATUS_AWAY,
    agent_pb2.AGENT_STATUS_WRAP_UP,
)


class RosterError(Exception):
    """A request the roster refuses; the subclass says which kind."""


class InvalidRequest(RosterError):
    """The request is malformed; the message names the field."""


class UnknownAgent(RosterError):
    """No agent with that id."""


class NotPossible(RosterError):
    """The request is valid but the agent's state does not allow it now."""


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

    def offer_ttl(self, channel: int) -> float:
        """How long an offer on `channel` stays open."""
        return self.offer_ttl_by_channel.get(channel_name(channel), self.offer_ttl_s)

    def wrap_up(self, channel: int) -> float:
        """Longest wrap-up after a task on `channel` (0: none)."""
        return self.wrap_up_by_channel.get(channel_name(channel), 0.0)


@dataclass
class Changes:
    """What one operation changed: events to publish, offers to push to desktops."""

    agent_events: list[AgentEvent] = field(default_factory=list)
    task_events: list[TaskEvent] = field(default_factory=list)


class Roster:
    """All agents this service knows, and the rules that change them."""

    def __init__(
        self, policy: Policy, new_id: Callable[[], str] = lambda: uuid.uuid4().hex
    ) -> None:
        self.policy = policy
        self.agents: dict[str, Agent] = {}
        self.holder: dict[str, str] = {}  # inquiry id -> agent holding its reservation
        self.wrap_up_until: dict[str, float] = {}  # agent id -> end of wrap-up
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

    @staticmethod
    def has_free_slot(agent: Agent, channel: int) -> bool:
        """Whether the agent is AVAILABLE with room on `channel` (and in total)."""
        if agent.status != AVAILABLE:
            return False
        slot = next((c for c in agent.capacities if c.channel == channel), None)
        if slot is None or slot.load >= slot.capacity:
            return False
        total = sum(c.load for c in agent.capacities)
        return not (agent.total_capacity and total >= agent.total_capacity)

    # -- profile and presence -------------------------------------------------

    def upsert(self, profile: Agent, actor: str, now: float) -> Changes:
        """Create an agent or replace its profile; presence, load and offers are kept."""
        _require(profile.id, "agent.id")
        _require(profile.workspace, "agent.workspace")
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
        current = self.agents.get(profile.id)
        if current is not None and current.workspace != profile.workspace:
            raise InvalidRequest(
                f"agent.workspace: agent {profile.id!r} belongs to {current.workspace!r}"
            )
        agent = Agent()
        agent.CopyFrom(profile)
        del agent.reservations[:]
        loads = {c.channel: c.load for c in current.capacities} if current else {}
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
            # Load on a channel that is no longer in the profile stays visible.
            for channel, load in loads.items():
                if load and channel not in {s.channel for s in agent.capacities}:
                    agent.capacities.add(channel=channel, capacity=0, load=load)  # type: ignore[arg-type]
        self.agents[agent.id] = agent
        return self._changed(agent, AgentEvent.CHANGE_UPSERTED, actor, "profile", now)

    def set_status(
        self, agent_id: str, status: int, reason: str, actor: str, now: float
    ) -> Changes:
        """Log in (AVAILABLE), log out (OFFLINE), go AWAY (with a reason) or WRAP_UP.

        Going OFFLINE or AWAY withdraws open offers, so the router re-routes them.
        """
        agent = self.get(agent_id)
        if status not in (OFFLINE, AVAILABLE, AWAY, WRAP_UP):
            raise InvalidRequest("status must be OFFLINE, AVAILABLE, AWAY or WRAP_UP")
        if status == AWAY and not reason:
            raise InvalidRequest(
                "reason is required for AWAY (break, lunch, meeting, training, ...)"
            )
        changes = Changes()
        if status in (OFFLINE, AWAY):
            for reservation in [r for r in agent.reservations if not r.accepted]:
                self._release(agent, reservation)
                changes.task_events.append(
                    self._task_event(
                        TaskEvent.TYPE_WITHDRAWN,
                        agent,
                        reservation,
                        now,
                        reason=f"agent {_status_word(status)}",
                    )
                )
        self.wrap_up_until.pop(agent_id, None)
        self._set_status(agent, status, reason if status == AWAY else "", now)
        changes.agent_events += self._changed(
            agent, AgentEvent.CHANGE_STATUS, actor, reason or _status_word(status), now
        ).agent_events
        return changes

    # -- offers and tasks -----------------------------------------------------

    def reserve(
        self, agent_id: str, inquiry_id: str, channel: int, workspace: str, now: float
    ) -> tuple[agent_pb2.Reservation, Agent, bool, Changes]:
        """Hold one slot of the agent's capacity on `channel` for an offer of the inquiry.

        An inquiry holds at most one reservation: when it already has one (on
        any agent), that one is returned with `already=True` and nothing changes.
        """
        _require(agent_id, "agent_id")
        _require(inquiry_id, "inquiry_id")
        if channel not in inquiry_pb2.Channel.values() or channel == 0:
            raise InvalidRequest("channel is required")
        holder_id = self.holder.get(inquiry_id)
        if holder_id is not None:
            holder = self.agents[holder_id]
            existing = next(r for r in holder.reservations if r.inquiry_id == inquiry_id)
            return existing, holder, True, Changes()
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
        reservation = agent.reservations.add(
            reservation_id=self.new_id(),
            agent_id=agent_id,
            inquiry_id=inquiry_id,
            channel=channel,  # type: ignore[arg-type]
        )
        reservation.expires_at.CopyFrom(timestamp(now + self.policy.offer_ttl(channel)))
        self.holder[inquiry_id] = agent_id
        changes = self._changed(agent, AgentEvent.CHANGE_RESERVED, "router", inquiry_id, now)
        changes.task_events.append(
            self._task_event(TaskEvent.TYPE_OFFERED, agent, reservation, now)
        )
        return reservation, agent, False, changes

    def accept(self, agent_id: str, inquiry_id: str, now: float) -> Changes:
        """The agent takes the offered inquiry: its slot stays held until completion."""
        agent, reservation = self._reservation(agent_id, inquiry_id)
        if reservation.accepted:
            return Changes()  # a retried accept
        reservation.accepted = True
        changes = self._changed(agent, AgentEvent.CHANGE_ACCEPTED, agent_id, inquiry_id, now)
        changes.task_events.append(
            self._task_event(TaskEvent.TYPE_ACCEPTED, agent, reservation, now)
        )
        return changes

    def decline(self, agent_id: str, inquiry_id: str, reason: str, now: float) -> Changes:
        """The agent turns the offer down; the router offers it to someone else."""
        agent, reservation = self._reservation(agent_id, inquiry_id)
        if reservation.accepted:
            raise NotPossible(f"inquiry {inquiry_id!r} was accepted; complete or transfer it")
        self._release(agent, reservation)
        changes = self._changed(agent, AgentEvent.CHANGE_RELEASED, agent_id, "declined", now)
        changes.task_events.append(
            self._task_event(TaskEvent.TYPE_DECLINED, agent, reservation, now, reason=reason)
        )
        return changes

    def complete(
        self, agent_id: str, inquiry_id: str, outcome: task_pb2.TaskEvent, now: float
    ) -> Changes:
        """The agent is done: record the outcome, free the slot, maybe wrap up."""
        agent, reservation = self._reservation(agent_id, inquiry_id)
        if not reservation.accepted:
            raise NotPossible(f"inquiry {inquiry_id!r} was offered but not accepted")
        resolution = outcome.resolution or task_pb2.RESOLUTION_RESOLVED
        if resolution == task_pb2.RESOLUTION_FOLLOW_UP and not outcome.follow_up.HasField("due_at"):
            raise InvalidRequest("follow_up.due_at is required for a FOLLOW_UP")
        if resolution == task_pb2.RESOLUTION_ESCALATED:
            target = outcome.escalation.target_tier
            if target and target <= agent.tier:
                raise InvalidRequest(
                    f"escalation.target_tier must be above the agent's tier {agent.tier}"
                )
            if agent.tier >= agent_pb2.TIER_SUPERVISOR and not outcome.escalation.target_skill:
                raise InvalidRequest(
                    "a supervisor can only escalate to a skill (escalation.target_skill)"
                )
        self._release(agent, reservation)
        wrap_up = self.policy.wrap_up(reservation.channel)
        if wrap_up > 0 and agent.status == AVAILABLE:
            self._set_status(agent, WRAP_UP, "", now)
            self.wrap_up_until[agent.id] = now + wrap_up
        changes = self._changed(agent, AgentEvent.CHANGE_RELEASED, agent_id, "completed", now)
        event = self._task_event(TaskEvent.TYPE_COMPLETED, agent, reservation, now)
        event.resolution = resolution
        if resolution == task_pb2.RESOLUTION_FOLLOW_UP:
            event.follow_up.CopyFrom(outcome.follow_up)
        if resolution == task_pb2.RESOLUTION_ESCALATED:
            event.escalation.CopyFrom(outcome.escalation)
        changes.task_events.append(event)
        return changes

    def expire(self, now: float) -> Changes:
        """Expire offers past their time-to-live and wrap-ups past their maximum."""
        changes = Changes()
        for agent in list(self.agents.values()):
            expired = [
                r for r in agent.reservations if not r.accepted and seconds(r.expires_at) <= now
            ]
            for reservation in expired:
                self._release(agent, reservation)
                changes.task_events.append(
                    self._task_event(TaskEvent.TYPE_OFFER_TIMEOUT, agent, reservation, now)
                )
            if expired and self.policy.away_on_missed_offer and agent.status == AVAILABLE:
                self._set_status(agent, AWAY, "missed_offer", now)
            if expired:
                changes.agent_events += self._changed(
                    agent, AgentEvent.CHANGE_RELEASED, "system", "offer_timeout", now
                ).agent_events
        for agent_id, until in list(self.wrap_up_until.items()):
            if until <= now:
                del self.wrap_up_until[agent_id]
                agent = self.agents[agent_id]
                if agent.status == WRAP_UP:
                    self._set_status(agent, AVAILABLE, "", now)
                    changes.agent_events += self._changed(
                        agent, AgentEvent.CHANGE_STATUS, "system", "wrap_up_over", now
                    ).agent_events
        return changes

    # -- recovery -------------------------------------------------------------

    def restore(self, snapshots: Iterable[Agent], now: float) -> None:
        """Rebuild from the latest snapshot of each agent (highest version wins)."""
        for snapshot in snapshots:
            current = self.agents.get(snapshot.id)
            if current is None or snapshot.version > current.version:
                self.agents[snapshot.id] = snapshot
        self.holder = {r.inquiry_id: a.id for a in self.agents.values() for r in a.reservations}
        for agent in self.agents.values():
            wrap_up = self.policy.wrap_up_by_channel and agent.status == WRAP_UP
            if wrap_up:
                # The wrap-up's channel is gone with the task; allow the longest.
                limit = max(self.policy.wrap_up_by_channel.values())
                self.wrap_up_until[agent.id] = seconds(agent.status_since) + limit

    # -- helpers --------------------------------------------------------------

    def _reservation(self, agent_id: str, inquiry_id: str) -> tuple[Agent, agent_pb2.Reservation]:
        _require(agent_id, "agent_id")
        _require(inquiry_id, "inquiry_id")
        agent = self.get(agent_id)
        for reservation in agent.reservations:
            if reservation.inquiry_id == inquiry_id:
                return agent, reservation
        raise NotPossible(f"agent {agent_id!r} holds no offer or task for inquiry {inquiry_id!r}")

    def _release(self, agent: Agent, reservation: agent_pb2.Reservation) -> None:
        for slot in agent.capacities:
            if slot.channel == reservation.channel and slot.load > 0:
                slot.load -= 1
        self.holder.pop(reservation.inquiry_id, None)
        kept = [r for r in agent.reservations if r.inquiry_id != reservation.inquiry_id]
        del agent.reservations[:]
        agent.reservations.extend(kept)

    def _set_status(self, agent: Agent, status: int, reason: str, now: float) -> None:
        agent.status = status  # type: ignore[assignment]
        agent.away_reason = reason
        agent.status_since.CopyFrom(timestamp(now))

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
        reservation: agent_pb2.Reservation,
        now: float,
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
        return event


def _require(value: str, name: str) -> None:
    if not value:
        raise InvalidRequest(f"{name} is required")


def _status_word(status: int) -> str:
    return agent_pb2.AgentStatus.Name(status).removeprefix("AGENT_STATUS_").lower()  # type: ignore[arg-type]

"""The router's picture of agents and waiting inquiries: plain data.

Channels are lower-case names ("voice", "chat", ...), tiers integers
(1 representative, 2 specialist, 3 supervisor), times seconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

REPRESENTATIVE, SPECIALIST, SUPERVISOR = 1, 2, 3


class AgentStatus(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    AWAY = "away"
    WRAP_UP = "wrap_up"


@dataclass
class AgentView:
    """What the router knows of an agent: a cache of agent-state's authority."""

    id: str
    workspace: str
    skills: dict[str, int] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    tier: int = REPRESENTATIVE
    capacity: dict[str, int] = field(default_factory=dict)
    load: dict[str, int] = field(default_factory=dict)
    total_capacity: int = 0
    voice_blocks: bool = False  # a call in progress blocks every other channel
    status: AgentStatus = AgentStatus.OFFLINE
    idle_since: float = 0.0
    version: int = 0
    site: str = ""  # where the agent works in person (store, branch, desk)

    def free_on(self, channel: str) -> bool:
        """Whether the agent is available and has a free slot on `channel`."""
        if self.status is not AgentStatus.AVAILABLE:
            return False
        if self.load.get(channel, 0) >= self.capacity.get(channel, 0):
            return False
        if self.voice_blocks and channel != "voice" and self.load.get("voice", 0):
            return False
        return not (self.total_capacity and self.total_load >= self.total_capacity)

    @property
    def total_load(self) -> int:
        """Tasks held over all channels."""
        return sum(self.load.values())

    @property
    def occupancy(self) -> float:
        """Share of the agent's slots in use, 0.0 to 1.0."""
        slots = self.total_capacity or sum(self.capacity.values())
        return self.total_load / slots if slots else 1.0

    def speaks(self, language: str) -> bool:
        """Whether the agent serves `language` ("es" matches "es-MX" and back)."""
        if not language:
            return True
        wanted = language.lower().split("-")[0]
        return any(lang.lower().split("-")[0] == wanted for lang in self.languages)

    def at_site(self, site: str) -> bool:
        """Whether the agent works at `site` (ignoring case)."""
        return bool(self.site) and self.site.casefold() == site.casefold()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, for the router's state tables."""
        return {
            "id": self.id,
            "workspace": self.workspace,
            "skills": self.skills,
            "languages": list(self.languages),
            "tier": self.tier,
            "capacity": self.capacity,
            "load": self.load,
            "total_capacity": self.total_capacity,
            "voice_blocks": self.voice_blocks,
            "status": self.status.value,
            "idle_since": self.idle_since,
            "version": self.version,
            "site": self.site,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentView:
        """Inverse of `to_dict`."""
        return cls(
            **{
                **data,
                "languages": tuple(data["languages"]),
                "status": AgentStatus(data["status"]),
            }
        )


class InquiryState(StrEnum):
    WAITING = "waiting"  # in a queue, looking for an agent
    OFFERED = "offered"  # reserved on an agent, offer open
    ACCEPTED = "accepted"  # the agent is working on it
    SCHEDULED = "scheduled"  # a follow-up not yet due
    HELD = "held"  # arrived while its queue was closed: waits, unoffered, until it opens


@dataclass(slots=True)
class QueuedInquiry:
    """One inquiry while the router is responsible for it.

    Slotted: a workspace may hold a million of them.
    """

    id: str
    workspace: str
    channel: str
    queue: str
    arrived_at: float  # when it first entered routing; ordering and SLA
    kind: str = ""
    language: str = ""
    segment: str = ""
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)  # skill -> minimum proficiency
    thread_id: str = ""
    site: str = ""  # in person: only agents of this site (empty: any)
    state: InquiryState = InquiryState.WAITING
    queued_at: float = 0.0  # when it (re-)entered the queue; the ladder's clock
    attempts: int = 0  # offers made so far
    failed_offers: int = 0  # declined, missed or withdrawn offers in this queue stint
    agent_id: str = ""  # the agent holding the offer or the task
    reservation_id: str = ""
    offered_at: float = 0.0
    excluded: dict[str, float] = field(default_factory=dict)  # agent -> until
    min_tier: int = REPRESENTATIVE  # raised by explicit escalation
    forced_step: int = 0  # ladder step reached by failed offers
    step: int = 0  # highest ladder step reached (and counted) in this queue stint
    preferred_agent: str = ""  # sticky: follow-ups and thread replies
    prefer_until: float = 0.0
    due_at: float = 0.0  # follow-ups and held inquiries: not routed before this
    sla_from: float = 0.0  # held until its queue opened: the service-level wait starts here
    left_queues: list[str] = field(default_factory=list)  # overflowed from (never back)
    # Skills its queue raised (skill -> the minimum before; 0: not required), undone
    # when it moves to another queue.
    queue_skills: dict[str, int] = field(default_factory=dict)
    answered: bool = False  # first offer accepted (SLA counted once)
    offer_expires_at: float = 0.0  # when agent-state times the open offer out
    last_heard_at: float = 0.0  # last news of the open offer or task (event or check)
    settled_reservation: str = ""  # the last reservation whose outcome was applied
    # Admitted by the sweep (it never came through the stream): agent-state is
    # asked what it knows before it may be offered, so a finished one is not.
    verify: bool = False
    # A callback (callbacks.py): the number to call (E.164; personal data, never
    # logged) and the channel the customer waited on; `channel` is then "voice".
    callback: str = ""
    origin_channel: str = ""
    history: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, for the router's state tables."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueuedInquiry:
        """Inverse of `to_dict`."""
        return cls(**{**data, "state": InquiryState(data["state"])})

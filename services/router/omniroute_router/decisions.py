"""What the routing core hands the adapter, and what the adapter hands it back.

Plain frozen values: the offers a plan proposes (`Offer`), the offers to take
back at agent-state (`Withdrawal`), what changed and is to be written
(`Changes`), what to count and log (`Notice`), all three taken at once as a
`Step`; agent-state's word on one inquiry for reconciliation (`Held`,
`TaskEnd`, `Authority`) and its result (`Reconciled`); a queue's figures
(`QueueStats`). `WorkspaceRouter` (routing.py) makes and takes them; the
adapter (app.py) encodes and decodes them, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Offer:
    """A proposal: reserve `agent_id` for `inquiry_id`."""

    inquiry_id: str
    agent_id: str
    queue: str
    step: int
    tier: int
    attempt: int
    strategy: str


@dataclass(frozen=True)
class Withdrawal:
    """An open offer the router wants taken back at agent-state (e.g. abandoned)."""

    inquiry_id: str
    agent_id: str
    reservation_id: str
    reason: str


@dataclass(frozen=True)
class Held:
    """An open reservation as agent-state, the authority, holds it."""

    agent_id: str
    reservation_id: str
    accepted: bool
    expires_at: float = 0.0


class EndKind(StrEnum):
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    OFFER_FAILED = "offer_failed"  # declined, timed out or withdrawn
    TRANSFERRED = "transferred"  # the task handed to a queue (routed again)


@dataclass(frozen=True)
class TaskEnd:
    """agent-state's last event of an inquiry, when it ended an offer or a task."""

    kind: EndKind
    agent_id: str
    reservation_id: str


@dataclass(frozen=True)
class Authority:
    """What agent-state knows of one inquiry: its open reservation and how it last ended."""

    held: Held | None = None
    ended: TaskEnd | None = None


class Reconciled(StrEnum):
    UNKNOWN = "unknown"  # not an open inquiry of this router: nothing to compare
    AGREED = "agreed"  # the two pictures agree
    ADOPTED = "adopted"  # the router took agent-state's reservation
    APPLY_EVENT = "apply_event"  # the adapter applies agent-state's last event
    REQUEUED = "requeued"  # agent-state holds nothing: back into the queue


@dataclass(frozen=True)
class Changes:
    """What changed since the adapter last persisted, by id (to write or delete)."""

    inquiries: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()
    threads: frozenset[str] = frozenset()


class NoticeKind(StrEnum):
    ESCALATED = "escalated"
    FOLLOW_UP_SCHEDULED = "follow_up_scheduled"
    FOLLOW_UP_DUE = "follow_up_due"
    ABANDONED = "abandoned"
    RECONCILED = "reconciled"
    ANSWERED = "answered"  # the first offer accepted; `wait_s` is the wait to answer
    CLOSED_ARRIVAL = "closed_arrival"  # arrived while its queue was closed; `reason`: the policy
    OVERFLOWED = "overflowed"  # moved by an overflow rule; `reason`: the trigger
    # An agent handed it to another queue; `reason`: "excluded" (never back to
    # them) or "sole_fit" (nobody else could ever take it).
    TRANSFERRED = "transferred"
    CALLBACK = "callback"  # a callback request; `reason`: its CallbackOutcome


@dataclass(frozen=True)
class Notice:
    """Something worth counting or logging that the core decided."""

    # closed_arrival: reason is the policy; overflowed: the trigger; transferred: see the kind
    kind: NoticeKind
    inquiry_id: str
    queue: str
    channel: str
    step: int = 0
    reason: str = ""
    wait_s: float = 0.0
    to_queue: str = ""  # overflowed, transferred: the queue entered


@dataclass(frozen=True)
class Step:
    """Everything the core decided since the adapter last took it (`take_step`).

    What to write to the tables (`changes`), the offers to take back at
    agent-state (`withdrawals`) and what to count and log (`notices`).
    """

    changes: Changes = Changes()
    withdrawals: tuple[Withdrawal, ...] = ()
    notices: tuple[Notice, ...] = ()


@dataclass
class QueueStats:
    """One queue's figures now, kept as inquiries move (no pass over the queue)."""

    waiting: int = 0  # waiting for an agent (including those awaiting agent-state's word)
    oldest_wait_s: float = 0.0  # the longest a waiting one has waited, since it arrived
    scheduled: int = 0  # follow-ups not yet released
    offered: int = 0
    in_progress: int = 0
    callbacks: int = 0  # callbacks not yet offered (waiting or held; callbacks.py)

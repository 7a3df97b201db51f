"""Conversations: a customer's new message on a thread with an open inquiry joins it.

Channels give every message of one conversation the same `thread_id` (an SMS
number, a social thread, an email thread, a chat; ingest derives it with a
hash, never the number or address itself). When a message arrives on a thread
whose inquiry is still open (waiting, offered, in progress or scheduled) and
whose last message is at most the workspace's `conversation_window_s` old,
the message joins that inquiry instead of queuing a new task: its text and
attachments go on the inquiry's content (the next offer shows the whole
conversation), its own id counts as finished (never queued, never swept),
and when an agent is offered or handles the inquiry, agent-state delivers it
to that agent's desk (`DeliverMessage`, pushed on `WatchOffers`). With nothing
open, the message is a new inquiry, which prefers the thread's last agent
(the core's threads). When agent-state says the agent no longer holds the
inquiry (resolved or declined a moment ago, the event still on its way on
another topic), the message is a new inquiry too: it is never left on an
inquiry that is over.

A delivery that fails (agent-state unreachable or paused) is not given up:
the message is kept with the inquiry's content (contents.py, a table on the
workspace's partition) and `DeliverMessage` is tried again on each tick of
the partition (at most `ROUTER_CHECKS_PER_TICK` inquiries per workspace and
tick, the calls side by side, each within the agent-state deadline, so the
stream never waits on it for long) until agent-state takes it or the agent
no longer holds the inquiry (`redelivery`: the content still has the
message, so the next offer shows it). agent-state keeps each message id
once, so a retry of a delivery that had in fact arrived changes nothing.
The inquiries with messages waiting are found again from the table when a
workspace's state is rebuilt (a restart, a takeover): a pending retry
survives the worker that made it.

`ThreadIndex` and `redelivery` are the rules (pure: the core's state and the
time in, a decision out); `Conversations` is the adapter's part (content,
delivery, counting). The index is not persisted: it is rebuilt from the core's open
inquiries whenever a workspace's state is (a restart, a takeover), so it
agrees with the tables; only the time of the last joined message is then
taken as the inquiry's arrival.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2, task_pb2
from omniroute_router.contents import InquiryContents
from omniroute_router.metrics import RouterMetrics
from omniroute_router.model import InquiryState, QueuedInquiry
from omniroute_router.reservations import (
    AgentStateClient,
    AgentStateUnavailable,
    ReservationRefused,
)
from omniroute_router.routing import WorkspaceRouter

log = logging.getLogger(__name__)

#: States in which an agent holds the inquiry (a message goes to that agent).
_HELD = (InquiryState.OFFERED, InquiryState.ACCEPTED)


@dataclass(frozen=True)
class Join:
    """A message joins `inquiry_id`; `agent_id` holds it (empty while nobody does)."""

    inquiry_id: str
    agent_id: str


class Redelivery(StrEnum):
    """What to do with a message whose delivery failed (a closed set: a metric label)."""

    RETRY = "retry"  # its agent still holds the inquiry
    DROPPED = "dropped"  # no longer held by that agent: the content keeps it


def redelivery(router: WorkspaceRouter, message: task_pb2.ConversationMessage) -> Redelivery:
    """Whether a message not yet delivered is still to be delivered to its agent."""
    held = router.inquiries.get(message.inquiry_id)
    if held is None or held.state not in _HELD or held.agent_id != message.agent_id:
        return Redelivery.DROPPED
    return Redelivery.RETRY


class ThreadIndex:
    """The open inquiry of each thread, per workspace, with its last message's time."""

    def __init__(self) -> None:
        # workspace -> (the core it was built from, thread -> (open inquiry id, last message))
        self._indexes: dict[str, tuple[WorkspaceRouter, dict[str, tuple[str, float]]]] = {}

    def find(self, router: WorkspaceRouter, inquiry: QueuedInquiry, now: float) -> Join | None:
        """The open inquiry `inquiry` (a new message) joins, if any."""
        if not inquiry.thread_id:
            return None
        index = self._index(router)
        found = index.get(inquiry.thread_id)
        if found is None:
            return None
        open_id, last_at = found
        held = router.inquiries.get(open_id)
        if held is None or held.thread_id != inquiry.thread_id or open_id == inquiry.id:
            del index[inquiry.thread_id]  # finished since: the next message opens a new one
            return None
        if now - last_at > router.config.conversation_window_s:
            return None
        return Join(open_id, held.agent_id if held.state in _HELD else "")

    def joined(self, router: WorkspaceRouter, thread_id: str, join: Join, now: float) -> None:
        """A message joined `join.inquiry_id` at `now`: the window runs from here."""
        self._index(router)[thread_id] = (join.inquiry_id, now)

    def opened(self, router: WorkspaceRouter, inquiry: QueuedInquiry, now: float) -> None:
        """A new inquiry was queued: it is its thread's open inquiry."""
        if inquiry.thread_id:
            self._index(router)[inquiry.thread_id] = (inquiry.id, now)

    def _index(self, router: WorkspaceRouter) -> dict[str, tuple[str, float]]:
        built = self._indexes.get(router.workspace)
        if built is not None and built[0] is router:
            return built[1]
        # A workspace state (re)built from the tables: index its open inquiries once.
        index: dict[str, tuple[str, float]] = {}
        for held in router.inquiries.values():
            if held.thread_id:
                last = index.get(held.thread_id)
                if last is None or last[1] < held.arrived_at:
                    index[held.thread_id] = (held.id, held.arrived_at)
        self._indexes[router.workspace] = (router, index)
        return index


class Conversations:
    """Joins messages to their open inquiry: content, delivery to the agent, counts."""

    def __init__(
        self, agent_state: AgentStateClient, contents: InquiryContents, metrics: RouterMetrics
    ) -> None:
        self.agent_state = agent_state
        self.contents = contents
        self.metrics = metrics
        self.index = ThreadIndex()
        # workspace -> (the core it was built from, inquiries with messages not delivered)
        self._undelivered: dict[str, tuple[WorkspaceRouter, set[str]]] = {}

    async def join(
        self,
        router: WorkspaceRouter,
        proto: inquiry_pb2.Inquiry,
        inquiry: QueuedInquiry,
        now: float,
    ) -> bool:
        """Join the message to its thread's open inquiry; False when it is a new inquiry."""
        join = self.index.find(router, inquiry, now)
        if join is None:
            return False
        outcome = "waiting"
        if join.agent_id:
            message = task_pb2.ConversationMessage(
                workspace=router.workspace,
                inquiry_id=join.inquiry_id,
                agent_id=join.agent_id,
                message=proto,
                joined_at=timestamp(now),
            )
            outcome = await self._deliver(message)
            if outcome == "failed":  # kept with the content; retried on the next ticks
                self._keep_undelivered(router, [message])
        self.metrics.conversation_messages.labels(outcome).inc()
        if outcome == "not_held":
            # agent-state, the authority, says the agent no longer holds it (resolved
            # or declined, its event not yet here): the message is a new inquiry, so it
            # is never lost on an inquiry that is over.
            log.info(
                "message's inquiry no longer held; queued as a new one",
                extra={"inquiry_id": join.inquiry_id, "message_id": inquiry.id},
            )
            return False
        router.absorbed(inquiry.id, now)
        self.index.joined(router, inquiry.thread_id, join, now)
        self.contents.add_message(router.workspace, join.inquiry_id, proto)
        log.info(
            "message joined its open inquiry",
            extra={"inquiry_id": join.inquiry_id, "message_id": inquiry.id, "delivery": outcome},
        )
        return True

    def opened(self, router: WorkspaceRouter, inquiry: QueuedInquiry, now: float) -> None:
        """A new inquiry was queued (it may be a conversation's first message)."""
        self.index.opened(router, inquiry, now)

    async def redeliver(self, router: WorkspaceRouter, limit: int) -> None:
        """Try again the messages whose delivery failed, of at most `limit` inquiries.

        One inquiry's messages go in order; the inquiries' calls overlap. A
        message goes when delivered or no longer held by its agent; one that
        fails again waits for the next tick.
        """
        pending = self._pending(router)
        if not pending:
            return
        chosen = sorted(pending)[:limit]
        await asyncio.gather(*(self._redeliver(router, i) for i in chosen))

    async def _redeliver(self, router: WorkspaceRouter, inquiry_id: str) -> None:
        left: list[task_pb2.ConversationMessage] = []
        for message in self.contents.undelivered(router.workspace, inquiry_id):
            if left:  # an earlier one failed again: in order, all wait for the next tick
                left.append(message)
                continue
            if redelivery(router, message) is Redelivery.DROPPED:
                outcome = Redelivery.DROPPED.value
            else:
                outcome = await self._deliver(message)
                if outcome == "not_held":  # agent-state, the authority, says it is over
                    outcome = Redelivery.DROPPED.value
            self.metrics.message_redeliveries.labels(outcome).inc()
            if outcome == "failed":
                left.append(message)
        self.contents.keep_undelivered(router.workspace, inquiry_id, left)
        if not left:
            self._pending(router).discard(inquiry_id)
            log.info("undelivered messages settled", extra={"inquiry_id": inquiry_id})

    def _keep_undelivered(
        self, router: WorkspaceRouter, messages: list[task_pb2.ConversationMessage]
    ) -> None:
        inquiry_id = messages[0].inquiry_id
        kept = self.contents.undelivered(router.workspace, inquiry_id)
        known = {m.message.id for m in kept}
        kept += [m for m in messages if m.message.id not in known]
        self.contents.keep_undelivered(router.workspace, inquiry_id, kept)
        self._pending(router).add(inquiry_id)

    def _pending(self, router: WorkspaceRouter) -> set[str]:
        """The workspace's inquiries with messages waiting; found again from the table
        once whenever its state is rebuilt (a restart, a takeover)."""
        built = self._undelivered.get(router.workspace)
        if built is not None and built[0] is router:
            return built[1]
        pending = {
            held.id
            for held in router.inquiries.values()
            if held.state in _HELD and self.contents.undelivered(router.workspace, held.id)
        }
        self._undelivered[router.workspace] = (router, pending)
        return pending

    async def _deliver(self, message: task_pb2.ConversationMessage) -> str:
        try:
            await self.agent_state.deliver_message(message)
        except ReservationRefused:
            return "not_held"
        except AgentStateUnavailable:
            self.metrics.agent_state_errors.inc()
            return "failed"
        return "delivered"

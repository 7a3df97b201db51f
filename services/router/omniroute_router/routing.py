"""The routing core: the story of an inquiry in one workspace.

One `WorkspaceRouter` holds one workspace's inquiries and its picture of the
agents. It is plain synchronous Python: no Kafka, no gRPC, no clock. Every
method takes the current time; the Faust app, the unit tests and a simulation
drive the same code. An inquiry is admitted into a queue (`admit`), offered
(`plan`), and its offer and task end as agent-state reports (`offer_made`,
`accepted`, `resolved`, `escalated`, `transferred_to_queue`, `abandoned`, ...);
`reconcile` makes the two pictures agree when an event was lost.

The router proposes offers (`plan`); the adapter reserves the agent at
agent-state, the authority on capacity, and reports back (`offer_made`, or
`reservation_refused` when the agent turned out not to be free).

What it hands the adapter is in decisions.py; who may take an inquiry and
which agent gets it in matching.py; the index that keeps every event and tick
independent of the queue's length in waiting.py; the queue controls' rules in
hours.py, overflow.py, controls.py and callbacks.py.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterator, Mapping

from omniroute_router import callbacks
from omniroute_router.callbacks import CallbackIndex, CallbackOutcome
from omniroute_router.config import LadderStep, Queue, WorkspaceConfig
from omniroute_router.controls import QueueControls
from omniroute_router.decisions import (
    Authority,
    Changes,
    EndKind,
    Held,
    Notice,
    NoticeKind,
    Offer,
    QueueStats,
    Reconciled,
    Step,
    Withdrawal,
)
from omniroute_router.hours import ClosedPolicy
from omniroute_router.matching import (
    FOREVER,
    FreeAgents,
    fits_profile,
    free_after,
    has_any_free_slot,
    same_for_matching,
)
from omniroute_router.model import (
    REPRESENTATIVE,
    SUPERVISOR,
    AgentView,
    InquiryState,
    QueuedInquiry,
)
from omniroute_router.waiting import Kind, MatchKind, WaitingIndex, match_kind

# How long a finished inquiry id is remembered to drop re-deliveries of it.
REMEMBER_FINISHED_S = 24 * 3600.0
# How long the last agent of a conversation thread is remembered.
REMEMBER_THREAD_S = 30 * 24 * 3600.0


class WorkspaceRouter:
    """Routing state and rules for one workspace."""

    def __init__(self, workspace: str, config: WorkspaceConfig) -> None:
        self.workspace = workspace
        self.config = config
        self.queues = {q.name: q for q in config.queues}
        # Business hours and overflow, with the indexes they keep (controls.py).
        self.controls = QueueControls(config)
        # Callbacks not yet offered, per queue (callbacks.py).
        self.pending_callbacks = CallbackIndex()
        self.inquiries: dict[str, QueuedInquiry] = {}
        self.agents: dict[str, AgentView] = {}
        self.finished: dict[str, float] = {}  # inquiry id -> when routing ended
        self.threads: dict[str, tuple[str, float]] = {}  # thread -> (last agent, when)
        self.notices: list[Notice] = []
        self.withdrawals: list[Withdrawal] = []
        # The inquiries filed by state, waiting ones by what can serve them
        # (waiting.py), so that no event and no tick costs more with a longer queue.
        self._waiting = WaitingIndex(config, self.inquiries)
        # Finished ids and thread memories in time order, to expire the oldest.
        self._finished_order: list[tuple[float, str]] = []
        self._thread_order: list[tuple[float, str]] = []
        # The agents with a free slot, in "longest idle" order (matching.py).
        self._free = FreeAgents()
        # What can be matched anew since the last plan: inquiries that entered
        # the queue and agents whose free slots changed (`plan_changed`).
        self._routable_inquiries: set[str] = set()
        self._routable_agents: set[str] = set()
        # What changed since the adapter last persisted, by id.
        self.changed_inquiries: set[str] = set()
        self.changed_agents: set[str] = set()
        self.changed_threads: set[str] = set()

    @property
    def free_agents(self) -> Mapping[str, AgentView]:
        """The agents with a free slot, by id."""
        return self._free.agents

    # -- inputs ------------------------------------------------------------

    def admit(self, inquiry: QueuedInquiry, now: float, verify: bool = False) -> bool:
        """Queue a new inquiry. False when it is a duplicate (already known by id).

        An inquiry already finished (or abandoned before it arrived) is a
        duplicate too. With `verify` (found by the sweep, not the stream) it is
        not offered before `reconcile` brought agent-state's word on it.
        """
        if inquiry.id in self.inquiries or inquiry.id in self.finished:
            return False
        self._waiting.seen(now)
        inquiry.queue = ""
        arrival = self.controls.arrival(inquiry.channel, self.queue_for(inquiry), now)
        self._enter_queue(inquiry, arrival.queue)
        inquiry.priority += self._rule_boost(inquiry)
        inquiry.queued_at = inquiry.queued_at or now
        inquiry.verify = verify
        if arrival.policy is not None:
            self._closed_arrival(inquiry, arrival.closed_queue, arrival.policy, now)
        if arrival.held_until is not None:
            inquiry.state = InquiryState.HELD
            inquiry.due_at = arrival.held_until
        last = self.threads.get(inquiry.thread_id) if inquiry.thread_id else None
        if last and not inquiry.preferred_agent:
            inquiry.preferred_agent = last[0]
            inquiry.prefer_until = now + self.config.sticky_wait_s
        self._put(inquiry)
        return True

    def update_agent(self, agent: AgentView) -> bool:
        """Take a newer picture of an agent. False when it is older than the one held."""
        held = self.agents.get(agent.id)
        if held is not None and held.version >= agent.version:
            return False
        was_routable = agent.id in self._routable_agents
        self.restore_agent(agent)
        self.changed_agents.add(agent.id)
        if held is not None and not was_routable and same_for_matching(held, agent):
            # E.g. an offer accepted: nothing the plan looks at changed, so
            # nothing waiting that did not fit the agent fits now.
            self._routable_agents.discard(agent.id)
        return True

    def remove_agent(self, agent_id: str) -> None:
        """Forget an agent that was deleted at agent-state."""
        self._set_free(agent_id, None)
        if self.agents.pop(agent_id, None) is not None:
            self.changed_agents.add(agent_id)

    def absorbed(self, inquiry_id: str, now: float) -> None:
        """An inquiry that joined another instead of queuing (a customer's new message
        on a conversation with an open inquiry): it counts as finished, so a
        redelivery or the sweep never queues it."""
        self._remember_finished(inquiry_id, now)
        self.changed_inquiries.add(inquiry_id)

    def is_new(self, inquiry_id: str) -> bool:
        """Neither routed now nor finished: the sweep admits such an inquiry."""
        return inquiry_id not in self.inquiries and inquiry_id not in self.finished

    # -- restoring: a worker taking the workspace over, a reload -----------

    def restore_inquiry(self, inquiry: QueuedInquiry) -> None:
        """Put back an inquiry from persisted state (no checks, no change recorded).

        One whose queue the configuration no longer has goes to the queue that
        takes it now.
        """
        if inquiry.queue not in self.queues:
            inquiry.queue = self.queue_for(inquiry).name
        held = self.inquiries.get(inquiry.id)
        if held is not None:
            self._unindex(held)
        self.inquiries[inquiry.id] = inquiry
        self._index(inquiry)

    def restore_agent(self, agent: AgentView) -> None:
        """Put back an agent from persisted state (no version check, no change recorded)."""
        self.agents[agent.id] = agent
        self._set_free(agent.id, agent if has_any_free_slot(agent) else None)

    def restore_finished(self, inquiry_id: str, at: float) -> None:
        """Put back a finished id from persisted state."""
        self._remember_finished(inquiry_id, at)

    def restore_thread(self, thread: str, agent_id: str, at: float) -> None:
        """Put back a thread's last agent from persisted state."""
        self._remember_thread(thread, agent_id, at)

    def reconfigured(self, config: WorkspaceConfig, now: float) -> WorkspaceRouter:
        """The workspace under a new configuration (a reload): a new core with this state.

        Built like a worker taking the workspace over (from the inquiries,
        agents, finished ids and threads, through the `restore_*` methods), so
        nothing derived from the old configuration survives. An inquiry of a
        queue the new configuration no longer has moves to the queue that takes
        it by the match rules: the old queue's priority and skills come off, the
        new queue's apply, and its history says so. Held inquiries are held until
        their queue's opening under the new hours (or released at the next tick
        when it is open). Every other inquiry keeps its queue and what was applied
        when it entered; new rules apply to what arrives or moves from now on.
        One pass over the workspace's state: a reload is rare.
        """
        fresh = WorkspaceRouter(self.workspace, config)
        for inquiry in self.inquiries.values():
            if inquiry.queue not in fresh.queues:
                left = self.queues.get(inquiry.queue)
                if left is not None:
                    inquiry.priority -= left.priority
                gone, inquiry.queue = inquiry.queue, ""
                fresh._enter_queue(inquiry, fresh.queue_for(inquiry))
                inquiry.history.append(f"requeued:{gone}:{inquiry.queue}:reconfigured")
                fresh.changed_inquiries.add(inquiry.id)
            if inquiry.state is InquiryState.HELD:
                state = fresh.controls.state(inquiry.queue, now)
                inquiry.due_at = now if state.open else state.until
                fresh.changed_inquiries.add(inquiry.id)
            fresh.restore_inquiry(inquiry)
        for agent in self.agents.values():
            fresh.restore_agent(agent)
        for inquiry_id, at in self.finished.items():
            fresh.restore_finished(inquiry_id, at)
        for thread, (agent_id, at) in self.threads.items():
            fresh.restore_thread(thread, agent_id, at)
        # What the adapter has not taken yet goes with it.
        fresh.changed_inquiries |= self.changed_inquiries
        fresh.changed_agents |= self.changed_agents
        fresh.changed_threads |= self.changed_threads
        fresh.notices = self.notices + fresh.notices
        fresh.withdrawals = self.withdrawals + fresh.withdrawals
        return fresh

    # -- deciding ----------------------------------------------------------

    def plan(
        self,
        now: float,
        inquiry_ids: Collection[str] | None = None,
        agent_ids: Collection[str] | None = None,
    ) -> list[Offer]:
        """Propose offers: for each waiting inquiry in order, the best free agent.

        `inquiry_ids` and `agent_ids` narrow the plan to what changed (new
        inquiries, agents with a slot freed): the given inquiries are matched
        against every free agent, and every waiting inquiry against the given
        agents (both given: both, in that order, in one plan). Without them
        every waiting inquiry is matched against every free agent. Capacity
        proposed here is counted, so one plan never proposes more than an
        agent's free slots or one inquiry twice; agent-state still has the
        final word.
        """
        self._waiting.seen(now)
        self._release_due_follow_ups(now)
        self._waiting.advance(now)
        if inquiry_ids is None and agent_ids is None:
            # Everything is matched: nothing is left to plan for what changed.
            self._routable_inquiries.clear()
            self._routable_agents.clear()
            free = dict(self.free_agents)
            return self._plan_waiting(now, free, {}, []) if free else []
        free = dict(self.free_agents)
        planned_load: dict[tuple[str, str], int] = {}
        offers: list[Offer] = []
        if inquiry_ids is not None:
            chosen = [self.inquiries[i] for i in inquiry_ids if i in self.inquiries]
            waiting = [i for i in chosen if i.state is InquiryState.WAITING and not i.verify]
            self._plan_chosen(waiting, free, planned_load, offers, now)
            if agent_ids is None:
                return offers
        # Agents a first pass used up are left out; what it used is counted.
        agents = {a: free[a] for a in agent_ids or () if a in free}
        if agents:
            self._plan_waiting(now, agents, planned_load, offers, {o.inquiry_id for o in offers})
        return offers

    def plan_changed(self, now: float) -> list[Offer]:
        """Plan for what changed since the last plan: the inquiries that entered the
        queue (new, back from an offer, follow-ups due) against every free agent,
        and every waiting inquiry against the agents whose free slots changed."""
        self._waiting.seen(now)
        self._release_due_follow_ups(now)
        self._waiting.advance(now)
        inquiry_ids, self._routable_inquiries = self._routable_inquiries, set()
        agent_ids, self._routable_agents = self._routable_agents, set()
        if not inquiry_ids and not agent_ids:
            return []
        return self.plan(now, inquiry_ids, agent_ids)

    def _plan_chosen(
        self,
        waiting: list[QueuedInquiry],
        free: dict[str, AgentView],
        planned_load: dict[tuple[str, str], int],
        offers: list[Offer],
        now: float,
    ) -> None:
        """Add to `offers`, for each of `waiting` in queue order, the best agent of `free`."""
        if not free:
            return
        # Free agents only get fewer within a plan, so an inquiry like one that
        # found nobody finds nobody either: remember the kinds that failed.
        hopeless: set[MatchKind] = set()
        for inquiry in sorted(waiting, key=lambda i: self._order_key(i, now)):
            step_index, step = self._step(inquiry, now)
            particular = inquiry.excluded or inquiry.preferred_agent
            kind = None if particular else match_kind(inquiry, step_index)
            if kind is not None and kind in hopeless:
                continue
            offer = self._offer(inquiry, step_index, step, free, planned_load, now)
            if offer is None:
                if kind is not None:
                    hopeless.add(kind)
                continue
            offers.append(offer)
            if not free:
                break

    def _plan_waiting(
        self,
        now: float,
        free: dict[str, AgentView],
        planned_load: dict[tuple[str, str], int],
        offers: list[Offer],
        skip: Collection[str] = (),
    ) -> list[Offer]:
        """Every waiting inquiry in order (but those in `skip`) against `free`,
        through the index's walk (waiting.py); the offers are added to `offers`, their capacity
        to `planned_load` (both may hold a first pass's), and returned.

        Only the kinds some free agent fits are walked (and the inquiries
        waiting for a free agent), merged in queue order; a kind is left as
        soon as none of the agents still free fits it. The offers are those
        of a walk over the whole queue: an inquiry left out is one for which
        nobody would have been found.
        """
        fitting: dict[Kind, bool] = {}
        walk = self._waiting.walk(now, self.config.aging_s, free, planned_load, fitting)
        for inquiry_id, kind in walk:
            if inquiry_id in skip:
                continue
            inquiry = self.inquiries[inquiry_id]
            step_index, step = self._step(inquiry, now)
            offer = self._offer(inquiry, step_index, step, free, planned_load, now)
            if offer is not None:
                offers.append(offer)
                continue
            if kind is None:
                continue
            # Nobody for an inquiry that excludes no one and waits for no one:
            # nobody for its whole kind. Otherwise ask the kind itself.
            particular = inquiry.preferred_agent or any(
                until > now for until in inquiry.excluded.values()
            )
            if not particular or not kind.anyone_fits(free, planned_load):
                fitting[kind] = False
        return offers

    def _offer(
        self,
        inquiry: QueuedInquiry,
        step_index: int,
        step: LadderStep,
        free: dict[str, AgentView],
        planned_load: dict[tuple[str, str], int],
        now: float,
    ) -> Offer | None:
        """The best free agent for the inquiry, its capacity counted as planned; None: nobody."""
        queue = self.queues[inquiry.queue]
        agent = self._free.choose(inquiry, step, queue, free, planned_load, now)
        if agent is None:
            return None
        key = (agent.id, inquiry.channel)
        planned_load[key] = planned_load.get(key, 0) + 1
        if not any(free_after(agent, ch, planned_load) for ch in agent.capacity):
            del free[agent.id]
        return Offer(
            inquiry_id=inquiry.id,
            agent_id=agent.id,
            queue=inquiry.queue,
            step=step_index,
            tier=agent.tier,
            attempt=inquiry.attempts + 1,
            strategy=queue.strategy,
        )

    def waiting_in_order(self, now: float) -> Iterator[QueuedInquiry]:
        """Waiting inquiries, most urgent first.

        Higher effective priority first (own priority, queue and rule boosts,
        plus one point per `aging_s` waited, so nothing starves); then the
        longest waiting; then by id, so the order is deterministic.
        """
        for inquiry_id in self._waiting.in_order(now, self.config.aging_s):
            yield self.inquiries[inquiry_id]

    def _order_key(self, inquiry: QueuedInquiry, now: float) -> tuple[float, float, str]:
        """The sort key of `waiting_in_order`, for one inquiry."""
        aged = inquiry.priority + (now - inquiry.arrived_at) // self.config.aging_s
        return (-aged, inquiry.arrived_at, inquiry.id)

    def step_index(self, inquiry: QueuedInquiry, now: float) -> int:
        """Which ladder step an inquiry is on: by time waited, or further after failed offers."""
        return self._step(inquiry, now)[0]

    # -- outcomes of offers ------------------------------------------------

    def offer_made(
        self,
        inquiry_id: str,
        agent_id: str,
        reservation_id: str,
        now: float,
        expires_at: float = 0.0,
        agent: AgentView | None = None,
    ) -> None:
        """agent-state reserved the agent: the offer is open until `expires_at`.

        `agent` is the agent's record as agent-state sent it with the
        reservation: taken when newer, without planning anew for it (the
        slot it lost is the one this plan used).
        """
        if agent is not None and self.update_agent(agent):
            self._routable_agents.discard(agent.id)
        inquiry = self.inquiries.get(inquiry_id)
        if inquiry is None:
            return
        self._set_state(inquiry, InquiryState.OFFERED)
        inquiry.agent_id = agent_id
        inquiry.reservation_id = reservation_id
        inquiry.offered_at = inquiry.last_heard_at = now
        inquiry.offer_expires_at = expires_at
        inquiry.attempts += 1
        inquiry.history.append(f"offered:{agent_id}")
        self.changed_inquiries.add(inquiry_id)

    def reservation_refused(self, inquiry_id: str, agent_id: str) -> None:
        """agent-state refused: the agent is not free after all. The picture is stale.

        The agent is left out of planning until agent-state's next event
        about it brings the true picture.
        """
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.load = {ch: agent.capacity.get(ch, 0) for ch in agent.capacity}
            self._set_free(agent_id, None)

    def offer_failed(
        self, inquiry_id: str, agent_id: str, reservation_id: str, reason: str, now: float
    ) -> bool:
        """The offer was declined, missed or withdrawn: back into the queue.

        The agent is not offered this inquiry again for `reoffer_block_s`;
        after `max_failed_offers` the inquiry moves one step up the ladder.
        False when the event is about an offer no longer open (a re-delivery).
        """
        inquiry = self.inquiries.get(inquiry_id)
        if (
            inquiry is None
            or inquiry.state is not InquiryState.OFFERED
            or inquiry.agent_id != agent_id
            or (reservation_id and inquiry.reservation_id != reservation_id)
        ):
            return False
        self._waiting.seen(now)
        # Out of the indexes while the fields they file it by change.
        self._unindex(inquiry)
        inquiry.state = InquiryState.WAITING
        inquiry.settled_reservation = inquiry.reservation_id
        inquiry.agent_id = ""
        inquiry.reservation_id = ""
        inquiry.excluded[agent_id] = now + self.config.reoffer_block_s
        inquiry.failed_offers += 1
        inquiry.history.append(f"{reason}:{agent_id}")
        if inquiry.preferred_agent == agent_id:
            # The agent it waited for turned it down: stop waiting for them, or
            # it sits out the sticky window while others are free.
            inquiry.preferred_agent = ""
            inquiry.prefer_until = 0.0
        if inquiry.failed_offers >= self.config.max_failed_offers:
            ladder = self.queues[inquiry.queue].ladder
            current = self.step_index(inquiry, now)
            if current + 1 < len(ladder):
                inquiry.forced_step = inquiry.step = current + 1
                self._notice(
                    NoticeKind.ESCALATED, inquiry, now, step=current + 1, reason="failed_offers"
                )
            inquiry.failed_offers = 0
        self._index(inquiry)
        self.changed_inquiries.add(inquiry_id)
        return True

    def accepted(self, inquiry_id: str, agent_id: str, now: float) -> float | None:
        """The agent accepted. Returns the wait to answer (first answer only), else None."""
        inquiry = self.inquiries.get(inquiry_id)
        if inquiry is None or inquiry.agent_id != agent_id:
            return None
        self._set_state(inquiry, InquiryState.ACCEPTED)
        inquiry.last_heard_at = now
        self.changed_inquiries.add(inquiry_id)
        if inquiry.thread_id:
            self._remember_thread(inquiry.thread_id, agent_id, now)
            self.changed_threads.add(inquiry.thread_id)
        if inquiry.answered:
            return None
        inquiry.answered = True
        self.controls.answered(inquiry.queue, now)
        # Held while its queue was closed: the service-level clock started at opening.
        wait = max(0.0, now - max(inquiry.arrived_at, inquiry.sla_from))
        self._notice(NoticeKind.ANSWERED, inquiry, now, wait_s=wait)
        return wait

    def resolved(self, inquiry_id: str, agent_id: str, now: float) -> bool:
        """The agent resolved the inquiry: routing is done with it."""
        inquiry = self.inquiries.get(inquiry_id)
        if inquiry is None or inquiry.agent_id != agent_id:
            return False
        if inquiry.thread_id:
            self._remember_thread(inquiry.thread_id, agent_id, now)
            self.changed_threads.add(inquiry.thread_id)
        self._finish(inquiry_id, now)
        return True

    def follow_up(self, inquiry_id: str, agent_id: str, due_at: float, now: float) -> bool:
        """Schedule the inquiry to come back at `due_at`, to the same agent if possible."""
        inquiry = self.inquiries.get(inquiry_id)
        if inquiry is None or inquiry.agent_id != agent_id:
            return False
        due_at = max(due_at, now)
        self._unindex(inquiry)
        inquiry.state = InquiryState.SCHEDULED
        inquiry.settled_reservation = inquiry.reservation_id
        inquiry.due_at = due_at
        inquiry.preferred_agent = agent_id
        inquiry.prefer_until = due_at + self.config.sticky_wait_s
        inquiry.agent_id = inquiry.reservation_id = ""
        inquiry.arrived_at = inquiry.queued_at = due_at
        inquiry.answered = False
        inquiry.forced_step = inquiry.failed_offers = inquiry.step = 0
        inquiry.excluded = {}
        inquiry.history.append(f"follow_up:{agent_id}")
        self._index(inquiry)
        self.changed_inquiries.add(inquiry_id)
        self._notice(NoticeKind.FOLLOW_UP_SCHEDULED, inquiry, now)
        return True

    def escalated(
        self,
        inquiry_id: str,
        agent_id: str,
        target_tier: int,
        target_skill: str,
        reason: str,
        now: float,
        target_queue: str = "",
    ) -> bool:
        """The agent could not resolve it: route again, never back to them.

        It goes to `target_tier` (unset or out of range: the tier above the
        agent's; a supervisor's goes to another supervisor), with
        `target_skill` added, in `target_queue` when the workspace has it (or
        else the queue that takes it with the skill), whose rules (required
        skills, priority) then apply.
        """
        inquiry = self.inquiries.get(inquiry_id)
        if inquiry is None or inquiry.agent_id != agent_id:
            return False
        self._waiting.seen(now)
        agent = self.agents.get(agent_id)
        from_tier = agent.tier if agent else inquiry.min_tier
        wanted = target_tier if REPRESENTATIVE <= target_tier <= SUPERVISOR else from_tier + 1
        # Never above the top tier: no agent would be eligible, and it would wait for ever.
        inquiry.min_tier = min(max(wanted, inquiry.min_tier), SUPERVISOR)
        if target_skill:
            inquiry.skills[target_skill] = max(inquiry.skills.get(target_skill, 0), 1)
        queue = self.queues.get(target_queue)
        if queue is None and (target_skill or target_queue):
            queue = self.queue_for(inquiry)
        self._unindex(inquiry)  # the queue changes the priority, the index's key
        if queue is not None:
            self._enter_queue(inquiry, queue)
        inquiry.settled_reservation = inquiry.reservation_id
        inquiry.state = InquiryState.WAITING
        inquiry.excluded[agent_id] = FOREVER
        inquiry.agent_id = inquiry.reservation_id = ""
        inquiry.queued_at = now
        inquiry.forced_step = inquiry.failed_offers = inquiry.step = 0
        inquiry.preferred_agent = ""
        inquiry.history.append(f"escalated:{agent_id}:tier{inquiry.min_tier}:{reason}")
        self._index(inquiry)
        self.changed_inquiries.add(inquiry_id)
        self._notice(NoticeKind.ESCALATED, inquiry, now, reason=reason or "agent")
        return True

    def transferred(self, inquiry_id: str, target_agent_id: str, reservation_id: str = "") -> bool:
        """agent-state moved the task to another agent, who holds it as `reservation_id`."""
        inquiry = self.inquiries.get(inquiry_id)
        if inquiry is None or not target_agent_id or inquiry.agent_id == target_agent_id:
            return False
        inquiry.agent_id = target_agent_id
        inquiry.reservation_id = reservation_id or inquiry.reservation_id
        self.changed_inquiries.add(inquiry_id)
        return True

    def transferred_to_queue(
        self,
        inquiry_id: str,
        agent_id: str,
        reservation_id: str,
        target_queue: str,
        note: str,
        now: float,
    ) -> bool:
        """The agent handed its task to `target_queue` with a note: route it again there.

        Unlike an escalation (a completion that asks for a higher tier, or adds
        a skill), a transfer changes the queue and what the inquiry is about:
        it needs the target queue's required skills instead of its own
        (language, site and tier floor stay). It enters `target_queue` (unknown
        to this configuration, e.g. removed by a reload since agent-state
        checked it: the queue its match rules pick, its skills kept) on the
        ladder's first step, keeps its
        original arrival time (its place in line, and the service-level wait
        when the queue answers it: it counts as answered again, there) and its
        history, to which the transfer and the note are added. The agent is
        never offered it again unless nobody else could ever take it
        (`_only_one_fits`). False when the agent does not hold it here by that
        reservation (a re-delivery: also one that comes after the same agent
        got it back in the target queue, by a newer reservation).
        """
        inquiry = self.inquiries.get(inquiry_id)
        if (
            inquiry is None
            or inquiry.agent_id != agent_id
            or inquiry.state not in (InquiryState.OFFERED, InquiryState.ACCEPTED)
            or (reservation_id and inquiry.reservation_id not in ("", reservation_id))
        ):
            return False
        self._waiting.seen(now)
        left = inquiry.queue
        named = self.queues.get(target_queue)
        queue = named or self.queue_for(inquiry)
        self._unindex(inquiry)  # the queue changes the priority, the index's key
        if queue.name != left and left not in inquiry.left_queues:
            inquiry.left_queues.append(left)  # overflow never sends it back
        if named is not None:
            # The agent's judgement replaces the first classification: the skills
            # it needs are the target queue's (language, site and tier floor stay).
            was = self.queues.get(left)
            inquiry.priority -= was.priority if was is not None else 0
            inquiry.queue, inquiry.skills, inquiry.queue_skills = "", {}, {}
        self._enter_queue(inquiry, queue)
        inquiry.settled_reservation = reservation_id or inquiry.reservation_id
        inquiry.state = InquiryState.WAITING
        inquiry.agent_id = inquiry.reservation_id = ""
        inquiry.queued_at = now  # the ladder's clock: the new queue's first step
        inquiry.forced_step = inquiry.failed_offers = inquiry.step = 0
        inquiry.preferred_agent = ""
        inquiry.prefer_until = 0.0
        inquiry.answered = False  # the new queue's answer is counted, from the arrival
        sole = self._only_one_fits(inquiry, queue, agent_id)
        if not sole:
            inquiry.excluded[agent_id] = FOREVER
        unknown = "" if queue.name == target_queue else f":unknown_queue:{target_queue}"
        inquiry.history.append(f"transferred:{agent_id}:{queue.name}{unknown}:{note}")
        self._index(inquiry)
        self.changed_inquiries.add(inquiry_id)
        self.notices.append(
            Notice(
                NoticeKind.TRANSFERRED,
                inquiry.id,
                left,
                inquiry.channel,
                reason="sole_fit" if sole else "excluded",
                wait_s=max(0.0, now - inquiry.arrived_at),
                to_queue=queue.name,
            )
        )
        return True

    def _only_one_fits(self, inquiry: QueuedInquiry, queue: Queue, agent_id: str) -> bool:
        """Whether no agent but `agent_id` could ever take the inquiry in `queue`.

        "Could ever": another agent of the workspace the router knows (in any
        presence and load: an agent offline now may log in) whose profile fits
        the inquiry at some step of the queue's ladder, and who is not kept
        from it for good (an agent it was escalated away from). Costs the
        roster, not the queue.
        """
        for other in self.agents.values():
            if other.id == agent_id or inquiry.excluded.get(other.id, 0.0) == FOREVER:
                continue
            if any(fits_profile(other, inquiry, step) for step in queue.ladder):
                return False
        return True

    def abandoned(self, inquiry_id: str, now: float) -> bool:
        """The customer left. A queued inquiry is dropped; one being handled is kept.

        An open offer is to be withdrawn at agent-state (see `withdrawals`).
        An abandon that comes before its inquiry (they travel on different
        topics) is remembered, so the inquiry is closed when it arrives.
        """
        inquiry = self.inquiries.get(inquiry_id)
        if inquiry is None:
            if inquiry_id in self.finished:
                return False
            self._remember_finished(inquiry_id, now)
            self.changed_inquiries.add(inquiry_id)
            return True
        if inquiry.state is InquiryState.ACCEPTED or inquiry.callback:
            # Being handled, or to be called back: the customer leaving ends nothing.
            return False
        if inquiry.state is InquiryState.OFFERED:
            self.withdrawals.append(
                Withdrawal(inquiry_id, inquiry.agent_id, inquiry.reservation_id, "abandoned")
            )
        self._notice(NoticeKind.ABANDONED, inquiry, now, wait_s=max(0.0, now - inquiry.arrived_at))
        self._finish(inquiry_id, now)
        return True

    def callback_requested(
        self, inquiry_id: str, number: str, now: float, channel: str = ""
    ) -> CallbackOutcome:
        """The customer waiting on `channel` ("": not said) asked to be called back at
        `number` instead of waiting.

        The rules are callbacks.py's: a waiting voice or chat inquiry becomes an
        outbound call to `number`, keeping its place in line; an open offer of
        it is taken back (see `withdrawals`) and it waits again, first in line
        as before. Anything else changes nothing; the outcome says why.
        """
        inquiry = self.inquiries.get(inquiry_id)
        outcome = callbacks.decide(inquiry, channel)
        channel = inquiry.channel if inquiry is not None else ""
        queue = inquiry.queue if inquiry is not None else ""
        self.notices.append(
            Notice(NoticeKind.CALLBACK, inquiry_id, queue, channel, reason=outcome.value)
        )
        if outcome is not CallbackOutcome.REQUESTED:
            return outcome
        assert inquiry is not None
        self._waiting.seen(now)
        self._unindex(inquiry)  # the channel changes, which files it
        if inquiry.state is InquiryState.OFFERED:
            self.withdrawals.append(
                Withdrawal(inquiry_id, inquiry.agent_id, inquiry.reservation_id, "callback")
            )
            inquiry.history.append(f"withdrawn:{inquiry.agent_id}")
            inquiry.state = InquiryState.WAITING
            inquiry.settled_reservation = inquiry.reservation_id
            inquiry.agent_id = inquiry.reservation_id = ""
        callbacks.make_callback(inquiry, number)
        self._index(inquiry)
        self.changed_inquiries.add(inquiry_id)
        return outcome

    # -- what time alone brings --------------------------------------------

    def housekeeping(self, now: float) -> None:
        """Work that time alone brings: ladder steps reached, old memories dropped.

        Called about once a second; moving up the ladder is counted here even
        when no agent is free to be matched. Held inquiries whose queue opened
        join its line, and the overflow rules move who they must. Costs what
        fell due, not the queue.
        """
        self._waiting.advance(now)
        self._release_held(now)
        self._overflow(now)
        for inquiry_id in self._waiting.take_stepped():
            inquiry = self.inquiries.get(inquiry_id)
            if inquiry is None or inquiry.verify or inquiry.state is not InquiryState.WAITING:
                continue
            index = self.step_index(inquiry, now)
            if index > inquiry.step:
                inquiry.step = index
                self.changed_inquiries.add(inquiry_id)
                self._notice(NoticeKind.ESCALATED, inquiry, now, step=index, reason="wait")
        self.forget_old(now)

    def forget_old(self, now: float) -> None:
        """Drop finished ids and thread memories past their retention, oldest first."""
        order = self._finished_order
        while order and now - order[0][0] > REMEMBER_FINISHED_S:
            at, inquiry_id = heapq.heappop(order)
            if self.finished.get(inquiry_id) == at:
                del self.finished[inquiry_id]
                self.changed_inquiries.add(inquiry_id)
        order = self._thread_order
        while order and now - order[0][0] > REMEMBER_THREAD_S:
            at, thread = heapq.heappop(order)
            last = self.threads.get(thread)
            if last is not None and last[1] == at:
                del self.threads[thread]
                self.changed_threads.add(thread)

    # -- reconciliation with agent-state -----------------------------------

    def overdue(
        self, now: float, offer_grace_s: float, task_silence_s: float, limit: int
    ) -> list[str]:
        """Inquiries to check with agent-state, the most overdue first (at most `limit`).

        An offer past its expiry plus `offer_grace_s` (agent-state should have
        said it timed out), a task silent for `task_silence_s`, and an inquiry
        admitted by the sweep. A check counts as news, so one that changed
        nothing is not repeated before the same time passed again.
        """
        due: list[tuple[float, str]] = [(-FOREVER, i) for i in self._waiting.unverified]
        for inquiry_id in self._waiting.open:
            inquiry = self.inquiries[inquiry_id]
            if inquiry.state is InquiryState.OFFERED:
                at = max(inquiry.offer_expires_at, inquiry.last_heard_at) + offer_grace_s
            else:
                at = inquiry.last_heard_at + task_silence_s
            if now >= at:
                due.append((at, inquiry_id))
        return [inquiry_id for _, inquiry_id in heapq.nsmallest(limit, due)]

    def unverified(self, inquiry_id: str) -> bool:
        """Whether the inquiry was admitted by the sweep and awaits agent-state's word."""
        return inquiry_id in self._waiting.unverified

    def reconcile(self, inquiry_id: str, authority: Authority, now: float) -> Reconciled:
        """Make the router's picture of one inquiry agree with agent-state's.

        A last event that ended the task and was never applied here (a lost
        COMPLETED, ABANDONED or TRANSFERRED to a queue) gives APPLY_EVENT: the adapter applies it like
        a consumed one (for a completion the inquiry is first held by its
        agent, so its follow-up or escalation is not lost). Otherwise agent-
        state's open reservation is taken as the truth, and when it holds none,
        an offered or accepted inquiry goes back into the queue.
        """
        inquiry = self.inquiries.get(inquiry_id)
        if inquiry is None:
            return Reconciled.UNKNOWN
        self._waiting.seen(now)
        was_unverified = inquiry.verify
        self._unindex(inquiry)
        inquiry.verify = False
        self._index(inquiry)
        inquiry.last_heard_at = max(inquiry.last_heard_at, now)
        self.changed_inquiries.add(inquiry_id)
        held, ended = authority.held, authority.ended
        if ended is not None and ended.kind is EndKind.OFFER_FAILED:
            # The lost event ends the offer we hold: applied, the agent who
            # turned it down is kept from it for a while (and stickiness ends).
            if (
                held is None
                and inquiry.state is InquiryState.OFFERED
                and ended.reservation_id == inquiry.reservation_id
            ):
                return Reconciled.APPLY_EVENT
            ended = None
        if ended is not None and (held is None or held.reservation_id == ended.reservation_id):
            if ended.kind is EndKind.ABANDONED:
                return Reconciled.APPLY_EVENT
            if ended.reservation_id:
                settled = ended.reservation_id == inquiry.settled_reservation
            else:
                open_ = inquiry.state in (InquiryState.OFFERED, InquiryState.ACCEPTED)
                settled = not (was_unverified or (open_ and inquiry.agent_id == ended.agent_id))
            if not settled:
                self._hold(inquiry, ended.agent_id, ended.reservation_id, InquiryState.ACCEPTED)
                return Reconciled.APPLY_EVENT
        if held is not None:
            state = InquiryState.ACCEPTED if held.accepted else InquiryState.OFFERED
            if (inquiry.state, inquiry.agent_id, inquiry.reservation_id) == (
                state,
                held.agent_id,
                held.reservation_id,
            ):
                return Reconciled.AGREED
            if inquiry.state is InquiryState.WAITING:
                inquiry.attempts += 1  # an offer made and not counted here
                inquiry.offered_at = now
            self._hold(inquiry, held.agent_id, held.reservation_id, state)
            inquiry.offer_expires_at = held.expires_at
            return Reconciled.ADOPTED
        if inquiry.state in (InquiryState.OFFERED, InquiryState.ACCEPTED):
            self._set_state(inquiry, InquiryState.WAITING)
            inquiry.history.append(f"lost:{inquiry.agent_id}")
            inquiry.settled_reservation = inquiry.reservation_id
            inquiry.agent_id = inquiry.reservation_id = ""
            self._notice(NoticeKind.RECONCILED, inquiry, now, reason="lost")
            return Reconciled.REQUEUED
        return Reconciled.AGREED

    def reconcile_workspace(self, held: Mapping[str, Held]) -> list[str]:
        """Compare the open reservations of the workspace at agent-state with ours.

        Returns the inquiries whose pictures differ, to check one by one with
        `reconcile`. An offer agent-state still holds for an inquiry finished
        here is to be withdrawn (see `withdrawals`). A reservation of an
        inquiry this router never saw is left to the sweep of the inquiries.
        """
        check: set[str] = set()
        for inquiry_id in self._waiting.open:
            inquiry = self.inquiries[inquiry_id]
            h = held.get(inquiry_id)
            if h is None or (h.agent_id, h.reservation_id, h.accepted) != (
                inquiry.agent_id,
                inquiry.reservation_id,
                inquiry.state is InquiryState.ACCEPTED,
            ):
                check.add(inquiry_id)
        for inquiry_id, h in held.items():
            if inquiry_id in self._waiting.open:
                continue
            if inquiry_id in self.inquiries:
                check.add(inquiry_id)
            elif inquiry_id in self.finished and not h.accepted:
                self.withdrawals.append(
                    Withdrawal(inquiry_id, h.agent_id, h.reservation_id, "finished")
                )
        return sorted(check)

    # -- what the adapter takes --------------------------------------------

    def take_step(self) -> Step:
        """What the core decided since the last call: the adapter writes, withdraws,
        counts and logs it; the core forgets it (it is handed over once)."""
        return Step(
            self.drain_changes(),
            tuple(self.drain_withdrawals()),
            tuple(self.drain_notices()),
        )

    def drain_changes(self) -> Changes:
        """What changed since the last call, for the adapter to persist."""
        changes = Changes(
            frozenset(self.changed_inquiries),
            frozenset(self.changed_agents),
            frozenset(self.changed_threads),
        )
        self.changed_inquiries.clear()
        self.changed_agents.clear()
        self.changed_threads.clear()
        return changes

    def drain_withdrawals(self) -> list[Withdrawal]:
        """The offers to withdraw since the last call."""
        withdrawals, self.withdrawals = self.withdrawals, []
        return withdrawals

    def drain_notices(self) -> list[Notice]:
        """The notices since the last call (for metrics and logs)."""
        notices, self.notices = self.notices, []
        return notices

    def held(self) -> Iterator[QueuedInquiry]:
        """The inquiries offered or accepted: as many as the agents hold, not the queue."""
        for inquiry_id in self._waiting.open:
            yield self.inquiries[inquiry_id]

    def queue_stats(self, now: float) -> dict[str, QueueStats]:
        """Every queue's figures now, for the gauges and the wallboard's snapshot.

        Kept as inquiries move: the cost is the number of queues, not of inquiries.
        """
        stats = self._waiting.queue_stats(self.queues, now)
        for name, queue in stats.items():
            queue.callbacks = self.pending_callbacks.count(name)
        return stats

    # -- queues: which one, entering, moving -------------------------------

    def queue_for(self, inquiry: QueuedInquiry) -> Queue:
        """The first queue whose match takes the inquiry; the last queue takes the rest."""
        for queue in self.config.queues:
            m = queue.match
            if (
                (not m.channels or inquiry.channel in m.channels)
                and (not m.kinds or inquiry.kind in m.kinds)
                and (not m.skills or m.skills & inquiry.skills.keys())
                and (not m.languages or inquiry.language.split("-")[0] in m.languages)
                and (not m.segments or inquiry.segment in m.segments)
            ):
                return queue
        return self.config.queues[-1]

    def _rule_boost(self, inquiry: QueuedInquiry) -> int:
        boost = 0
        for rule in self.config.priority_rules:
            if (
                (not rule.segments or inquiry.segment in rule.segments)
                and (not rule.kinds or inquiry.kind in rule.kinds)
                and (not rule.channels or inquiry.channel in rule.channels)
            ):
                boost += rule.boost
        return boost

    def _enter_queue(self, inquiry: QueuedInquiry, queue: Queue) -> None:
        """Move an inquiry (not indexed) into `queue`: its required skills and priority apply."""
        if inquiry.queue == queue.name:
            return
        left = self.queues.get(inquiry.queue)
        if left is not None:
            inquiry.priority -= left.priority
        # The skills the queue left raised go back to what the inquiry asked for
        # (an overflow to a general queue must not keep the expert queue's skills).
        for skill, before in inquiry.queue_skills.items():
            if before:
                inquiry.skills[skill] = before
            else:
                inquiry.skills.pop(skill, None)
        inquiry.queue_skills = {}
        inquiry.queue = queue.name
        for skill, minimum in queue.required_skills:
            had = inquiry.skills.get(skill, 0)
            if minimum > had:
                inquiry.queue_skills[skill] = had
                inquiry.skills[skill] = minimum
        inquiry.priority += queue.priority

    def _closed_arrival(
        self, inquiry: QueuedInquiry, closed: str, policy: ClosedPolicy, now: float
    ) -> None:
        """Record that `inquiry` arrived while queue `closed` was closed, and what it got."""
        if policy is ClosedPolicy.CALLBACK:
            # Held like `hold`; ingest's closed answer offers the customer a
            # callback, which keeps this place (`callback_requested`).
            inquiry.history.append(f"closed:{closed}:callback_offered")
        elif policy is ClosedPolicy.AFTER_HOURS:
            inquiry.history.append(f"closed:{closed}:after_hours:{inquiry.queue}")
        else:
            inquiry.history.append(f"closed:{closed}:hold")
        self.notices.append(
            Notice(
                NoticeKind.CLOSED_ARRIVAL, inquiry.id, closed, inquiry.channel, reason=policy.value
            )
        )

    def _release_held(self, now: float) -> None:
        """Held inquiries whose queue opened join its line; their SLA clock starts now."""
        for inquiry_id in self.controls.due_held(now):
            inquiry = self.inquiries[inquiry_id]
            opened = inquiry.due_at
            self._unindex(inquiry)
            inquiry.state = InquiryState.WAITING
            inquiry.sla_from = inquiry.queued_at = opened
            inquiry.history.append(f"opened:{inquiry.queue}")
            self._index(inquiry)
            self.changed_inquiries.add(inquiry_id)

    def _overflow(self, now: float) -> None:
        """Move the waiting inquiries the overflow rules ask for, counted and recorded."""

        def may_move(inquiry_id: str, to: str) -> bool:
            return to not in self.inquiries[inquiry_id].left_queues

        for left, move in self.controls.overflow(now, may_move):
            inquiry = self.inquiries[move.inquiry_id]
            self._unindex(inquiry)  # the queue changes the priority, the index's key
            inquiry.left_queues.append(left)
            self._enter_queue(inquiry, self.queues[move.to])
            # The ladder (and the time in queue) start again in the new queue.
            inquiry.queued_at = now
            inquiry.forced_step = inquiry.failed_offers = inquiry.step = 0
            inquiry.history.append(f"overflow:{left}:{move.to}:{move.trigger.value}")
            self._index(inquiry)
            self.changed_inquiries.add(inquiry.id)
            self.notices.append(
                Notice(
                    NoticeKind.OVERFLOWED,
                    inquiry.id,
                    left,
                    inquiry.channel,
                    reason=move.trigger.value,
                    wait_s=max(0.0, now - inquiry.arrived_at),
                    to_queue=move.to,
                )
            )

    def _release_due_follow_ups(self, now: float) -> None:
        for inquiry in self._waiting.due_follow_ups(now):
            self._set_state(inquiry, InquiryState.WAITING)
            self.changed_inquiries.add(inquiry.id)
            self._notice(NoticeKind.FOLLOW_UP_DUE, inquiry, now)

    # -- bookkeeping -------------------------------------------------------

    def _step(self, inquiry: QueuedInquiry, now: float) -> tuple[int, LadderStep]:
        index = self._waiting.step(inquiry, now)
        return index, self.queues[inquiry.queue].ladder[index]

    def _hold(
        self, inquiry: QueuedInquiry, agent_id: str, reservation_id: str, state: InquiryState
    ) -> None:
        """Take agent-state's word that `agent_id` holds the inquiry."""
        self._set_state(inquiry, state)
        inquiry.agent_id = agent_id
        inquiry.reservation_id = reservation_id
        inquiry.history.append(f"reconciled:{agent_id}")

    def _put(self, inquiry: QueuedInquiry) -> None:
        self.restore_inquiry(inquiry)
        self.changed_inquiries.add(inquiry.id)

    def _finish(self, inquiry_id: str, now: float) -> None:
        inquiry = self.inquiries.pop(inquiry_id, None)
        if inquiry is not None:
            self._unindex(inquiry)
        self._remember_finished(inquiry_id, now)
        self.changed_inquiries.add(inquiry_id)

    def _remember_finished(self, inquiry_id: str, at: float) -> None:
        self.finished[inquiry_id] = at
        heapq.heappush(self._finished_order, (at, inquiry_id))
        if len(self._finished_order) > 2 * len(self.finished) + 1024:
            self._finished_order = [(t, i) for i, t in self.finished.items()]
            heapq.heapify(self._finished_order)

    def _remember_thread(self, thread: str, agent_id: str, at: float) -> None:
        self.threads[thread] = (agent_id, at)
        heapq.heappush(self._thread_order, (at, thread))
        if len(self._thread_order) > 2 * len(self.threads) + 1024:
            self._thread_order = [(t, thread) for thread, (_, t) in self.threads.items()]
            heapq.heapify(self._thread_order)

    def _set_free(self, agent_id: str, agent: AgentView | None) -> None:
        """Record whether an agent has a free slot; one that has is to be planned for."""
        self._free.set(agent_id, agent)
        if agent is None:
            self._routable_agents.discard(agent_id)
        else:
            self._routable_agents.add(agent_id)

    def _set_state(self, inquiry: QueuedInquiry, state: InquiryState) -> None:
        self._unindex(inquiry)
        inquiry.state = state
        self._index(inquiry)

    def _index(self, inquiry: QueuedInquiry) -> None:
        """File an inquiry (not indexed) in the index and the queue controls' and
        callbacks' indexes; a waiting one is to be planned for."""
        self._waiting.file(inquiry)
        if callbacks.pending(inquiry):
            self.pending_callbacks.add(inquiry.queue, inquiry.id)
        if inquiry.verify:
            return
        self.controls.index(inquiry)
        if inquiry.state is InquiryState.WAITING:
            self._routable_inquiries.add(inquiry.id)

    def _unindex(self, inquiry: QueuedInquiry) -> None:
        """Take an inquiry out of every index (wherever it was filed, whatever its state now)."""
        self._routable_inquiries.discard(inquiry.id)
        queue = self._waiting.unfile(inquiry.id)
        if queue is None:
            return
        self.controls.unindex(inquiry)
        self.pending_callbacks.discard(queue, inquiry.id)

    def _notice(
        self,
        kind: NoticeKind,
        inquiry: QueuedInquiry,
        now: float,
        step: int = 0,
        reason: str = "",
        wait_s: float = 0.0,
    ) -> None:
        self.notices.append(
            Notice(kind, inquiry.id, inquiry.queue, inquiry.channel, step, reason, wait_s)
        )

"""The discrete-event simulation: the router's core on a virtual clock.

`Simulation` plays the parts around the routing core that the Faust adapter,
agent-state and the agents' desks play in production: it admits arriving
customers, lets the core plan, reserves the chosen agents (the simulation is
the authority on their load, as agent-state is), tells the core what became
of each offer, and hands it back each agent's new picture after every change.
The core (`WorkspaceRouter`) is imported from the router and driven only
through its public methods; nothing of its logic is repeated here.

Time is a float of seconds from the start of the run; every event sits on one
heap and is handled in time order (ties in the order they were scheduled).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from omniroute_router.config import WorkspaceConfig
from omniroute_router.decisions import Offer
from omniroute_router.model import AgentStatus, AgentView, QueuedInquiry
from omniroute_router.routing import REMEMBER_FINISHED_S, WorkspaceRouter
from omniroute_simulator.scenario import ZERO, AgentGroup, Distribution, Scenario, Stream

REPLAN_MARGIN_S = 1e-6  # re-plan just after a block or preference runs out


class Kind(IntEnum):
    """What a scheduled event does."""

    ARRIVAL = 0
    DECIDED = 1  # the agent accepts or declines an open offer
    HANDLED = 2  # the agent finished the contact
    WRAPPED = 3  # wrap-up over
    ABANDON = 4  # the customer's patience ran out
    REPLAN = 5  # a ladder step, a follow-up, a block or a preference runs out
    SHIFT_START = 6
    SHIFT_END = 7
    SAMPLE = 8


@dataclass(slots=True)
class Contact:
    """One customer contact, as it arrives: what it needs and how it will go."""

    stream: str
    channel: str
    kind: str = ""
    skills: dict[str, int] = field(default_factory=dict)
    language: str = ""
    segment: str = ""
    priority: int = 0
    handle_s: float = 0.0
    patience_s: float = math.inf
    id: str = ""  # replays keep the recorded id


@dataclass(slots=True)
class Record:
    """What became of one arrival (measured when it arrived after the warm-up)."""

    queue: str
    stream: str
    channel: str
    arrived: float
    target_s: float
    counted: bool
    contact: Contact
    offered_at: float = -1.0
    wait: float = -1.0  # first answer; -1 while unanswered
    answered_by: str = ""
    abandoned_after: float = -1.0


@dataclass(slots=True)
class SimAgent:
    """One simulated agent: the authority's record of it, and its behaviour."""

    id: str
    group: int
    skills: dict[str, int]
    languages: tuple[str, ...]
    tier: int
    capacity: dict[str, int]
    voice_blocks: bool
    accept_delay: Distribution
    decline_probability: float
    wrap_up: Distribution
    load: dict[str, int] = field(default_factory=dict)
    status: AgentStatus = AgentStatus.OFFLINE
    on_shift: bool = False
    wrapping: int = 0
    idle_since: float = 0.0
    version: int = 0
    busy: int = 0  # slots in use (tasks held and wrap-ups)
    busy_since: float = 0.0
    busy_s: float = 0.0  # seconds holding any contact, inside the measured window

    def free_on(self, channel: str) -> bool:
        """The authority's own check on its own record (the rule is the core's `AgentView`'s)."""
        return self.picture("").free_on(channel)

    def view(self, workspace: str) -> AgentView:
        """A new version of the record for the router, as agent-state would publish it."""
        self.version += 1
        return self.picture(workspace)

    def picture(self, workspace: str) -> AgentView:
        return AgentView(
            id=self.id,
            workspace=workspace,
            skills=self.skills,
            languages=self.languages,
            tier=self.tier,
            capacity=self.capacity,
            voice_blocks=self.voice_blocks,
            load=dict(self.load),
            status=self.status,
            idle_since=self.idle_since,
            version=self.version,
        )


@dataclass
class Outcome:
    """Everything measured in one replication."""

    records: list[Record]
    busy_s: dict[str, float]  # agent group -> agent-seconds holding a contact (measured window)
    staffed_s: dict[str, float]  # agent group -> agent-seconds on shift (measured window)
    queue_busy_s: dict[str, float]  # queue -> agent-seconds on its contacts (measured window)
    # End of each interval, mean customers waiting per queue over it, agents busy per group at its end.
    samples: list[tuple[float, dict[str, float], dict[str, float]]]
    queues: list[str]
    groups: list[str]
    events: int
    drained: bool  # every measured arrival was answered or left


class Simulation:
    """One replication of a scenario (or a recorded period) under one routing configuration."""

    def __init__(
        self,
        scenario: Scenario,
        config: WorkspaceConfig,
        seed: int,
        recorded: list[tuple[float, Contact]] | None = None,
        drain_limit_s: float | None = None,
    ) -> None:
        self.scenario = scenario
        self.config = config
        self.workspace = scenario.workspace
        self.router = WorkspaceRouter(scenario.workspace, config)
        self.rng_agents = random.Random(f"{seed}:agents")
        self.heap: list[tuple[float, int, Kind, object, object]] = []
        self.seq = 0
        self.now = 0.0
        self.start = scenario.warmup_s
        self.end = scenario.duration_s
        self.drain_limit = self.end + (
            drain_limit_s if drain_limit_s is not None else max(self.end, 86400.0)
        )
        self.records: dict[str, Record] = {}
        self.finished: list[Record] = []
        self.pending = 0  # measured arrivals not yet answered or gone
        self.offers: dict[str, tuple[str, str]] = {}  # inquiry -> (agent, reservation)
        self.tasks: dict[str, str] = {}  # inquiry -> agent working on it
        self.held_since: dict[str, float] = {}  # inquiry -> when its agent was reserved
        # Agent-seconds spent on each queue's contacts (offer, work, wrap-up), measured window.
        self.queue_busy_s = {q.name: 0.0 for q in config.queues}
        self.waiting: dict[str, int] = {q.name: 0 for q in config.queues}
        self.unsettled = 0  # arrivals neither answered nor gone, all queues
        # Only arrivals ever wait for an agent: no follow-ups or escalations come back.
        self.only_arrivals_wait = (
            scenario.follow_up_probability == 0 and scenario.escalation_probability == 0
        )
        # Customer-seconds waited per queue since the last sample (mean depth).
        self.depth_area = dict.fromkeys(self.waiting, 0.0)
        self.depth_since = dict.fromkeys(self.waiting, 0.0)
        self.last_sample = 0.0
        self.last_housekeeping = 0.0
        self.agents: dict[str, SimAgent] = {}
        self.groups = [g.name for g in scenario.agents]
        self.staffed_s = dict.fromkeys(self.groups, 0.0)
        self.samples: list[tuple[float, dict[str, float], dict[str, float]]] = []
        self.events = 0
        self.reservations = 0
        self.refusals = 0
        self.ladder_waits = {
            q.name: [s.after_s for s in q.ladder if s.after_s > 0] for q in config.queues
        }
        self.streams = scenario.arrivals
        self.stream_rngs = [random.Random(f"{seed}:stream:{s.name}") for s in self.streams]
        self.recorded: Iterator[tuple[float, Contact]] | None = None
        if recorded is not None:
            self.recorded = iter(recorded)
            self._next_recorded()
        else:
            for index, stream in enumerate(self.streams):
                self._next_arrival(index, stream, 0.0)
        for index, group in enumerate(scenario.agents):
            self._hire(index, group)
        sample_s = scenario.sample_s or max(60.0, scenario.duration_s / 48)
        t = sample_s
        while t <= self.end + 1e-9:
            self._at(t, Kind.SAMPLE, None, None)
            t += sample_s

    # -- the loop -----------------------------------------------------------

    def run(self) -> Outcome:
        """Run to the end of the period, then until every measured arrival has an outcome."""
        heap = self.heap
        pop = heapq.heappop
        while heap:
            t, _, kind, a, b = pop(heap)
            if t > self.end and (self.pending == 0 or t > self.drain_limit):
                break
            self.now = t
            self.events += 1
            match kind:
                case Kind.ARRIVAL:
                    self._arrive(a, b)  # type: ignore[arg-type]
                case Kind.DECIDED:
                    self._decided(a, b)  # type: ignore[arg-type]
                case Kind.HANDLED:
                    self._handled(a, b)  # type: ignore[arg-type]
                case Kind.WRAPPED:
                    self._wrapped(a)  # type: ignore[arg-type]
                case Kind.ABANDON:
                    self._abandon(a)  # type: ignore[arg-type]
                case Kind.REPLAN:
                    self._route(inquiry_ids=(a,))  # type: ignore[arg-type]
                case Kind.SHIFT_START:
                    self._shift_start(a)  # type: ignore[arg-type]
                case Kind.SHIFT_END:
                    self._shift_end(a)  # type: ignore[arg-type]
                case Kind.SAMPLE:
                    self._sample()
        self.now = max(self.now, self.end)
        for agent in self.agents.values():
            self._set_busy(agent, agent.busy)
        for inquiry_id, held_from in self.held_since.items():  # still in an agent's hands
            queue = self.router.inquiries[inquiry_id].queue
            self.queue_busy_s[queue] += self._measured(held_from, self.now)
        self.finished.extend(r for r in self.records.values() if r.counted)
        busy = dict.fromkeys(self.groups, 0.0)
        for agent in self.agents.values():
            busy[self.groups[agent.group]] += agent.busy_s
        return Outcome(
            records=self.finished,
            busy_s=busy,
            staffed_s=self.staffed_s,
            queue_busy_s=self.queue_busy_s,
            samples=self.samples,
            queues=list(self.waiting),
            groups=self.groups,
            events=self.events,
            drained=self.pending == 0,
        )

    def _at(self, t: float, kind: Kind, a: object, b: object) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    # -- customers ------------------------------------------------------------

    def _next_arrival(self, index: int, stream: Stream, t: float) -> None:
        """Schedule the stream's next arrival after `t` (piecewise-constant Poisson rates)."""
        rng = self.stream_rngs[index]
        need = rng.expovariate(1.0)  # unit-rate work to use up across the rate pieces
        while t < self.end:
            rate = stream.rate_at(t)
            change = min(stream.next_change(t), self.end)
            if rate > 0 and t + need / rate <= change:
                t += need / rate
                break
            need -= rate * (change - t)
            t = change
        else:
            return
        handle = (stream.handle_time or self.scenario.handle_time).sample(rng)
        patience = stream.patience.sample(rng) if stream.patience else math.inf
        contact = Contact(
            stream=stream.name,
            channel=stream.channel,
            kind=stream.kind,
            skills=stream.skills,
            language=stream.language,
            segment=stream.segment,
            priority=stream.priority,
            handle_s=handle,
            patience_s=patience,
        )
        self._at(t, Kind.ARRIVAL, contact, index)

    def _next_recorded(self) -> None:
        assert self.recorded is not None
        for t, contact in self.recorded:
            self._at(t, Kind.ARRIVAL, contact, -1)
            return

    def _arrive(self, contact: Contact, stream_index: int) -> None:
        now = self.now
        if stream_index >= 0:
            self._next_arrival(stream_index, self.streams[stream_index], now)
        else:
            self._next_recorded()
        self.seq += 1
        inquiry_id = contact.id or f"i{self.seq}"
        inquiry = QueuedInquiry(
            id=inquiry_id,
            workspace=self.workspace,
            channel=contact.channel,
            queue="",
            arrived_at=now,
            kind=contact.kind,
            language=contact.language,
            segment=contact.segment,
            priority=contact.priority,
            skills=dict(contact.skills),
        )
        if not self.router.admit(inquiry, now):
            return
        counted = self.start <= now < self.end
        target = self.config.service_levels.get(contact.channel, math.inf)
        record = Record(
            inquiry.queue, contact.stream, contact.channel, now, target, counted, contact
        )
        self.records[inquiry_id] = record
        self._count_waiting(inquiry.queue, +1)
        if counted:
            self.pending += 1
        if contact.patience_s < math.inf:
            self._at(now + contact.patience_s, Kind.ABANDON, inquiry_id, None)
        for after in self.ladder_waits[inquiry.queue]:
            self._at(now + after + REPLAN_MARGIN_S, Kind.REPLAN, inquiry_id, None)
        self._route(inquiry_ids=(inquiry_id,))

    def _abandon(self, inquiry_id: str) -> None:
        record = self.records.get(inquiry_id)
        if record is None or record.wait >= 0:
            return
        if not self.router.abandoned(inquiry_id, self.now):
            return
        record.abandoned_after = self.now - record.arrived
        self._settle(inquiry_id, record)
        offer = self.offers.pop(inquiry_id, None)
        if offer is not None:  # agent-state releases the reservation
            self._release(
                self.agents[offer[0]], inquiry_id, record.queue, record.channel, wrap=False
            )

    def _settle(self, inquiry_id: str, record: Record) -> None:
        """The customer was answered or left: no longer waiting."""
        self._count_waiting(record.queue, -1)
        if record.counted:
            self.pending -= 1
            self.finished.append(record)
        del self.records[inquiry_id]

    # -- routing --------------------------------------------------------------

    def _route(
        self, inquiry_ids: tuple[str, ...] | None = None, agent_ids: tuple[str, ...] | None = None
    ) -> None:
        """What the adapter does after an event: plan, reserve, tell the core."""
        router = self.router
        if self.only_arrivals_wait:
            # Planning for an arrival with no agent free, or for a freed agent
            # with nobody waiting, finds nothing: skip the call (the busiest
            # half of them in a loaded queue). Only when nothing else can wait
            # (follow-ups, which `plan` releases when due, and escalations).
            if inquiry_ids is not None and not router.free_agents:
                return
            if agent_ids is not None and not self.unsettled:
                return
        now = self.now
        for _ in range(3):  # re-plan after refusals, a few times at most, as the adapter does
            if not self._reserve(router.plan(now, inquiry_ids, agent_ids)):
                break

    def _reserve(self, offers: list[Offer]) -> bool:
        """Reserve each offer's agent (the authority's compare-and-set). True if any refused."""
        router = self.router
        now = self.now
        refused = False
        for offer in offers:
            agent = self.agents[offer.agent_id]
            inquiry = router.inquiries[offer.inquiry_id]
            channel = inquiry.channel
            if not agent.free_on(channel):
                # As agent-state does: refuse, and hand over the agent's current
                # record. (One plan can propose a call and a chat to an agent
                # whose calls block other channels.)
                self.refusals += 1
                router.update_agent(agent.view(self.workspace))
                refused = True
                continue
            agent.load[channel] = agent.load.get(channel, 0) + 1
            self.held_since[offer.inquiry_id] = now
            self._set_busy(agent, agent.busy + 1)
            router.update_agent(agent.view(self.workspace))
            self.reservations += 1
            reservation = f"r{self.reservations}"
            router.offer_made(offer.inquiry_id, agent.id, reservation, now)
            self.offers[offer.inquiry_id] = (agent.id, reservation)
            record = self.records.get(offer.inquiry_id)
            if record is not None and record.offered_at < 0:
                record.offered_at = now
            delay = agent.accept_delay.sample(self.rng_agents) if agent.accept_delay.mean else 0.0
            declines = (
                agent.decline_probability > 0
                and self.rng_agents.random() < agent.decline_probability
            )
            if delay == 0 and not declines:
                self._accept(offer.inquiry_id, agent)
            else:
                self._at(now + delay, Kind.DECIDED, offer.inquiry_id, declines)
        return refused

    def _decided(self, inquiry_id: str, declines: bool) -> None:
        offer = self.offers.get(inquiry_id)
        if offer is None:  # the customer left meanwhile
            return
        agent = self.agents[offer[0]]
        if not declines:
            self._accept(inquiry_id, agent)
            return
        del self.offers[inquiry_id]
        now = self.now
        self.router.offer_failed(inquiry_id, agent.id, offer[1], "declined", now)
        inquiry = self.router.inquiries[inquiry_id]
        self._release(agent, inquiry_id, inquiry.queue, inquiry.channel, wrap=False)
        self._route(inquiry_ids=(inquiry_id,))
        # The agent may be offered it again once the re-offer block runs out.
        self._at(now + self.config.reoffer_block_s + REPLAN_MARGIN_S, Kind.REPLAN, inquiry_id, None)

    def _accept(self, inquiry_id: str, agent: SimAgent) -> None:
        del self.offers[inquiry_id]
        now = self.now
        wait = self.router.accepted(inquiry_id, agent.id, now)
        self.tasks[inquiry_id] = agent.id
        record = self.records.get(inquiry_id)
        if record is None:  # a follow-up or an escalation coming back
            handle = self.scenario.handle_time.sample(self.rng_agents)
        else:
            handle = record.contact.handle_s
            if wait is not None:
                record.wait = wait
                record.answered_by = agent.id
                self._settle(inquiry_id, record)
        self._at(now + handle, Kind.HANDLED, inquiry_id, agent.id)

    def _handled(self, inquiry_id: str, agent_id: str) -> None:
        agent = self.agents[agent_id]
        del self.tasks[inquiry_id]
        now = self.now
        router = self.router
        inquiry = router.inquiries[inquiry_id]
        channel, queue = inquiry.channel, inquiry.queue
        draw = self.rng_agents.random()
        scenario = self.scenario
        again = False
        if draw < scenario.follow_up_probability:
            due = now + scenario.follow_up_after.sample(self.rng_agents)
            router.follow_up(inquiry_id, agent_id, due, now)
            self._at(due + REPLAN_MARGIN_S, Kind.REPLAN, inquiry_id, None)
            self._at(
                due + self.config.sticky_wait_s + REPLAN_MARGIN_S, Kind.REPLAN, inquiry_id, None
            )
        elif (
            draw < scenario.follow_up_probability + scenario.escalation_probability
            and agent.tier < 3
        ):
            router.escalated(inquiry_id, agent_id, agent.tier + 1, "", "simulated", now)
            again = True
        else:
            router.resolved(inquiry_id, agent_id, now)
        self._release(agent, inquiry_id, queue, channel, wrap=True)
        if again:
            self._route(inquiry_ids=(inquiry_id,))

    # -- agents ---------------------------------------------------------------

    def _hire(self, index: int, group: AgentGroup) -> None:
        s = self.scenario
        for n in range(group.count):
            agent = SimAgent(
                id=f"{group.name}-{n + 1}",
                group=index,
                skills=group.skills,
                languages=group.languages,
                tier=group.tier,
                capacity=group.capacity,
                voice_blocks=group.voice_blocks,
                accept_delay=group.accept_delay or s.accept_delay,
                decline_probability=(
                    s.decline_probability
                    if group.decline_probability is None
                    else group.decline_probability
                ),
                wrap_up=group.wrap_up or s.wrap_up,
                load=dict.fromkeys(group.capacity, 0),
            )
            self.agents[agent.id] = agent
            self.router.update_agent(agent.view(self.workspace))
            self._at(group.start_s, Kind.SHIFT_START, agent.id, None)
            if group.end_s < math.inf:
                self._at(group.end_s, Kind.SHIFT_END, agent.id, None)
        window = max(0.0, min(group.end_s, self.end) - max(group.start_s, self.start))
        self.staffed_s[group.name] += group.count * window

    def _shift_start(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        agent.on_shift = True
        if agent.wrapping == 0:
            agent.status = AgentStatus.AVAILABLE
            agent.idle_since = self.now
        self.router.update_agent(agent.view(self.workspace))
        if agent.status is AgentStatus.AVAILABLE:
            self._route(agent_ids=(agent_id,))

    def _shift_end(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        agent.on_shift = False
        agent.status = AgentStatus.OFFLINE  # finishes what it holds, takes nothing new
        self.router.update_agent(agent.view(self.workspace))

    def _release(
        self, agent: SimAgent, inquiry_id: str, queue: str, channel: str, wrap: bool
    ) -> None:
        """A slot comes free (after wrap-up, when there is one); tell the core, route."""
        agent.load[channel] -= 1
        wrap_s = agent.wrap_up.sample(self.rng_agents) if wrap and agent.wrap_up is not ZERO else 0
        held_from = self.held_since.pop(inquiry_id)
        self.queue_busy_s[queue] += self._measured(held_from, self.now + wrap_s)
        if wrap_s > 0:
            agent.wrapping += 1
            agent.status = AgentStatus.WRAP_UP
            self.router.update_agent(agent.view(self.workspace))
            self._at(self.now + wrap_s, Kind.WRAPPED, agent.id, None)
        else:
            self._set_busy(agent, agent.busy - 1)
            self._freed(agent)

    def _wrapped(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        agent.wrapping -= 1
        self._set_busy(agent, agent.busy - 1)
        if agent.wrapping == 0 and agent.on_shift:
            agent.status = AgentStatus.AVAILABLE
        self._freed(agent)

    def _freed(self, agent: SimAgent) -> None:
        if not any(agent.load.values()):
            agent.idle_since = self.now
        self.router.update_agent(agent.view(self.workspace))
        if agent.status is AgentStatus.AVAILABLE:
            self._route(agent_ids=(agent.id,))

    def _measured(self, start: float, end: float) -> float:
        """How much of [start, end] lies in the measured window."""
        return max(0.0, min(end, self.end) - max(start, self.start))

    def _set_busy(self, agent: SimAgent, busy: int) -> None:
        """Count the time holding at least one contact (offered, in work, wrap-up)."""
        lo = max(agent.busy_since, self.start)
        hi = min(self.now, self.end)
        if hi > lo and agent.busy:
            agent.busy_s += hi - lo
        agent.busy = busy
        agent.busy_since = self.now

    # -- measuring ------------------------------------------------------------

    def _count_waiting(self, queue: str, change: int) -> None:
        now = self.now
        self.depth_area[queue] += self.waiting[queue] * (now - self.depth_since[queue])
        self.depth_since[queue] = now
        self.waiting[queue] += change
        self.unsettled += change

    def _sample(self) -> None:
        # Housekeeping here only forgets finished ids past their retention (its
        # ladder notices are not used; ladder steps are planned for by REPLAN
        # events), and it walks every id it remembers: often enough to keep
        # that memory within 1.25 retention periods, no more often.
        if self.now - self.last_housekeeping >= REMEMBER_FINISHED_S / 4:
            self.router.housekeeping(self.now)
            self.last_housekeeping = self.now
        self.router.drain_notices()
        # What the Faust adapter would act on: here the simulation releases the
        # reservation of an abandoned offer itself and persists nothing.
        self.router.drain_withdrawals()
        self.router.drain_changes()
        busy = dict.fromkeys(self.groups, 0)
        slots = dict.fromkeys(self.groups, 0)
        for agent in self.agents.values():
            if agent.on_shift or agent.busy:
                name = self.groups[agent.group]
                busy[name] += agent.busy > 0
                slots[name] += 1
        occupancy = {g: busy[g] / slots[g] if slots[g] else 0.0 for g in self.groups}
        interval = self.now - self.last_sample
        depth = {}
        for queue in self.waiting:
            self._count_waiting(queue, 0)
            depth[queue] = self.depth_area[queue] / interval if interval > 0 else 0.0
            self.depth_area[queue] = 0.0
        self.last_sample = self.now
        self.samples.append((self.now, depth, occupancy))

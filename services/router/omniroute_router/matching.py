"""Who may take an inquiry, and which of them gets it.

Eligibility (`eligible`: a free slot on the channel, not excluded, the
profile under the ladder step, the sticky window) and the profile alone
(`fits_profile`: tier, language, site, skills), the capacity a plan has
already used (`free_after`), and the free agents in "longest idle" order with
the queue strategies that choose among them (`FreeAgents.choose`). Plain
functions of the agent and the inquiry; time is passed in.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Set

from sortedcontainers import SortedList

from omniroute_router.config import LadderStep, Queue
from omniroute_router.model import REPRESENTATIVE, SUPERVISOR, AgentStatus, AgentView, QueuedInquiry

# An exclusion that never ends (an agent the inquiry was escalated away from);
# also "no time" for timers.
FOREVER = math.inf


def eligible(agent: AgentView, inquiry: QueuedInquiry, step: LadderStep, now: float) -> bool:
    """Whether `agent` may be offered `inquiry` under ladder step `step`."""
    if not agent.free_on(inquiry.channel):
        return False
    if inquiry.excluded.get(agent.id, 0.0) > now:
        return False
    if not fits_profile(agent, inquiry, step):
        return False
    return not (
        inquiry.preferred_agent
        and now < inquiry.prefer_until
        and agent.id != inquiry.preferred_agent
    )


def fits_profile(agent: AgentView, inquiry: QueuedInquiry, step: LadderStep) -> bool:
    """Whether the agent's profile fits the inquiry under `step` (tier, language,
    site, skills), whatever its presence and load."""
    if agent.tier not in tiers(inquiry, step):
        return False
    if not agent.speaks(inquiry.language):
        return False
    if inquiry.site and not agent.at_site(inquiry.site):
        return False
    for skill, minimum in inquiry.skills.items():
        needed = minimum if step.min_proficiency is None else min(minimum, step.min_proficiency)
        if agent.skills.get(skill, 0) < max(needed, 1):
            return False
    return True


def tiers(inquiry: QueuedInquiry, step: LadderStep) -> frozenset[int]:
    """The tiers that may take the inquiry under `step`: the step's, from its tier floor up."""
    # State written before tiers were capped may ask for more than the top.
    min_tier = min(inquiry.min_tier, SUPERVISOR)
    if min_tier <= REPRESENTATIVE:
        return step.tiers
    return frozenset(t for t in step.tiers if t >= min_tier) or frozenset(
        range(min_tier, SUPERVISOR + 1)
    )


@functools.lru_cache(maxsize=1024)
def reach_languages(languages: tuple[str, ...]) -> frozenset[str]:
    """The languages (primary subtags) inquiries of which an agent serves; "" is any."""
    return frozenset({""} | {lang.lower().split("-")[0] for lang in languages})


def reach(
    free: Mapping[str, AgentView],
    planned_load: Mapping[tuple[str, str], int],
    wanted: Set[tuple[str, str]],
) -> set[tuple[str, str]]:
    """The pairs of `wanted` ((channel, language)) the agents of `free` have a slot left for.

    Stops as soon as every wanted pair is reached, so a plan with nothing
    waiting, or waiting only for what the first free agents serve, does not
    visit every free agent (a tick's plan with thousands logged in).
    """
    reached: set[tuple[str, str]] = set()
    if not wanted:
        return reached
    for agent in free.values():
        languages = reach_languages(agent.languages)
        for channel in agent.capacity:
            if agent.free_on(channel) and free_after(agent, channel, planned_load):
                reached.update(
                    pair
                    for pair in ((channel, language) for language in languages)
                    if pair in wanted
                )
        if len(reached) == len(wanted):
            break
    return reached


def free_after(agent: AgentView, channel: str, planned: Mapping[tuple[str, str], int]) -> bool:
    """Whether the agent has a slot on `channel` left once what a plan gave it is counted."""
    extra = planned.get((agent.id, channel), 0)
    if agent.load.get(channel, 0) + extra >= agent.capacity.get(channel, 0):
        return False
    if agent.total_capacity:
        total_extra = sum(n for (aid, _), n in planned.items() if aid == agent.id)
        return agent.total_load + total_extra < agent.total_capacity
    return True


def has_any_free_slot(agent: AgentView) -> bool:
    """Whether the agent is available with room on some channel."""
    return agent.status is AgentStatus.AVAILABLE and any(
        agent.free_on(channel) for channel in agent.capacity
    )


def same_for_matching(old: AgentView, new: AgentView) -> bool:
    """Whether two pictures of an agent are the same for who fits it (its version,
    idle time and the like aside)."""
    return (
        old.status is new.status
        and old.load == new.load
        and old.capacity == new.capacity
        and old.total_capacity == new.total_capacity
        and old.voice_blocks == new.voice_blocks
        and old.tier == new.tier
        and old.skills == new.skills
        and old.languages == new.languages
    )


class FreeAgents:
    """The agents with a free slot, and per channel in "longest idle" order, so the
    default strategy takes the first eligible agent instead of examining all of them."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentView] = {}
        # per channel, so an inquiry looks only at agents with room on its channel.
        self._idle_order: dict[str, SortedList] = {}
        self._idle_keys: dict[str, tuple[tuple[int, bool, float, str], list[str]]] = {}

    def set(self, agent_id: str, agent: AgentView | None) -> None:
        """Record whether an agent has a free slot (`agent`) or not (None)."""
        old = self._idle_keys.pop(agent_id, None)
        if old is not None:
            key, channels = old
            for channel in channels:
                self._idle_order[channel].discard(key)
        if agent is None:
            self.agents.pop(agent_id, None)
            return
        self.agents[agent_id] = agent
        key = (agent.tier, agent.total_load > 0, agent.idle_since, agent.id)
        channels = [ch for ch in agent.capacity if agent.free_on(ch)]
        self._idle_keys[agent_id] = (key, channels)
        for channel in channels:
            order = self._idle_order.get(channel)
            if order is None:
                order = self._idle_order[channel] = SortedList()
            order.add(key)

    def choose(
        self,
        inquiry: QueuedInquiry,
        step: LadderStep,
        queue: Queue,
        free: dict[str, AgentView],
        planned_load: dict[tuple[str, str], int],
        now: float,
    ) -> AgentView | None:
        """The best of `free` (those of a plan still free) for the inquiry by the
        queue's strategy, with what the plan gave each counted; None: nobody."""

        def fits(a: AgentView) -> bool:
            return eligible(a, inquiry, step, now) and free_after(a, inquiry.channel, planned_load)

        # Scanning the idle order pays when most free agents are candidates; for
        # a few of them (a plan for the agents whose slots changed) it would walk
        # past all the others.
        if (
            queue.strategy == "longest_idle"
            and not inquiry.preferred_agent
            and len(free) > 16
            and 4 * len(free) >= len(self.agents)
        ):
            for *_, agent_id in self._idle_order.get(inquiry.channel, ()):
                agent = free.get(agent_id)
                if agent is not None and fits(agent):
                    return agent
            return None
        candidates = [a for a in free.values() if fits(a)]
        if not candidates:
            return None
        if inquiry.preferred_agent:
            for agent in candidates:
                if agent.id == inquiry.preferred_agent:
                    return agent
        # The lowest eligible tier first: specialists and supervisors are the
        # scarce escalation resource. Then the queue's strategy, then the id.
        if queue.strategy == "least_occupied":
            return min(candidates, key=lambda a: (a.tier, a.occupancy, a.idle_since, a.id))
        if queue.strategy == "highest_proficiency":
            return min(
                candidates,
                key=lambda a: (
                    a.tier,
                    -sum(a.skills.get(s, 0) for s in inquiry.skills),
                    a.idle_since,
                    a.id,
                ),
            )
        # longest idle: agents holding no task first, the one idle longest first
        return min(candidates, key=lambda a: (a.tier, a.total_load > 0, a.idle_since, a.id))

"""The index of a workspace's inquiries, so that no event and no tick costs more
with a longer queue.

`WaitingIndex` files every inquiry the router holds by its state: counted per
queue (the queue figures, kept as inquiries move), follow-ups by when they
fall due, offers and tasks as open, those the sweep found as unverified. A
waiting inquiry is filed by what can serve it: by match kind (queue, ladder
step, channel, language, tier floor, required skills, site), each kind by base
priority in arrival order; one whose sticky window is open by the agent it
waits for. A freed agent looks only at the heads of the kinds it fits
(`walk`). Time moves an inquiry between kinds (its next ladder step, the end
of its sticky window): its timers say when, earliest first (`advance`).

The router files an inquiry (`file`) once its fields are set and takes it out
(`unfile`) before changing any of them; the index never changes an inquiry.
Filing decisions use the latest time the router reported (`seen`).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping, Set

from sortedcontainers import SortedList

from omniroute_router.config import WorkspaceConfig
from omniroute_router.decisions import QueueStats
from omniroute_router.matching import FOREVER, free_after, reach, reach_languages, tiers
from omniroute_router.model import AgentView, InquiryState, QueuedInquiry

# What decides which agents fit a waiting inquiry, apart from the agents it
# excludes and the one it may wait for: queue, ladder step, channel, language
# (primary subtag), tier floor, required skills (sorted (skill, minimum) pairs),
# site (in person; casefolded, "" for none).
MatchKind = tuple[str, int, str, str, int, tuple[tuple[str, int], ...], str]
# Margin by which time-driven filings run early: `after_s` crossed by
# subtraction (`now - queued_at`) may round the other way than a time computed
# by addition; each filing is decided by the same formula as the plan's.
_TIMER_MARGIN_S = 1e-3


def match_kind(inquiry: QueuedInquiry, step: int) -> MatchKind:
    """The inquiry's match kind at ladder step `step`."""
    return (
        inquiry.queue,
        step,
        inquiry.channel,
        inquiry.language.lower().split("-")[0],
        inquiry.min_tier,
        tuple(sorted(inquiry.skills.items())),
        inquiry.site.casefold(),
    )


class Kind:
    """The waiting inquiries of one match kind, by base priority, oldest first."""

    __slots__ = ("buckets", "channel", "language", "needs", "site", "tiers")

    def __init__(
        self,
        channel: str,
        language: str,
        tiers: frozenset[int],
        needs: tuple[tuple[str, int], ...],
        site: str = "",
    ) -> None:
        self.buckets: dict[int, SortedList] = {}  # priority -> (arrived_at, id)
        self.site = site  # in person: only agents of this site
        self.channel = channel
        self.language = language
        self.tiers = tiers
        self.needs = needs  # (skill, lowest proficiency accepted) at this step

    def fits(self, agent: AgentView) -> bool:
        """Whether the agent fits every inquiry of the kind, capacity aside."""
        if agent.tier not in self.tiers:
            return False
        if self.site and not agent.at_site(self.site):
            return False
        if self.language and self.language not in reach_languages(agent.languages):
            return False
        skills = agent.skills
        return all(skills.get(skill, 0) >= needed for skill, needed in self.needs)

    def anyone_fits(
        self, free: Mapping[str, AgentView], planned_load: Mapping[tuple[str, str], int]
    ) -> bool:
        """Whether any of `free` fits the kind and has a slot on its channel left."""
        channel = self.channel
        return any(
            a.free_on(channel) and free_after(a, channel, planned_load) and self.fits(a)
            for a in free.values()
        )


# A bucket's next inquiry in a plan's walk: its order key (effective priority,
# arrival, id), its position in the bucket, the bucket, its kind (None: sticky).
_Head = tuple[float, float, str, int, SortedList, Kind | None]


class _Filed:
    """Where an inquiry is indexed: its queue and state (for the counts) and,
    when waiting, its bucket, entry and ladder step."""

    __slots__ = (
        "bucket",
        "entry",
        "kind",
        "priority",
        "queue",
        "since",
        "state",
        "step",
        "sticky",
        "timer",
    )

    def __init__(self, queue: str, state: InquiryState) -> None:
        self.queue = queue
        self.state = state
        self.bucket: SortedList | None = None
        self.entry: tuple[float, str] = (0.0, "")  # (arrived_at, id): its place in order
        self.since: tuple[float, str] = (0.0, "")  # (its wait counts from, id): oldest wait
        self.kind: MatchKind | None = None
        self.priority = 0
        self.sticky = ""  # the agent it waits for, when filed under them
        self.step = 0
        self.timer = 0  # the filing number its timer carries (older timers are stale)


class WaitingIndex:
    """Every inquiry of one workspace filed by its state; waiting ones by what can
    serve them."""

    def __init__(self, config: WorkspaceConfig, inquiries: Mapping[str, QueuedInquiry]) -> None:
        self._queues = {q.name: q for q in config.queues}
        # The router's inquiries by id (read only): what the ids filed here are.
        self._inquiries = inquiries
        # Per queue, the ladder's `after_s` in step order, and per step how long
        # after entering the queue a later step is first reached (None: never).
        self._afters = {q.name: tuple(s.after_s for s in q.ladder) for q in config.queues}
        self._ascending = {
            name: all(a < b for a, b in itertools.pairwise(afters))
            for name, afters in self._afters.items()
        }
        self._next_after = {
            name: tuple(min(afters[i + 1 :], default=None) for i in range(len(afters)))
            for name, afters in self._afters.items()
        }
        self._kinds: dict[MatchKind, Kind] = {}
        # The kinds by (channel, language): a free agent reaches only those of
        # the channels it has room on and the languages it speaks.
        self._reach: dict[tuple[str, str], set[MatchKind]] = {}
        # (agent, queue) -> priority -> bucket
        self._sticky: dict[tuple[str, str], dict[int, SortedList]] = {}
        self._filed: dict[str, _Filed] = {}  # every indexed inquiry: where it is counted
        self._timers: list[tuple[float, int, str]] = []  # (at, filing number, inquiry id)
        self._filings = 0
        self._stepped: set[str] = set()  # ladder steps reached, for housekeeping to count
        # Restored before any time was seen: filed at the first time seen, once.
        self._deferred: set[str] = set()
        self._now = -FOREVER  # the latest time seen: filing decisions use it
        self._scheduled: set[str] = set()
        self._due: list[tuple[float, str]] = []  # scheduled follow-ups, earliest first
        # Per queue: inquiries in each state, kept as they move.
        self._counts: dict[str, dict[InquiryState, int]] = {}
        self._arrivals: dict[str, SortedList] = {}  # queue -> waiting (arrived_at, id)
        # Offered or accepted (the offers and tasks agent-state should be
        # telling us about), and inquiries waiting for agent-state's word.
        self._open: set[str] = set()
        self._unverified: set[str] = set()

    @property
    def open(self) -> Set[str]:
        """The inquiries offered or accepted."""
        return self._open

    @property
    def unverified(self) -> Set[str]:
        """The inquiries admitted by the sweep, awaiting agent-state's word."""
        return self._unverified

    def seen(self, now: float) -> None:
        """The router saw time `now`: filings from now on are decided at the latest time seen."""
        self._now = max(self._now, now)

    def file(self, inquiry: QueuedInquiry) -> None:
        """File an inquiry (not filed) by its state; waiting ones by what can serve them."""
        filed = _Filed(inquiry.queue, inquiry.state)
        self._filed[inquiry.id] = filed
        counts = self._counts.setdefault(inquiry.queue, {})
        counts[inquiry.state] = counts.get(inquiry.state, 0) + 1
        if inquiry.state is InquiryState.WAITING:
            # Waiting, also for agent-state's word: counted in the queue's oldest wait
            # (one held while its queue was closed from the opening: `sla_from`).
            filed.entry = (inquiry.arrived_at, inquiry.id)
            filed.since = (
                filed.entry
                if inquiry.sla_from <= inquiry.arrived_at  # (the same tuple: no memory)
                else (inquiry.sla_from, inquiry.id)
            )
            arrivals = self._arrivals.get(inquiry.queue)
            if arrivals is None:  # (a SortedList is dear to make: not a default)
                arrivals = self._arrivals[inquiry.queue] = SortedList()
            arrivals.add(filed.since)
        if inquiry.verify:
            self._unverified.add(inquiry.id)
            return
        if inquiry.state is InquiryState.WAITING and self._now == -FOREVER:
            self._deferred.add(inquiry.id)
            return
        if inquiry.state is InquiryState.WAITING:
            self._file_waiting(inquiry, filed, self._by_time(inquiry, self._now))
        elif inquiry.state is InquiryState.SCHEDULED:
            self._scheduled.add(inquiry.id)
            heapq.heappush(self._due, (inquiry.due_at, inquiry.id))
        elif inquiry.state is not InquiryState.HELD:
            self._open.add(inquiry.id)

    def unfile(self, inquiry_id: str) -> str | None:
        """Take an inquiry out of the index (wherever it was filed, whatever its state
        now). Returns the queue it was filed in; None when it was not filed."""
        filed = self._filed.pop(inquiry_id, None)
        if filed is None:
            return None
        self._counts[filed.queue][filed.state] -= 1
        self._deferred.discard(inquiry_id)
        self._unverified.discard(inquiry_id)
        self._open.discard(inquiry_id)
        self._scheduled.discard(inquiry_id)
        if filed.state is InquiryState.WAITING:
            self._arrivals[filed.queue].discard(filed.since)
        if filed.bucket is not None:
            self._unfile_waiting(filed)
        return filed.queue

    def step(self, inquiry: QueuedInquiry, now: float) -> int:
        """The inquiry's ladder step: by time waited and failed offers, and never
        below the step it is filed at."""
        index = self._by_time(inquiry, now)
        filed = self._filed.get(inquiry.id)
        if filed is not None and filed.bucket is not None:
            # A step reached stays reached, also when the clock steps back.
            index = max(index, filed.step)
        return index

    def advance(self, now: float) -> None:
        """Move waiting inquiries whose ladder step or sticky window time changed."""
        self._now = max(self._now, now)
        if self._deferred:
            deferred, self._deferred = self._deferred, set()
            for inquiry_id in deferred:
                inquiry = self._inquiries[inquiry_id]
                self._file_waiting(
                    inquiry, self._filed[inquiry_id], self._by_time(inquiry, self._now)
                )
        timers = self._timers
        later: list[tuple[float, int, str]] = []
        while timers and timers[0][0] <= now + _TIMER_MARGIN_S:
            timer = heapq.heappop(timers)
            _, number, inquiry_id = timer
            filed = self._filed.get(inquiry_id)
            if filed is None or filed.timer != number:
                continue  # filed again since, or gone: a newer timer stands
            inquiry = self._inquiries[inquiry_id]
            step = max(self._by_time(inquiry, self._now), filed.step)
            sticky = bool(inquiry.preferred_agent) and self._now < inquiry.prefer_until
            if step == filed.step and sticky == bool(filed.sticky):
                later.append(timer)  # within the margin: not yet
                continue
            self._unfile_waiting(filed)
            self._file_waiting(inquiry, filed, step)
        for timer in later:
            heapq.heappush(timers, timer)

    def take_stepped(self) -> set[str]:
        """The waiting inquiries filed at a higher ladder step since the last call."""
        stepped, self._stepped = self._stepped, set()
        return stepped

    def due_follow_ups(self, now: float) -> Iterator[QueuedInquiry]:
        """The scheduled follow-ups due by `now`, earliest first, taken off the schedule.

        Lazy: each is checked when reached, so one the caller released (or
        scheduled again, or finished) meanwhile is not given again.
        """
        due = self._due
        while due and due[0][0] <= now:
            at, inquiry_id = heapq.heappop(due)
            inquiry = self._inquiries.get(inquiry_id)
            if inquiry_id not in self._scheduled or inquiry is None or inquiry.due_at != at:
                continue  # released, finished or scheduled again since
            yield inquiry

    def in_order(self, now: float, aging_s: float) -> Iterator[str]:
        """The waiting inquiries (those filed by what can serve them), most urgent first."""
        self.advance(now)

        def keyed(priority: int, bucket: SortedList) -> Iterator[tuple[float, float, str]]:
            # Within one base priority the longest waiting has aged the most,
            # so arrival order is effective-priority order: buckets merge lazily.
            for arrived, inquiry_id in bucket:
                yield (-(priority + (now - arrived) // aging_s), arrived, inquiry_id)

        buckets = [b for index in self._kinds.values() for b in index.buckets.items()]
        buckets += [b for by_priority in self._sticky.values() for b in by_priority.items()]
        merged = heapq.merge(*(keyed(p, b) for p, b in buckets))
        for _, _, inquiry_id in merged:
            yield inquiry_id

    def walk(
        self,
        now: float,
        aging_s: float,
        free: Mapping[str, AgentView],
        planned_load: Mapping[tuple[str, str], int],
        fitting: dict[Kind, bool],
    ) -> Iterator[tuple[str, Kind | None]]:
        """The waiting inquiries an agent of `free` may take, in queue order: each
        with its kind (None: it waits for that agent), for a plan's walk.

        Only the kinds some agent of `free` reaches are walked (and the inquiries
        waiting for an agent of `free`), merged in queue order. A kind is checked
        against the agents still free when the walk first reaches it and the
        verdict kept in `fitting`; a kind found (or set there by the caller)
        False is left. Lazy: each step sees `free`, `planned_load` and `fitting`
        as the caller left them, and the walk ends when `free` is empty.
        """

        def head(bucket: SortedList, position: int, priority: int, kind: Kind | None) -> _Head:
            arrived, inquiry_id = bucket[position]
            return (
                -(priority + (now - arrived) // aging_s),
                arrived,
                inquiry_id,
                position,
                bucket,
                kind,
            )

        # Only the (channel, language) pairs some waiting kind is filed under are
        # looked for among the free agents: none when nothing waits.
        reached: set[MatchKind] = set().union(
            *(self._reach[r] for r in reach(free, planned_load, self._reach.keys()))
        )
        heads = [
            head(bucket, 0, priority, kind)
            for kind in (self._kinds[match] for match in reached)
            for priority, bucket in kind.buckets.items()
        ]
        if len(self._sticky) <= len(free):
            sticky = [(a, b) for (a, _), b in self._sticky.items() if a in free]
        else:
            sticky = [
                (a, self._sticky[a, q])
                for a in free
                for q in self._queues
                if (a, q) in self._sticky
            ]
        heads += [
            head(bucket, 0, priority, None)
            for _, by_priority in sticky
            for priority, bucket in by_priority.items()
        ]
        heapq.heapify(heads)
        while heads and free:
            _, _, inquiry_id, position, bucket, kind = heapq.heappop(heads)
            if kind is not None:
                fits = fitting.get(kind)
                if fits is None:
                    fits = fitting[kind] = kind.anyone_fits(free, planned_load)
                if not fits:
                    continue
            if position + 1 < len(bucket):
                priority = self._filed[inquiry_id].priority
                heapq.heappush(heads, head(bucket, position + 1, priority, kind))
            yield inquiry_id, kind

    def queue_stats(self, names: Iterable[str], now: float) -> dict[str, QueueStats]:
        """The figures of the queues named now, callbacks aside (the cost: the queues)."""
        stats = {name: QueueStats() for name in names}
        for name, counts in self._counts.items():
            queue = stats.get(name)
            if queue is None:
                continue
            queue.waiting = counts.get(InquiryState.WAITING, 0)
            # Held until the queue opens: not yet due either.
            queue.scheduled = counts.get(InquiryState.SCHEDULED, 0) + counts.get(
                InquiryState.HELD, 0
            )
            queue.offered = counts.get(InquiryState.OFFERED, 0)
            queue.in_progress = counts.get(InquiryState.ACCEPTED, 0)
        for name, arrivals in self._arrivals.items():
            if arrivals and name in stats:
                stats[name].oldest_wait_s = max(0.0, now - arrivals[0][0])
        return stats

    def _by_time(self, inquiry: QueuedInquiry, now: float) -> int:
        """The ladder step by time waited and failed offers (the step formula)."""
        afters = self._afters[inquiry.queue]
        # A clock stepped back (or a new owner's clock behind the old one's) makes
        # `now` earlier than `queued_at`: count that as no wait, not as an error.
        waited = max(0.0, now - inquiry.queued_at)
        if self._ascending[inquiry.queue]:
            by_time = max(bisect.bisect_right(afters, waited) - 1, 0)
        else:
            by_time = max((i for i, after in enumerate(afters) if after <= waited), default=0)
        return min(max(by_time, inquiry.forced_step), len(afters) - 1)

    def _file_waiting(self, inquiry: QueuedInquiry, filed: _Filed, step: int) -> None:
        """Put a waiting inquiry in its bucket at ladder step `step`, and set its timer."""
        now = self._now
        filed.step = step
        filed.priority = inquiry.priority
        filed.entry = (inquiry.arrived_at, inquiry.id)
        wakes = FOREVER
        later = self._next_after[inquiry.queue][step]
        if later is not None:
            wakes = inquiry.queued_at + later
        if inquiry.preferred_agent and now < inquiry.prefer_until:
            filed.sticky = inquiry.preferred_agent
            filed.kind = None
            by_priority = self._sticky.setdefault((filed.sticky, inquiry.queue), {})
            wakes = min(wakes, inquiry.prefer_until)
        else:
            filed.sticky = ""
            kind = filed.kind = match_kind(inquiry, step)
            index = self._kinds.get(kind)
            if index is None:
                index = self._kinds[kind] = self._new_kind(inquiry, step)
                self._reach.setdefault((index.channel, index.language), set()).add(kind)
            by_priority = index.buckets
        bucket = by_priority.get(inquiry.priority)
        if bucket is None:
            bucket = by_priority[inquiry.priority] = SortedList()
        bucket.add(filed.entry)
        filed.bucket = bucket
        if step > inquiry.step:
            self._stepped.add(inquiry.id)
        if wakes < FOREVER:
            self._filings += 1
            filed.timer = self._filings
            heapq.heappush(self._timers, (wakes, filed.timer, inquiry.id))
            if len(self._timers) > 2 * len(self._filed) + 1024:
                self._compact_timers()

    def _unfile_waiting(self, filed: _Filed) -> None:
        bucket = filed.bucket
        assert bucket is not None
        bucket.discard(filed.entry)
        filed.bucket = None
        filed.timer = 0
        if bucket:
            return
        if filed.sticky:
            by_priority = self._sticky[filed.sticky, filed.queue]
            del by_priority[filed.priority]
            if not by_priority:
                del self._sticky[filed.sticky, filed.queue]
        elif filed.kind is not None:
            index = self._kinds[filed.kind]
            del index.buckets[filed.priority]
            if not index.buckets:
                del self._kinds[filed.kind]
                reached = (index.channel, index.language)
                self._reach[reached].discard(filed.kind)
                if not self._reach[reached]:
                    del self._reach[reached]

    def _compact_timers(self) -> None:
        """Drop the timers of inquiries filed again or gone (each filing leaves one)."""
        live = {(f.timer, i) for i, f in self._filed.items() if f.timer}
        self._timers = [t for t in self._timers if (t[1], t[2]) in live]
        heapq.heapify(self._timers)

    def _new_kind(self, inquiry: QueuedInquiry, step_index: int) -> Kind:
        step = self._queues[inquiry.queue].ladder[step_index]
        needs = tuple(
            (
                skill,
                max(
                    minimum if step.min_proficiency is None else min(minimum, step.min_proficiency),
                    1,
                ),
            )
            for skill, minimum in inquiry.skills.items()
        )
        return Kind(
            inquiry.channel,
            inquiry.language.lower().split("-")[0],
            tiers(inquiry, step),
            needs,
            inquiry.site,
        )

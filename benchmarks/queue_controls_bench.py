"""Queue controls per tick: the cost must not grow with the queue.

    python -m benchmarks.queue_controls_bench

For queues of 1,000 to 100,000 waiting inquiries (and as many held in a
closed queue), one tick of the queue controls: held inquiries whose queue
opened are released (none here: what is not due must cost nothing) and the
overflow rules move what they must (after a wait: 10 fall due each tick;
above a depth and above an estimated wait: not reached). Prints the time per
tick; the routing core around them (ladder, planning) is measured by the
other benchmarks.
"""

from __future__ import annotations

import statistics
import time

from omniroute_router.config import Queue, QueueMatch, WorkspaceConfig
from omniroute_router.hours import Hours
from omniroute_router.model import QueuedInquiry
from omniroute_router.overflow import OverflowRule, Trigger
from omniroute_router.routing import WorkspaceRouter

T0 = 1_800_000_000.0
TICKS = 50
PER_TICK = 10


def workspace(waiting: int) -> WorkspaceRouter:
    """`waiting` inquiries in a queue with overflow rules, as many held in a closed queue."""
    span = waiting / PER_TICK  # arrivals one every 1/PER_TICK s over this span
    rules = (
        OverflowRule("backup", Trigger.WAIT, span),  # PER_TICK fall due every second
        OverflowRule("backup", Trigger.DEPTH, 10 * waiting),  # never reached
        OverflowRule("backup", Trigger.ESTIMATED_WAIT, 1e9),  # never reached
    )
    queues = (
        Queue("front", QueueMatch(segments=frozenset({"front"})), overflow=rules),
        Queue("closed", QueueMatch(segments=frozenset({"held"})), hours=Hours(timezone="UTC")),
        Queue("backup"),
    )
    router = WorkspaceRouter("bench", WorkspaceConfig(queues=queues))
    for i in range(waiting):
        at = T0 - span + i / PER_TICK
        for prefix, segment in (("f", "front"), ("h", "held")):
            inquiry = QueuedInquiry(
                id=f"{prefix}{i}",
                workspace="bench",
                channel="chat",
                queue="",
                arrived_at=at,
                segment=segment,
            )
            router.admit(inquiry, at)
    router.drain_changes()
    router.drain_notices()
    return router


def tick_costs(router: WorkspaceRouter) -> list[float]:
    """One tick a second: release the held inquiries due (none: the queue never opens)
    and apply the overflow rules."""
    costs = []
    for tick in range(1, TICKS + 1):
        now = T0 + tick
        started = time.perf_counter()
        router._release_held(now)
        router._overflow(now)
        costs.append(time.perf_counter() - started)
        router.drain_changes()
        router.drain_notices()
    return costs


def main() -> None:
    print("queue controls per tick: 10 overflow moves due, two rules idle, all held not due")
    print(f"{'waiting':>9} {'held':>9} {'median ms':>10} {'p95 ms':>8}")
    for waiting in (1_000, 10_000, 100_000):
        router = workspace(waiting)
        costs = tick_costs(router)
        moved = sum(1 for i in router.inquiries.values() if i.queue == "backup")
        # The same work at every size: PER_TICK moves a tick (and the one due at T0).
        assert moved == TICKS * PER_TICK + 1, moved
        median = statistics.median(costs) * 1000
        p95 = statistics.quantiles(costs, n=20)[18] * 1000
        print(f"{waiting:>9,} {waiting:>9,} {median:>10.2f} {p95:>8.2f}")


if __name__ == "__main__":
    main()

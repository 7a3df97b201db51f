"""Overflow rules: which waiting inquiries move, by wait, depth and estimated wait."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from omniroute.waits import estimated_wait
from omniroute_router.overflow import Move, OverflowRule, Trigger, plan

LINE = [(float(t), f"i{t}") for t in range(0, 100, 10)]  # i0 entered at 0 ... i90 at 90


def lazily(
    items: list[tuple[float, str]],
) -> tuple[Callable[[], Iterable[tuple[float, str]]], list[str]]:
    """An iterator factory that records what it handed out (to check laziness)."""
    seen: list[str] = []

    def walk() -> Iterable[tuple[float, str]]:
        for item in items:
            seen.append(item[1])
            yield item

    return walk, seen


def run(rules: list[OverflowRule], now: float, rate: float = 0.0, **kw: object) -> list[Move]:
    return plan(rules, lambda: iter(LINE), lambda: iter(reversed(LINE)), len(LINE), rate, now, **kw)  # type: ignore[arg-type]


def test_after_a_wait_the_oldest_move_and_only_those() -> None:
    moves = run([OverflowRule("general", Trigger.WAIT, 60)], now=95)
    assert [m.inquiry_id for m in moves] == ["i0", "i10", "i20", "i30"]
    assert {(m.to, m.trigger) for m in moves} == {("general", Trigger.WAIT)}


def test_the_wait_rule_looks_no_further_than_the_first_not_due() -> None:
    oldest, seen = lazily(LINE)
    newest, _ = lazily(list(reversed(LINE)))
    moves = plan([OverflowRule("g", Trigger.WAIT, 80)], oldest, newest, len(LINE), 0.0, 95)
    assert [m.inquiry_id for m in moves] == ["i0", "i10"]
    assert seen == ["i0", "i10", "i20"]


def test_above_a_depth_the_newest_move_until_the_depth_holds() -> None:
    oldest, _ = lazily(LINE)
    newest, seen = lazily(list(reversed(LINE)))
    moves = plan([OverflowRule("g", Trigger.DEPTH, 7)], oldest, newest, len(LINE), 0.0, 95)
    assert [m.inquiry_id for m in moves] == ["i90", "i80", "i70"]
    assert seen == ["i90", "i80", "i70"]
    assert run([OverflowRule("g", Trigger.DEPTH, 10)], now=95) == []


def test_estimated_wait_moves_those_past_the_threshold_and_nothing_when_unknown() -> None:
    # 0.1 answers/s: position p waits about 10 p seconds; above 60 s are positions 7..10.
    assert estimated_wait(7, 0.1) == 70
    moves = run([OverflowRule("g", Trigger.ESTIMATED_WAIT, 60)], now=95, rate=0.1)
    assert [m.inquiry_id for m in moves] == ["i90", "i80", "i70", "i60"]
    # Nobody answered in the window: the estimate is unknown, nothing moves on it.
    assert estimated_wait(3, 0.0) is None
    assert run([OverflowRule("g", Trigger.ESTIMATED_WAIT, 60)], now=95, rate=0.0) == []


def test_rules_apply_in_order_and_never_move_one_inquiry_twice() -> None:
    rules = [OverflowRule("a", Trigger.WAIT, 80), OverflowRule("b", Trigger.DEPTH, 5)]
    moves = run(rules, now=95)
    assert [(m.inquiry_id, m.to) for m in moves] == [
        ("i0", "a"), ("i10", "a"), ("i90", "b"), ("i80", "b"), ("i70", "b"),
    ]  # fmt: skip


def test_a_closed_target_takes_nothing_and_a_barred_inquiry_stays() -> None:
    rules = [OverflowRule("closed", Trigger.WAIT, 0), OverflowRule("open", Trigger.DEPTH, 8)]
    moves = run(
        rules, now=95, may_enter=lambda to: to != "closed", may_move=lambda i, to: i != "i90"
    )
    # i90 may not move: the depth is brought down with the two before it.
    assert [(m.inquiry_id, m.to) for m in moves] == [("i80", "open"), ("i70", "open")]


def test_one_call_examines_at_most_the_limit() -> None:
    moves = run([OverflowRule("g", Trigger.WAIT, 0)], now=95, limit=3)
    assert [m.inquiry_id for m in moves] == ["i0", "i10", "i20"]

"""Overflow: which waiting inquiries a queue hands to another queue, and why.

Plain data and pure functions over plain data: no clock (time passed in), no
I/O. The routing core keeps, per queue, its waiting inquiries in order of
when they entered the queue and asks `plan` which to move; the cost is
proportional to the inquiries moved (plus one look at the oldest and the
newest), never to the length of the queue.

A queue's rules are tried in the order configured; each has one trigger:

- `after_wait_s`: an inquiry that has waited this long in the queue moves
  (the oldest first);
- `depth_above`: while more than this many wait, the newest arrivals move
  (they would wait the longest here);
- `estimated_wait_above_s`: while the estimated wait of the last in line is
  above this, the newest arrivals move. The estimate is the one customers
  are told (`omniroute.waits`): the position in line over the queue's
  service rate while inquiries waited; with no answer in the window the
  estimate is unknown and this trigger moves nothing (the wait trigger is
  the rule for a queue nobody answers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

# The service rate behind the estimated wait is measured over this window.
RATE_WINDOW_S = 900.0


class Trigger(StrEnum):
    WAIT = "wait"
    DEPTH = "depth"
    ESTIMATED_WAIT = "estimated_wait"


@dataclass(frozen=True)
class OverflowRule:
    """Move waiting inquiries to queue `to` when `trigger` passes `threshold`."""

    to: str
    trigger: Trigger
    threshold: float  # seconds for WAIT and ESTIMATED_WAIT, a count for DEPTH


@dataclass(frozen=True)
class Move:
    """Move inquiry `inquiry_id` to queue `to`, because of `trigger`."""

    inquiry_id: str
    to: str
    trigger: Trigger


def plan(
    rules: Sequence[OverflowRule],
    oldest_first: Callable[[], Iterable[tuple[float, str]]],
    newest_first: Callable[[], Iterable[tuple[float, str]]],
    depth: int,
    answers_per_s: float,
    now: float,
    may_enter: Callable[[str], bool] = lambda to: True,
    may_move: Callable[[str, str], bool] = lambda inquiry_id, to: True,
    limit: int = 1000,
) -> list[Move]:
    """The moves a queue's rules ask for now.

    `oldest_first()` and `newest_first()` give the queue's waiting inquiries
    as (entered the queue at, id), lazily in those orders; `depth` is how
    many wait. `may_enter(to)` says whether a queue takes overflow now (e.g.
    not while closed: the rule then moves nothing); `may_move(inquiry_id,
    to)` whether one inquiry may go there (e.g. not back to a queue it
    overflowed from): one that may not stays and is skipped. At most `limit`
    inquiries are examined, so one call's cost is bounded.
    """
    moves: list[Move] = []
    moved: set[str] = set()
    examined = 0
    for rule in rules:
        if not may_enter(rule.to):
            continue
        match rule.trigger:
            case Trigger.WAIT:
                for queued_at, inquiry_id in oldest_first():
                    if now - queued_at < rule.threshold or examined >= limit:
                        break
                    examined += 1
                    if inquiry_id not in moved and may_move(inquiry_id, rule.to):
                        moves.append(Move(inquiry_id, rule.to, rule.trigger))
                        moved.add(inquiry_id)
            case Trigger.DEPTH | Trigger.ESTIMATED_WAIT:
                keep = _keep(rule, answers_per_s)
                remaining = depth - len(moved)
                newest = iter(newest_first())
                # The condition before the next item: look at no more than is moved.
                while remaining > keep and examined < limit:
                    item = next(newest, None)
                    if item is None:
                        break
                    examined += 1
                    inquiry_id = item[1]
                    if inquiry_id not in moved and may_move(inquiry_id, rule.to):
                        moves.append(Move(inquiry_id, rule.to, rule.trigger))
                        moved.add(inquiry_id)
                        remaining -= 1
    return moves


def _keep(rule: OverflowRule, answers_per_s: float) -> float:
    """How many may wait before the rule moves the newest (inf: it moves nothing)."""
    if rule.trigger is Trigger.DEPTH:
        return rule.threshold
    if answers_per_s <= 0:
        return math.inf  # unknown estimate: no move on it
    # estimated_wait(p) = p / rate <= threshold  <=>  p <= threshold * rate
    return math.floor(rule.threshold * answers_per_s + 1e-9)

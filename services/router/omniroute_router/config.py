"""Routing configuration: queues, service levels and escalation ladders per workspace.

Loaded from YAML (see deploy/routing.example.yaml) and validated on load;
every error names the file, the line and the field. The configuration is
plain frozen data that the routing core reads; a reload (SIGHUP, see
reload.py) replaces it as a whole, never field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from omniroute_router.hours import (
    WEEKDAYS,
    ClosedPolicy,
    Hours,
    Interval,
    check_day,
    parse_interval,
)
from omniroute_router.overflow import OverflowRule, Trigger

CHANNELS = ("voice", "email", "chat", "sms", "social", "fax", "postal_mail", "in_person")
KINDS = (
    "question",
    "request",
    "complaint",
    "order",
    "return",
    "service_problem",
    "cancellation",
)
STRATEGIES = ("longest_idle", "least_occupied", "highest_proficiency")


class ConfigError(ValueError):
    """The routing configuration is invalid; the message says where and why."""


@dataclass(frozen=True)
class LadderStep:
    """One rung of a queue's escalation ladder, in force once an inquiry waited `after_s`."""

    after_s: float
    tiers: frozenset[int] = frozenset({1})
    # Replaces the minimum proficiency of every required skill; None keeps the inquiry's.
    min_proficiency: int | None = None


@dataclass(frozen=True)
class QueueMatch:
    """Which inquiries a queue takes; an empty set means any."""

    channels: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    skills: frozenset[str] = frozenset()  # the inquiry requires one of these
    languages: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Queue:
    """A queue: what it takes, how it picks agents and how it escalates."""

    name: str
    match: QueueMatch = QueueMatch()
    priority: int = 0  # added to the inquiry's own priority
    strategy: str = "longest_idle"
    required_skills: tuple[tuple[str, int], ...] = ()  # added to the inquiry's
    ladder: tuple[LadderStep, ...] = (LadderStep(after_s=0, tiers=frozenset({1, 2, 3})),)
    hours: Hours | None = None  # None: always open
    overflow: tuple[OverflowRule, ...] = ()
    # Whether agents may transfer tasks to this queue (TransferTask target_queue).
    accepts_transfers: bool = True


@dataclass(frozen=True)
class PriorityRule:
    """Raise the priority of inquiries that match, e.g. VIP customers or complaints."""

    boost: int
    segments: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class WorkspaceConfig:
    """The routing rules of one workspace (one contact centre)."""

    queues: tuple[Queue, ...] = (Queue(name="default"),)
    # Answer within this many seconds, per channel: SLA attainment is measured against it.
    service_levels: dict[str, float] = field(default_factory=dict)
    priority_rules: tuple[PriorityRule, ...] = ()
    aging_s: float = 60.0  # a waiting inquiry gains one priority point per aging_s
    reoffer_block_s: float = 300.0  # the same agent is not offered the same inquiry again
    max_failed_offers: int = 3  # then the inquiry moves one step up the ladder
    sticky_wait_s: float = 120.0  # how long a follow-up waits for its last agent
    # A message on a thread (SMS number, social thread, email thread, chat) joins
    # the thread's open inquiry when that inquiry's last message is at most this old.
    conversation_window_s: float = 86400.0


@dataclass(frozen=True)
class RoutingConfig:
    """All workspaces; `default` serves workspaces not listed (None: they are rejected)."""

    workspaces: dict[str, WorkspaceConfig] = field(default_factory=dict)
    default: WorkspaceConfig | None = WorkspaceConfig()

    def for_workspace(self, workspace: str) -> WorkspaceConfig | None:
        """The rules for `workspace`, or None when it is unknown."""
        return self.workspaces.get(workspace, self.default)


def load(path: str | Path) -> RoutingConfig:
    """Read and validate a routing configuration file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read routing configuration: {exc.strerror}") from None
    return parse(text, str(path))


def parse(text: str, source: str = "<config>") -> RoutingConfig:
    """Validate YAML text into a `RoutingConfig`; errors say `source:line: field: problem`."""
    try:
        root = yaml.load(text, Loader=LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{line}: not valid YAML: {exc}") from None
    if root is None:
        return RoutingConfig()
    v = Validator(source)
    top = v.mapping(root, "(top level)", {"workspaces", "default"})
    default = None
    if "default" in top and top["default"] is not None:
        default = v.workspace(top["default"], "default")
    workspaces = {
        str(name): v.workspace(body, f"workspaces.{name}")
        for name, body in v.mapping(top.get("workspaces", {}), "workspaces", None).items()
    }
    return RoutingConfig(workspaces=workspaces, default=default)


class _LineDict(dict[Any, Any]):
    lines: dict[Any, int]


class LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings remember the line of each key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _LineDict:  # type: ignore[override]
        result = _LineDict(super().construct_mapping(node, deep=True))
        result.lines = {
            self.construct_object(k, deep=True): k.start_mark.line + 1 for k, _ in node.value
        }
        result.lines["__self__"] = node.start_mark.line + 1
        return result


LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node),  # type: ignore[arg-type]
)


class Validator:
    """Checks parsed YAML field by field; errors name the source, line and field.

    Public so that other formats built on the same conventions (the
    simulator's scenarios) validate the same way.
    """

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, container: Any, key: Any, field_path: str, problem: str) -> ConfigError:
        lines = getattr(container, "lines", {})
        line = lines.get(key, lines.get("__self__"))
        where = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{where}: {field_path}: {problem}")

    def mapping(self, value: Any, path: str, allowed: set[str] | None) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.source}: {path}: expected a mapping")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise self.fail(
                        value, key, f"{path}.{key}", f"unknown field (known: {sorted(allowed)})"
                    )
        return value

    def number(self, parent: Any, key: str, path: str, minimum: float = 0) -> float:
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.fail(parent, key, path, f"expected a number >= {minimum}, got {value!r}")
        return float(value)

    def integer(self, parent: Any, key: str, path: str, lo: int, hi: int) -> int:
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(
                parent, key, path, f"expected a whole number from {lo} to {hi}, got {value!r}"
            )
        return value

    def names(
        self, parent: Any, key: str, path: str, known: tuple[str, ...] | None
    ) -> frozenset[str]:
        value = parent.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise self.fail(parent, key, path, "expected a list of names")
        for name in value:
            if known is not None and name not in known:
                raise self.fail(
                    parent, key, path, f"unknown {key[:-1]} {name!r} (known: {', '.join(known)})"
                )
        return frozenset(value)

    def workspace(self, body: Any, path: str) -> WorkspaceConfig:
        fields = {
            "queues",
            "service_levels",
            "priority_rules",
            "aging_s",
            "reoffer_block_s",
            "max_failed_offers",
            "sticky_wait_s",
            "conversation_window_s",
        }
        ws = self.mapping(body, path, fields)
        kwargs: dict[str, Any] = {}
        for key in ("aging_s", "reoffer_block_s", "sticky_wait_s", "conversation_window_s"):
            if key in ws:
                kwargs[key] = self.number(ws, key, f"{path}.{key}", minimum=0)
        if "aging_s" in kwargs and kwargs["aging_s"] == 0:
            raise self.fail(ws, "aging_s", f"{path}.aging_s", "must be above 0")
        if "max_failed_offers" in ws:
            kwargs["max_failed_offers"] = self.integer(
                ws, "max_failed_offers", f"{path}.max_failed_offers", 1, 100
            )
        levels = self.mapping(ws.get("service_levels"), f"{path}.service_levels", set(CHANNELS))
        kwargs["service_levels"] = {
            ch: self.number(levels, ch, f"{path}.service_levels.{ch}", minimum=0) for ch in levels
        }
        rules = ws.get("priority_rules", []) or []
        if not isinstance(rules, list):
            raise self.fail(ws, "priority_rules", f"{path}.priority_rules", "expected a list")
        kwargs["priority_rules"] = tuple(
            self.priority_rule(rule, f"{path}.priority_rules[{i}]") for i, rule in enumerate(rules)
        )
        queues = ws.get("queues")
        if queues is not None:
            if not isinstance(queues, list) or not queues:
                raise self.fail(ws, "queues", f"{path}.queues", "expected a non-empty list")
            parsed = tuple(self.queue(q, f"{path}.queues[{i}]") for i, q in enumerate(queues))
            seen: set[str] = set()
            for i, queue in enumerate(parsed):
                if queue.name in seen:
                    raise self.fail(
                        queues[i],
                        "name",
                        f"{path}.queues[{i}].name",
                        f"duplicate queue {queue.name!r}",
                    )
                seen.add(queue.name)
            self.queue_references(parsed, queues, path)
            kwargs["queues"] = parsed
        return WorkspaceConfig(**kwargs)

    def queue_references(self, parsed: tuple[Queue, ...], raw: list[Any], path: str) -> None:
        """After-hours and overflow queues must be other queues of the same workspace."""
        names = {q.name for q in parsed}
        for i, queue in enumerate(parsed):
            where = f"{path}.queues[{i}]"
            if queue.hours is not None:
                hours = raw[i]["hours"]
                target = queue.hours.after_hours_queue
                uses = ClosedPolicy.AFTER_HOURS in (
                    queue.hours.default_policy,
                    *queue.hours.when_closed.values(),
                )
                if uses and not target:
                    raise self.fail(
                        hours,
                        "when_closed",
                        f"{where}.hours.after_hours_queue",
                        "required when a channel's policy is after_hours_queue",
                    )
                if target and (target not in names or target == queue.name):
                    raise self.fail(
                        hours,
                        "after_hours_queue",
                        f"{where}.hours.after_hours_queue",
                        f"{target!r} is not another queue of this workspace",
                    )
            for j, rule in enumerate(queue.overflow):
                if rule.to not in names or rule.to == queue.name:
                    raise self.fail(
                        raw[i]["overflow"][j],
                        "to",
                        f"{where}.overflow[{j}].to",
                        f"{rule.to!r} is not another queue of this workspace",
                    )

    def priority_rule(self, body: Any, path: str) -> PriorityRule:
        rule = self.mapping(body, path, {"boost", "segments", "kinds", "channels"})
        if "boost" not in rule:
            raise self.fail(rule, "__self__", f"{path}.boost", "required")
        return PriorityRule(
            boost=self.integer(rule, "boost", f"{path}.boost", -10, 10),
            segments=self.names(rule, "segments", f"{path}.segments", None),
            kinds=self.names(rule, "kinds", f"{path}.kinds", KINDS),
            channels=self.names(rule, "channels", f"{path}.channels", CHANNELS),
        )

    def queue(self, body: Any, path: str) -> Queue:
        q = self.mapping(
            body,
            path,
            {
                "name",
                "match",
                "priority",
                "strategy",
                "required_skills",
                "ladder",
                "hours",
                "overflow",
                "accepts_transfers",
            },
        )
        if not isinstance(q.get("name"), str) or not q["name"]:
            raise self.fail(
                q, "name" if "name" in q else "__self__", f"{path}.name", "required text"
            )
        kwargs: dict[str, Any] = {"name": q["name"]}
        if "priority" in q:
            kwargs["priority"] = self.integer(q, "priority", f"{path}.priority", -10, 10)
        if "accepts_transfers" in q:
            if not isinstance(q["accepts_transfers"], bool):
                raise self.fail(
                    q, "accepts_transfers", f"{path}.accepts_transfers", "expected true or false"
                )
            kwargs["accepts_transfers"] = q["accepts_transfers"]
        if "strategy" in q:
            if q["strategy"] not in STRATEGIES:
                raise self.fail(
                    q,
                    "strategy",
                    f"{path}.strategy",
                    f"unknown strategy {q['strategy']!r} (known: {', '.join(STRATEGIES)})",
                )
            kwargs["strategy"] = q["strategy"]
        m = self.mapping(
            q.get("match"),
            f"{path}.match",
            {"channels", "kinds", "skills", "languages", "segments"},
        )
        kwargs["match"] = QueueMatch(
            channels=self.names(m, "channels", f"{path}.match.channels", CHANNELS),
            kinds=self.names(m, "kinds", f"{path}.match.kinds", KINDS),
            skills=self.names(m, "skills", f"{path}.match.skills", None),
            languages=self.names(m, "languages", f"{path}.match.languages", None),
            segments=self.names(m, "segments", f"{path}.match.segments", None),
        )
        skills = self.mapping(q.get("required_skills"), f"{path}.required_skills", None)
        kwargs["required_skills"] = tuple(
            (str(s), self.integer(skills, s, f"{path}.required_skills.{s}", 1, 5)) for s in skills
        )
        if "ladder" in q:
            ladder = q["ladder"]
            if not isinstance(ladder, list) or not ladder:
                raise self.fail(q, "ladder", f"{path}.ladder", "expected a non-empty list of steps")
            steps = tuple(self.step(s, f"{path}.ladder[{i}]") for i, s in enumerate(ladder))
            for i in range(1, len(steps)):
                if steps[i].after_s <= steps[i - 1].after_s:
                    raise self.fail(
                        ladder[i],
                        "after_s",
                        f"{path}.ladder[{i}].after_s",
                        "steps must wait strictly longer than the step before",
                    )
            if steps[0].after_s != 0:
                raise self.fail(
                    ladder[0],
                    "after_s",
                    f"{path}.ladder[0].after_s",
                    "the first step must start at 0",
                )
            kwargs["ladder"] = steps
        if q.get("hours") is not None:
            kwargs["hours"] = self.hours(q["hours"], f"{path}.hours")
        rules = q.get("overflow") or []
        if not isinstance(rules, list):
            raise self.fail(q, "overflow", f"{path}.overflow", "expected a list of rules")
        kwargs["overflow"] = tuple(
            self.overflow_rule(r, f"{path}.overflow[{i}]") for i, r in enumerate(rules)
        )
        return Queue(**kwargs)

    def hours(self, body: Any, path: str) -> Hours:
        h = self.mapping(
            body, path, {"timezone", "weekly", "exceptions", "when_closed", "after_hours_queue"}
        )
        if not isinstance(h.get("timezone"), str) or not h["timezone"]:
            raise self.fail(
                h,
                "timezone" if "timezone" in h else "__self__",
                f"{path}.timezone",
                "required: an IANA timezone name, e.g. Europe/Madrid",
            )
        try:
            ZoneInfo(h["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(
                h, "timezone", f"{path}.timezone", f"unknown timezone {h['timezone']!r}"
            ) from None
        weekly: list[tuple[Interval, ...]] = [()] * 7
        days = self.mapping(h.get("weekly"), f"{path}.weekly", None)
        for key in days:
            where = f"{path}.weekly.{key}"
            indexes = self.weekdays(days, key, where)
            intervals = self.intervals(days, key, where)
            for index in indexes:
                if weekly[index]:
                    raise self.fail(days, key, where, f"{WEEKDAYS[index]} is given twice")
                weekly[index] = intervals
        exceptions: dict[date, tuple[Interval, ...]] = {}
        dated = self.mapping(h.get("exceptions"), f"{path}.exceptions", None)
        for key in dated:
            where = f"{path}.exceptions.{key}"
            day = key
            if isinstance(key, str):
                try:
                    day = date.fromisoformat(key)
                except ValueError:
                    day = None
            if not isinstance(day, date):
                raise self.fail(dated, key, where, "expected a date YYYY-MM-DD")
            exceptions[day] = self.intervals(dated, key, where)
        policies = self.mapping(h.get("when_closed"), f"{path}.when_closed", {"default", *CHANNELS})
        parsed: dict[str, ClosedPolicy] = {}
        for key in policies:
            value = policies[key]
            if value not in {p.value for p in ClosedPolicy}:
                raise self.fail(
                    policies,
                    key,
                    f"{path}.when_closed.{key}",
                    f"unknown policy {value!r} (known: {', '.join(p.value for p in ClosedPolicy)})",
                )
            parsed[key] = ClosedPolicy(value)
        target = h.get("after_hours_queue", "")
        if not isinstance(target, str):
            raise self.fail(h, "after_hours_queue", f"{path}.after_hours_queue", "expected a name")
        return Hours(
            timezone=h["timezone"],
            weekly=tuple(weekly),
            exceptions=exceptions,
            when_closed={k: v for k, v in parsed.items() if k != "default"},
            default_policy=parsed.get("default", ClosedPolicy.HOLD),
            after_hours_queue=target,
        )

    def weekdays(self, parent: Any, key: Any, path: str) -> list[int]:
        """ "mon" -> [0]; "mon-fri" -> [0..4]; "sat-sun"; "fri-mon" wraps over the week."""
        text = str(key).lower()
        first, sep, last = text.partition("-")
        if first not in WEEKDAYS or (sep and last not in WEEKDAYS):
            raise self.fail(
                parent, key, path, f"expected a weekday or a range of them (mon-fri), got {key!r}"
            )
        start = WEEKDAYS.index(first)
        end = WEEKDAYS.index(last) if sep else start
        return [(start + i) % 7 for i in range((end - start) % 7 + 1)]

    def intervals(self, parent: Any, key: Any, path: str) -> tuple[Interval, ...]:
        """["08:00-12:00", "13:00-18:00"], or "closed" (or an empty list)."""
        value = parent[key]
        if value == "closed" or value == []:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise self.fail(
                parent, key, path, 'expected a list of "HH:MM-HH:MM" intervals or "closed"'
            )
        try:
            intervals = tuple(parse_interval(text) for text in value)
            check_day(intervals)
        except ValueError as exc:
            raise self.fail(parent, key, path, str(exc)) from None
        return intervals

    def overflow_rule(self, body: Any, path: str) -> OverflowRule:
        triggers = {
            "after_wait_s": Trigger.WAIT,
            "depth_above": Trigger.DEPTH,
            "estimated_wait_above_s": Trigger.ESTIMATED_WAIT,
        }
        rule = self.mapping(body, path, {"to", *triggers})
        if not isinstance(rule.get("to"), str) or not rule["to"]:
            raise self.fail(
                rule, "to" if "to" in rule else "__self__", f"{path}.to", "required queue name"
            )
        given = [key for key in triggers if key in rule]
        if len(given) != 1:
            raise self.fail(
                rule,
                given[1] if len(given) > 1 else "__self__",
                path,
                f"expected exactly one of {', '.join(triggers)}",
            )
        key = given[0]
        if key == "depth_above":
            threshold = float(self.integer(rule, key, f"{path}.{key}", 0, 1_000_000))
        else:
            threshold = self.number(rule, key, f"{path}.{key}", minimum=0)
        return OverflowRule(to=rule["to"], trigger=triggers[key], threshold=threshold)

    def step(self, body: Any, path: str) -> LadderStep:
        s = self.mapping(body, path, {"after_s", "tiers", "min_proficiency"})
        if "after_s" not in s:
            raise self.fail(s, "__self__", f"{path}.after_s", "required")
        tiers = s.get("tiers", [1])
        if isinstance(tiers, int):
            tiers = [tiers]
        if not isinstance(tiers, list) or not tiers or any(t not in (1, 2, 3) for t in tiers):
            raise self.fail(
                s,
                "tiers",
                f"{path}.tiers",
                "expected tiers from 1 (representative), 2 (specialist), 3 (supervisor)",
            )
        return LadderStep(
            after_s=self.number(s, "after_s", f"{path}.after_s"),
            tiers=frozenset(tiers),
            min_proficiency=(
                self.integer(s, "min_proficiency", f"{path}.min_proficiency", 1, 5)
                if "min_proficiency" in s
                else None
            ),
        )

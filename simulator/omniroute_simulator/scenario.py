"""Scenario files: who calls, when, what they need, and who answers.

Loaded from YAML and validated on load, like the routing configuration (with
its line-aware loader and field checks): every error names the file, the line
and the field. The result is plain frozen data the simulation reads.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from omniroute_router.config import CHANNELS, KINDS, ConfigError, LineLoader, Validator

DAY_S = 86400.0


class ScenarioError(ConfigError):
    """The scenario is invalid; the message says where and why."""


class Shape(StrEnum):
    EXPONENTIAL = "exponential"
    LOGNORMAL = "lognormal"
    CONSTANT = "constant"


@dataclass(frozen=True)
class Distribution:
    """A positive random duration: `mean` seconds; `sigma` is the lognormal's shape."""

    shape: Shape
    mean: float
    sigma: float = 0.0

    def sample(self, rng: random.Random) -> float:
        match self.shape:
            case Shape.EXPONENTIAL:
                return rng.expovariate(1 / self.mean) if self.mean > 0 else 0.0
            case Shape.LOGNORMAL:
                # Parametrised by its own mean: mu = ln(mean) - sigma^2 / 2.
                mu = math.log(self.mean) - self.sigma**2 / 2
                return rng.lognormvariate(mu, self.sigma)
            case Shape.CONSTANT:
                return self.mean


ZERO = Distribution(Shape.CONSTANT, 0.0)


@dataclass(frozen=True)
class RatePiece:
    """From `from_s` seconds into each day, `rate_per_hour` arrivals per hour."""

    from_s: float
    rate_per_hour: float


@dataclass(frozen=True)
class Stream:
    """One kind of contact arriving as a Poisson process."""

    name: str
    channel: str
    rates: tuple[RatePiece, ...]  # by time of day, sorted; one piece means constant
    kind: str = ""
    skills: dict[str, int] = field(default_factory=dict)
    language: str = ""
    segment: str = ""
    priority: int = 0
    patience: Distribution | None = None  # None: customers never abandon
    handle_time: Distribution | None = None  # None: the scenario's default

    def rate_at(self, t: float) -> float:
        """Arrivals per second at `t` seconds after the start (day 0, 00:00)."""
        day_t = t % DAY_S
        rate = self.rates[-1].rate_per_hour  # the last piece runs on past midnight
        for piece in self.rates:
            if piece.from_s <= day_t:
                rate = piece.rate_per_hour
        return rate / 3600

    def next_change(self, t: float) -> float:
        """When the rate next changes after `t` (infinity for a constant rate)."""
        if len(self.rates) == 1:
            return math.inf
        day = math.floor(t / DAY_S) * DAY_S
        for piece in self.rates:
            if day + piece.from_s > t:
                return day + piece.from_s
        return day + DAY_S + self.rates[0].from_s

    @property
    def mean_rate(self) -> float:
        """Arrivals per second averaged over a day."""
        if len(self.rates) == 1:
            return self.rates[0].rate_per_hour / 3600
        total = 0.0
        pieces = [*self.rates, RatePiece(DAY_S, 0.0)]
        for here, after in itertools.pairwise(pieces):
            total += here.rate_per_hour * (after.from_s - here.from_s)
        total += self.rates[-1].rate_per_hour * self.rates[0].from_s
        return total / 3600 / DAY_S


@dataclass(frozen=True)
class AgentGroup:
    """Agents alike in skills and behaviour."""

    name: str
    count: int
    skills: dict[str, int]
    capacity: dict[str, int]
    languages: tuple[str, ...] = ()
    tier: int = 1
    voice_blocks: bool = False  # a call blocks every other channel
    start_s: float = 0.0
    end_s: float = math.inf
    accept_delay: Distribution | None = None  # None: the scenario's
    decline_probability: float | None = None
    wrap_up: Distribution | None = None


@dataclass(frozen=True)
class Scenario:
    """A what-if: arrivals, staffing and behaviour over a simulated period."""

    workspace: str
    duration_s: float
    warmup_s: float
    arrivals: tuple[Stream, ...]
    agents: tuple[AgentGroup, ...]
    handle_time: Distribution
    accept_delay: Distribution = ZERO
    decline_probability: float = 0.0
    wrap_up: Distribution = ZERO
    follow_up_probability: float = 0.0
    follow_up_after: Distribution = Distribution(Shape.CONSTANT, DAY_S)
    escalation_probability: float = 0.0
    sample_s: float = 0.0  # 0: about 48 points over the run
    source: str = "<scenario>"

    def with_counts(self, counts: dict[str, int]) -> Scenario:
        """The same scenario with other head counts per agent group."""
        groups = tuple(
            AgentGroup(**{**g.__dict__, "count": counts.get(g.name, g.count)}) for g in self.agents
        )
        return Scenario(**{**self.__dict__, "agents": groups})


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror}") from None
    return parse(text, str(path))


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """Validate YAML text into a `Scenario`; errors say `source:line: field: problem`."""
    try:
        root = yaml.load(text, Loader=LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ScenarioError(f"{source}{line}: not valid YAML: {exc}") from None
    try:
        return _ScenarioValidator(source).scenario(root)
    except ScenarioError:
        raise
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None


_TOP = {
    "workspace",
    "duration_s",
    "warmup_s",
    "arrivals",
    "agents",
    "handle_time_s",
    "accept_delay_s",
    "decline_probability",
    "wrap_up_s",
    "follow_up_probability",
    "follow_up_after_s",
    "escalation_probability",
    "sample_s",
}


class _ScenarioValidator(Validator):
    """The routing configuration's field checks, and the scenario's own types."""

    def scenario(self, root: Any) -> Scenario:
        top = self.mapping(root, "(top level)", _TOP)
        for key in ("workspace", "duration_s", "arrivals", "agents", "handle_time_s"):
            if key not in top:
                raise self.fail(top, "__self__", key, "required")
        if not isinstance(top["workspace"], str) or not top["workspace"]:
            raise self.fail(top, "workspace", "workspace", "required text")
        duration = self.number(top, "duration_s", "duration_s", minimum=1)
        warmup = self.number(top, "warmup_s", "warmup_s") if "warmup_s" in top else 0.0
        if warmup >= duration:
            raise self.fail(top, "warmup_s", "warmup_s", "must be shorter than duration_s")
        streams = self.items(top, "arrivals", self.stream)
        names = [s.name for s in streams]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail(top["arrivals"][i], "name", f"arrivals[{i}].name", "duplicate name")
        groups = self.items(top, "agents", self.group)
        gnames = [g.name for g in groups]
        for i, name in enumerate(gnames):
            if name in gnames[:i]:
                raise self.fail(top["agents"][i], "name", f"agents[{i}].name", "duplicate name")
        kwargs: dict[str, Any] = {}
        for key, attr in (
            ("accept_delay_s", "accept_delay"),
            ("wrap_up_s", "wrap_up"),
            ("follow_up_after_s", "follow_up_after"),
        ):
            if key in top:
                kwargs[attr] = self.distribution(top, key, key)
        for key in ("decline_probability", "follow_up_probability", "escalation_probability"):
            if key in top:
                kwargs[key] = self.probability(top, key, key)
        if "sample_s" in top:
            kwargs["sample_s"] = self.number(top, "sample_s", "sample_s", minimum=1)
        return Scenario(
            workspace=top["workspace"],
            duration_s=duration,
            warmup_s=warmup,
            arrivals=streams,
            agents=groups,
            handle_time=self.distribution(top, "handle_time_s", "handle_time_s", positive=True),
            source=self.source,
            **kwargs,
        )

    def items(self, parent: Any, key: str, parse: Any) -> tuple[Any, ...]:
        value = parent[key]
        if not isinstance(value, list) or not value:
            raise self.fail(parent, key, key, "expected a non-empty list")
        return tuple(parse(item, f"{key}[{i}]") for i, item in enumerate(value))

    def probability(self, parent: Any, key: str, path: str) -> float:
        value = self.number(parent, key, path)
        if value > 1:
            raise self.fail(parent, key, path, f"expected a probability from 0 to 1, got {value}")
        return value

    def text(self, parent: Any, key: str, path: str, required: bool = False) -> str:
        if key not in parent:
            if required:
                raise self.fail(parent, "__self__", path, "required")
            return ""
        if not isinstance(parent[key], str) or (required and not parent[key]):
            raise self.fail(parent, key, path, "expected text")
        return str(parent[key])

    def distribution(
        self, parent: Any, key: str, path: str, positive: bool = False
    ) -> Distribution:
        """A number (constant) or {distribution, mean, sigma}."""
        value = parent[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < 0 or (positive and value == 0):
                raise self.fail(parent, key, path, f"expected a duration above 0, got {value!r}")
            return Distribution(Shape.CONSTANT, float(value))
        body = self.mapping(value, path, {"distribution", "mean", "sigma"})
        if "mean" not in body:
            raise self.fail(body, "__self__", f"{path}.mean", "required")
        try:
            shape = Shape(body.get("distribution", "exponential"))
        except ValueError:
            known = ", ".join(s.value for s in Shape)
            raise self.fail(
                body,
                "distribution",
                f"{path}.distribution",
                f"unknown distribution (known: {known})",
            ) from None
        mean = self.number(body, "mean", f"{path}.mean")
        if mean == 0 and (positive or shape is Shape.LOGNORMAL):
            raise self.fail(body, "mean", f"{path}.mean", "must be above 0")
        sigma = 0.0
        if shape is Shape.LOGNORMAL:
            if "sigma" not in body:
                raise self.fail(body, "__self__", f"{path}.sigma", "required for lognormal")
            sigma = self.number(body, "sigma", f"{path}.sigma")
        elif "sigma" in body:
            raise self.fail(body, "sigma", f"{path}.sigma", f"does not apply to {shape.value}")
        return Distribution(shape, mean, sigma)

    def skill_levels(self, parent: Any, key: str, path: str, default: int) -> dict[str, int]:
        """A list of skill names (at `default`) or a mapping skill -> level 1..5."""
        value = parent.get(key) or {}
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            if not all(isinstance(s, str) and s for s in value):
                raise self.fail(parent, key, path, "expected skill names")
            return dict.fromkeys(value, default)
        levels = self.mapping(value, path, None)
        return {str(s): self.integer(levels, s, f"{path}.{s}", 1, 5) for s in levels}

    def stream(self, body: Any, path: str) -> Stream:
        s = self.mapping(
            body,
            path,
            {
                "name",
                "rate_per_hour",
                "channel",
                "kind",
                "skills",
                "language",
                "segment",
                "priority",
                "patience_s",
                "handle_time_s",
            },
        )
        channel = self.text(s, "channel", f"{path}.channel", required=True)
        if channel not in CHANNELS:
            raise self.fail(
                s, "channel", f"{path}.channel", f"unknown channel (known: {', '.join(CHANNELS)})"
            )
        kind = self.text(s, "kind", f"{path}.kind")
        if kind and kind not in KINDS:
            raise self.fail(s, "kind", f"{path}.kind", f"unknown kind (known: {', '.join(KINDS)})")
        if "rate_per_hour" not in s:
            raise self.fail(s, "__self__", f"{path}.rate_per_hour", "required")
        return Stream(
            name=self.text(s, "name", f"{path}.name") or f"{channel}-{path}",
            channel=channel,
            rates=self.rates(s, f"{path}.rate_per_hour"),
            kind=kind,
            skills=self.skill_levels(s, "skills", f"{path}.skills", 1),
            language=self.text(s, "language", f"{path}.language"),
            segment=self.text(s, "segment", f"{path}.segment"),
            priority=self.integer(s, "priority", f"{path}.priority", 0, 10)
            if "priority" in s
            else 0,
            patience=self.distribution(s, "patience_s", f"{path}.patience_s", positive=True)
            if "patience_s" in s
            else None,
            handle_time=self.distribution(
                s, "handle_time_s", f"{path}.handle_time_s", positive=True
            )
            if "handle_time_s" in s
            else None,
        )

    def rates(self, parent: Any, path: str) -> tuple[RatePiece, ...]:
        """A number, or pieces by time of day: [{from_s: 0, rate_per_hour: 40}, ...]."""
        value = parent["rate_per_hour"]
        if not isinstance(value, list):
            return (RatePiece(0.0, self.number(parent, "rate_per_hour", path)),)
        if not value:
            raise self.fail(parent, "rate_per_hour", path, "expected a number or a list of pieces")
        pieces: list[RatePiece] = []
        for i, item in enumerate(value):
            piece = self.mapping(item, f"{path}[{i}]", {"from_s", "rate_per_hour"})
            for key in ("from_s", "rate_per_hour"):
                if key not in piece:
                    raise self.fail(piece, "__self__", f"{path}[{i}].{key}", "required")
            start = self.number(piece, "from_s", f"{path}[{i}].from_s")
            if start >= DAY_S or (pieces and start <= pieces[-1].from_s):
                raise self.fail(
                    piece,
                    "from_s",
                    f"{path}[{i}].from_s",
                    "pieces must start in increasing order within the day (0 to 86399)",
                )
            rate = self.number(piece, "rate_per_hour", f"{path}[{i}].rate_per_hour")
            pieces.append(RatePiece(start, rate))
        return tuple(pieces)

    def group(self, body: Any, path: str) -> AgentGroup:
        g = self.mapping(
            body,
            path,
            {
                "name",
                "count",
                "skills",
                "languages",
                "tier",
                "capacity",
                "start_s",
                "end_s",
                "accept_delay_s",
                "decline_probability",
                "wrap_up_s",
                "voice_blocks",
            },
        )
        if not isinstance(g.get("voice_blocks", False), bool):
            raise self.fail(g, "voice_blocks", f"{path}.voice_blocks", "expected true or false")
        name = self.text(g, "name", f"{path}.name", required=True)
        if "count" not in g:
            raise self.fail(g, "__self__", f"{path}.count", "required")
        capacity = self.mapping(g.get("capacity"), f"{path}.capacity", set(CHANNELS))
        if not capacity:
            raise self.fail(g, "capacity" if "capacity" in g else "__self__", f"{path}.capacity",
                            "required: slots per channel, e.g. {voice: 1}")  # fmt: skip
        start = self.number(g, "start_s", f"{path}.start_s") if "start_s" in g else 0.0
        end = self.number(g, "end_s", f"{path}.end_s") if "end_s" in g else math.inf
        if end <= start:
            raise self.fail(g, "end_s", f"{path}.end_s", "must be after start_s")
        languages = self.names(g, "languages", f"{path}.languages", None)
        return AgentGroup(
            name=name,
            count=self.integer(g, "count", f"{path}.count", 0, 100_000),
            skills=self.skill_levels(g, "skills", f"{path}.skills", 3),
            capacity={
                ch: self.integer(capacity, ch, f"{path}.capacity.{ch}", 0, 1000) for ch in capacity
            },
            languages=tuple(sorted(languages)),
            tier=self.integer(g, "tier", f"{path}.tier", 1, 3) if "tier" in g else 1,
            voice_blocks=g.get("voice_blocks", False),
            start_s=start,
            end_s=end,
            accept_delay=self.distribution(g, "accept_delay_s", f"{path}.accept_delay_s")
            if "accept_delay_s" in g
            else None,
            decline_probability=self.probability(
                g, "decline_probability", f"{path}.decline_probability"
            )
            if "decline_probability" in g
            else None,
            wrap_up=self.distribution(g, "wrap_up_s", f"{path}.wrap_up_s")
            if "wrap_up_s" in g
            else None,
        )

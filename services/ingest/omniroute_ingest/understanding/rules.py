"""Classification rules per workspace: keywords and patterns to kind, skills and priority.

The configuration (YAML, `INGEST_RULES_PATH`) looks like:

    workspaces:
      "*":                      # every workspace, after its own rules
        rules:
          - name: outage
            kind: service_problem
            keywords: [outage, "no signal", "not working"]
            patterns: ['\\bdown since\\b']
            skills: [{name: technical, min_proficiency: 2}]
            priority: 5
        sentiment: {angry_below: -0.6, priority_boost: 2, min_tier: 2}
        ivr:                    # voice: what the caller's menu digits select
          "1": {kind: order, skills: [sales]}
          "2": {kind: service_problem, skills: [{name: technical, min_proficiency: 2}]}
      acme:
        rules: [...]

Rules are tried in order (the workspace's own first, then "*"); the first
that matches decides. Keywords match whole words, case-insensitively;
patterns are regular expressions (case-insensitive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from omniroute_ingest.schemas import KINDS


class RulesError(ValueError):
    """The rules file is not valid; the message says where."""


@dataclass(frozen=True)
class Rule:
    """One classification rule."""

    name: str
    kind: str = ""  # short kind name ("complaint"); empty = leave the kind alone
    keywords: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    skills: tuple[tuple[str, int], ...] = ()
    priority: int = 0

    def match(self, text: str) -> str | None:
        """What matched in `text` (the keyword or pattern, from the configuration), or None."""
        lowered = text.lower()
        for keyword in self.keywords:
            if re.search(r"(?<!\w)" + re.escape(keyword) + r"(?!\w)", lowered):
                return keyword
        for pattern in self.patterns:
            if pattern.search(text):
                return pattern.pattern
        return None


@dataclass(frozen=True)
class SentimentPolicy:
    """What a clearly angry message does: VADER compound score below `angry_below`."""

    angry_below: float = -0.6
    priority_boost: int = 2
    min_tier: int = 0  # 0 = no tier requirement; 2 = specialist, 3 = supervisor


@dataclass(frozen=True)
class WorkspaceRules:
    """The rules and sentiment policy of one workspace."""

    rules: tuple[Rule, ...] = ()
    sentiment: SentimentPolicy | None = None
    ivr: dict[str, Rule] = field(default_factory=dict)  # IVR digits -> what they select


@dataclass(frozen=True)
class RuleBook:
    """Every workspace's rules; "*" applies to all workspaces (after their own)."""

    workspaces: dict[str, WorkspaceRules] = field(default_factory=dict)

    def rules_for(self, workspace: str) -> tuple[Rule, ...]:
        """The workspace's rules, then the shared ones."""
        own = self.workspaces.get(workspace, WorkspaceRules()).rules
        shared = self.workspaces.get("*", WorkspaceRules()).rules
        return own + shared

    def ivr_for(self, workspace: str, digits: str) -> Classification | None:
        """What the caller selected with `digits` in the IVR (workspace's menu, then "*")."""
        for name in (workspace, "*"):
            ws = self.workspaces.get(name)
            if ws is not None and digits in ws.ivr:
                rule = ws.ivr[digits]
                return Classification(rule.name, rule.kind, digits, rule.skills, rule.priority)
        return None

    def sentiment_for(self, workspace: str) -> SentimentPolicy:
        """The workspace's sentiment policy, else the shared one, else the default."""
        for name in (workspace, "*"):
            ws = self.workspaces.get(name)
            if ws is not None and ws.sentiment is not None:
                return ws.sentiment
        return SentimentPolicy()


@dataclass(frozen=True)
class Classification:
    """The outcome of the rules for one text."""

    rule: str
    kind: str
    matched: str
    skills: tuple[tuple[str, int], ...]
    priority: int


def classify(text: str, rules: tuple[Rule, ...]) -> Classification | None:
    """The first rule matching `text`, or None."""
    for rule in rules:
        matched = rule.match(text)
        if matched is not None:
            return Classification(rule.name, rule.kind, matched, rule.skills, rule.priority)
    return None


def parse_rule_book(data: Any) -> RuleBook:
    """A `RuleBook` from the parsed YAML; raises `RulesError` naming the bad entry."""
    if data is None:
        return RuleBook()
    if not isinstance(data, dict) or not isinstance(data.get("workspaces", {}), dict):
        raise RulesError("top level must be a mapping with a 'workspaces' mapping")
    workspaces: dict[str, WorkspaceRules] = {}
    for ws_name, ws in (data.get("workspaces") or {}).items():
        where = f"workspaces.{ws_name}"
        if not isinstance(ws, dict):
            raise RulesError(f"{where}: must be a mapping")
        rules = tuple(
            _parse_rule(r, f"{where}.rules[{i}]") for i, r in enumerate(ws.get("rules") or [])
        )
        sentiment = None
        if ws.get("sentiment") is not None:
            s = ws["sentiment"]
            try:
                sentiment = SentimentPolicy(
                    angry_below=float(s.get("angry_below", -0.6)),
                    priority_boost=int(s.get("priority_boost", 2)),
                    min_tier=int(s.get("min_tier", 0)),
                )
            except (AttributeError, TypeError, ValueError) as exc:
                raise RulesError(f"{where}.sentiment: {exc}") from None
        ivr_data = ws.get("ivr") or {}
        if not isinstance(ivr_data, dict):
            raise RulesError(f"{where}.ivr: must be a mapping of digits to selections")
        ivr = {
            str(digits): _parse_rule(
                {"name": f"ivr-{digits}", **(sel or {})}, f"{where}.ivr.{digits}"
            )
            for digits, sel in ivr_data.items()
        }
        workspaces[str(ws_name)] = WorkspaceRules(rules, sentiment, ivr)
    return RuleBook(workspaces)


def _parse_rule(data: Any, where: str) -> Rule:
    if not isinstance(data, dict) or not data.get("name"):
        raise RulesError(f"{where}: a mapping with a name is required")
    kind = str(data.get("kind", "")).lower().removeprefix("inquiry_kind_")
    if kind and kind not in KINDS:
        raise RulesError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    try:
        patterns = tuple(re.compile(p, re.IGNORECASE) for p in data.get("patterns") or [])
    except re.error as exc:
        raise RulesError(f"{where}.patterns: {exc}") from None
    skills = []
    for j, skill in enumerate(data.get("skills") or []):
        if isinstance(skill, str):
            skill = {"name": skill}
        level = int(skill.get("min_proficiency", 1)) if isinstance(skill, dict) else 0
        if not isinstance(skill, dict) or not skill.get("name") or not 1 <= level <= 5:
            raise RulesError(f"{where}.skills[{j}]: name and min_proficiency 1-5 required")
        skills.append((str(skill["name"]), level))
    priority = int(data.get("priority", 0))
    if not 0 <= priority <= 10:
        raise RulesError(f"{where}.priority: must be 0-10")
    return Rule(
        name=str(data["name"]),
        kind=kind,
        keywords=tuple(str(k).lower() for k in data.get("keywords") or []),
        patterns=patterns,
        skills=tuple(skills),
        priority=priority,
    )

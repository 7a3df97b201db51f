"""The PromQL of deploy/: rules and dashboard expressions, and the metric names they use.

Shared by the metric-name check (names against a live scrape) and the
Prometheus end-to-end test (the dashboard's queries against a real server).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it comes from."""

    where: str
    expr: str


def rule_files() -> list[Path]:
    """Every rule file Prometheus loads."""
    return sorted((PROMETHEUS / "rules").glob("*.yml"))


def rules() -> Iterator[dict[str, Any]]:
    """Every recording and alerting rule."""
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def recorded_names() -> set[str]:
    """Names of the recording rules."""
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboard_expressions() -> list[Expression]:
    """Every query of every provisioned dashboard (panels and template variables)."""
    found: list[Expression] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append(Expression(f"{path.name}: {panel['title']}", target["expr"]))
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            text = query.get("query") if isinstance(query, dict) else query
            if text:
                found.append(Expression(f"{path.name}: ${variable['name']}", text))
    return found


def rule_expressions() -> list[Expression]:
    """The expression of every rule."""
    return [
        Expression(f"rule {rule.get('record') or rule.get('alert')}", rule["expr"])
        for rule in rules()
    ]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def referenced_names(expr: str) -> tuple[set[str], set[str]]:
    """(omniroute metric names, recording-rule names) an expression refers to.

    Strings (label values, regexes) are dropped first; an identifier with a
    colon is a recording rule, one starting with `omniroute_` an exported metric.
    """
    identifiers = set(_IDENTIFIER.findall(_STRING.sub('""', expr)))
    recorded = {name for name in identifiers if ":" in name}
    metrics = {name for name in identifiers - recorded if name.startswith("omniroute_")}
    return metrics, recorded


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
}


def exported_names(exposition: str) -> set[str]:
    """Every series name an exposition declares, labelled series never observed included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names

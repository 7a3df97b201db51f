"""Every metric the rules and the dashboard use is one the services really export.

The services run as real processes (`System(broker).start()`); their /metrics
endpoints are scraped once they are ready, and every `omniroute_*` name in a
rule or dashboard query must appear there (histogram `_bucket/_sum/_count` and
counter `_total` series included). Recording-rule names must be defined.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from omniroute.embedded import Broker
from tests.support.promql import (
    DASHBOARDS,
    dashboard_expressions,
    exported_names,
    recorded_names,
    referenced_names,
    rule_expressions,
)
from tests.support.system import System, running
from tests.support.tiers import embedded_tier_only

# The subject is the names the services export, which do not depend on the broker.
pytestmark = [pytest.mark.integration, embedded_tier_only]


@pytest.fixture(scope="module")
def system(broker: Broker) -> Iterator[System]:
    for started in running(System(broker)):
        started.start_desk()
        yield started


def metrics_urls(system: System) -> dict[str, str]:
    return {
        "router": f"http://127.0.0.1:{system.ports['router_metrics']}/metrics",
        "agent-state": f"http://127.0.0.1:{system.ports['agent_state_metrics']}/metrics",
        "ingest": f"{system.ingest_url}/metrics",
        "desk": f"{system.desk_url}/metrics",
    }


@pytest.fixture(scope="module")
def exported(system: System) -> set[str]:
    names: set[str] = set()
    for service, url in metrics_urls(system).items():
        with urllib.request.urlopen(url, timeout=5) as response:
            found = exported_names(response.read().decode())
        own = {n for n in found if n.startswith(f"omniroute_{service.replace('-', '_')}_")}
        assert own, f"{service} exports no omniroute_{service.replace('-', '_')}_* metric"
        names |= found
    return names


def test_the_dashboards_parse() -> None:
    dashboards = sorted(DASHBOARDS.glob("*.json"))
    assert dashboards
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]


def test_rules_and_dashboards_use_only_exported_metrics(exported: set[str]) -> None:
    recorded = recorded_names()
    expressions = rule_expressions() + dashboard_expressions()
    assert len(expressions) > 20
    missing: list[str] = []
    for expression in expressions:
        metrics, rules = referenced_names(expression.expr)
        missing += [f"{expression.where}: metric {m}" for m in sorted(metrics - exported)]
        missing += [f"{expression.where}: recording rule {r}" for r in sorted(rules - recorded)]
    assert not missing, "not exported / not recorded:\n" + "\n".join(missing)


def test_every_exported_family_is_shown_or_alerted_on(exported: set[str]) -> None:
    """Nothing a service measures is forgotten by the dashboard and rules (or listed here)."""
    used: set[str] = set()
    for expression in rule_expressions() + dashboard_expressions():
        used |= referenced_names(expression.expr)[0]
    used_families = {_family(name) for name in used}
    not_shown = {
        _family(name)
        for name in exported
        if name.startswith("omniroute_") and _family(name) not in used_families
    }
    # Kept for investigation (README metrics table), not on the operations dashboard.
    assert not_shown <= DETAIL_ONLY, sorted(not_shown - DETAIL_ONLY)


def _family(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count", "_total", "_created"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


DETAIL_ONLY = {
    "omniroute_ingest_received",
    "omniroute_ingest_duplicates",
    "omniroute_ingest_abandoned",
    "omniroute_agent_state_task_events",
    "omniroute_agent_state_open_reservations",
    "omniroute_agent_state_desktop_sessions",
    "omniroute_agent_state_recovery_gaps",
    "omniroute_agent_state_write_round_records",
    "omniroute_agent_state_recovery_records",
    "omniroute_agent_state_recovery_seconds",
    "omniroute_agent_state_checkpoints",
    "omniroute_router_events",
    "omniroute_router_batch_events",
    "omniroute_router_conversation_messages",
    "omniroute_router_message_redeliveries",
    "omniroute_router_offers_open",
    "omniroute_router_follow_ups",
    "omniroute_router_overflows",
    "omniroute_router_transfers",
    "omniroute_router_closed_arrivals",
    "omniroute_router_callbacks",
    "omniroute_ingest_callbacks",
    "omniroute_desk_streams",
    "omniroute_desk_actions",
    "omniroute_desk_unauthenticated",
}

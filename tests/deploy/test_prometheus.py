"""The Prometheus configuration, rules and rule unit tests pass promtool.

promtool comes with Debian's `prometheus` package, which `make test` installs
when it can (.ci/ensure-tools); where it cannot, these tests are skipped and the
session summary says so (tests/support/tools.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import tools

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = tools.require("promtool")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS
    )


def rule_files() -> list[str]:
    return sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "rules").glob("*.yml"))


def test_the_scrape_configuration_is_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 rule files found" in result.stdout + result.stderr


def test_the_rules_are_valid() -> None:
    result = promtool("check", "rules", *rule_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass() -> None:
    tests = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests, "no promtool rule tests in deploy/prometheus/tests"
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_runbook_and_a_unit_test() -> None:
    import yaml

    alerts: dict[str, dict[str, object]] = {}
    for name in rule_files():
        for group in yaml.safe_load((PROMETHEUS / name).read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    assert alerts
    tested_firing: set[str] = set()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test") or []:
                if case["exp_alerts"]:
                    tested_firing.add(case["alertname"])
    for name, rule in alerts.items():
        annotations = rule.get("annotations") or {}
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook"} <= set(annotations), name
        labels = rule.get("labels") or {}
        assert isinstance(labels, dict) and labels.get("severity") in {"warning", "critical"}, name
    assert set(alerts) - tested_firing == set(), "alerts no promtool test shows firing"

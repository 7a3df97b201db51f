"""Scenario files: validated on load, errors naming file, line and field."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from omniroute_router import config as routing_config
from omniroute_simulator.scenario import ScenarioError, Shape, load, parse

EXAMPLES = Path(__file__).parents[2] / "simulator" / "examples"

MINIMAL = """\
workspace: acme
duration_s: 3600
handle_time_s: 180
arrivals:
  - {channel: voice, rate_per_hour: 100}
agents:
  - {name: reps, count: 3, capacity: {voice: 1}}
"""


SCENARIOS = sorted(p for p in EXAMPLES.glob("*.yaml") if "routing" not in p.name)
ROUTINGS = sorted(p for p in EXAMPLES.glob("*.yaml") if "routing" in p.name)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_example_scenario_loads(path: Path) -> None:
    scenario = load(path)
    assert scenario.arrivals and scenario.agents


@pytest.mark.parametrize("path", ROUTINGS, ids=lambda p: p.name)
def test_every_example_routing_configuration_loads(path: Path) -> None:
    assert routing_config.load(path).workspaces


def test_defaults_of_a_minimal_scenario() -> None:
    s = parse(MINIMAL)
    assert s.warmup_s == 0
    assert s.handle_time.shape is Shape.CONSTANT and s.handle_time.mean == 180
    assert s.arrivals[0].patience is None  # customers never abandon
    assert s.accept_delay.mean == 0
    assert s.agents[0].tier == 1 and s.agents[0].end_s == math.inf


@pytest.mark.parametrize(
    ("change", "line", "field", "problem"),
    [
        (("duration_s: 3600", "duration_s: -1"), 2, "duration_s", "expected a number"),
        (("handle_time_s: 180", "handle_time_s: {distribution: gamma, mean: 3}"), 3,
         "handle_time_s.distribution", "unknown distribution"),
        (("handle_time_s: 180", "handle_time_s: {distribution: lognormal, mean: 3}"), 3,
         "handle_time_s.sigma", "required for lognormal"),
        (("channel: voice", "channel: pigeon"), 5, "arrivals[0].channel", "unknown channel"),
        (("rate_per_hour: 100", "rate_per_hour: many"), 5, "arrivals[0].rate_per_hour",
         "expected a number"),
        (("count: 3", "count: 2.5"), 7, "agents[0].count", "expected a whole number"),
        (("capacity: {voice: 1}", "capacity: {telex: 1}"), 7, "agents[0].capacity.telex",
         "unknown field"),
        (("workspace: acme", "workspace: acme\nbudget: 5"), 2, "(top level).budget",
         "unknown field"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_field(
    change: tuple[str, str], line: int, field: str, problem: str
) -> None:
    text = MINIMAL.replace(*change)
    with pytest.raises(ScenarioError) as caught:
        parse(text, "plan.yaml")
    message = str(caught.value)
    assert message.startswith(f"plan.yaml:{line}: {field}: "), message
    assert problem in message


def test_piecewise_rates_by_time_of_day() -> None:
    s = parse(
        MINIMAL.replace(
            "rate_per_hour: 100",
            "rate_per_hour: [{from_s: 0, rate_per_hour: 60}, {from_s: 43200, rate_per_hour: 180}]",
        )
    )
    stream = s.arrivals[0]
    assert stream.rate_at(100) == pytest.approx(60 / 3600)
    assert stream.rate_at(50000) == pytest.approx(180 / 3600)
    assert stream.rate_at(86400 + 100) == pytest.approx(60 / 3600)  # the next day
    assert stream.next_change(100) == 43200
    assert stream.next_change(50000) == 86400
    assert stream.mean_rate == pytest.approx(120 / 3600)


def test_pieces_out_of_order_are_refused() -> None:
    text = MINIMAL.replace(
        "rate_per_hour: 100",
        "rate_per_hour: [{from_s: 600, rate_per_hour: 1}, {from_s: 60, rate_per_hour: 2}]",
    )
    with pytest.raises(ScenarioError, match=r"arrivals\[0\]\.rate_per_hour\[1\]\.from_s"):
        parse(text)


def test_lognormal_keeps_its_stated_mean() -> None:
    s = parse(MINIMAL.replace("handle_time_s: 180", "handle_time_s: {distribution: lognormal, mean: 200, sigma: 0.8}"))  # fmt: skip
    rng = random.Random(3)
    draws = [s.handle_time.sample(rng) for _ in range(40000)]
    assert sum(draws) / len(draws) == pytest.approx(200, rel=0.03)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load(tmp_path / "absent.yaml")

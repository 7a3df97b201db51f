"""Routing configuration: the shipped example loads; errors name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniroute_router import config

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_configuration_loads() -> None:
    loaded = config.load(ROOT / "deploy" / "routing.example.yaml")
    acme = loaded.for_workspace("acme")
    assert acme is not None
    assert [q.name for q in acme.queues] == [
        "complaints", "billing", "technical", "sales", "returns", "general",
    ]  # fmt: skip
    assert acme.service_levels["voice"] == 20
    billing = acme.queues[1]
    assert [(s.after_s, sorted(s.tiers), s.min_proficiency) for s in billing.ladder] == [
        (0, [1], 3), (30, [1], 1), (90, [1, 2], None), (300, [1, 2, 3], None),
    ]  # fmt: skip
    assert loaded.for_workspace("somewhere-else") is loaded.default


def test_no_file_means_one_queue_for_everything() -> None:
    default = config.RoutingConfig().for_workspace("any")
    assert default is not None and [q.name for q in default.queues] == ["default"]


def test_an_empty_default_rejects_unknown_workspaces() -> None:
    loaded = config.parse("workspaces:\n  acme: {}\n")
    assert loaded.for_workspace("acme") is not None
    assert loaded.for_workspace("other") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "workspaces:\n  acme:\n    colour: red\n",
            "cfg.yaml:3: workspaces.acme.colour: unknown field",
        ),
        (
            "workspaces:\n  acme:\n    queues:\n      - name: q\n        strategy: fastest\n",
            "cfg.yaml:5: workspaces.acme.queues[0].strategy: unknown strategy 'fastest'",
        ),
        (
            "workspaces:\n  acme:\n    queues:\n      - name: q\n        ladder:\n"
            "          - {after_s: 0}\n          - {after_s: 0, tiers: [2]}\n",
            "cfg.yaml:7: workspaces.acme.queues[0].ladder[1].after_s: steps must wait strictly longer",
        ),
        (
            "workspaces:\n  acme:\n    queues:\n      - name: q\n        ladder:\n          - {after_s: 0, tiers: [4]}\n",
            "cfg.yaml:6: workspaces.acme.queues[0].ladder[0].tiers: expected tiers",
        ),
        (
            "workspaces:\n  acme:\n    service_levels: {pigeon: 5}\n",
            "cfg.yaml:3: workspaces.acme.service_levels.pigeon: unknown field",
        ),
        (
            "workspaces:\n  acme:\n    service_levels: {voice: -1}\n",
            "cfg.yaml:3: workspaces.acme.service_levels.voice: expected a number >= 0",
        ),
        (
            "workspaces:\n  acme:\n    queues:\n      - name: a\n      - name: a\n",
            "cfg.yaml:5: workspaces.acme.queues[1].name: duplicate queue 'a'",
        ),
        (
            "workspaces:\n  acme:\n    priority_rules:\n      - kinds: [complaint]\n",
            "cfg.yaml:4: workspaces.acme.priority_rules[0].boost: required",
        ),
        ("workspaces: [\n", "cfg.yaml:2: not valid YAML"),
    ],
)
def test_errors_name_the_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as error:
        config.parse(text, "cfg.yaml")
    assert str(error.value).startswith(message), str(error.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="cannot read routing configuration"):
        config.load(tmp_path / "nope.yaml")

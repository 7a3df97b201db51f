"""Routing configuration: the shipped example loads; errors name file, line and field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from omniroute_router import config
from omniroute_router.hours import ClosedPolicy
from omniroute_router.overflow import OverflowRule, Trigger

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
    northwind = loaded.for_workspace("northwind")
    assert northwind is not None
    phone = northwind.queues[1]
    assert phone.hours is not None and phone.hours.after_hours_queue == "overnight"
    assert phone.hours.policy("chat") is ClosedPolicy.AFTER_HOURS
    assert phone.hours.policy("voice") is ClosedPolicy.CALLBACK
    assert phone.hours.policy("email") is ClosedPolicy.HOLD
    assert [(r.to, r.trigger, r.threshold) for r in phone.overflow] == [
        ("overflow-team", Trigger.WAIT, 600),
        ("overflow-team", Trigger.DEPTH, 25),
        ("overflow-team", Trigger.ESTIMATED_WAIT, 300),
    ]


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


QUEUE_RULES = """\
workspaces:
  acme:
    queues:
      - name: day
        hours:
          timezone: Europe/Madrid
          weekly:
            mon-fri: ["08:00-14:00", "15:00-20:00"]
            sat: "10:00-14:00"
            sun: closed
          exceptions:
            2026-12-25: closed
            "2026-12-24": ["08:00-13:00"]
          when_closed: {default: hold, chat: after_hours_queue, voice: callback}
          after_hours_queue: night
        overflow:
          - {to: night, after_wait_s: 600}
          - {to: night, depth_above: 50}
          - {to: night, estimated_wait_above_s: 900}
      - name: night
"""


def test_hours_and_overflow_are_read() -> None:
    acme = config.parse(QUEUE_RULES).for_workspace("acme")
    assert acme is not None
    day = acme.queues[0]
    assert day.hours is not None and day.hours.timezone == "Europe/Madrid"
    assert day.hours.weekly[0] == ((480, 840), (900, 1200))
    assert day.hours.weekly[4] == day.hours.weekly[0]
    assert day.hours.weekly[5] == ((600, 840),) and day.hours.weekly[6] == ()
    assert day.hours.exceptions == {date(2026, 12, 25): (), date(2026, 12, 24): ((480, 780),)}
    assert day.hours.policy("chat") is ClosedPolicy.AFTER_HOURS
    assert day.hours.policy("voice") is ClosedPolicy.CALLBACK
    assert day.hours.policy("email") is ClosedPolicy.HOLD
    assert day.hours.after_hours_queue == "night"
    assert day.overflow == (
        OverflowRule("night", Trigger.WAIT, 600),
        OverflowRule("night", Trigger.DEPTH, 50),
        OverflowRule("night", Trigger.ESTIMATED_WAIT, 900),
    )
    assert acme.queues[1].hours is None and acme.queues[1].overflow == ()


def test_queues_accept_transfers_unless_they_say_not() -> None:
    parsed = config.parse(_rules("        accepts_transfers: false\n"), "cfg.yaml")
    workspace = parsed.for_workspace("acme")
    assert workspace is not None
    assert [(q.name, q.accepts_transfers) for q in workspace.queues] == [
        ("q", False),
        ("night", True),
    ]


def test_a_weekday_range_wraps_over_the_week() -> None:
    text = "workspaces:\n  a:\n    queues:\n      - name: q\n        hours:\n          timezone: UTC\n          weekly: {fri-mon: '00:00-24:00'}\n"  # fmt: skip
    queue = config.parse(text).workspaces["a"].queues[0]
    assert queue.hours is not None
    assert [bool(day) for day in queue.hours.weekly] == [
        True,
        False,
        False,
        False,
        True,
        True,
        True,
    ]


def _rules(hours: str = "", overflow: str = "") -> str:
    return (
        "workspaces:\n  acme:\n    queues:\n      - name: q\n"
        + hours
        + overflow
        + "      - name: night\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _rules("        hours: {weekly: {mon: '08:00-18:00'}}\n"),
            "cfg.yaml:5: workspaces.acme.queues[0].hours.timezone: required",
        ),
        (
            _rules("        hours:\n          timezone: Mars/Olympus\n"),
            "cfg.yaml:6: workspaces.acme.queues[0].hours.timezone: unknown timezone",
        ),
        (
            _rules(
                "        hours:\n          timezone: UTC\n          weekly:\n            monday: '08:00-18:00'\n"
            ),
            "cfg.yaml:8: workspaces.acme.queues[0].hours.weekly.monday: expected a weekday",
        ),
        (
            _rules(
                "        hours:\n          timezone: UTC\n          weekly:\n            mon: '8-18'\n"
            ),
            "cfg.yaml:8: workspaces.acme.queues[0].hours.weekly.mon: expected HH:MM-HH:MM",
        ),
        (
            _rules(
                "        hours:\n          timezone: UTC\n          weekly:\n            mon-fri: '08:00-18:00'\n            wed: closed\n"
            ),
            "cfg.yaml:9: workspaces.acme.queues[0].hours.weekly.wed: wed is given twice",
        ),
        (
            _rules(
                "        hours:\n          timezone: UTC\n          weekly:\n            mon: ['08:00-12:00', '11:00-13:00']\n"
            ),
            "cfg.yaml:8: workspaces.acme.queues[0].hours.weekly.mon: intervals must be in order",
        ),
        (
            _rules(
                "        hours:\n          timezone: UTC\n          exceptions:\n            christmas: closed\n"
            ),
            "cfg.yaml:8: workspaces.acme.queues[0].hours.exceptions.christmas: expected a date",
        ),
        (
            _rules(
                "        hours:\n          timezone: UTC\n          when_closed: {chat: voicemail}\n"
            ),
            "cfg.yaml:7: workspaces.acme.queues[0].hours.when_closed.chat: unknown policy 'voicemail'",
        ),
        (
            _rules(
                "        hours:\n          timezone: UTC\n          when_closed: {chat: after_hours_queue}\n"
            ),
            "cfg.yaml:7: workspaces.acme.queues[0].hours.after_hours_queue: required",
        ),
        (
            _rules(
                "        hours:\n          timezone: UTC\n          after_hours_queue: nowhere\n"
            ),
            "cfg.yaml:7: workspaces.acme.queues[0].hours.after_hours_queue: 'nowhere' is not another queue",
        ),
        (
            _rules(overflow="        overflow:\n          - {to: q, after_wait_s: 60}\n"),
            "cfg.yaml:6: workspaces.acme.queues[0].overflow[0].to: 'q' is not another queue",
        ),
        (
            _rules(overflow="        overflow:\n          - {to: night}\n"),
            "cfg.yaml:6: workspaces.acme.queues[0].overflow[0]: expected exactly one of",
        ),
        (
            _rules(
                overflow="        overflow:\n          - {to: night, after_wait_s: 1, depth_above: 3}\n"
            ),
            "cfg.yaml:6: workspaces.acme.queues[0].overflow[0]: expected exactly one of",
        ),
        (
            _rules("        accepts_transfers: maybe\n"),
            "cfg.yaml:5: workspaces.acme.queues[0].accepts_transfers: expected true or false",
        ),
        (
            _rules(overflow="        overflow:\n          - {to: night, depth_above: -1}\n"),
            "cfg.yaml:6: workspaces.acme.queues[0].overflow[0].depth_above: expected a whole number",
        ),
    ],
)
def test_queue_rule_errors_name_the_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as error:
        config.parse(text, "cfg.yaml")
    assert str(error.value).startswith(message), str(error.value)

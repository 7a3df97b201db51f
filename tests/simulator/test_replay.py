"""Replays of a recorded period from an exported file, and the command line around them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from omniroute_simulator import replay
from omniroute_simulator.__main__ import main
from omniroute_simulator.scenario import load

EXAMPLES = Path(__file__).parents[2] / "simulator" / "examples"
T0 = 1_763_900_000.0


def recorded_period(calls: int = 120) -> list[dict[str, object]]:
    """Calls every 30 s; answered after 5 s and handled 170 s, every tenth hangs up after 40 s."""
    events: list[dict[str, object]] = []
    for i in range(calls):
        at = T0 + 30 * i
        inquiry = f"q{i}"
        events.append({"type": "inquiry", "at": at, "id": inquiry, "workspace": "acme",
                       "channel": "voice", "skills": {"billing": 1}, "language": "en"})  # fmt: skip
        if i % 10 == 9:
            events.append({"type": "task", "at": at + 40, "inquiry_id": inquiry,
                           "workspace": "acme", "event": "abandoned"})  # fmt: skip
            continue
        for kind, delay in (("offered", 4), ("accepted", 5), ("completed", 175)):
            events.append({"type": "task", "at": at + delay, "inquiry_id": inquiry,
                           "workspace": "acme", "event": kind, "agent_id": "a1"})  # fmt: skip
    events.append({"type": "inquiry", "at": T0, "id": "other", "workspace": "elsewhere",
                   "channel": "chat"})  # fmt: skip
    return events


def test_a_recording_keeps_arrivals_handle_times_and_patience(tmp_path: Path) -> None:
    path = tmp_path / "period.jsonl"
    assert replay.write_file(path, recorded_period()) == 120 + 12 + 108 * 3 + 1
    scenario = load(EXAMPLES / "contact-centre.yaml")
    rec = replay.recording(replay.read_file(path), scenario)
    assert len(rec.contacts) == 120  # the other workspace left out
    assert rec.contacts[0][0] == 0 and rec.contacts[1][0] == 30
    answered = [c for _, c in rec.contacts if c.id != "q9"]
    assert answered[0].handle_s == pytest.approx(170) and math.isinf(answered[0].patience_s)
    q9 = next(c for _, c in rec.contacts if c.id == "q9")
    assert q9.patience_s == pytest.approx(40)
    assert rec.recorded_waits["q0"] == pytest.approx(5)
    assert "q9" in rec.abandoned


def test_the_period_can_be_cut(tmp_path: Path) -> None:
    scenario = load(EXAMPLES / "contact-centre.yaml")
    rec = replay.recording(recorded_period(), scenario, since=T0 + 600, until=T0 + 1200)
    assert [c.id for _, c in rec.contacts] == [f"q{i}" for i in range(20, 40)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "inquiry", "at": 1, "workspace": "w", "id": "x", "channel": "pigeon"}',
         "channel: missing or invalid"),
        ('{"type": "task", "at": 1, "workspace": "w", "inquiry_id": "x", "event": "sneezed"}',
         "event: missing or invalid"),
        ('{"type": "inquiry", "workspace": "w", "id": "x", "channel": "voice"}',
         "at: missing or invalid"),
        ('{"type": "inquiry", "at": 1, "workspace": "w", "id": "x", "channel": "voice", "skills": {"a": 9}}',
         "skills: expected skill -> level 1..5"),
    ],
)  # fmt: skip
def test_a_bad_line_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "period.jsonl"
    good = json.dumps(recorded_period()[0])
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(replay.RecordingError) as caught:
        replay.read_file(path)
    assert str(caught.value).startswith(f"{path}:3: ")
    assert message in str(caught.value)


def test_replay_compares_two_routing_configurations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "period.jsonl"
    replay.write_file(path, recorded_period(240))
    out = tmp_path / "replay"
    code = main(
        [
            "replay",
            "--file", str(path),
            "--routing", str(EXAMPLES / "contact-centre-routing.yaml"),
            "--compare-routing", str(EXAMPLES / "contact-centre-routing-pooled.yaml"),
            "--scenario", str(EXAMPLES / "contact-centre.yaml"),
            "--replications", "2",
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Replay of 240 contacts" in printed
    for column in ("recorded", "simulated as recorded", "simulated alternative"):
        assert column in printed
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["recorded"]["overall"]["offered"]["mean"] == 240
    assert comparison["recorded"]["overall"]["abandoned"]["mean"] == 24
    for label in ("simulated as recorded", "simulated alternative"):
        assert comparison[label]["overall"]["offered"]["mean"] == 240
    assert (out / "as-recorded" / "report.html").exists()
    assert (out / "alternative" / "summary.json").exists()


def test_run_writes_summary_csvs_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "run",
            "--routing", str(EXAMPLES / "contact-centre-routing.yaml"),
            "--scenario", str(EXAMPLES / "contact-centre.yaml"),
            "--replications", "2",
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    data = json.loads((out / "summary.json").read_text())
    assert data["run"]["replications"] == 2
    assert set(data["queues"]) == {"billing-voice", "tech-voice", "chat", "email"}
    assert set(data["agent_groups"]) == {"early-reps", "late-reps", "tech-reps", "specialists", "supervisors"}  # fmt: skip
    assert data["overall"]["service_level"]["ci95"] > 0
    rows = (out / "queue-chat.csv").read_text().splitlines()
    assert len(rows) == 1 + 36000 // 900  # a header, then one row per 15 minutes
    header = rows[0]
    assert header == "from_s,to_s,offered,answered,within_target,abandoned,waiting,service_level"
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 5
    assert "Service level over time" in html and "Wait distribution" in html
    assert "service_level" in capsys.readouterr().out


def test_erlang_command_prints_the_textbook_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["erlang", "--calls-per-hour", "200", "--handle-s", "180", "--agents", "14"]) == 0
    assert "0.17413" in capsys.readouterr().out
    assert main(["erlang", "--calls-per-hour", "200", "--handle-s", "180", "--agents", "14",
                 "--patience-s", "300"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "0.14526" in printed and "0.916792" in printed and "0.013984" in printed
    assert main(["erlang", "--calls-per-hour", "1080", "--handle-s", "300", "--service-level", "0.8"]) == 0  # fmt: skip
    assert "\n     98 " in capsys.readouterr().out


def test_a_bad_scenario_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "erlang-c.yaml").read_text().replace("count: 14", "count: lots"))
    code = main(["run", "--routing", str(EXAMPLES / "erlang-routing.yaml"), "--scenario", str(bad),
                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 2
    assert f"{bad}:" in capsys.readouterr().err

"""The exact Erlang C / Erlang A module against the published figures and its own identities."""

from __future__ import annotations

import math

import pytest

from omniroute_simulator import erlang

RATE = 100 / 1800  # 100 calls per 30 minutes
HANDLE = 180.0


def test_erlang_c_figures_of_the_textbook_case() -> None:
    f = erlang.erlang_c(RATE, HANDLE, 14, 20)
    assert f.p_wait == pytest.approx(0.17413, abs=5e-6)
    assert f.service_level == pytest.approx(0.88835, abs=5e-6)
    assert f.asa_s == pytest.approx(7.84, abs=0.005)
    assert f.occupancy == pytest.approx(10 / 14)


def test_erlang_a_figures_of_the_textbook_case() -> None:
    f = erlang.erlang_a(RATE, HANDLE, 14, 20, 300)
    assert f.p_wait == pytest.approx(0.14526, abs=5e-6)
    assert f.p_abandon == pytest.approx(0.013984, abs=5e-7)
    assert f.service_level == pytest.approx(0.916792, abs=5e-7)


@pytest.mark.parametrize("load", [10, 50, 200])
@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_erlang_a_abandonment_is_patience_rate_times_mean_wait(load: float, beta: float) -> None:
    n = erlang.square_root_staffing(load, beta)
    f = erlang.erlang_a(load / HANDLE, HANDLE, n, 20, 300)
    assert f.p_abandon == pytest.approx(f.mean_wait_s / 300, rel=1e-9)
    # Every arrival is answered or leaves; the answered keep the agents busy.
    assert f.occupancy == pytest.approx(load * (1 - f.p_abandon) / n, rel=1e-9)


@pytest.mark.parametrize("load", [10, 50, 200])
def test_erlang_a_with_endless_patience_tends_to_erlang_c(load: float) -> None:
    n = erlang.square_root_staffing(load, 1.0)
    c = erlang.erlang_c(load / HANDLE, HANDLE, n, 20)
    a = erlang.erlang_a(load / HANDLE, HANDLE, n, 20, 1e9)
    assert a.p_wait == pytest.approx(c.p_wait, abs=1e-5)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-5)
    assert a.asa_s == pytest.approx(c.asa_s, rel=1e-4)


def test_square_root_staffing() -> None:
    assert erlang.square_root_staffing(10, 0.5) == 12
    assert erlang.square_root_staffing(200, 1.0) == 215
    assert erlang.square_root_staffing(100, 1.0) == 110


def test_fewest_agents_for_a_target() -> None:
    assert erlang.agents_for_target(15 / 300, 300, 20, 0.8).agents == 19
    assert erlang.agents_for_target(90 / 300, 300, 20, 0.8).agents == 98
    assert erlang.erlang_c(15 / 300, 300, 18, 20).service_level < 0.8


def test_too_few_agents_for_erlang_c_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot carry"):
        erlang.erlang_c(RATE, HANDLE, 10, 20)
    # With abandonment any head count has a steady state.
    assert 0 < erlang.erlang_a(RATE, HANDLE, 8, 20, 300).p_abandon < 1
    assert math.isfinite(erlang.erlang_a(RATE, HANDLE, 8, 20, 300).asa_s)

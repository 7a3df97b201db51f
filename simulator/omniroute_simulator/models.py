"""Textbook models as scenarios: the settings in which exact results hold.

One queue, every agent in it, one skill, exponential handle times, accept
delay 0: M/M/n (Erlang C), or M/M/n+M (Erlang A) with exponential patience.
The validation tests and the benchmark against Ciw build their runs here.
"""

from __future__ import annotations

import math

from omniroute_router.config import WorkspaceConfig
from omniroute_simulator.scenario import (
    AgentGroup,
    Distribution,
    RatePiece,
    Scenario,
    Shape,
    Stream,
)

WORKSPACE = "erlang"


def single_queue_config(target_s: float = 20.0) -> WorkspaceConfig:
    """One default queue, a voice target of `target_s` seconds."""
    return WorkspaceConfig(service_levels={"voice": target_s})


def mmn(
    calls_per_hour: float,
    handle_s: float,
    agents: int,
    duration_s: float,
    warmup_s: float = 1800.0,
    patience_s: float = math.inf,
) -> Scenario:
    """M/M/n (+M when `patience_s` is finite) as a scenario."""
    patience = Distribution(Shape.EXPONENTIAL, patience_s) if math.isfinite(patience_s) else None
    return Scenario(
        workspace=WORKSPACE,
        duration_s=duration_s,
        warmup_s=warmup_s,
        arrivals=(
            Stream(
                name="calls",
                channel="voice",
                rates=(RatePiece(0.0, calls_per_hour),),
                patience=patience,
            ),
        ),
        agents=(AgentGroup(name="agents", count=agents, skills={}, capacity={"voice": 1}),),
        handle_time=Distribution(Shape.EXPONENTIAL, handle_s),
    )

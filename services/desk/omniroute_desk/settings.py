"""The desk's settings, read once from the environment in `__main__`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from omniroute.settings import AgentStateClientSettings


class DeskSettings(AgentStateClientSettings):
    """Settings of services/desk (env var = upper-case field name)."""

    desk_host: str = Field("0.0.0.0", description="Address the HTTP server binds.")
    desk_port: int = Field(8090, description="HTTP port of the desk, the wallboard and /metrics.")
    agent_state_token: str = Field(
        "",
        description="The desk's own bearer token for agent-state (an administrator token): "
        "the wallboard lists and watches a workspace's agents, and the desk lists transfer "
        "targets, with it. Agents' actions always use the agent's own desktop token.",
    )
    desk_supervisor_tokens: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Supervisor tokens, JSON token -> workspace: the wallboard shows the "
        "workspace its token names, and nothing else. Empty: no wallboard.",
    )
    desk_demo_agents: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Agents offered as a pick list on the sign-in page, JSON agent id -> "
        "desktop token. For local demos only (`make run`): it hands out their tokens.",
    )
    desk_agent_refresh_s: float = Field(
        1.0,
        gt=0,
        description="How often a signed-in agent's record (presence, tasks) is refreshed "
        "from agent-state for their page.",
    )
    desk_content_lookback_h: float = Field(
        24.0,
        gt=0,
        description="How far back the desk reads the router's assignments at start, for the "
        "content of tasks whose offer did not reach this screen (transfers, other devices).",
    )
    desk_content_max: int = Field(
        50_000, ge=1, description="Most inquiries whose last assignment the desk keeps."
    )
    desk_keepalive_s: float = Field(
        15.0, gt=0, description="Idle server-sent event streams get a comment this often."
    )

    @field_validator("desk_supervisor_tokens", "desk_demo_agents", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        """JSON from the environment; empty (as compose passes an unset variable) is {}."""
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

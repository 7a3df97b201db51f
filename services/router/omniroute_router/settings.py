"""The router's settings, read once from the environment in `__main__`."""

from __future__ import annotations

from pydantic import Field

from omniroute.settings import AgentStateClientSettings


class RouterSettings(AgentStateClientSettings):
    """Settings of services/router (env var = upper-case field name)."""

    router_app_id: str = Field(
        "omniroute-router",
        description="Faust app id: the consumer group and the prefix of the state topics. "
        "Workers with the same id share the work.",
    )
    agent_state_token: str = Field(
        "",
        description="The router's bearer token for agent-state (one of agent-state's "
        "AGENT_STATE_ADMIN_TOKENS, by convention named `router`).",
    )
    routing_config: str = Field(
        "",
        description="Path of the routing configuration (YAML). Empty: every workspace gets "
        "one queue that takes everything, offered to any tier.",
    )
    router_metrics_host: str = Field("0.0.0.0", description="Address of the metrics endpoint.")
    router_metrics_port: int = Field(9102, description="Port of the Prometheus endpoint.")
    router_tick_s: float = Field(
        1.0,
        gt=0,
        description="How often waiting inquiries are re-examined for time-driven changes "
        "(escalation ladder, follow-ups falling due).",
    )
    router_standby_replicas: int = Field(
        1, ge=0, description="Standby copies of the routing state on other workers."
    )
    router_data_dir: str = Field(
        "", description="Faust's data directory. Empty: a fresh temporary directory."
    )

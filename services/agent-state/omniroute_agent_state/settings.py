"""agent-state's settings, read once from the environment in `__main__`."""

from __future__ import annotations

from pydantic import Field

from omniroute.settings import CommonSettings


class AgentStateSettings(CommonSettings):
    """Settings of services/agent-state (env var = upper-case field name)."""

    agent_state_host: str = Field("0.0.0.0", description="Address the gRPC server binds.")
    agent_state_port: int = Field(50051, description="gRPC port.")
    agent_state_metrics_host: str = Field("0.0.0.0", description="Address of the metrics endpoint.")
    agent_state_metrics_port: int = Field(9103, description="Port of the Prometheus endpoint.")
    topic_agent_snapshots: str = Field(
        "agent-snapshots",
        description="Latest full record of every agent, keyed by agent id (compacted on Kafka); "
        "the service rebuilds its state from it at start.",
    )
    offer_ttl_s: float = Field(
        20.0, gt=0, description="How long an offer holds the agent's slot before it expires."
    )
    offer_ttl_by_channel: dict[str, float] = Field(
        default_factory=lambda: {"email": 300.0, "fax": 300.0, "postal_mail": 300.0},
        description='Offer time-to-live per channel, JSON, e.g. {"email": 300}; others use OFFER_TTL_S.',
    )
    wrap_up_by_channel: dict[str, float] = Field(
        default_factory=dict,
        description='Longest after-contact work per channel in seconds, JSON, e.g. {"voice": 30}; '
        "the agent is WRAP_UP that long after completing (0 or absent: straight back).",
    )
    away_on_missed_offer: bool = Field(
        True, description="Set an agent AWAY (reason missed_offer) when an offer expires."
    )
    expiry_check_s: float = Field(
        0.2, gt=0, description="How often open offers and wrap-ups are checked for expiry."
    )
    shutdown_grace_s: float = Field(5.0, ge=0, description="Grace for in-flight calls on stop.")

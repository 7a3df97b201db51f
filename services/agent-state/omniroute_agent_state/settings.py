"""agent-state's settings, read once from the environment in `__main__`."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from omniroute.settings import CommonSettings, is_loopback
from omniroute.v1 import inquiry_pb2


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
    topic_agent_checkpoints: str = Field(
        "agent-checkpoints",
        description="Checkpoints of the whole state (one key, so one partition); a restart "
        "reads the latest and only the records after it.",
    )
    checkpoint_records: int = Field(
        100_000,
        ge=0,
        description="Take a checkpoint once this many records (and at least twice the agent "
        "count) were written since the last one; a restart then reads at most about that "
        "many records after it. 0: no checkpoints (a restart reads every topic in full).",
    )
    checkpoint_check_s: float = Field(
        1.0, gt=0, description="How often to see whether a checkpoint is due."
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
    publish_wait_s: float = Field(
        10.0,
        gt=0,
        description="How long a call without a gRPC deadline waits for the broker to "
        "acknowledge its change before it is answered UNAVAILABLE (the change is kept and "
        "re-sent; a retry learns the outcome). A call with a deadline waits until just before it.",
    )
    event_retention_s: float = Field(
        3600.0,
        gt=0,
        description="How long the last task event of each inquiry is kept for GetReservation "
        "and for answering retried calls by their natural key.",
    )
    shutdown_grace_s: float = Field(5.0, ge=0, description="Grace for in-flight calls on stop.")
    away_reasons: list[str] = Field(
        default_factory=lambda: [
            "break", "lunch", "meeting", "training", "coaching", "personal", "missed_offer",
        ],
        description='Reason codes accepted for AWAY, JSON, e.g. ["break", "lunch"]; '
        "an empty list accepts any reason.",
    )  # fmt: skip
    session_timeout_s: float = Field(
        30.0,
        ge=0,
        description="A desktop session lapses after this long without a heartbeat (or an open "
        "WatchOffers stream); the agent goes OFFLINE and its open offers are withdrawn. "
        "0 disables sessions.",
    )
    agent_state_admin_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="Bearer tokens of the router and administrators, JSON name -> token, e.g. "
        '{"router": "..."}; the name is recorded as the actor. Full access.',
    )
    agent_state_desktop_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="Bearer tokens of agent desktops, JSON token -> agent id; a desktop may "
        "only read and act on its own agent. With no tokens at all, every call is refused "
        "(UNAUTHENTICATED) unless AGENT_STATE_ALLOW_ANONYMOUS is set.",
    )
    agent_state_allow_anonymous: bool = Field(
        False,
        description="Local development only: with no tokens configured, every caller is an "
        "administrator. Accepted only when AGENT_STATE_HOST is a loopback address.",
    )
    agent_state_tls_cert_file: str = Field(
        "",
        description="PEM certificate chain; with AGENT_STATE_TLS_KEY_FILE the gRPC port serves TLS.",
    )
    agent_state_tls_key_file: str = Field("", description="PEM private key of TLS_CERT_FILE.")
    watch_queue_max: int = Field(
        10_000,
        ge=1,
        description="Events buffered for one WatchAgents/WatchOffers client; a client that "
        "falls this far behind is disconnected (RESOURCE_EXHAUSTED) and should reconnect.",
    )

    @model_validator(mode="after")
    def _anonymous_only_on_loopback(self) -> AgentStateSettings:
        """Anonymous administrators on a reachable address would be admin for everyone."""
        if self.agent_state_allow_anonymous and not is_loopback(self.agent_state_host):
            raise ValueError(
                "AGENT_STATE_ALLOW_ANONYMOUS is for a loopback AGENT_STATE_HOST only; "
                "configure AGENT_STATE_ADMIN_TOKENS instead"
            )
        return self

    @field_validator("offer_ttl_by_channel", "wrap_up_by_channel")
    @classmethod
    def _known_channels(cls, value: dict[str, float]) -> dict[str, float]:
        """A misspelt channel would be silently ignored: refuse it at start instead."""
        known = {n.removeprefix("CHANNEL_").lower() for n in inquiry_pb2.Channel.keys()}
        unknown = sorted(set(value) - known - {"unspecified"})
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; known: {sorted(known)}")
        if any(seconds < 0 for seconds in value.values()):
            raise ValueError("durations must not be negative")
        return value

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
    router_batch_max: int = Field(
        500,
        gt=0,
        description="Most records handled as one batch (each workspace in it takes one "
        "step: one plan, one ReserveAgents call, one table write).",
    )
    router_batch_wait_s: float = Field(
        0.002,
        ge=0,
        description="After an idle spell, how long the first record waits for others "
        "that arrive with it (under load a batch is what arrived while the last was "
        "handled, without waiting).",
    )
    router_standby_replicas: int = Field(
        1, ge=0, description="Standby copies of the routing state on other workers."
    )
    router_data_dir: str = Field(
        "", description="Faust's data directory. Empty: a fresh temporary directory."
    )
    router_offer_grace_s: float = Field(
        15.0,
        gt=0,
        description="How long past an offer's expiry the router waits for agent-state's "
        "OFFER_TIMEOUT before it asks agent-state (GetReservation) and makes the two "
        "pictures agree.",
    )
    router_task_silence_s: float = Field(
        900.0,
        gt=0,
        description="How long an accepted task may go without news before the router asks "
        "agent-state whether it is still open (a lost COMPLETED is then applied).",
    )
    router_reconcile_interval_s: float = Field(
        60.0,
        gt=0,
        description="How often the router compares each owned workspace's open offers and "
        "tasks with agent-state's (ListReservations).",
    )
    router_sweep_interval_s: float = Field(
        30.0,
        gt=0,
        description="How often the router re-reads each owned partition of the inquiries "
        "topic from its checkpoint and admits inquiries it never saw.",
    )
    router_sweep_batch: int = Field(
        1000,
        gt=0,
        description="Most inquiry records one read of the sweep takes from one partition "
        "(a sweep that is behind reads on at once).",
    )
    router_checks_per_tick: int = Field(
        100,
        gt=0,
        description="Most inquiries checked with agent-state per workspace and tick "
        "(the most overdue first), so a burst never stalls routing.",
    )
    router_positions_limit: int = Field(
        500,
        ge=0,
        description="Most inquiry ids per queue and state (waiting in order, offered, in "
        "progress) on each queue snapshot, for ingest's position answers; ingest cannot place an inquiry further "
        "back (it answers 404 saying so). Bounds the snapshot's size "
        "(ids of about 40 bytes: 500 x 3 lists is about 60 kB per queue).",
    )
    router_rate_window_s: float = Field(
        900.0,
        gt=0,
        description="The window over which each queue's service rate (answers per second) is "
        "measured for the estimated wait.",
    )
    router_recovery_consistency_check: bool = Field(
        False,
        description="Faust's recovery check that a table's persisted changelog offset is not "
        "above the changelog's high watermark. Off by default: the embedded broker can "
        "report a high watermark one short when the last batch holds several records, and "
        "the check then crashes a worker taking over a partition (ConsistencyError) although "
        "its state is complete. Turn it on with Apache Kafka to catch changelogs that lost data.",
    )

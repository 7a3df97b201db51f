"""Settings shared by every service: the broker, the topics, logging.

Each service extends `CommonSettings` with its own fields and builds it once
with `from_env()` in its entry point; nothing reads the environment elsewhere.
Every field is read from the environment variable of the same name in upper
case (`kafka_bootstrap` from `KAFKA_BOOTSTRAP`).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Self

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from omniroute.sizes import DEFAULT_MAX_REQUEST_BYTES, SizeBudget


class BrokerKind(StrEnum):
    """The broker the services talk to, where Kafka-compatible brokers differ.

    Everything else is the same on both; the README's broker section lists
    every difference found and how it is handled.
    """

    KAFKA = "kafka"  # Apache Kafka, the production broker
    TANSU = "tansu"  # the embedded broker of `make run` and the tests

    @property
    def idempotent_producers(self) -> bool:
        """Whether producers can be idempotent (Tansu rejects InitProducerId)."""
        return self is BrokerKind.KAFKA


class CommonSettings(BaseSettings):
    """Broker connection, topic names and logging, the same for all services."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    kafka_broker_kind: BrokerKind = Field(
        BrokerKind.KAFKA,
        description="The broker: `kafka` (Apache Kafka: idempotent producers) or `tansu` "
        "(the embedded broker: producers at-least-once, consumers de-duplicate).",
    )
    kafka_partitions: int = Field(
        8,
        ge=1,
        description="Partitions for the topics the services create. Workspaces spread over "
        "them; more partitions allow more router workers.",
    )
    kafka_replication_factor: int = Field(1, ge=1, description="Replication of created topics.")
    kafka_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        description="Longest a fetch waits for data. Apache Kafka answers as soon as data "
        "arrives; the embedded broker always waits this long, so keep it short.",
    )
    kafka_max_compaction_lag_ms: int = Field(
        3_600_000,
        ge=1,
        description="Longest a superseded record of a compacted topic (agent snapshots, the "
        "router's state changelogs) waits before Apache Kafka may clean it; it also rolls "
        "the topic's segment, so compaction really happens (1 h).",
    )
    kafka_session_timeout_s: float = Field(
        6.0, gt=0, description="Consumer group session timeout (6 s is Kafka's minimum)."
    )
    kafka_heartbeat_interval_s: float = Field(
        1.0, gt=0, description="Consumer group heartbeat interval."
    )
    kafka_max_request_bytes: int = Field(
        DEFAULT_MAX_REQUEST_BYTES,
        ge=65_536,
        description="Largest record every producer of the services sends (aiokafka's "
        "max_request_size; Apache Kafka's broker takes up to its message.max.bytes, by "
        "default just above this). Every size limit derives from it (omniroute.sizes): "
        "ingest refuses a larger inquiry, the router dead-letters one, agent-state cuts "
        "what it holds for the desks to fit. Raise it only with the broker's and topics' "
        "limits.",
    )
    topic_inquiries: str = Field("inquiries", description="Canonical inquiries, key workspace.")
    topic_agent_events: str = Field("agent-events", description="Agent changes, key workspace.")
    topic_task_events: str = Field("task-events", description="Task lifecycle, key workspace.")
    topic_assignments: str = Field("assignments", description="Router offers, key workspace.")
    topic_dead_letters: str = Field(
        "dead-letters", description="Events no consumer could process, with the reason."
    )
    topic_queue_snapshots: str = Field(
        "queue-snapshots",
        description="The router's periodic per-workspace queue figures (depth, oldest wait, "
        "today's service level), key workspace; read by the wallboard.",
    )
    log_level: str = Field("INFO", description="Python log level name.")
    metrics_workspaces: list[str] = Field(
        default_factory=list,
        description="Workspaces that get their own value of the `workspace` metric label, JSON "
        'list; every other workspace is counted under "other" (workspace names come from '
        'clients, so they must not make series without bound). ["*"]: every workspace its own. '
        "The router also labels the workspaces its routing configuration names.",
    )

    @classmethod
    def from_env(cls, **overrides: object) -> Self:
        """Read the settings from the environment; keyword arguments win."""
        return cls(**overrides)  # type: ignore[arg-type]

    @property
    def sizes(self) -> SizeBudget:
        """The record size budget every service keeps (omniroute.sizes)."""
        return SizeBudget(self.kafka_max_request_bytes)


class AgentStateClientSettings(CommonSettings):
    """How a client of agent-state (the router, the desk) reaches it; each adds its token."""

    agent_state_target: str = Field(
        "127.0.0.1:50051",
        description="gRPC address of services/agent-state; with TLS, a host name its "
        "certificate names.",
    )
    agent_state_tls_ca_file: str = Field(
        "",
        description="PEM certificate(s) of the CA that signed agent-state's certificate; "
        "when set, calls go over TLS and the certificate is checked (the shipped deployments "
        "set it). Empty: plaintext, for loopback only.",
    )
    agent_state_timeout_s: float = Field(
        5.0, gt=0, description="Deadline of one unary call to agent-state."
    )


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this host only (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""agent-state's Prometheus metrics (`omniroute_agent_state_*`).

Counts of agents, load and capacity are computed from the roster when
Prometheus scrapes, so they are always exact and cost nothing per call.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from omniroute.metrics import LATENCY_BUCKETS, WorkspaceLabel
from omniroute.v1 import agent_pb2, inquiry_pb2
from omniroute_agent_state.journal import Source
from omniroute_agent_state.records import SkipReason
from omniroute_agent_state.roster import Roster, channel_name

if TYPE_CHECKING:
    from omniroute_agent_state.outbox import Outbox

# Records per write round: one call writes about three (agent event, snapshot, task event).
ROUND_BUCKETS = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)

METHODS = (
    "UpsertAgent",
    "GetAgent",
    "ListAgents",
    "SetStatus",
    "ReserveAgent",
    "ReserveAgents",
    "AcceptTask",
    "DeclineTask",
    "CompleteTask",
    "WatchOffers",
    "WatchAgents",
    "Heartbeat",
    "TransferTask",
    "WithdrawOffer",
    "GetReservation",
    "ListReservations",
    "DeliverMessage",
)


class AgentStateMetrics:
    """Counters and histograms updated by the servicer."""

    def __init__(
        self,
        registry: CollectorRegistry,
        roster: Roster,
        workspace_label: WorkspaceLabel | None = None,
    ) -> None:
        self.rpcs = Counter(
            "omniroute_agent_state_rpcs_total",
            "gRPC calls handled, by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.rpc_seconds = Histogram(
            "omniroute_agent_state_rpc_seconds",
            "Time to handle a unary gRPC call, by method and status code "
            "(streams are counted when they open, with 0 s).",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.reservations = Counter(
            "omniroute_agent_state_reservations_total",
            "Reservation requests: reserved, refused (agent not free), existing (already reserved).",
            ["outcome"],
            registry=registry,
        )
        self.task_events = Counter(
            "omniroute_agent_state_task_events_total",
            "Task events published: offered, accepted, declined, offer_timeout, withdrawn, "
            "completed, transferred.",
            ["type"],
            registry=registry,
        )
        self.publish_errors = Counter(
            "omniroute_agent_state_publish_errors_total",
            "Sends of changes the broker did not acknowledge (each is re-sent until it is).",
            registry=registry,
        )
        self.records_skipped = Counter(
            "omniroute_agent_state_records_skipped_total",
            "Agent records read back from Kafka at start that the roster could not take "
            "(unknown status, tier or channel; missing id), by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in SkipReason:
            self.records_skipped.labels(reason.value)
        self.recovery_gaps = Counter(
            "omniroute_agent_state_recovery_gaps_total",
            "Disagreements between recovered agent records and task events found at start, "
            "by kind: repaired (a missing task event published), released (a transfer to a "
            "queue on the topic whose agent record was lost: the slot freed) or one the "
            "records cannot repair (end_missing, release_missing).",
            ["kind"],
            registry=registry,
        )
        self.write_round_records = Histogram(
            "omniroute_agent_state_write_round_records",
            "Records sent to the broker per write round of the outbox: concurrent calls "
            "share one round (group commit), so this grows with the load; a re-send after a "
            "failure is a round of its own.",
            buckets=ROUND_BUCKETS,
            registry=registry,
        )
        self.recovery_records = Gauge(
            "omniroute_agent_state_recovery_records",
            "Records read at the last start, by source: the latest checkpoint, and each topic "
            "after the offsets it covers (everything without one).",
            ["source"],
            registry=registry,
        )
        for source in Source:
            self.recovery_records.labels(source.value)
        self.recovery_seconds = Gauge(
            "omniroute_agent_state_recovery_seconds",
            "How long the last start took to read its state back (before serving).",
            registry=registry,
        )
        self.checkpoints = Counter(
            "omniroute_agent_state_checkpoints_total",
            "Checkpoints of the whole state, by outcome: written, failed (the previous one "
            "stays the latest; retried when the next is due).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("written", "failed"):
            self.checkpoints.labels(outcome)
        self.unacknowledged = Gauge(
            "omniroute_agent_state_unacknowledged_changes",
            "Changes made but not yet acknowledged by the broker (the outbox; callers wait).",
            registry=registry,
        )
        self.expiry_failures = Counter(
            "omniroute_agent_state_expiry_failures_total",
            "Agents whose expiry failed in a round (their change rolled back; the others "
            "expired), and expiry rounds that failed as a whole.",
            registry=registry,
        )
        self.expiry_healthy = Gauge(
            "omniroute_agent_state_expiry_healthy",
            "1 while the expiry loop runs and its last round expired every agent; 0 otherwise "
            "(gRPC health is NOT_SERVING then).",
            registry=registry,
        )
        self.expiry_healthy.set(1)
        for method in METHODS:
            self.rpcs.labels(method, "OK")
            self.rpc_seconds.labels(method, "OK")
        for outcome in ("reserved", "refused", "existing"):
            self.reservations.labels(outcome)
        for kind in (
            "offered", "accepted", "declined", "offer_timeout", "withdrawn", "completed",
            "transferred",
        ):  # fmt: skip
            self.task_events.labels(kind)
        registry.register(RosterCollector(roster, workspace_label or WorkspaceLabel(["*"])))

    def watch_outbox(self, outbox: Outbox) -> None:
        """Read the outbox's backlog at scrape time."""
        self.unacknowledged.set_function(lambda: outbox.pending)

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        """Count one call and its duration under its final status code."""
        self.rpcs.labels(method, code).inc()
        self.rpc_seconds.labels(method, code).observe(seconds)


class RosterCollector(Collector):
    """Agents by status, load and capacity by channel, occupancy: read at scrape time.

    Workspaces outside METRICS_WORKSPACES are summed under workspace="other".
    """

    def __init__(self, roster: Roster, workspace_label: WorkspaceLabel) -> None:
        self.roster = roster
        self.workspace_label = workspace_label

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Compute the gauges from the roster as it is now."""
        agents = GaugeMetricFamily(
            "omniroute_agent_state_agents",
            "Agents by workspace and status.",
            labels=["workspace", "status"],
        )
        load = GaugeMetricFamily(
            "omniroute_agent_state_load",
            "Tasks held (offered or accepted), by workspace and channel.",
            labels=["workspace", "channel"],
        )
        capacity = GaugeMetricFamily(
            "omniroute_agent_state_capacity",
            "Capacity of agents logged in (not OFFLINE), by workspace and channel.",
            labels=["workspace", "channel"],
        )
        open_offers = GaugeMetricFamily(
            "omniroute_agent_state_open_reservations",
            "Reservations held, by workspace and state (offered: waiting for the agent; "
            "accepted: in work).",
            labels=["workspace", "state"],
        )
        sessions = GaugeMetricFamily(
            "omniroute_agent_state_desktop_sessions",
            "Agents whose desktop session is active, by workspace.",
            labels=["workspace"],
        )
        occupancy = GaugeMetricFamily(
            "omniroute_agent_state_occupancy_ratio",
            "Load over capacity of logged-in agents, by workspace (0-1).",
            labels=["workspace"],
        )
        by_status: Tally[tuple[str, str]] = Tally()
        loads: Tally[tuple[str, str]] = Tally()
        capacities: Tally[tuple[str, str]] = Tally()
        workspaces: set[str] = set()
        held: Tally[tuple[str, str]] = Tally()
        connected: Tally[str] = Tally()
        for agent in list(self.roster.agents.values()):
            workspace = self.workspace_label(agent.workspace)
            workspaces.add(workspace)
            connected[workspace] += agent.session_active
            for reservation in agent.reservations:
                held[(workspace, "accepted" if reservation.accepted else "offered")] += 1
            by_status[(workspace, _status_name(agent.status))] += 1
            for slot in agent.capacities:
                key = (workspace, _channel_name(slot.channel))
                loads[key] += slot.load
                if agent.status != agent_pb2.AGENT_STATUS_OFFLINE:
                    capacities[key] += slot.capacity
        for workspace in sorted(workspaces):
            for status in ("offline", "available", "away", "wrap_up"):
                agents.add_metric([workspace, status], by_status[(workspace, status)])
            if by_status[(workspace, "unknown")]:
                agents.add_metric([workspace, "unknown"], by_status[(workspace, "unknown")])
            used = sum(v for (w, _), v in loads.items() if w == workspace)
            room = sum(v for (w, _), v in capacities.items() if w == workspace)
            occupancy.add_metric([workspace], used / room if room else 0.0)
            for state in ("offered", "accepted"):
                open_offers.add_metric([workspace, state], held[(workspace, state)])
            sessions.add_metric([workspace], connected[workspace])
        for (workspace, channel), value in sorted(loads.items()):
            load.add_metric([workspace, channel], value)
        for (workspace, channel), value in sorted(capacities.items()):
            capacity.add_metric([workspace, channel], value)
        yield from (agents, load, capacity, occupancy, open_offers, sessions)


def _status_name(status: int) -> str:
    """AGENT_STATUS_WRAP_UP -> "wrap_up"; a value this build does not know -> "unknown".

    Recovery skips such records (records.py); a scrape must still never fail.
    """
    if status not in agent_pb2.AgentStatus.values():
        return "unknown"
    return agent_pb2.AgentStatus.Name(status).removeprefix("AGENT_STATUS_").lower()


def _channel_name(channel: int) -> str:
    """CHANNEL_POSTAL_MAIL -> "postal_mail"; a value this build does not know -> "unknown"."""
    return channel_name(channel) if channel in inquiry_pb2.Channel.values() else "unknown"

"""The router's Prometheus metrics (`omniroute_router_*`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from omniroute.metrics import LATENCY_BUCKETS
from omniroute_router.callbacks import CallbackOutcome
from omniroute_router.config import CHANNELS, WorkspaceConfig

# Waits in queue run from seconds (voice) to hours (email, letters).
WAIT_BUCKETS = (1, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
INPUT_TOPICS = ("inquiries", "agent-events", "task-events", "ticks")
OFFER_FAILURES = ("declined", "offer_timeout", "withdrawn")
RECONCILE_TRIGGERS = ("overdue", "workspace", "swept", "takeover", "refused")
RECONCILE_OUTCOMES = ("agreed", "adopted", "apply_event", "requeued", "unknown")


class RouterMetrics:
    """Every metric the router exports, on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "omniroute_router_events_total",
            "Events consumed, by input and outcome (processed, echo, duplicate, dead_letter, "
            "not_owned).",
            ["input", "outcome"],
            registry=registry,
        )
        self.batch_events = Histogram(
            "omniroute_router_batch_events",
            "Records handled as one batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "omniroute_router_queue_depth",
            "Inquiries waiting for an agent (offers open not counted).",
            ["workspace", "queue"],
            registry=registry,
        )
        self.oldest_wait = Gauge(
            "omniroute_router_queue_oldest_wait_seconds",
            "How long the longest-waiting inquiry of the queue has waited.",
            ["workspace", "queue"],
            registry=registry,
        )
        self.offers_open = Gauge(
            "omniroute_router_offers_open",
            "Inquiries offered to an agent who has not answered yet.",
            ["workspace"],
            registry=registry,
        )
        self.wait = Histogram(
            "omniroute_router_wait_seconds",
            "Time from arrival to the first accepted offer.",
            ["queue", "channel"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        # Service level = answered within target / (answered + abandoned), per
        # channel with a target (README, "Service level"): an abandon counts
        # as a miss, so `abandoned_total` carries within_sla too ("no" where
        # the channel has a target, "unknown" where it has none).
        self.answered = Counter(
            "omniroute_router_answered_total",
            "Inquiries answered (first offer accepted), by whether within the service level.",
            ["workspace", "queue", "channel", "within_sla"],
            registry=registry,
        )
        self.decision = Histogram(
            "omniroute_router_decision_seconds",
            "Time the routing core takes to plan offers for a workspace.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.routing_latency = Histogram(
            "omniroute_router_routing_latency_seconds",
            "From an inquiry entering routing to its first offer being published.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.assignments = Counter(
            "omniroute_router_assignments_total",
            "Offers published, by the agent's tier and the queue's strategy.",
            ["tier", "strategy"],
            registry=registry,
        )
        self.reservations_refused = Counter(
            "omniroute_router_reservations_refused_total",
            "Reservations agent-state refused because the agent was no longer free.",
            registry=registry,
        )
        self.agent_state_errors = Counter(
            "omniroute_router_agent_state_errors_total",
            "Calls to agent-state that failed (routing paused until the next tick).",
            registry=registry,
        )
        self.offer_failures = Counter(
            "omniroute_router_offer_failures_total",
            "Offers that came back: declined, offer_timeout, withdrawn.",
            ["reason"],
            registry=registry,
        )
        self.escalations = Counter(
            "omniroute_router_escalations_total",
            "Inquiries escalated, by ladder step and reason (wait, failed_offers, agent).",
            ["step", "reason"],
            registry=registry,
        )
        self.abandoned = Counter(
            "omniroute_router_abandoned_total",
            "Inquiries the customer left before they were answered "
            "(within_sla: no where the channel has a target, a miss; unknown where not).",
            ["workspace", "queue", "channel", "within_sla"],
            registry=registry,
        )
        self.conversation_messages = Counter(
            "omniroute_router_conversation_messages_total",
            "Customer messages that joined their conversation's open inquiry instead of "
            "queuing, by delivery: delivered (to the agent holding it), waiting (nobody "
            "holds it yet), failed (agent-state unreachable; kept and tried again on each tick); "
            "not_held: agent-state said the agent no longer holds it, and the message was "
            "queued as a new inquiry instead.",
            ["delivery"],
            registry=registry,
        )
        self.message_redeliveries = Counter(
            "omniroute_router_message_redeliveries_total",
            "Deliveries of customer messages tried again after agent-state was unreachable, "
            "by outcome: delivered, dropped (the agent no longer holds the inquiry; its "
            "content keeps the message), failed (tried again on the next tick).",
            ["outcome"],
            registry=registry,
        )
        self.follow_ups = Counter(
            "omniroute_router_follow_ups_total",
            "Follow-ups scheduled and falling due.",
            ["event"],
            registry=registry,
        )
        self.reconciliations = Counter(
            "omniroute_router_reconciliations_total",
            "Inquiries checked with agent-state, by why (overdue, workspace, swept, takeover, "
            "refused) and "
            "outcome (agreed, adopted, apply_event, requeued, unknown).",
            ["trigger", "outcome"],
            registry=registry,
        )
        self.swept = Counter(
            "omniroute_router_swept_inquiries_total",
            "Inquiries on the topic the router had not seen, found and admitted by the sweep.",
            registry=registry,
        )
        self.fenced = Counter(
            "omniroute_router_fenced_total",
            "Calls agent-state refused because a newer owner of the partition acted; "
            "the worker then stops acting for the partition.",
            registry=registry,
        )
        self.withdrawals = Counter(
            "omniroute_router_withdrawals_total",
            "Open offers the router withdrew at agent-state, by reason (abandoned, finished, "
            "callback: the customer asked to be called back while it was offered).",
            ["reason"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "omniroute_router_dead_letters_total",
            "Events sent to the dead-letter topic, by input.",
            ["input"],
            registry=registry,
        )
        self.partitions = Gauge(
            "omniroute_router_partitions_assigned",
            "Input partitions this worker owns (0 until it has joined the group).",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "omniroute_router_consumer_lag",
            "Records of an owned input partition not yet processed and committed.",
            ["topic", "partition"],
            registry=registry,
        )
        self.config_reloads = Counter(
            "omniroute_router_config_reloads_total",
            "Routing configuration reloads (SIGHUP), by result: applied, or refused "
            "(invalid file; the previous configuration stays in force).",
            ["result"],
            registry=registry,
        )
        self.overflows = Counter(
            "omniroute_router_overflows_total",
            "Waiting inquiries moved to another queue by an overflow rule, by the queue "
            "left, the queue entered and the trigger (wait, depth, estimated_wait).",
            ["queue", "to_queue", "trigger"],
            registry=registry,
        )
        self.transfers = Counter(
            "omniroute_router_transfers_total",
            "Tasks agents handed to a queue (TransferTask with target_queue), by the queue "
            "left and the queue entered.",
            ["queue", "to_queue"],
            registry=registry,
        )
        self.closed_arrivals = Counter(
            "omniroute_router_closed_arrivals_total",
            "Inquiries that arrived while their queue was closed, by queue and what they got "
            "(hold, after_hours_queue, callback: held and offered a callback).",
            ["queue", "policy"],
            registry=registry,
        )
        self.callbacks = Counter(
            "omniroute_router_callbacks_total",
            "Callback requests, by outcome (requested: the inquiry became a callback; "
            "duplicate: it was one already; not_realtime: not voice or chat; wrong_channel: the "
            "request named another channel; too_late: an agent had it already; unknown: not "
            "routed here).",
            ["outcome"],
            registry=registry,
        )
        # Series exist from the start, so dashboards and alerts see zeros, not gaps.
        for name in INPUT_TOPICS:
            for outcome in ("processed", "echo", "duplicate", "dead_letter", "not_owned"):
                self.events.labels(name, outcome)
            self.dead_letters.labels(name)
        for reason in OFFER_FAILURES:
            self.offer_failures.labels(reason)
        for event in ("scheduled", "due"):
            self.follow_ups.labels(event)
        for delivery in ("delivered", "waiting", "not_held", "failed"):
            self.conversation_messages.labels(delivery)
        for outcome in ("delivered", "dropped", "failed"):
            self.message_redeliveries.labels(outcome)
        for trigger in RECONCILE_TRIGGERS:
            for outcome in RECONCILE_OUTCOMES:
                self.reconciliations.labels(trigger, outcome)
        for reason in ("abandoned", "finished", "callback"):
            self.withdrawals.labels(reason)
        for callback in CallbackOutcome:
            self.callbacks.labels(callback.value)
        for result in ("applied", "refused"):
            self.config_reloads.labels(result)

    def prepare_workspaces(
        self, workspaces: Mapping[str, WorkspaceConfig], label: Callable[[str], str]
    ) -> None:
        """Create the service-level series of the configured workspaces up front.

        Unconfigured workspaces share the `label` ("other") series, created on
        their first answer or abandon.
        """
        for name, workspace in workspaces.items():
            for queue in workspace.queues:
                for channel in CHANNELS:
                    targeted = channel in workspace.service_levels
                    for within in ("yes", "no") if targeted else ("unknown",):
                        self.answered.labels(label(name), queue.name, channel, within)
                    missed = "no" if targeted else "unknown"
                    self.abandoned.labels(label(name), queue.name, channel, missed)

    def forget_workspaces(self) -> None:
        """Drop the per-workspace gauges (after partitions were revoked)."""
        self.queue_depth.clear()
        self.oldest_wait.clear()
        self.offers_open.clear()

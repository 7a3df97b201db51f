"""The desk's Prometheus metrics (served on its own HTTP port at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

STREAMS = ("agent", "wallboard")
ACTIONS = ("sign_in", "get_agent", "status", "accept", "decline", "complete", "transfer")
# Outcomes are gRPC status code names in lower case, e.g. ok, permission_denied.
COMMON_OUTCOMES = ("ok", "invalid_argument", "failed_precondition", "permission_denied")


class DeskMetrics:
    """What the desk exports."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.streams = Gauge(
            "omniroute_desk_streams",
            "Browsers connected for server-sent events, by page.",
            ["page"],
            registry=registry,
        )
        self.actions = Counter(
            "omniroute_desk_actions_total",
            "Agent actions passed to agent-state, by action and outcome (gRPC code).",
            ["action", "outcome"],
            registry=registry,
        )
        self.refused = Counter(
            "omniroute_desk_unauthenticated_total",
            "Requests refused for a missing or unknown token, by page.",
            ["page"],
            registry=registry,
        )
        # Series exist from the start, so dashboards see zeros, not gaps.
        for page in STREAMS:
            self.streams.labels(page)
            self.refused.labels(page)
        for action in ACTIONS:
            for outcome in COMMON_OUTCOMES:
                self.actions.labels(action, outcome)

"""Router observability: consumer lag per input partition; no stale per-workspace gauges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from prometheus_client import CollectorRegistry

from omniroute.v1 import inquiry_pb2
from omniroute_router.app import Router
from omniroute_router.config import RoutingConfig, WorkspaceConfig
from omniroute_router.convert import inquiry_from_proto
from omniroute_router.lag import LagExporter, partition_lag
from omniroute_router.metrics import RouterMetrics
from omniroute_router.reservations import AgentStateClient
from omniroute_router.routing import WorkspaceRouter
from omniroute_router.settings import RouterSettings


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    highwaters: dict[TP, int | None]
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    _read_offset: dict[TP, int | None] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters[tp]


def lag_value(registry: CollectorRegistry, topic: str, partition: int) -> float | None:
    return registry.get_sample_value(
        "omniroute_router_consumer_lag", {"topic": topic, "partition": str(partition)}
    )


def test_partition_lag_prefers_the_committed_offset() -> None:
    assert partition_lag(highwater=10, committed=7, read=9) == 3
    assert partition_lag(highwater=10, committed=None, read=4) == 5
    assert partition_lag(highwater=10, committed=None, read=None) == 10
    assert partition_lag(highwater=None, committed=3, read=3) is None
    assert partition_lag(highwater=5, committed=8, read=None) == 0


def test_only_owned_input_partitions_are_exported_and_revoked_ones_removed() -> None:
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry)
    exporter = LagExporter(metrics.consumer_lag, ["inquiries", "task-events"])
    consumer = FakeConsumer(
        highwaters={
            TP("inquiries", 0): 12,
            TP("inquiries", 1): 4,
            TP("task-events", 0): None,  # not fetched yet
            TP("router-inquiries-changelog", 0): 99,  # standby table: not an input
        },
        _committed_offset={TP("inquiries", 0): 10, TP("inquiries", 1): 4},
    )
    measured = exporter.update(consumer)
    assert measured == {("inquiries", 0): 2, ("inquiries", 1): 0}
    assert lag_value(registry, "inquiries", 0) == 2
    assert lag_value(registry, "router-inquiries-changelog", 0) is None

    # Partition 0 moved to another worker: its series goes, so sums stay right.
    del consumer.highwaters[TP("inquiries", 0)]
    exporter.update(consumer)
    assert lag_value(registry, "inquiries", 0) is None
    assert lag_value(registry, "inquiries", 1) == 0


def test_forgetting_workspaces_drops_their_gauges_but_keeps_counters() -> None:
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry)
    metrics.queue_depth.labels("acme", "billing").set(3)
    metrics.oldest_wait.labels("acme", "billing").set(42)
    metrics.offers_open.labels("acme").set(1)
    metrics.dead_letters.labels("inquiries").inc()
    metrics.forget_workspaces()
    labels = {"workspace": "acme", "queue": "billing"}
    assert registry.get_sample_value("omniroute_router_queue_depth", labels) is None
    assert registry.get_sample_value("omniroute_router_queue_oldest_wait_seconds", labels) is None
    assert registry.get_sample_value("omniroute_router_offers_open", {"workspace": "acme"}) is None
    assert (
        registry.get_sample_value("omniroute_router_dead_letters_total", {"input": "inquiries"})
        == 1
    )


def test_unconfigured_workspaces_are_summed_under_other() -> None:
    registry = CollectorRegistry()
    config = RoutingConfig(workspaces={"acme": WorkspaceConfig()})
    router = Router(
        RouterSettings(), config, RouterMetrics(registry), AgentStateClient("127.0.0.1:1")
    )
    published: list[bytes] = []

    class Topic:  # the queue-snapshots topic (the gauges come from the same figures)
        def send_soon(self, key: bytes, value: bytes) -> None:
            published.append(key)

    router.snapshots.topic = Topic()
    now = 1_800_000_000.0
    waiting = {"acme": 1, "stranger-1": 2, "stranger-2": 3}
    for workspace, count in waiting.items():
        core = WorkspaceRouter(workspace, WorkspaceConfig())
        for n in range(count):
            proto = inquiry_pb2.Inquiry(
                id=f"{workspace}-{n}", workspace=workspace, channel=inquiry_pb2.CHANNEL_EMAIL
            )
            assert core.admit(inquiry_from_proto(proto, now - 10 * (n + 1)), now)
        router._observe_queues(core, now)

    def depth(workspace: str) -> float | None:
        labels = {"workspace": workspace, "queue": "default"}
        return registry.get_sample_value("omniroute_router_queue_depth", labels)

    assert depth("acme") == 1
    assert depth("other") == 5  # both strangers, summed
    assert depth("stranger-1") is None and depth("stranger-2") is None
    oldest = registry.get_sample_value(
        "omniroute_router_queue_oldest_wait_seconds", {"workspace": "other", "queue": "default"}
    )
    assert oldest == 30.0  # the longest wait among them
    # The wallboard's snapshots keep each workspace apart: only metric labels are bounded.
    assert published == [b"acme", b"stranger-1", b"stranger-2"]

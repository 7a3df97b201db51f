"""Service level and abandons per workspace: abandons are misses, labels stay bounded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from omniroute.v1 import inquiry_pb2
from omniroute_router.app import Router
from omniroute_router.config import RoutingConfig, WorkspaceConfig
from omniroute_router.convert import inquiry_from_proto
from omniroute_router.decisions import Notice, NoticeKind
from omniroute_router.metrics import RouterMetrics
from omniroute_router.reservations import AgentStateClient
from omniroute_router.routing import WorkspaceRouter
from omniroute_router.settings import RouterSettings

NOW = 1_800_000_000.0
CONFIG = WorkspaceConfig(service_levels={"chat": 60})


def make_router(registry: CollectorRegistry) -> Router:
    config = RoutingConfig(workspaces={"acme": CONFIG}, default=CONFIG)
    return Router(
        RouterSettings(), config, RouterMetrics(registry), AgentStateClient("127.0.0.1:1")
    )


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(f"omniroute_router_{name}_total", labels)


def admitted(workspace: str, inquiry_id: str, channel: int) -> WorkspaceRouter:
    core = WorkspaceRouter(workspace, CONFIG)
    proto = inquiry_pb2.Inquiry(id=inquiry_id, workspace=workspace, channel=channel)
    assert core.admit(inquiry_from_proto(proto, NOW - 30), NOW - 30)
    return core


def test_configured_workspaces_have_their_series_before_the_first_event() -> None:
    registry = CollectorRegistry()
    make_router(registry)
    chat = {"workspace": "acme", "queue": "default", "channel": "chat"}
    assert sample(registry, "answered", **chat, within_sla="yes") == 0
    assert sample(registry, "answered", **chat, within_sla="no") == 0
    assert sample(registry, "abandoned", **chat, within_sla="no") == 0
    email = {"workspace": "acme", "queue": "default", "channel": "email"}
    assert sample(registry, "answered", **email, within_sla="unknown") == 0
    assert sample(registry, "abandoned", **email, within_sla="unknown") == 0
    # No series for workspaces nobody configured until they have an event.
    assert sample(registry, "answered", **{**chat, "workspace": "other"}, within_sla="no") is None


def test_an_abandon_is_a_miss_where_the_channel_has_a_target() -> None:
    registry = CollectorRegistry()
    router = make_router(registry)
    for inquiry_id, channel in (
        ("c1", inquiry_pb2.CHANNEL_CHAT),
        ("e1", inquiry_pb2.CHANNEL_EMAIL),
    ):
        core = admitted("acme", inquiry_id, channel)
        assert core.abandoned(inquiry_id, NOW)
        router._notices(core, core.take_step().notices, NOW)
    chat = {"workspace": "acme", "queue": "default", "channel": "chat"}
    assert sample(registry, "abandoned", **chat, within_sla="no") == 1
    email = {"workspace": "acme", "queue": "default", "channel": "email"}
    assert sample(registry, "abandoned", **email, within_sla="unknown") == 1


def test_answers_count_by_workspace_and_strangers_share_one_label() -> None:
    registry = CollectorRegistry()
    router = make_router(registry)
    for workspace, wait in (("acme", 10.0), ("acme", 90.0), ("stranger-1", 5.0), ("x-2", 5.0)):
        core = admitted(workspace, f"{workspace}-{wait}", inquiry_pb2.CHANNEL_CHAT)
        inquiry = core.inquiries[f"{workspace}-{wait}"]
        answered = Notice(
            NoticeKind.ANSWERED, inquiry.id, inquiry.queue, inquiry.channel, wait_s=wait
        )
        assert core.abandoned("gone-" + workspace, NOW)  # before its inquiry: not counted
        router._notices(core, [answered, *core.take_step().notices], NOW)
    chat = {"queue": "default", "channel": "chat"}
    assert sample(registry, "answered", workspace="acme", **chat, within_sla="yes") == 1
    assert sample(registry, "answered", workspace="acme", **chat, within_sla="no") == 1
    assert sample(registry, "answered", workspace="other", **chat, within_sla="yes") == 2
    assert sample(registry, "answered", workspace="stranger-1", **chat, within_sla="yes") is None
    assert sample(registry, "abandoned", workspace="other", **chat, within_sla="no") is None

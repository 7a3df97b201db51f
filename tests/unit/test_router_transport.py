"""The router's Faust app: its producer per broker, and the state topics it prepares."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from omniroute.kafka import compacted
from omniroute.settings import BrokerKind, CommonSettings
from omniroute_router.__main__ import changelog_topics
from omniroute_router.app import Router, create_app
from omniroute_router.config import RoutingConfig
from omniroute_router.metrics import RouterMetrics
from omniroute_router.reservations import AgentStateClient
from omniroute_router.settings import RouterSettings
from omniroute_router.transport import app_class


@pytest.mark.parametrize("kind", list(BrokerKind), ids=str)
async def test_the_faust_producer_is_idempotent_only_where_the_broker_offers_it(
    kind: BrokerKind,
) -> None:
    settings = CommonSettings(kafka_broker_kind=kind, kafka_fetch_max_wait_ms=50)
    app = app_class(settings)("transport-test", broker="kafka://127.0.0.1:9", autodiscover=False)
    extra = app.producer._settings_extra()  # type: ignore[attr-defined]
    if kind.idempotent_producers:
        assert extra == {"acks": "all", "enable_idempotence": True}
    else:
        assert "enable_idempotence" not in extra


async def test_the_router_creates_the_changelog_of_every_state_table() -> None:
    settings = RouterSettings(router_app_id="router-x", kafka_broker_kind=BrokerKind.KAFKA)
    agent_state = AgentStateClient("127.0.0.1:9", "", 1.0)
    router = Router(settings, RoutingConfig(), RouterMetrics(CollectorRegistry()), agent_state)
    app = create_app(settings, router)
    tables = [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    assert sorted(changelog_topics(settings)) == sorted(tables)
    # ... compacted within the setting, as the topics prepare_topics creates.
    for table in app.tables.values():
        assert table.changelog_topic.config == compacted(settings)

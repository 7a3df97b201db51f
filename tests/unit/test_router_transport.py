"""The router's Faust app: its producer per broker, and the state topics it prepares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from faust.tables.recovery import Recovery
from prometheus_client import CollectorRegistry

from omniroute.kafka import compacted
from omniroute.settings import BrokerKind, CommonSettings
from omniroute_router.__main__ import changelog_topics
from omniroute_router.app import Router, create_app
from omniroute_router.config import RoutingConfig
from omniroute_router.metrics import RouterMetrics
from omniroute_router.reservations import AgentStateClient
from omniroute_router.settings import RouterSettings
from omniroute_router.transport import app_class, batches


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


async def test_records_fetched_while_recovery_resumes_the_streams_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's order at the end of recovery, with a record arriving in the middle.

    Faust resumes the stream partitions, awaits the seek (the fetcher delivers
    meanwhile) and then resumes flow control, which empties the stream queues.
    The router's recovery must keep the record that arrived during the seek.
    """
    settings = CommonSettings(kafka_broker_kind=BrokerKind.KAFKA)
    app = app_class(settings)("recovery-test", broker="kafka://127.0.0.1:9", autodiscover=False)
    queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
    app.flow_control.resume()  # flowing, as while the changelogs were read

    async def deliver(record: str) -> None:  # Faust's conductor: waits on flow control
        await app.flow_control.acquire()
        queue.put_nowait(record)

    async def faust_on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
        arriving = asyncio.create_task(deliver("task event"))
        await asyncio.sleep(0.01)  # the seek's round trip
        app.flow_control.resume()
        await arriving

    monkeypatch.setattr(Recovery, "on_recovery_completed", faust_on_recovery_completed)
    await app.tables.recovery.on_recovery_completed(1)
    assert queue.get_nowait() == "task event"


class FakeStream:
    """A Faust stream as `batches` uses it: records to iterate, acks recorded."""

    def __init__(self) -> None:
        self.records: asyncio.Queue[str] = asyncio.Queue()
        self.acked: list[str] = []
        self.manual = False

    def noack(self) -> FakeStream:
        self.manual = True
        return self

    async def events(self) -> AsyncIterator[str]:
        while True:
            yield await self.records.get()

    async def ack(self, event: str) -> bool:
        self.acked.append(event)
        return True


async def test_a_batch_is_what_arrived_and_is_acknowledged_once_handled() -> None:
    stream = FakeStream()
    for record in ("r1", "r2", "r3"):
        stream.records.put_nowait(record)
    batched = batches(stream, max_events=2, wait_s=0.001)
    assert await anext(batched) == ["r1", "r2"]  # at most max_events
    assert stream.manual and stream.acked == []  # not before it was handled
    assert await anext(batched) == ["r3"]
    assert stream.acked == ["r1", "r2"]
    stream.records.put_nowait("r4")
    assert await anext(batched) == ["r4"]
    assert stream.acked == ["r1", "r2", "r3"]
    # The caller failed handling r4 and gave up: r4 is never acknowledged (read again).
    await batched.aclose()
    assert stream.acked == ["r1", "r2", "r3"]


async def test_the_stream_is_read_while_a_batch_is_handled() -> None:
    stream = FakeStream()
    stream.records.put_nowait("r1")
    batched = batches(stream, max_events=10, wait_s=0)
    assert await anext(batched) == ["r1"]
    for record in ("r2", "r3"):  # arrive while r1 is handled
        stream.records.put_nowait(record)
    await asyncio.sleep(0.01)
    assert await anext(batched) == ["r2", "r3"]
    await batched.aclose()

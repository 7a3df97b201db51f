"""A restarted router worker restores its tables completely, whatever their last batch.

The embedded broker's ListOffsets answers, for a partition whose last produce
batch holds several records, the first offset of that batch plus one, short of
the end; Faust's recovery took that as the end and stopped early, so a restarted
worker came back without the table's last records (seen: 8,828 of 10,000
waiting inquiries). Here the changelog ends with one batch of several records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer
from faust.serializers import codecs

from omniroute.codec import timestamp
from omniroute.embedded import Broker
from omniroute.v1 import inquiry_pb2
from omniroute_router.config import WorkspaceConfig
from omniroute_router.convert import inquiry_from_proto
from omniroute_router.routing import WorkspaceRouter
from omniroute_router.tables import RoutingTables
from tests.support.system import System, eventually, metric_value, new_workspace, running

pytestmark = pytest.mark.integration

WAITING = 40


@pytest.fixture
def system(broker: Broker) -> Iterator[System]:
    yield from running(System(broker, partitions=1), "agent-state", "router")


def waiting_tables(workspace: str, count: int, now: float) -> RoutingTables:
    """The router's tables holding `count` inquiries waiting in `workspace`, as the
    router's own table code writes them."""
    router = WorkspaceRouter(workspace, WorkspaceConfig())
    for n in range(count):
        proto = inquiry_pb2.Inquiry(
            id=f"inq-{n:04d}",
            workspace=workspace,
            channel=inquiry_pb2.CHANNEL_EMAIL,
            subject="restore",
            received_at=timestamp(now - count + n),
        )
        router.admit(inquiry_from_proto(proto, now), now)
    tables = RoutingTables()
    tables.persist(router, router.drain_changes())
    tables.place(workspace, 0)
    return tables


async def test_a_restarted_worker_restores_a_changelog_ending_in_a_batch_of_several(
    system: System,
) -> None:
    workspace = new_workspace()
    tables = waiting_tables(workspace, WAITING, time.time())
    system.processes["router"].stop()  # SIGTERM, as in a rolling restart

    app_id = system.env["ROUTER_APP_ID"]
    producer = AIOKafkaProducer(bootstrap_servers=system.broker.bootstrap, linger_ms=100)
    await producer.start()
    try:
        for table, items in (("inquiries", tables.inquiries), ("workspaces", tables.workspaces)):
            # Sent together and flushed once: each changelog's last batch holds them all.
            sent = [
                await producer.send(
                    f"{app_id}-{table}-changelog",
                    codecs.dumps("json", value),
                    key=codecs.dumps("json", key),
                    partition=0,
                )
                for key, value in items.items()
            ]
            await producer.flush()
            offsets = [(await result).offset for result in sent]
            assert offsets == list(range(offsets[0], offsets[0] + len(items)))
    finally:
        await producer.stop()

    system.restart("router")
    url = system.router_metrics_url()
    depth_line = f'omniroute_router_queue_depth{{queue="default",workspace="{workspace}"}}'

    async def restored() -> float:
        depth = metric_value(url, depth_line)
        assert depth == WAITING
        return depth

    assert await eventually(restored, timeout_s=60) == WAITING

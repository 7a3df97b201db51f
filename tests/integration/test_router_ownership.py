"""Who may act for a partition: fenced workers stop, skipped records are swept, sizes must match."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from omniroute.codec import encode, timestamp
from omniroute.embedded import EmbeddedBroker
from omniroute.ports import free_port
from omniroute.v1 import agent_state_pb2, inquiry_pb2
from tests.support.processes import ServiceProcess
from tests.support.system import (
    CHAT,
    Desk,
    System,
    eventually,
    make_agent,
    metric_value,
    new_workspace,
    read_assignments,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def system(broker: EmbeddedBroker) -> Iterator[System]:
    system = System(broker)
    try:
        yield system
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()


@pytest.fixture
async def desk(system: System) -> AsyncIterator[Desk]:
    system.start("agent-state", "ingest")
    desk = Desk(system.agent_state_target)
    yield desk
    await desk.close()


async def publish_inquiry(system: System, workspace: str, inquiry_id: str) -> tuple[int, int]:
    """Publish an inquiry straight to the topic; returns its partition and offset."""
    producer = AIOKafkaProducer(bootstrap_servers=system.broker.bootstrap, acks="all")
    await producer.start()
    try:
        inquiry = inquiry_pb2.Inquiry(
            id=inquiry_id, workspace=workspace, channel=CHAT, received_at=timestamp(0)
        )
        sent = await producer.send_and_wait(
            system.topics["TOPIC_INQUIRIES"], encode(inquiry), key=workspace.encode()
        )
        return sent.partition, sent.offset
    finally:
        await producer.stop()


async def commit(system: System, partition: int, offset: int) -> None:
    """Set the router group's committed offset of one inquiries partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=system.broker.bootstrap,
        group_id=system.env["ROUTER_APP_ID"],
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tp = TopicPartition(system.topics["TOPIC_INQUIRIES"], partition)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


async def test_an_inquiry_the_stream_skipped_is_found_by_the_sweep(
    system: System, desk: Desk
) -> None:
    ws = new_workspace()
    agent_id = f"{ws}-agent"
    await desk.login(make_agent(ws, agent_id, {"billing": 3}, {CHAT: 2}))
    # The group's position is past this record when the router starts: the
    # stream never reads it, as after the rebalance seen under load.
    partition, offset = await publish_inquiry(system, ws, f"{ws}-skipped")
    await commit(system, partition, offset + 1)
    system.start_router(ROUTER_SWEEP_INTERVAL_S="1")
    async with read_assignments(system) as assignments:
        await publish_inquiry(system, ws, f"{ws}-read")
        await assignments.wait_for(lambda a: a.inquiry_id == f"{ws}-read")
        swept = await assignments.wait_for(lambda a: a.inquiry_id == f"{ws}-skipped")
        assert swept.agent_id == agent_id
        offered = [a.inquiry_id for a in assignments.records if a.workspace == ws]
        assert sorted(offered) == [f"{ws}-read", f"{ws}-skipped"]


async def test_a_worker_fenced_out_at_agent_state_offers_nothing(
    system: System, desk: Desk
) -> None:
    system.start_router()
    # A newer owner of every partition has acted at agent-state.
    for partition in range(system.partitions):
        fence = agent_state_pb2.RouterFence(
            group=system.env["ROUTER_APP_ID"], partition=partition, generation=1000
        )
        await desk.stub.WithdrawOffer(
            agent_state_pb2.WithdrawOfferRequest(
                workspace="fence", inquiry_id="none", reason="fence", fence=fence
            )
        )
    ws = new_workspace()
    agent_id = f"{ws}-agent"
    await desk.login(make_agent(ws, agent_id, {"billing": 3}, {CHAT: 1}))
    await publish_inquiry(system, ws, f"{ws}-q")
    metrics = f"http://127.0.0.1:{system.ports['router_metrics']}/metrics"

    async def fenced() -> None:
        assert (metric_value(metrics, "omniroute_router_fenced_total ") or 0) >= 1

    await eventually(fenced)
    agent = await desk.agent(agent_id)
    assert not agent.reservations
    async with read_assignments(system) as assignments:
        assert [a for a in assignments.records if a.workspace == ws] == []


@pytest.mark.parametrize("changelog", [False, True], ids=["input", "changelog"])
async def test_the_router_refuses_a_partition_count_other_than_kafka_partitions(
    system: System, changelog: bool
) -> None:
    for name in ("agent_state", "agent_state_metrics", "ingest", "router_metrics"):
        system.ports.setdefault(name, free_port())
    app_id = system.env["ROUTER_APP_ID"]
    topic = f"{app_id}-inquiries-changelog" if changelog else system.topics["TOPIC_INQUIRIES"]
    admin = AIOKafkaAdminClient(bootstrap_servers=system.broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, system.partitions + 1, 1)])
    finally:
        await admin.close()
    router = ServiceProcess("omniroute_router", system.env).start()
    system.processes["router"] = router
    assert router.process is not None
    assert router.process.wait(timeout=60) != 0
    expected = f"topic {topic!r} has {system.partitions + 1} partitions, KAFKA_PARTITIONS is 2"
    assert expected in router.log()

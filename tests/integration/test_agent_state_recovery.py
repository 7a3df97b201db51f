"""agent-state as a real process: killed with SIGKILL and restarted, it loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.processes import SOURCE_PATH
from omniroute.embedded import Broker
from omniroute.ports import free_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2
from tests.support.agent_state import agent_state_env, available_agent, reserve
from tests.support.processes import ServiceProcess
from tests.support.system import new_workspace, port_open

pytestmark = pytest.mark.integration

VOICE, CHAT = inquiry_pb2.CHANNEL_VOICE, inquiry_pb2.CHANNEL_CHAT
AWAY, WRAP_UP = agent_pb2.AGENT_STATUS_AWAY, agent_pb2.AGENT_STATUS_WRAP_UP


def _essentials(agent: agent_pb2.Agent) -> tuple[object, ...]:
    """What a restart must keep: status and why, load per channel, open reservations."""
    return (
        agent.status,
        agent.away_reason,
        sorted((c.channel, c.capacity, c.load) for c in agent.capacities),
        sorted(
            (r.inquiry_id, r.reservation_id, r.accepted, r.expires_at.seconds)
            for r in agent.reservations
        ),
        agent.wrap_up_until.seconds,
        agent.version,
    )


async def test_sigkill_and_restart_restore_every_agent(broker: Broker) -> None:
    port = free_port()
    env = agent_state_env(
        broker,
        AGENT_STATE_PORT=str(port),
        AGENT_STATE_METRICS_PORT=str(free_port()),
        OFFER_TTL_S="300",
        WRAP_UP_BY_CHANNEL='{"voice": 600}',
        LOG_LEVEL="WARNING",
    )
    ws = new_workspace()
    first = ServiceProcess("omniroute_agent_state", env).start()
    second: ServiceProcess | None = None
    try:
        first.wait_until(lambda: port_open(port))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            await available_agent(stub, ws, "ann", {CHAT: 3, VOICE: 1})
            await stub.ReserveAgent(reserve(ws, "ann", "chat-open"))
            await stub.ReserveAgent(reserve(ws, "ann", "chat-work"))
            await stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="chat-work"))  # fmt: skip
            await available_agent(stub, ws, "bob", {CHAT: 1})
            await stub.SetStatus(
                agent_state_pb2.SetStatusRequest(agent_id="bob", status=AWAY, reason="training")
            )
            await available_agent(stub, ws, "cal", {VOICE: 1})
            await stub.SetStatus(agent_state_pb2.SetStatusRequest(agent_id="cal", status=WRAP_UP))
            before = {
                a.id: a
                for a in (
                    await stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace=ws))
                ).agents
            }
        first.stop(signal.SIGKILL)

        second = ServiceProcess("omniroute_agent_state", env).start()
        second.wait_until(lambda: port_open(port))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest())
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            # The container's health probe agrees.
            probe = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "omniroute_agent_state.healthcheck",
                env={**os.environ, "PYTHONPATH": SOURCE_PATH, **env},
            )
            assert await probe.wait() == 0
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            after = {
                a.id: a
                for a in (
                    await stub.ListAgents(agent_state_pb2.ListAgentsRequest(workspace=ws))
                ).agents
            }
            assert sorted(after) == ["ann", "bob", "cal"]
            for agent_id, agent in before.items():
                assert _essentials(after[agent_id]) == _essentials(agent), agent_id
            # The open reservation still guards its inquiry and still holds its slot ...
            again = await stub.ReserveAgent(reserve(ws, "bob", "chat-open"))
            assert again.already_reserved and again.agent.id == "ann"
            # ... and the agent can still take it; the next version follows on.
            ann = await stub.AcceptTask(
                agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="chat-open")
            )
            assert ann.version == before["ann"].version + 1
            assert all(r.accepted for r in ann.reservations)
        # SIGTERM: a graceful stop, exit status 0.
        assert second.stop(signal.SIGTERM) == 0
    except BaseException:
        print(first.log())
        if second is not None:
            print(second.log())
        raise
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_records_with_unknown_values_are_skipped_at_recovery_and_metrics_answer(
    broker: Broker,
) -> None:
    """A forged or newer-schema agent record (status 99, channel 99) on agent-events
    never breaks /metrics: recovery keeps the highest valid version and counts the rest."""
    from aiokafka import AIOKafkaProducer
    from prometheus_client import generate_latest

    from omniroute.codec import encode
    from tests.support.agent_state import make_topics, serving, settings_from
    from tests.support.system import make_agent

    env = agent_state_env(broker)
    settings = settings_from(env)
    ws = new_workspace()
    good = make_agent(ws, "ann", {"billing": 3}, {CHAT: 2})
    good.status, good.version = agent_pb2.AGENT_STATUS_AVAILABLE, 3
    unknown_status = agent_pb2.Agent()
    unknown_status.CopyFrom(good)
    unknown_status.version = 4
    unknown_status.status = 99  # type: ignore[assignment]
    unknown_channel = make_agent(ws, "bob", {"billing": 3}, {CHAT: 1})
    unknown_channel.status, unknown_channel.version = agent_pb2.AGENT_STATUS_AVAILABLE, 1
    unknown_channel.capacities.add(channel=99, capacity=1)  # type: ignore[arg-type]
    await make_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for agent in (good, unknown_status, unknown_channel):
            event = agent_pb2.AgentEvent(event_id=f"e-{agent.id}-{agent.version}", agent=agent)
            await producer.send_and_wait(
                settings.topic_agent_events, encode(event), key=ws.encode()
            )
    finally:
        await producer.stop()

    async with serving(settings) as running:
        ann = await running.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="ann"))
        assert (ann.version, ann.status) == (3, agent_pb2.AGENT_STATUS_AVAILABLE)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await running.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="bob"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        scrape = generate_latest(running.registry).decode()
        assert f'omniroute_agent_state_agents{{status="available",workspace="{ws}"}} 1.0' in scrape
        skipped = "omniroute_agent_state_records_skipped_total"
        assert f'{skipped}{{reason="unknown_status"}} 1.0' in scrape
        assert f'{skipped}{{reason="unknown_channel"}} 1.0' in scrape


async def test_a_reservation_whose_offered_was_lost_is_offered_once_at_restart(
    broker: Broker,
) -> None:
    """The lost-write state of a kill between the agent record's and the TaskEvent's
    acknowledgements: the record holds an open reservation, task-events has no OFFERED.
    The next start publishes it, once; a second start publishes nothing more."""
    from aiokafka import AIOKafkaProducer

    from omniroute.codec import encode, timestamp
    from tests.support.agent_state import make_topics, settings_from
    from tests.support.kafka import TopicTail
    from tests.support.system import make_agent

    port = free_port()
    env = agent_state_env(
        broker, AGENT_STATE_PORT=str(port), OFFER_TTL_S="300", LOG_LEVEL="WARNING"
    )
    settings = settings_from(env)
    ws = new_workspace()
    ann = make_agent(ws, "ann", {"billing": 3}, {CHAT: 2})
    ann.status, ann.version = agent_pb2.AGENT_STATUS_AVAILABLE, 2
    ann.capacities[0].load = 1
    held = ann.reservations.add(
        reservation_id="r-lost", agent_id="ann", inquiry_id="q-lost", channel=CHAT, workspace=ws
    )
    held.expires_at.CopyFrom(timestamp(time.time() + 300))
    await make_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        event = agent_pb2.AgentEvent(
            event_id="e-ann-2", change=agent_pb2.AgentEvent.CHANGE_RESERVED, agent=ann
        )
        await producer.send_and_wait(settings.topic_agent_events, encode(event), key=ws.encode())
        await producer.send_and_wait(
            settings.topic_agent_snapshots, encode(ann), key=ann.id.encode()
        )
    finally:
        await producer.stop()

    def offered(event: task_pb2.TaskEvent) -> bool:
        return event.type == task_pb2.TaskEvent.TYPE_OFFERED and event.inquiry_id == "q-lost"

    processes: list[ServiceProcess] = []
    try:
        async with TopicTail(
            broker.bootstrap, settings.topic_task_events, task_pb2.TaskEvent
        ) as tail:
            for start in range(2):
                service = ServiceProcess("omniroute_agent_state", env).start()
                processes.append(service)
                service.wait_until(lambda: port_open(port))
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = agent_state_pb2_grpc.AgentStateStub(channel)
                    again = await stub.ReserveAgent(reserve(ws, "ann", "q-lost"))
                    assert again.already_reserved
                    assert again.reservation.reservation_id == "r-lost"
                    # A new offer, published after anything the start published on the
                    # workspace's partition: once it is read, so is every repair before it.
                    marker = f"q-marker-{start}"
                    await stub.ReserveAgent(reserve(ws, "ann", marker))
                    await stub.WithdrawOffer(
                        agent_state_pb2.WithdrawOfferRequest(
                            workspace=ws, inquiry_id=marker, reason="test"
                        )
                    )
                await tail.wait_for(lambda e, marker=marker: e.inquiry_id == marker)
                (event,) = await tail.wait_count(offered, 1)
                assert (event.workspace, event.agent_id, event.reservation_id) == (
                    ws,
                    "ann",
                    "r-lost",
                )
                assert service.stop(signal.SIGTERM) == 0
            # The second start found the repaired OFFERED: nothing more was published.
            assert [e for e in tail.records if e.inquiry_id == "q-lost"] == [event]
    except BaseException:
        for service in processes:
            print(service.log())
        raise
    finally:
        for service in processes:
            service.stop()

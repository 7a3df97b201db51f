"""Checkpoints on the real broker: a restart reads the latest one and only the tail after it.

The state a restart rebuilds is the same as before it (agents, statuses,
loads, open offers and their timers, fences, recent task events), and the
recovery repair still sees what the checkpoint holds (nothing published again)
and what the tail lacks (a torn batch after the checkpoint is repaired).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from omniroute.codec import encode, timestamp
from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2, agent_state_pb2, checkpoint_pb2, inquiry_pb2, task_pb2
from omniroute_agent_state.roster import Roster
from tests.support.agent_state import (
    Running,
    agent_state_env,
    available_agent,
    eventually,
    published,
    reserve,
    serving,
    settings_from,
)
from tests.support.system import new_workspace

pytestmark = pytest.mark.integration

VOICE, CHAT = inquiry_pb2.CHANNEL_VOICE, inquiry_pb2.CHANNEL_CHAT
AVAILABLE, AWAY, WRAP_UP = (
    agent_pb2.AGENT_STATUS_AVAILABLE,
    agent_pb2.AGENT_STATUS_AWAY,
    agent_pb2.AGENT_STATUS_WRAP_UP,
)
TaskEvent = task_pb2.TaskEvent


def state(roster: Roster) -> dict[str, Any]:
    """Everything a restart must bring back, comparable."""
    return {
        "agents": {
            agent_id: agent.SerializeToString(deterministic=True)
            for agent_id, agent in roster.agents.items()
        },
        "fences": dict(roster.fences),
        "holder": dict(roster.holder),
        "offers": {r: agent for r, (_, agent) in roster.offer_deadlines.items()},
        "wrap_ups": set(roster.wrap_up_deadlines),
        "last_events": {k: e.event_id for k, (e, _) in roster.last_events.items()},
        "agent_outcomes": {k: e.event_id for k, (e, _) in roster.agent_outcomes.items()},
    }


def sample(service: Running, name: str, **labels: str) -> float:
    return service.registry.get_sample_value(name, labels) or 0.0


def tail_read(service: Running) -> float:
    """Records the service read after its checkpoint when it started."""
    return sum(
        sample(service, "omniroute_agent_state_recovery_records", source=source)
        for source in ("agent_snapshots", "agent_events", "task_events")
    )


async def test_a_restart_reads_the_checkpoint_and_only_the_tail(broker: Broker) -> None:
    env = agent_state_env(
        broker,
        OFFER_TTL_S="300",
        OFFER_TTL_BY_CHANNEL="{}",
        WRAP_UP_BY_CHANNEL='{"voice": 600}',
        CHECKPOINT_RECORDS="1000000",  # none by itself
    )
    settings = settings_from(env)
    ws = new_workspace()
    fence = agent_state_pb2.RouterFence(group="router-c", partition=1, generation=4)
    async with serving(settings) as first:
        stub = first.stub
        for i in range(8):
            await available_agent(stub, ws, f"a{i}", {CHAT: 3, VOICE: 1})
        # A long history: agents going on break and back, offers made and withdrawn.
        for round_ in range(25):
            for i in range(4):
                await stub.SetStatus(
                    agent_state_pb2.SetStatusRequest(agent_id=f"a{i}", status=AWAY, reason="break")
                )
                await stub.SetStatus(agent_state_pb2.SetStatusRequest(agent_id=f"a{i}", status=AVAILABLE))  # fmt: skip
            await stub.ReserveAgent(reserve(ws, "a5", f"gone-{round_}"))
            await stub.WithdrawOffer(
                agent_state_pb2.WithdrawOfferRequest(workspace=ws, inquiry_id=f"gone-{round_}")
            )
        # State from before the checkpoint: open offers, tasks in work, a fence, a wrap-up.
        fenced = reserve(ws, "a6", "offered-early")
        fenced.fence.CopyFrom(fence)
        await stub.ReserveAgent(fenced)
        await stub.ReserveAgent(reserve(ws, "a7", "accepted-early"))
        await stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="a7", inquiry_id="accepted-early"))  # fmt: skip
        await stub.SetStatus(agent_state_pb2.SetStatusRequest(agent_id="a4", status=WRAP_UP))
        # A checkpoint now (the service takes one by itself once CHECKPOINT_RECORDS
        # were written: see the next test; here the moment is the test's).
        checkpointer = first.server.checkpointer
        await checkpointer.take(10.0)
        # The tail: a few changes after the last checkpoint.
        await stub.ReserveAgent(reserve(ws, "a0", "offered-late"))
        await stub.ReserveAgent(reserve(ws, "a1", "accepted-late", VOICE))
        await stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="a1", inquiry_id="accepted-late"))  # fmt: skip
        await stub.SetStatus(
            agent_state_pb2.SetStatusRequest(agent_id="a2", status=AWAY, reason="lunch")
        )
        await first.server.servicer.outbox.drain(10.0)
        history = checkpointer.records_behind + checkpointer.journal.written
        since = checkpointer.journal.written - checkpointer.written_at_last
        before = state(first.server.servicer.roster)

    async with serving(settings) as second:
        assert state(second.server.servicer.roster) == before
        read = tail_read(second)
        # Only what came after the checkpoint is read again, not the history.
        assert 0 < read <= since < history / 10, (read, since, history)
        assert sample(second, "omniroute_agent_state_recovery_records", source="checkpoint") >= 2
        # What the checkpoint holds is on the topics: nothing needed repairing.
        assert sample(second, "omniroute_agent_state_recovery_gaps_total", kind="repaired") == 0
        # The fence survived in the checkpoint: the old generation is still refused.
        stale = reserve(ws, "a3", "stale")
        stale.fence.CopyFrom(fence)
        stale.fence.generation = 3
        with pytest.raises(Exception, match="no longer owns"):
            await second.stub.ReserveAgent(stale)


async def test_a_torn_batch_after_the_checkpoint_is_still_repaired(broker: Broker) -> None:
    env = agent_state_env(
        broker, OFFER_TTL_S="300", CHECKPOINT_RECORDS="50", CHECKPOINT_CHECK_S="0.05"
    )
    settings = settings_from(env)
    ws = new_workspace()
    async with serving(settings) as first:
        ann = await available_agent(first.stub, ws, "ann", {CHAT: 2})
        for _ in range(15):
            await first.stub.SetStatus(
                agent_state_pb2.SetStatusRequest(agent_id="ann", status=AWAY, reason="break")
            )
            ann = await first.stub.SetStatus(
                agent_state_pb2.SetStatusRequest(agent_id="ann", status=AVAILABLE)
            )
        await eventually(
            lambda: sample(first, "omniroute_agent_state_checkpoints_total", outcome="written")
        )
    # A kill between the acknowledgements of one batch: ann's record holds a
    # reservation whose OFFERED never reached task-events (written after the checkpoint).
    ann.version += 1
    ann.capacities[0].load = 1
    held = ann.reservations.add(
        reservation_id="r-torn", agent_id="ann", inquiry_id="q-torn", channel=CHAT, workspace=ws
    )
    held.expires_at.CopyFrom(timestamp(time.time() + 300))
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        event = agent_pb2.AgentEvent(
            event_id="e-torn", change=agent_pb2.AgentEvent.CHANGE_RESERVED, agent=ann
        )
        await producer.send_and_wait(settings.topic_agent_events, encode(event), key=ws.encode())
    finally:
        await producer.stop()
    async with serving(settings) as second:
        async with published(second, settings.topic_task_events, TaskEvent) as tail:
            repaired = await tail.wait_for(lambda e: e.inquiry_id == "q-torn")
        assert (repaired.type, repaired.reservation_id, repaired.reason) == (
            TaskEvent.TYPE_OFFERED,
            "r-torn",
            "recovered",
        )
        assert sample(second, "omniroute_agent_state_recovery_records", source="checkpoint") >= 2
        assert tail_read(second) < 20
        again = await second.stub.ReserveAgent(reserve(ws, "ann", "q-torn"))
        assert again.already_reserved and again.reservation.reservation_id == "r-torn"


async def test_a_checkpoint_torn_by_a_crash_leaves_the_one_before(broker: Broker) -> None:
    env = agent_state_env(broker, OFFER_TTL_S="300", CHECKPOINT_RECORDS="1000000")
    settings = settings_from(env)
    ws = new_workspace()
    async with serving(settings) as first:
        for i in range(3):
            await available_agent(first.stub, ws, f"a{i}", {CHAT: 2})
        await first.stub.ReserveAgent(reserve(ws, "a0", "open"))
        manifest = await first.server.checkpointer.take(10.0)
        previous = first.server.checkpointer.previous_manifest_offset
        before = state(first.server.servicer.roster)
    # A crash while the next checkpoint was being written: a chunk, no manifest.
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        torn = checkpoint_pb2.CheckpointRecord(
            chunk=checkpoint_pb2.CheckpointChunk(
                checkpoint_id="torn", index=0, previous_manifest_offset=previous
            )
        )
        torn.chunk.agents.add(id="a0", workspace=ws, version=1)  # never used
        await producer.send_and_wait(
            settings.topic_agent_checkpoints, encode(torn), key=b"checkpoint"
        )
    finally:
        await producer.stop()
    async with serving(settings) as second:
        assert state(second.server.servicer.roster) == before
        assert tail_read(second) == 0  # nothing after the checkpoint
        read = sample(second, "omniroute_agent_state_recovery_records", source="checkpoint")
        assert read == manifest.chunks + 2  # the torn chunk, the manifest, its chunks

"""`TopicFollower.stop()` ends the reader, also when its cancellation is lost on the way.

A follower's reader is cancelled while it reads; the Kafka client can lose that
cancellation: an error raised while the consumer closes takes its place, and
code that catches a timeout can catch it too. The reader then carried on (it
reconnected, as after any error) and `stop()` waited for it for ever: seen as
agent-state tests hanging in teardown under load. Each follower here loses the
first cancellation on purpose, in its first round, on the real broker.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from omniroute.embedded import Broker
from omniroute.feeds import TopicFollower
from tests.support.agent_state import agent_state_env, settings_from

pytestmark = pytest.mark.integration

# How long a test waits for `stop()` before it fails (a deadline, not a timing).
STOP_DEADLINE_S = 30.0


class LosesFirstCancellation(TopicFollower):
    """Reads a topic of its own; in its first round the cancellation is lost as `how` says."""

    def __init__(self, broker: Broker, how: str) -> None:
        super().__init__(settings_from(agent_state_env(broker)), client_id="test-follower")
        self.topic = f"follow-{uuid.uuid4().hex[:8]}"
        self.how = how
        self.rounds = 0
        self.positioned = asyncio.Event()

    async def position(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        self.rounds += 1
        if self.rounds == 1:
            self.positioned.set()
            if self.how == "error while closing":
                try:
                    await asyncio.Event().wait()  # cancelled here
                finally:
                    raise KafkaConnectionError("closing failed")  # in place of the cancellation
            try:
                await asyncio.Event().wait()  # cancelled here
            except asyncio.CancelledError:
                pass  # caught, as a caught timeout can catch it
            await asyncio.Event().wait()
        await consumer.seek_to_end(*partitions)

    async def take(self, value: bytes | None) -> None:
        pass


@pytest.mark.embedded_tier_only
@pytest.mark.parametrize("how", ["error while closing", "cancellation caught"])
async def test_stop_ends_the_reader_even_when_a_cancellation_is_lost(
    broker: Broker, how: str
) -> None:
    follower = LosesFirstCancellation(broker, how)
    follower.start()
    await asyncio.wait_for(follower.positioned.wait(), STOP_DEADLINE_S)
    stopping = asyncio.create_task(follower.stop())
    done, _ = await asyncio.wait({stopping}, timeout=STOP_DEADLINE_S)
    assert done, f"stop() has not returned after {STOP_DEADLINE_S}s: the reader carried on"
    assert follower.rounds == 1, "the reader reconnected after it was stopped"

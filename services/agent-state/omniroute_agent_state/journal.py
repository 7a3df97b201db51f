"""agent-state's journal on Kafka: every change published, the roster rebuilt from it.

- `agent-events` (key: workspace): every change, with the agent's full record
  after it; the router's picture of agents comes from here.
- `task-events` (key: workspace): offered, accepted, declined, offer timeout,
  withdrawn, completed (with the outcome).
- `agent-snapshots` (key: agent id, compacted on Kafka): the latest full
  record of each agent; a restarted service reads it to the end and takes the
  highest version of each agent, so no agent, status, load or open offer is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from omniroute.codec import InvalidEvent, decode
from omniroute.kafka import EventProducer, compacted, ensure_topics
from omniroute.v1 import agent_pb2
from omniroute_agent_state.roster import Changes
from omniroute_agent_state.settings import AgentStateSettings

log = logging.getLogger("omniroute.agent_state")


class Journal:
    """Publishes the roster's changes; waits for the broker before a call is answered."""

    def __init__(self, settings: AgentStateSettings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer

    async def prepare(self) -> None:
        """Create the topics this service writes."""
        await ensure_topics(
            self.settings,
            [
                self.settings.topic_agent_events,
                self.settings.topic_task_events,
                self.settings.topic_agent_snapshots,
            ],
            # One record per agent is all recovery needs (the embedded broker
            # accepts this and never compacts; recovery reads it all then).
            configs={self.settings.topic_agent_snapshots: compacted(self.settings)},
        )

    async def record(self, changes: Changes) -> None:
        """Publish every event of `changes`; raises `BrokerUnavailable` when not acknowledged."""
        s = self.settings
        writes = []
        for event in changes.agent_events:
            writes.append(self.producer.publish(s.topic_agent_events, event.agent.workspace, event))
            writes.append(
                self.producer.publish(s.topic_agent_snapshots, event.agent.id, event.agent)
            )
        for task in changes.task_events:
            writes.append(self.producer.publish(s.topic_task_events, task.workspace, task))
        await asyncio.gather(*writes)


async def read_snapshots(
    settings: AgentStateSettings, timeout_s: float = 60.0
) -> list[agent_pb2.Agent]:
    """Every agent record the service published, oldest first, each topic read to its end.

    The snapshot topic holds the latest record of each agent (once Kafka has
    compacted it); the agent-events topic carries the same record after every
    change, so a record whose snapshot write was lost is still found there.
    The roster keeps the highest version of each agent. The end of a topic is
    its fetch high watermark (the embedded broker's `end_offsets()` can be
    wrong; see the README).
    """
    snapshots = await _read_to_end(
        settings,
        settings.topic_agent_snapshots,
        lambda value: decode(agent_pb2.Agent, value),
        timeout_s,
    )
    from_events = await _read_to_end(
        settings,
        settings.topic_agent_events,
        lambda value: decode(agent_pb2.AgentEvent, value).agent,
        timeout_s,
    )
    return snapshots + [agent for agent in from_events if agent.id]


async def _read_to_end(
    settings: AgentStateSettings,
    topic: str,
    parse: Callable[[bytes | None], agent_pb2.Agent],
    timeout_s: float,
) -> list[agent_pb2.Agent]:
    """Every record of `topic` from the beginning to the high watermark, parsed."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    found: list[agent_pb2.Agent] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return found
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    try:
                        found.append(parse(record.value))
                    except InvalidEvent as exc:
                        log.error(
                            "unreadable agent record skipped",
                            extra={"topic": topic, "offset": record.offset, "reason": str(exc)},
                        )
            ends = [consumer.highwater(tp) for tp in tps]
            positions = [await consumer.position(tp) for tp in tps]
            if all(end is not None and at >= end for at, end in zip(positions, ends, strict=True)):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout_s}s")
    finally:
        await consumer.stop()

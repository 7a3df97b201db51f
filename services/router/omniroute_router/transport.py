"""A Faust Kafka transport whose fetch wait is a setting.

Faust hard-codes the consumer's fetch_max_wait_ms to 1500 ms. Apache Kafka
answers a waiting fetch as soon as data arrives, so that costs nothing
there; the embedded broker waits out the full time, which adds ~0.5 s per hop.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


def app_with_fetch_wait(fetch_max_wait_ms: int) -> type[faust.App]:
    """A `faust.App` subclass whose consumers wait at most `fetch_max_wait_ms` per fetch."""

    class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class _Consumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> Any:
            return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class _Transport(faust_aiokafka.Transport):
        Consumer = _Consumer

    class _App(faust.App):
        def _new_transport(self) -> Any:
            return _Transport(self.conf.broker_consumer, self)

    return _App


def group_generation(app: faust.App) -> int | None:
    """The consumer group generation the worker's consumer is in right now, if known.

    aiokafka's group coordinator resets it to -1 as soon as a heartbeat learns
    that the member was expelled (e.g. paused past its session), before Faust
    revokes anything: a worker compares it with the generation it was given
    its partitions in, so a zombie stops acting at once.
    """
    try:
        consumer = app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
        return int(consumer._coordinator.generation)
    except Exception:  # not started, or a transport without a group coordinator
        return None

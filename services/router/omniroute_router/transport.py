"""The router's Faust app class for the broker it runs on.

Faust hard-codes the consumer's fetch_max_wait_ms to 1500 ms. Apache Kafka
answers a waiting fetch as soon as data arrives, so that costs nothing
there; the embedded broker waits out the full time, which adds ~0.5 s per hop.
So the wait is a setting (`KAFKA_FETCH_MAX_WAIT_MS`).

Faust makes its producer idempotent only inside exactly-once transactions. On
a broker that offers idempotent producers (`KAFKA_BROKER_KIND=kafka`, Apache
Kafka) the router's producer is idempotent, so a retried send never writes a
record twice; the embedded broker rejects the idempotent producer's
InitProducerId, so there it stays at-least-once (the router de-duplicates).

After a rebalance, Faust's recovery resumes the stream partitions, seeks them
to the committed offsets and only then resumes flow control, which empties
every stream queue: records a fast broker delivered in between were dropped,
and the consumer, already past them, never read them again until the next
rebalance. On Apache Kafka a worker that took over a partition skipped the
task events a desk sent meanwhile, and their inquiries waited for ever (seen
in test_router_failover[kafka]). `_Recovery` keeps flow control suspended
over that window, so such records wait for the resume instead.

Faust's recovery takes a changelog's end from ListOffsets. The embedded
broker answers it, for a partition whose last produce batch holds several
records, with the first offset of that batch plus one, so recovery stopped
early and a restarted worker came back without the table's last records (8,828
of 10,000 waiting inquiries in the scale benchmark). Fetch responses carry the
true high watermark, and every fetch recovery makes brings one: `_Recovery`
raises the end it recovers to whenever it knows a higher one from a fetch, so
it stops only at the last record. On Apache Kafka both ends agree.

The router handles records in batches (`batches`): the records available
when it is ready for more, up to a count. Faust's own `take_events` stops
reading while a batch is handled and then waits out its whole time window;
here the stream keeps reading into the next batch meanwhile. A record is
acknowledged (so its offset may be committed) only once the batch it came in
was handled, as Faust acknowledges one handled record: at least once. Faust
puts a table write on the partition of the record being handled, which it
knows from a context variable its stream sets; a batch is handled outside
that, so the router names the record for its writes (`acting_on`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Mapping, MutableMapping
from typing import Any

import faust
from faust.streams import _current_event
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from omniroute.settings import CommonSettings


class _Recovery(Recovery):
    """Faust's recovery, to the last record of each changelog, without dropping records
    fetched while it resumes the streams."""

    _last_behind: TP | None = None

    async def _build_highwaters(
        self, consumer: Any, tps: set[TP], destination: Counter[TP], title: str
    ) -> None:
        await super()._build_highwaters(consumer, tps, destination, title)
        _raise_to_fetched(consumer, destination)

    def need_recovery(self) -> bool:
        # Recovery ends once nothing remains. Faust asks after every record, so
        # the fetch high watermarks are read only when the ends it has are
        # reached, and the partitions are not all compared each time (Faust
        # builds a Counter of them all: a tenth of a restore's time): the one
        # found behind last time is looked at first.
        if self._behind() or _raise_to_fetched(self.app.consumer, self.active_highwaters):
            return self._behind()
        return False

    def _behind(self) -> bool:
        """Whether an active changelog partition is not read to its end (Faust's
        `need_recovery`)."""
        highwaters, offsets = self.active_highwaters, self.active_offsets
        last = self._last_behind
        if last is not None and _remaining(highwaters.get(last), offsets[last]) > 0:
            return True
        for tp, highwater in highwaters.items():
            if _remaining(highwater, offsets[tp]) > 0:
                self._last_behind = tp
                return True
        self._last_behind = None
        return False

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        # The record handler waits on flow control; resume() empties the
        # queues first and then lets the waiting records in.
        self.app.flow_control.suspend()
        await super().on_recovery_completed(generation_id)

    async def _resume_streams(self, generation_id: int = 0) -> None:
        self.app.flow_control.suspend()
        await super()._resume_streams(generation_id)


def _remaining(highwater: int | None, offset: int | None) -> int:
    return 0 if highwater is None or offset is None else highwater - offset


def _raise_to_fetched(consumer: Any, highwaters: MutableMapping[TP, int]) -> bool:
    """Raise each partition's last offset (Faust's "highwater") to the one a fetch
    reported; True if any was raised.

    The fetch high watermark is the next offset to be written, as ListOffsets'
    end should be; it is unknown (None) until the consumer fetched the partition.
    """
    raised = False
    for tp, highwater in highwaters.items():
        try:
            fetched = consumer.highwater(tp)
        except Exception:  # not assigned to this consumer (any more)
            continue
        if fetched is not None and fetched - 1 > highwater:
            highwaters[tp] = fetched - 1
            raised = True
    return raised


class _TableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = _Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def app_class(settings: CommonSettings) -> type[faust.App]:
    """A `faust.App` subclass with the fetch wait and producer the broker calls for."""
    fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms
    idempotent = settings.kafka_broker_kind.idempotent_producers

    class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class _Consumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> Any:
            return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class _Producer(faust_aiokafka.Producer):
        def _settings_extra(self) -> Mapping[str, Any]:
            extra = super()._settings_extra()
            return {**extra, "acks": "all", "enable_idempotence": True} if idempotent else extra

    class _Transport(faust_aiokafka.Transport):
        Consumer = _Consumer
        Producer = _Producer

    class _App(faust.App):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, TableManager=_TableManager, **kwargs)

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


async def batches(stream: Any, max_events: int, wait_s: float) -> AsyncIterator[list[Any]]:
    """The stream's records (Faust events) in batches of at most `max_events`.

    A batch is every record that arrived while the previous one was handled;
    after an idle spell, what arrives within `wait_s` of the first record.
    Each record is acknowledged once the caller asks for the next batch (it
    handled this one); a batch given up half way (the caller raised) is not,
    so its records are read again.
    """
    live = stream.noack()
    pending: list[Any] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def pull() -> None:
        async for event in live.events():
            pending.append(event)
            arrived.set()
            if len(pending) >= max_events:
                # Enough for a batch: leave the rest in Faust's buffer (which
                # pauses fetching when full) until this one is taken.
                room.clear()
                await room.wait()

    puller = asyncio.ensure_future(pull())
    try:
        while True:
            if not pending:
                arrived.clear()
                waiting = asyncio.ensure_future(arrived.wait())
                await asyncio.wait((waiting, puller), return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if puller.done():
                    puller.result()  # what stopped the stream, if it failed
                    return
                if wait_s > 0:
                    await asyncio.sleep(wait_s)  # the rest of what arrived together
            batch = pending[:max_events]
            del pending[:max_events]
            room.set()
            yield batch
            for event in batch:
                await live.ack(event)
    finally:
        puller.cancel()


def acting_on(event: Any) -> None:
    """Put the table writes that follow on `event`'s partition (Faust's current event)."""
    _current_event.set(weakref.ref(event))

"""Changes waiting for the broker: re-sent until acknowledged, in order.

The roster changes its memory at once (a reservation is a compare-and-set on
the event loop); the events describing each change are put here as one
batch. One sender writes the batches in rounds: a round takes every batch
waiting (concurrent calls share one write round, a group commit) and re-sends
what the broker did not acknowledge, with a growing pause, until all of it
is; only then does the next round start. So a later change is never written
before an earlier one that failed and had to be re-sent: the events of one
workspace stay in the order they happened (seen otherwise after a broker
pause: an agent's new OFFERED landed before the OFFER_TIMEOUT of the offer it
replaced). A batch is *durable* once it and every batch before it are
acknowledged; only then are the calls that made it answered, and only then
is the change shown to watchers (desks, WatchAgents). A call whose deadline
comes first is answered UNAVAILABLE, but its change is kept and still
published: a retry (same request id, or the natural key) is answered once it
is durable.

The records of one batch are written together, and those writes are not
atomic. A change that says `events_first` (a transfer to a queue) is put as
two batches: its task events, then the rest (the agent record, the content's
tombstones) in a round of its own once the events are acknowledged. A crash
between the two leaves the event without the record, which the next start
completes (repair.py); never the released record without its event.

Re-sending after a lost acknowledgement can publish an event twice; every
event carries an `event_id` for consumers to de-duplicate (at least once).
A record the producer or broker refuses as too large is never re-sent (it
would fail the same way for ever and hold up every change after it): it is
logged and left out. What agent-state holds for the desks is cut to the size
budget before it gets here (content.py), so this is a last line of defence.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from omniroute.kafka import BrokerUnavailable, RecordTooLarge
from omniroute_agent_state.journal import Journal, Record
from omniroute_agent_state.roster import Changes

log = logging.getLogger("omniroute.agent_state")


class NotDurableYet(BrokerUnavailable):
    """The caller's deadline came before the broker acknowledged; the change is kept."""


@dataclass(eq=False)
class _Batch:
    seq: int
    changes: Changes
    unsent: list[Record]
    # Written only once every batch before it is acknowledged (a round of its own).
    after_previous: bool = False
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Outbox:
    """Batches of records in order, each sent until acknowledged; `wait(seq)` for durability.

    Needs a running event loop (`put` starts the batch's delivery); `close()`
    stops the deliveries still under way.
    """

    def __init__(
        self,
        journal: Journal,
        on_durable: Callable[[Changes], None],
        on_failed_send: Callable[[], None] = lambda: None,
        on_round: Callable[[int], None] = lambda records: None,
        retry_s: float = 0.2,
        max_retry_s: float = 5.0,
    ) -> None:
        self.journal = journal
        self.on_durable = on_durable
        self.on_failed_send = on_failed_send
        self.on_round = on_round  # told how many records each write round sends
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.batches: deque[_Batch] = deque()
        self.last_seq = 0  # the last batch put
        self.durable_seq = 0  # every batch up to this one is acknowledged
        self._waiting = asyncio.Event()  # batches were put since the last round began
        self._sender: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Batches not yet durable."""
        return len(self.batches)

    def put(self, changes: Changes) -> int:
        """Queue the changes' records; returns the sequence number to `wait` for.

        Nothing to write returns the last sequence number: a call that changed
        nothing (a retry) still waits until what came before is durable.
        """
        if not changes:
            return self.last_seq
        rest = Changes(changes.agent_events, [], changes.fences, changes.contents)
        if changes.events_first and changes.task_events and rest:
            self._append(Changes(task_events=changes.task_events), after_previous=False)
            return self._append(rest, after_previous=True)
        return self._append(changes, after_previous=False)

    def _append(self, changes: Changes, after_previous: bool) -> int:
        self.last_seq += 1
        records = self.journal.records(changes)
        self.batches.append(_Batch(self.last_seq, changes, records, after_previous))
        self._waiting.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_forever())
        return self.last_seq

    async def wait(self, seq: int, timeout_s: float | None) -> None:
        """Return once batch `seq` is durable; `NotDurableYet` after `timeout_s`."""
        if seq <= self.durable_seq:
            return
        batch = next(b for b in self.batches if b.seq == seq)
        try:
            await asyncio.wait_for(asyncio.shield(batch.done), timeout_s)
        except TimeoutError:
            raise NotDurableYet(
                "the broker has not acknowledged the change yet; it is kept and will be "
                "published: retry (with the same request_id) to learn when it is"
            ) from None

    async def drain(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until everything put is durable; whether it is."""
        try:
            await self.wait(self.last_seq, timeout_s)
        except NotDurableYet:
            return False
        return True

    async def close(self) -> None:
        """Stop the sender (what is not durable then is lost)."""
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)

    async def _send_forever(self) -> None:
        """Write the waiting batches round after round, each round until acknowledged."""
        while True:
            await self._waiting.wait()
            self._waiting.clear()
            round_: list[_Batch] = []
            for batch in self.batches:
                if batch.after_previous and round_:
                    break  # the next round, once this one is acknowledged
                if batch.unsent:
                    round_.append(batch)
            if round_:
                await self._deliver(round_)
            if any(batch.unsent for batch in self.batches):
                self._waiting.set()  # batches held back for a round of their own

    async def _deliver(self, round_: list[_Batch]) -> None:
        """Send the round's records; re-send what was not acknowledged until all of it is."""
        pause = self.retry_s
        while True:
            sending = [(batch, record) for batch in round_ for record in batch.unsent]
            self.on_round(len(sending))
            results: list[BaseException | None]
            try:
                results = list(await self.journal.write_many([record for _, record in sending]))
            except Exception as exc:  # unforeseen: the whole round is sent again
                results = [exc] * len(sending)
            for batch in round_:
                batch.unsent = []
            for (batch, record), result in zip(sending, results, strict=True):
                if isinstance(result, RecordTooLarge):
                    log.error(
                        "record too large for the broker; left out",
                        extra={"topic": record.topic, "key": record.key, "error": str(result)},
                    )
                elif isinstance(result, BaseException):
                    batch.unsent.append(record)
            errors = [
                e
                for e in results
                if isinstance(e, BaseException) and not isinstance(e, RecordTooLarge)
            ]
            self._settle()
            if not errors:
                return
            self.on_failed_send()
            unexpected = [e for e in errors if not isinstance(e, BrokerUnavailable)]
            if unexpected:
                log.error("outbox write failed", exc_info=unexpected[0])
            else:
                log.warning(
                    "broker did not acknowledge; re-sending",
                    extra={
                        "records": len(errors),
                        "retry_in_s": pause,
                        "error": repr(errors[0].__cause__ or errors[0]),
                    },
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.max_retry_s)

    def _settle(self) -> None:
        """Mark the acknowledged prefix durable, in order."""
        while self.batches and not self.batches[0].unsent:
            batch = self.batches.popleft()
            self.durable_seq = batch.seq
            try:
                self.on_durable(batch.changes)
            except Exception:  # telling watchers must never stop the sender
                log.exception("could not announce a durable change")
            if not batch.done.done():
                batch.done.set_result(None)

"""The outbox against a journal that fails on demand: re-sent until acknowledged, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from omniroute.kafka import BrokerUnavailable, RecordTooLarge
from omniroute.v1 import agent_pb2, task_pb2
from omniroute_agent_state.journal import Record
from omniroute_agent_state.outbox import NotDurableYet, Outbox
from omniroute_agent_state.roster import Changes


class FlakyJournal:
    """Acknowledges a write unless its inquiry id is in `failing`."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.acknowledged: list[str] = []

    def records(self, changes: Changes) -> list[Record]:
        return [Record("task-events", e.workspace, e) for e in changes.task_events]

    async def write_many(self, records: list[Record]) -> list[BaseException | None]:
        """The round's records, each through `write` (which subclasses change)."""
        results = await asyncio.gather(*(self.write(r) for r in records), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    async def write(self, record: Record) -> None:
        await asyncio.sleep(0)
        inquiry = record.value.inquiry_id  # type: ignore[attr-defined]
        if inquiry in self.failing:
            raise BrokerUnavailable("not now")
        self.acknowledged.append(inquiry)


def change(inquiry_id: str) -> Changes:
    return Changes(task_events=[task_pb2.TaskEvent(event_id=inquiry_id, inquiry_id=inquiry_id)])


async def test_a_failed_write_is_re_sent_and_batches_become_durable_in_order() -> None:
    journal = FlakyJournal()
    durable: list[str] = []
    outbox = Outbox(
        journal,  # type: ignore[arg-type]
        lambda changes: durable.extend(e.inquiry_id for e in changes.task_events),
        retry_s=0.01,
        max_retry_s=0.02,
    )
    journal.failing = {"a"}
    first, second = outbox.put(change("a")), outbox.put(change("b"))
    assert outbox.put(Changes()) == second  # nothing to write: wait for what came before
    with pytest.raises(NotDurableYet):
        await outbox.wait(second, 0.1)  # b is acknowledged, but a before it is not
    assert journal.acknowledged == ["b"] and durable == [] and outbox.pending == 2
    journal.failing = set()
    await outbox.wait(second, 5.0)
    assert durable == ["a", "b"] and outbox.durable_seq == second > first
    assert journal.acknowledged == ["b", "a"]  # a was re-sent, b was not sent twice
    await outbox.close()


async def test_a_later_change_waits_until_an_earlier_one_that_failed_is_written() -> None:
    """The broker was away while `a` was sent; `b` came meanwhile: `b` lands after `a`."""
    journal = FlakyJournal()
    outbox = Outbox(journal, lambda changes: None, retry_s=0.01, max_retry_s=0.02)  # type: ignore[arg-type]
    journal.failing = {"a"}
    outbox.put(change("a"))
    for _ in range(5):  # a's round has failed at least once and is being re-sent
        await asyncio.sleep(0.01)
    later = outbox.put(change("b"))
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert journal.acknowledged == []  # b is held back behind a
    journal.failing = set()
    await outbox.wait(later, 5.0)
    assert journal.acknowledged == ["a", "b"]
    await outbox.close()


async def test_close_stops_deliveries_under_way() -> None:
    journal = FlakyJournal()
    journal.failing = {"a"}
    seen: list[Any] = []
    outbox = Outbox(journal, seen.append, retry_s=0.01)  # type: ignore[arg-type]
    outbox.put(change("a"))
    assert not await outbox.drain(0.05)
    await outbox.close()
    assert not seen and outbox.pending == 1


class GatedJournal(FlakyJournal):
    """Holds every write until `gate` is set: the broker is slow to acknowledge."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def write(self, record: Record) -> None:
        await self.gate.wait()
        await super().write(record)


async def test_batches_put_while_a_round_is_in_flight_share_the_next_round() -> None:
    journal = GatedJournal()
    rounds: list[int] = []
    outbox = Outbox(journal, lambda changes: None, on_round=rounds.append)  # type: ignore[arg-type]
    first = outbox.put(change("first"))
    await asyncio.sleep(0)  # the sender takes the first batch and waits for the broker
    assert rounds == [1]
    seqs = [outbox.put(change(f"c{i}")) for i in range(50)]
    journal.gate.set()
    await outbox.wait(seqs[-1], 5.0)
    assert rounds == [1, 50]  # 51 batches, two rounds: a group commit
    assert outbox.durable_seq == seqs[-1] > first
    await outbox.close()


async def test_a_record_too_large_is_left_out_not_re_sent_for_ever() -> None:
    class Journal(FlakyJournal):
        async def write(self, record: Record) -> None:
            if record.value.inquiry_id == "huge":  # type: ignore[attr-defined]
                raise RecordTooLarge("a record of 2000000 bytes is above the size limit")
            await super().write(record)

    journal = Journal()
    durable: list[str] = []
    outbox = Outbox(
        journal,  # type: ignore[arg-type]
        lambda changes: durable.extend(e.inquiry_id for e in changes.task_events),
        retry_s=0.01,
        max_retry_s=0.02,
    )
    outbox.put(change("huge"))
    last = outbox.put(change("after"))
    await outbox.wait(last, 5.0)  # the change after it is not held up
    assert journal.acknowledged == ["after"] and durable == ["huge", "after"]


class TopicJournal(GatedJournal):
    """Records each write by topic: the agent record on `agent-snapshots`, events on
    `task-events`; holds each write until `gate` is set."""

    def records(self, changes: Changes) -> list[Record]:
        written = [Record("agent-snapshots", e.agent.id, e.agent) for e in changes.agent_events]
        return written + super().records(changes)

    async def write(self, record: Record) -> None:
        self.sent.append(record.topic)
        await self.gate.wait()
        self.acknowledged.append(record.topic)

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []


def transfer_to_a_queue() -> Changes:
    """What a transfer to a queue changes: the agent record and its TRANSFERRED."""
    released = agent_pb2.AgentEvent(agent=agent_pb2.Agent(id="ann"))
    event = task_pb2.TaskEvent(event_id="t", inquiry_id="q", target_queue="tech", note="n")
    return Changes(agent_events=[released], task_events=[event], events_first=True)


async def test_a_change_with_events_first_writes_its_record_only_once_its_event_is_durable() -> (
    None
):
    """A kill between the two writes leaves the TRANSFERRED (repairable), never the
    released record alone (the queue and the note lost)."""
    journal = TopicJournal()
    durable: list[Changes] = []
    outbox = Outbox(journal, durable.append)  # type: ignore[arg-type]
    before = outbox.put(change("earlier"))
    seq = outbox.put(transfer_to_a_queue())
    later = outbox.put(change("later"))
    for _ in range(5):  # the sender's round is under way, waiting for the broker
        await asyncio.sleep(0)
    assert journal.sent == ["task-events", "task-events"]  # the earlier change and the event
    assert outbox.durable_seq == 0
    journal.gate.set()
    await outbox.wait(later, 5.0)
    # The record in a round of its own, once the event was acknowledged.
    assert journal.sent == ["task-events", "task-events", "agent-snapshots", "task-events"]
    assert journal.acknowledged.index("agent-snapshots") == 2
    assert before < seq < later and outbox.durable_seq == later
    assert [len(c.task_events) + len(c.agent_events) for c in durable] == [1, 1, 1, 1]
    await outbox.close()


async def test_without_events_first_the_record_and_event_share_one_round() -> None:
    journal = TopicJournal()
    rounds: list[int] = []
    outbox = Outbox(journal, lambda changes: None, on_round=rounds.append)  # type: ignore[arg-type]
    together = transfer_to_a_queue()
    together.events_first = False
    journal.gate.set()
    await outbox.wait(outbox.put(together), 5.0)
    assert rounds == [2]
    await outbox.close()

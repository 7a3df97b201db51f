"""The router's Faust adapter driven with in-memory tables, a fake clock and a fake agent-state.

What is tested here is the adapter's side of the faults: what it sends, what
it stops doing when fenced, how it applies what agent-state answers. The real
loop (broker, agent-state, router processes) is in tests/integration.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from omniroute.codec import encode, timestamp
from omniroute.v1 import agent_pb2, agent_state_pb2, dead_letter_pb2, inquiry_pb2, task_pb2
from omniroute_router import app as app_module
from omniroute_router.__main__ import partition_mismatches
from omniroute_router.app import Router, create_app
from omniroute_router.config import RoutingConfig
from omniroute_router.metrics import RouterMetrics
from omniroute_router.model import InquiryState
from omniroute_router.reservations import (
    AgentStateUnavailable,
    Fenced,
    ReservationRefused,
    Reserved,
    reserve_request_id,
)
from omniroute_router.settings import RouterSettings

T0 = 1_000_000.0
WS = "acme"
P = 0


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    generation_id: int | None = None  # Faust's: the group generation it was fetched in
    timestamp: float = T0  # when it was published (seconds)


@dataclass
class Event:
    message: Message

    @property
    def value(self) -> bytes:
        return self.message.value


@dataclass
class Topic:
    sent: list[tuple[bytes | None, bytes]] = field(default_factory=list)

    async def send(self, key: bytes | None = None, value: bytes = b"", **_: Any) -> None:
        self.sent.append((key, value))

    def send_soon(self, key: bytes | None = None, value: bytes = b"", **_: Any) -> None:
        self.sent.append((key, value))


class FakeAgentState:
    """agent-state as the adapter sees it: answers set by the test, calls recorded."""

    def __init__(self) -> None:
        self.reserved: list[tuple[task_pb2.Assignment, agent_state_pb2.RouterFence]] = []
        self.withdrawn: list[tuple[str, agent_state_pb2.RouterFence]] = []
        self.fenced = False
        self.answers: dict[str, agent_state_pb2.GetReservationResponse] = {}
        self.open: list[agent_pb2.Reservation] = []
        self.agents: dict[str, agent_pb2.Agent] = {}
        self.calls: list[int] = []  # reservations per ReserveAgents call
        self.refuse: set[str] = set()  # agents agent-state finds not free
        self.down = False  # every call fails UNAVAILABLE
        self.down_on_calls: set[int] = set()  # these calls (0: the first) fail UNAVAILABLE
        self.take_slots = False  # a reservation changes the agent's record
        self.resolved: dict[str, task_pb2.TaskEvent] = {}  # inquiry id -> its COMPLETED
        self.asked: list[str] = []  # GetReservation calls, by inquiry id

    async def reserve_all(
        self,
        assignments: list[task_pb2.Assignment],
        fence: agent_state_pb2.RouterFence,
    ) -> list[Reserved | ReservationRefused]:
        if self.fenced:
            raise Fenced("generation 1 is older than 2")
        if self.down or len(self.calls) in self.down_on_calls:
            self.calls.append(0)
            raise AgentStateUnavailable("UNAVAILABLE: connection refused")
        self.calls.append(len(assignments))
        results: list[Reserved | ReservationRefused] = []
        for assignment in assignments:
            if assignment.inquiry_id in self.resolved:
                resolved = self.resolved[assignment.inquiry_id]
                results.append(ReservationRefused("resolved", last_event=resolved))
                continue
            if assignment.agent_id in self.refuse:
                results.append(ReservationRefused("no free chat slot", None))
                continue
            self.reserved.append((assignment, fence))
            reservation = agent_pb2.Reservation(
                reservation_id=f"r{len(self.reserved)}",
                agent_id=assignment.agent_id,
                inquiry_id=assignment.inquiry_id,
                workspace=assignment.workspace,
                expires_at=timestamp(T0 + 30),
            )
            agent = self.agents[assignment.agent_id]
            if self.take_slots:
                # As agent-state does: the slot is taken, the record's version moves on.
                agent.capacities[0].load += 1
                agent.version += 1
            results.append(
                Reserved(reservation, agent_pb2.Agent.FromString(agent.SerializeToString()), False)
            )
        return results

    async def withdraw(
        self,
        workspace: str,
        inquiry_id: str,
        reservation_id: str,
        reason: str,
        fence: agent_state_pb2.RouterFence,
    ) -> agent_state_pb2.WithdrawOfferResponse:
        self.withdrawn.append((inquiry_id, fence))
        return agent_state_pb2.WithdrawOfferResponse()

    async def get_reservation(
        self, workspace: str, inquiry_id: str
    ) -> agent_state_pb2.GetReservationResponse:
        self.asked.append(inquiry_id)
        if inquiry_id in self.resolved:
            return agent_state_pb2.GetReservationResponse(last_event=self.resolved[inquiry_id])
        return self.answers.get(inquiry_id, agent_state_pb2.GetReservationResponse())

    async def list_reservations(self, workspace: str) -> agent_state_pb2.ListReservationsResponse:
        return agent_state_pb2.ListReservationsResponse(reservations=self.open)

    async def list_agents(self, workspace: str) -> list[agent_pb2.Agent]:
        return list(self.agents.values())


class FakeReader:
    """The inquiries topic as the sweep re-reads it; a read waits while `gate` is closed
    (a broker that takes its time)."""

    def __init__(self) -> None:
        self.records: list[Message] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def offset_at(self, partition: int, since_s: float) -> int:
        return 0

    async def read(self, partition: int, start: int, end: int) -> list[Message]:
        await self.gate.wait()
        return [r for r in self.records if r.partition == partition and start <= r.offset < end]


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.mono = 100.0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@dataclass
class Harness:
    router: Router
    agent_state: FakeAgentState
    reader: FakeReader
    clock: Clock
    assignments: Topic
    registry: CollectorRegistry
    offsets: dict[str, int] = field(default_factory=dict)
    # While not None, records are held here and handled as one batch by `flush`.
    held: list[Message] | None = None

    def message(self, topic: str, value: bytes, partition: int = P, ws: str = WS) -> Message:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return Message(topic, partition, offset, ws.encode(), value)

    async def feed(self, message: Message) -> None:
        if self.held is not None:
            self.held.append(message)
        else:
            await self.router.handle(Event(message))  # type: ignore[arg-type]

    def hold(self) -> None:
        """Collect the records fed from now on into one batch."""
        self.held = []

    async def flush(self) -> None:
        """Handle the records held as one batch."""
        held, self.held = self.held or [], None
        await self.router.handle_batch([Event(m) for m in held])  # type: ignore[misc]

    def events(self, source: str, outcome: str) -> float:
        labels = {"input": source, "outcome": outcome}
        return self.registry.get_sample_value("omniroute_router_events_total", labels) or 0.0

    async def inquiry(
        self,
        inquiry_id: str,
        deliver: bool = True,
        ws: str = WS,
        partition: int = P,
        published_at: float | None = None,
    ) -> None:
        value = encode(
            inquiry_pb2.Inquiry(id=inquiry_id, workspace=ws, channel=inquiry_pb2.CHANNEL_CHAT)
        )
        message = self.message("inquiries", value, partition, ws)
        message.timestamp = self.clock.now if published_at is None else published_at
        self.reader.records.append(message)
        if deliver:
            await self.feed(message)

    async def agent(
        self, agent_id: str, version: int = 1, load: int = 0, ws: str = WS, partition: int = P
    ) -> None:
        slot = agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_CHAT, capacity=2, load=load)
        record = agent_pb2.Agent(
            id=agent_id,
            workspace=ws,
            tier=1,  # type: ignore[arg-type]
            status=agent_pb2.AGENT_STATUS_AVAILABLE,
            capacities=[slot],
            version=version,
        )
        self.agent_state.agents[agent_id] = record
        event = agent_pb2.AgentEvent(agent=record)
        await self.feed(self.message("agent-events", encode(event), partition, ws))

    async def task(self, kind: int, inquiry_id: str, agent_id: str, **fields: Any) -> None:
        event = task_pb2.TaskEvent(
            type=kind,  # type: ignore[arg-type]
            inquiry_id=inquiry_id,
            workspace=WS,
            agent_id=agent_id,
            **fields,
        )
        await self.feed(self.message("task-events", encode(event)))

    async def tick(self, partition: int = P) -> None:
        await self.feed(self.message(f"{self.router.settings.router_app_id}-ticks", b"", partition))

    async def swept(self) -> None:
        """Until the sweep's re-reads under way (beside the stream) have finished."""
        await asyncio.gather(*(reading for _, reading in self.router._sweep_reads.values()))

    def offered(self) -> list[tuple[str, str]]:
        out = []
        for _, value in self.assignments.sent:
            assignment = task_pb2.Assignment()
            assignment.ParseFromString(value)
            out.append((assignment.inquiry_id, assignment.agent_id))
        return out

    def state(self, inquiry_id: str) -> InquiryState | None:
        inquiry = self.router.workspaces[WS].inquiries.get(inquiry_id)
        return inquiry.state if inquiry else None


def harness(**overrides: Any) -> Harness:
    settings = RouterSettings(
        topic_inquiries="inquiries",
        topic_agent_events="agent-events",
        topic_task_events="task-events",
        router_app_id="router",
        router_offer_grace_s=10,
        router_task_silence_s=600,
        router_sweep_interval_s=30,
        router_reconcile_interval_s=60,
        **overrides,
    )
    clock = Clock()
    agent_state = FakeAgentState()
    reader = FakeReader()
    registry = CollectorRegistry()
    router = Router(
        settings,
        RoutingConfig(),
        RouterMetrics(registry),
        agent_state,  # type: ignore[arg-type]
        clock=lambda: clock.now,
        monotonic=lambda: clock.mono,
        reader=reader,  # type: ignore[arg-type]
    )
    assignments = Topic()
    router.assignments, router.dead_letters, router.inquiries_topic = assignments, Topic(), Topic()
    router.snapshots.topic = Topic()
    router.assigned([P, 1], generation=7)
    return Harness(router, agent_state, reader, clock, assignments, registry)


@pytest.fixture
def h() -> Harness:
    return harness()


OFFERED, ACCEPTED = task_pb2.TaskEvent.TYPE_OFFERED, task_pb2.TaskEvent.TYPE_ACCEPTED
COMPLETED, ABANDONED = task_pb2.TaskEvent.TYPE_COMPLETED, task_pb2.TaskEvent.TYPE_ABANDONED


async def test_every_reservation_carries_the_workers_fence(h: Harness) -> None:
    await h.agent("a1")
    await h.inquiry("q1")
    [(_, fence)] = h.agent_state.reserved
    assert (fence.group, fence.partition, fence.generation) == ("router", P, 7)


async def test_a_fenced_worker_publishes_nothing_and_stops_acting_for_the_partition(
    h: Harness,
) -> None:
    await h.agent("a1")
    h.agent_state.fenced = True
    await h.inquiry("q1")
    assert h.offered() == []
    assert not h.router.owns(P) and h.router.owns(1)
    # Events still fetched for the lost partition change nothing here.
    h.agent_state.fenced = False
    await h.inquiry("q2")
    await h.tick()
    assert h.agent_state.reserved == [] and h.offered() == []
    assert all(not key.endswith("/q2") for key in h.router.tables.inquiries)


async def test_an_abandon_during_an_offer_withdraws_it_at_agent_state(h: Harness) -> None:
    await h.agent("a1")
    await h.inquiry("q1")
    await h.task(ABANDONED, "q1", "")
    [(inquiry_id, fence)] = h.agent_state.withdrawn
    assert (inquiry_id, fence.generation) == ("q1", 7)


async def test_an_abandon_before_its_inquiry_closes_it(h: Harness) -> None:
    await h.agent("a1")
    await h.task(ABANDONED, "q1", "")
    await h.inquiry("q1")
    assert h.offered() == []


async def test_an_offer_whose_timeout_was_lost_is_requeued_and_offered_again(h: Harness) -> None:
    await h.agent("a1")
    await h.inquiry("q1")
    h.clock.advance(30 + 10)  # past the offer's expiry and the grace
    await h.tick()
    assert h.offered() == [("q1", "a1"), ("q1", "a1")]
    assert h.state("q1") is InquiryState.OFFERED


async def test_a_lost_completion_keeps_its_follow_up(h: Harness) -> None:
    await h.agent("a1")
    await h.inquiry("q1")
    await h.task(ACCEPTED, "q1", "a1", reservation_id="r1")
    lost = task_pb2.TaskEvent(
        type=COMPLETED,
        inquiry_id="q1",
        workspace=WS,
        agent_id="a1",
        reservation_id="r1",
        resolution=task_pb2.RESOLUTION_FOLLOW_UP,
        follow_up=task_pb2.FollowUp(due_at=timestamp(T0 + 3600)),
    )
    h.agent_state.answers["q1"] = agent_state_pb2.GetReservationResponse(last_event=lost)
    h.clock.advance(600)
    await h.tick()
    inquiry = h.router.workspaces[WS].inquiries["q1"]
    assert (inquiry.state, inquiry.preferred_agent) == (InquiryState.SCHEDULED, "a1")


async def test_the_sweep_admits_a_skipped_inquiry_but_not_a_finished_one(h: Harness) -> None:
    await h.agent("a1")
    await h.inquiry("q1")
    await h.inquiry("skipped", deliver=False)
    await h.inquiry("done-elsewhere", deliver=False)
    await h.inquiry("q2")
    completed = task_pb2.TaskEvent(
        type=COMPLETED,
        inquiry_id="done-elsewhere",
        workspace=WS,
        agent_id="a1",
        reservation_id="r-old",
        resolution=task_pb2.RESOLUTION_RESOLVED,
    )
    h.agent_state.answers["done-elsewhere"] = agent_state_pb2.GetReservationResponse(
        last_event=completed
    )
    h.agent_state.agents["a1"].capacities[0].capacity = 5
    await h.agent("a2")
    await h.tick()  # the re-read starts, beside the stream
    await h.swept()
    await h.tick()  # what it found is admitted
    offered = [i for i, _ in h.offered()]
    assert offered.count("skipped") == 1
    assert f"{WS}/skipped" in h.router.contents.table  # its content goes with the offer
    assert "done-elsewhere" not in offered
    assert "done-elsewhere" in h.router.workspaces[WS].finished
    assert h.router.tables.sweep_checkpoint(P) == 4


async def test_the_workspace_is_reconciled_with_agent_states_open_reservations(
    h: Harness,
) -> None:
    await h.agent("a1")
    await h.inquiry("q1")
    # agent-state lost the offer (and its event): the periodic comparison finds it.
    h.agent_state.open = []
    await h.tick()
    assert h.offered() == [("q1", "a1"), ("q1", "a1")]


async def test_a_batch_does_not_wait_for_the_sweeps_read(h: Harness) -> None:
    await h.agent("a1")
    await h.inquiry("skipped", deliver=False)
    await h.inquiry("read")
    h.reader.gate.clear()  # the broker is slow to answer the sweep's fetch
    tick = asyncio.ensure_future(h.tick())
    for _ in range(10):
        await asyncio.sleep(0)
    assert tick.done()  # the tick was handled with the read still under way
    await h.inquiry("meanwhile")
    assert "meanwhile" in [i for i, _ in h.offered()]
    assert "skipped" not in h.router.workspaces[WS].inquiries
    h.reader.gate.set()
    await h.swept()
    await h.tick()
    assert [i for i, _ in h.offered()].count("skipped") == 1
    assert h.router.tables.sweep_checkpoint(P) == 2


async def test_a_sweep_read_for_an_ownership_that_ended_is_dropped(h: Harness) -> None:
    await h.agent("a1")
    await h.inquiry("skipped", deliver=False)
    await h.inquiry("read")
    await h.tick()
    await h.swept()
    h.router.revoked()
    h.router.assigned([P, 1], generation=8)  # the partition came back in a new generation
    await h.tick()
    assert "skipped" not in h.router.workspaces[WS].inquiries
    assert h.router.tables.sweep_checkpoint(P) is None
    await h.inquiry("after")  # what the stream processed in this ownership bounds the read
    h.clock.advance(30)
    await h.tick()  # the next sweep, in this ownership, finds it
    await h.swept()
    await h.tick()
    assert [i for i, _ in h.offered()].count("skipped") == 1


def test_a_partition_count_other_than_kafka_partitions_is_named() -> None:
    found = partition_mismatches({"inquiries": 8, "router-inquiries-changelog": 4}, 8)
    assert found == ["topic 'router-inquiries-changelog' has 4 partitions, KAFKA_PARTITIONS is 8"]


async def test_an_offer_agent_state_holds_but_nobody_published_is_published(h: Harness) -> None:
    await h.inquiry("q1")  # no agent yet: it waits
    # A worker before us reserved it and died before publishing.
    held = agent_pb2.Reservation(
        reservation_id="r-old", agent_id="a1", inquiry_id="q1", workspace=WS
    )
    h.agent_state.open = [held]
    h.agent_state.answers["q1"] = agent_state_pb2.GetReservationResponse(reservation=held)
    await h.tick()
    assert h.offered() == [("q1", "a1")]
    assert h.state("q1") is InquiryState.OFFERED


async def test_a_sweep_behind_goes_on_at_the_next_tick() -> None:
    h = harness(router_sweep_batch=2)
    await h.agent("a1")
    for i in range(5):
        await h.inquiry(f"skipped-{i}", deliver=False)
    await h.inquiry("read")
    await h.tick()
    await h.swept()
    await h.tick()
    assert h.router.tables.sweep_checkpoint(P) == 2
    await h.swept()  # no interval passed: it is behind, so it went on at once
    await h.tick()
    assert h.router.tables.sweep_checkpoint(P) == 4
    await h.swept()
    await h.tick()
    assert h.router.tables.sweep_checkpoint(P) == 6
    await h.tick()  # caught up: the next sweep waits for the interval
    assert h.router._sweep_reads == {}
    assert len([m for m in h.router.workspaces[WS].inquiries if m.startswith("skipped")]) == 5


async def test_a_skipped_record_at_the_end_of_a_partition_is_swept_once_nothing_lags(
    h: Harness,
) -> None:
    await h.agent("a1")
    await h.inquiry("read")
    await h.inquiry("last-skipped", deliver=False)
    await h.tick()
    await h.swept()
    await h.tick()
    assert "last-skipped" not in [i for i, _ in h.offered()]  # the stream may still read it
    # The group has committed everything on the partition: the sweep reads to its end.
    h.router.lags, h.router.highwaters = {("inquiries", P): 0}, {P: 2}
    h.clock.advance(30)
    await h.tick()
    await h.swept()
    await h.tick()
    assert [i for i, _ in h.offered()].count("last-skipped") == 1
    # Its check with agent-state is counted as the sweep's, not as an overdue event's.
    checks = "omniroute_router_reconciliations_total"
    assert h.registry.get_sample_value(checks, {"trigger": "swept", "outcome": "agreed"}) == 1
    assert h.registry.get_sample_value(checks, {"trigger": "overdue", "outcome": "agreed"}) == 0


def test_a_worker_taking_over_survives_a_high_watermark_reported_one_short() -> None:
    # The embedded broker can report a changelog's high watermark one short; Faust's
    # consistency check then crashed the worker taking over (seen in the zombie scenario).
    h = harness()
    app = create_app(h.router.settings, h.router)
    assert app.conf.recovery_consistency_check is False


async def test_a_stale_agent_picture_is_corrected_by_the_workspace_reconciliation(
    h: Harness,
) -> None:
    await h.agent("a1")
    await h.inquiry("q1")
    await h.inquiry("q2")
    await h.agent("a1", version=2, load=2)  # both slots taken
    await h.inquiry("q3")
    assert h.offered() == [("q1", "a1"), ("q2", "a1")]
    # q1 and q2 were completed, but their events (and the agent's) died with the
    # previous owner: agent-state has the agent free, nothing open.
    h.agent_state.agents["a1"].capacities[0].load = 0
    h.agent_state.agents["a1"].version = 5
    completed = task_pb2.TaskEvent(
        type=COMPLETED, inquiry_id="q1", workspace=WS, agent_id="a1", reservation_id="r1"
    )
    h.agent_state.answers["q1"] = agent_state_pb2.GetReservationResponse(last_event=completed)
    h.agent_state.answers["q2"] = agent_state_pb2.GetReservationResponse(
        last_event=task_pb2.TaskEvent(
            type=COMPLETED, inquiry_id="q2", workspace=WS, agent_id="a1", reservation_id="r2"
        )
    )
    await h.tick()
    assert h.offered() == [("q1", "a1"), ("q2", "a1"), ("q3", "a1")], h.offered()


async def test_a_batch_of_inquiries_is_reserved_in_one_call_and_written_once(h: Harness) -> None:
    await h.agent("a1")
    await h.agent("a2")
    writes: list[str] = []
    table = h.router.tables.inquiries = WriteLog(writes)
    h.hold()
    for n in range(3):
        await h.inquiry(f"q{n}")
    await h.flush()
    assert h.agent_state.calls == [3]
    assert sorted(i for i, _ in h.offered()) == ["q0", "q1", "q2"]
    # Each inquiry written once, as offered (not once queued and again offered).
    assert sorted(writes) == [f"{WS}/q{n}" for n in range(3)]
    assert all(table[f"{WS}/q{n}"]["state"] == "offered" for n in range(3))


async def test_each_workspace_of_a_batch_takes_its_own_step_with_its_own_fence(h: Harness) -> None:
    await h.agent("a1")
    await h.agent("b1", ws="beta", partition=1)
    h.hold()
    await h.inquiry("q1")
    await h.inquiry("q2", ws="beta", partition=1)
    await h.flush()
    fences = sorted((a.workspace, f.partition, f.generation) for a, f in h.agent_state.reserved)
    assert fences == [(WS, P, 7), ("beta", 1, 7)]
    assert sorted(h.agent_state.calls) == [1, 1]


async def test_a_refused_reservation_in_a_batch_is_planned_again_with_another_agent(
    h: Harness,
) -> None:
    await h.agent("a1")
    await h.agent("a2")
    h.agent_state.refuse = {"a1"}  # longest idle first: a1 is chosen, and refused
    await h.inquiry("q1")
    assert h.offered() == [("q1", "a2")]
    assert h.registry.get_sample_value("omniroute_router_reservations_refused_total") == 1


async def test_agent_state_unavailable_offers_nothing_until_the_next_tick(h: Harness) -> None:
    await h.agent("a1")
    h.agent_state.down = True
    await h.inquiry("q1")
    assert h.offered() == [] and h.state("q1") is InquiryState.WAITING
    h.agent_state.down = False
    await h.tick()
    assert h.offered() == [("q1", "a1")]


async def test_echoes_of_its_own_offer_are_counted_and_plan_nothing(h: Harness) -> None:
    h.agent_state.take_slots = True
    await h.agent("a1")
    await h.inquiry("q1")
    calls = list(h.agent_state.calls)
    # What agent-state publishes for the reservation: the agent's record after
    # it (as the reservation's answer had it) and the OFFERED task event.
    h.hold()
    await h.feed(
        h.message("agent-events", encode(agent_pb2.AgentEvent(agent=h.agent_state.agents["a1"])))
    )
    await h.task(OFFERED, "q1", "a1", reservation_id="r1")
    await h.flush()
    assert (h.events("agent-events", "echo"), h.events("task-events", "echo")) == (1, 1)
    assert h.agent_state.calls == calls  # nothing planned anew


async def test_a_record_fetched_in_an_older_generation_is_not_acted_on(h: Harness) -> None:
    await h.agent("a1")
    stale = h.message(
        "inquiries",
        encode(inquiry_pb2.Inquiry(id="q1", workspace=WS, channel=inquiry_pb2.CHANNEL_CHAT)),
    )
    stale.generation_id = 6  # fetched before the group moved to generation 7
    await h.feed(stale)
    assert h.offered() == [] and h.events("inquiries", "not_owned") == 1


async def test_a_tick_in_a_batch_makes_its_workspace_step_a_full_one(h: Harness) -> None:
    await h.inquiry("q1")  # nobody free: it waits
    h.hold()
    await h.tick()
    await h.agent("a1", version=1, load=2)  # back, but full
    await h.flush()
    assert h.offered() == []
    h.agent_state.agents["a1"].capacities[0].load = 0
    h.agent_state.agents["a1"].version = 2
    h.hold()
    await h.agent("a1", version=3)
    await h.tick()
    await h.flush()
    assert h.offered() == [("q1", "a1")] and h.agent_state.calls == [1]


class WriteLog(dict):  # type: ignore[type-arg]
    """A table that records the keys written."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def __setitem__(self, key: str, value: Any) -> None:
        self.log.append(key)
        super().__setitem__(key, value)


def test_a_later_plan_of_the_same_offer_is_a_new_reservation_request() -> None:
    # Seen under load: a ReserveAgents call past its deadline (the reservations
    # made, the answer lost), then the next tick planned the same inquiry for the
    # same agent; the reused request id with a new `assigned_at` was refused as
    # "already used for a different request" on every tick. A new id gets
    # agent-state's `already_reserved` answer instead.
    fence = agent_state_pb2.RouterFence(group="router", partition=P, generation=7)
    first = task_pb2.Assignment(
        inquiry_id="q1", workspace=WS, agent_id="a1", attempt=1, assigned_at=timestamp(T0)
    )
    resent = task_pb2.Assignment()
    resent.CopyFrom(first)
    later = task_pb2.Assignment()
    later.CopyFrom(first)
    later.assigned_at.CopyFrom(timestamp(T0 + 1))
    newer_owner = agent_state_pb2.RouterFence(group="router", partition=P, generation=8)
    assert reserve_request_id(resent, fence) == reserve_request_id(first, fence)
    assert reserve_request_id(later, fence) != reserve_request_id(first, fence)
    assert reserve_request_id(first, newer_owner) != reserve_request_id(first, fence)
    long = task_pb2.Assignment(inquiry_id="q" * 100, workspace="w" * 60, agent_id="a")
    assert len(reserve_request_id(long, fence)) <= 128


async def test_a_large_plan_is_reserved_a_call_at_a_time_each_published_before_the_next(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "MAX_CALL_RESERVATIONS", 2)
    for n in range(3):
        await h.agent(f"a{n}")
    h.agent_state.down_on_calls = {1}  # the second call
    h.hold()
    for n in range(5):
        await h.inquiry(f"q{n}")
    await h.flush()
    # Five offers: calls of 2 and 2 (the second failed as a whole: its two wait for
    # the next tick, as does the fifth, never sent); the first call's went out.
    assert h.agent_state.calls == [2, 0]
    assert sorted(i for i, _ in h.offered()) == ["q0", "q1"]
    await h.tick()  # (the fake lists no open reservations: q0 and q1 go out again too)
    assert {i for i, _ in h.offered()} == {"q0", "q1", "q2", "q3", "q4"}


def resolution(inquiry_id: str, agent_id: str, **fields: Any) -> task_pb2.TaskEvent:
    """agent-state's COMPLETED event of an inquiry (resolved unless told otherwise)."""
    fields.setdefault("resolution", task_pb2.RESOLUTION_RESOLVED)
    return task_pb2.TaskEvent(
        type=COMPLETED,
        inquiry_id=inquiry_id,
        workspace=WS,
        agent_id=agent_id,
        reservation_id=f"r-{agent_id}",
        **fields,
    )


async def test_an_inquiry_agent_state_refuses_as_resolved_is_closed_not_offered(
    h: Harness,
) -> None:
    # The worker before this one resolved it and died before its state was durable.
    h.agent_state.resolved["q1"] = resolution("q1", "a0")
    await h.agent("a1")
    await h.agent("a2")
    await h.inquiry("q1")
    await h.tick()
    assert [a.agent_id for a, _ in h.agent_state.reserved] == []
    assert h.offered() == [] and "q1" in h.router.workspaces[WS].finished
    await h.inquiry("q2")  # the agents it would have taken are still free
    assert h.offered() == [("q2", "a1")]


async def test_an_inquiry_published_before_the_takeover_gets_agent_states_word_first(
    h: Harness,
) -> None:
    await h.agent("a1")
    later = task_pb2.FollowUp(due_at=timestamp(T0 + 3600))
    h.agent_state.answers["done"] = agent_state_pb2.GetReservationResponse(
        last_event=resolution("done", "a0")
    )
    follow_up = resolution("later", "a0", resolution=task_pb2.RESOLUTION_FOLLOW_UP, follow_up=later)
    h.agent_state.answers["later"] = agent_state_pb2.GetReservationResponse(last_event=follow_up)
    # Re-delivered after the rebalance: the previous owner routed them.
    for inquiry_id in ("done", "later", "fresh"):
        await h.inquiry(inquiry_id, published_at=T0 - 5)
    assert h.agent_state.asked == ["done", "later", "fresh"]
    assert "done" in h.router.workspaces[WS].finished
    assert h.state("later") is InquiryState.SCHEDULED  # its follow-up is kept
    assert h.offered() == [("fresh", "a1")]
    # Published after the takeover: offered at once, nothing to ask.
    await h.inquiry("new")
    assert h.agent_state.asked == ["done", "later", "fresh"]
    assert h.offered() == [("fresh", "a1"), ("new", "a1")]


CALLBACK = task_pb2.TaskEvent.TYPE_CALLBACK_REQUESTED


async def test_a_callback_request_is_reserved_and_offered_as_a_call_with_the_number(
    h: Harness,
) -> None:
    await h.inquiry("q1")  # a chat; nobody logged in
    number = task_pb2.Callback(number="+15550001111", origin_channel=inquiry_pb2.CHANNEL_CHAT)
    # Not E.164: dead-lettered, the reason naming the field, never the number.
    await h.task(CALLBACK, "q1", "", callback=task_pb2.Callback(number="call me at home"))
    [(_, letter)] = h.router.dead_letters.sent
    reason = dead_letter_pb2.DeadLetter.FromString(letter).reason
    assert "TaskEvent.callback.number" in reason and "call me" not in reason
    await h.task(CALLBACK, "q1", "", channel=inquiry_pb2.CHANNEL_CHAT, callback=number)
    await h.task(CALLBACK, "q1", "", channel=inquiry_pb2.CHANNEL_CHAT, callback=number)  # a retry
    await h.task(ABANDONED, "q1", "")  # the customer closed the chat: it stays
    assert h.state("q1") is InquiryState.WAITING
    outcomes = {
        outcome: h.registry.get_sample_value(
            "omniroute_router_callbacks_total", {"outcome": outcome}
        )
        for outcome in ("requested", "duplicate")
    }
    assert outcomes == {"requested": 1.0, "duplicate": 1.0}

    voice = agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_VOICE, capacity=1)
    caller = agent_pb2.Agent(
        id="caller",
        workspace=WS,
        tier=1,  # type: ignore[arg-type]
        status=agent_pb2.AGENT_STATUS_AVAILABLE,
        capacities=[voice],
        version=1,
    )
    h.agent_state.agents["caller"] = caller
    await h.feed(h.message("agent-events", encode(agent_pb2.AgentEvent(agent=caller))))
    [(reserved, _)] = h.agent_state.reserved
    assert (reserved.agent_id, reserved.channel) == ("caller", inquiry_pb2.CHANNEL_VOICE)
    [(_, value)] = h.assignments.sent
    offer = task_pb2.Assignment.FromString(value)
    assert (offer.inquiry_id, offer.agent_id, offer.channel) == ("q1", "caller", inquiry_pb2.CHANNEL_VOICE)  # fmt: skip
    assert offer.callback == number
    assert "callback_requested:chat" in offer.history

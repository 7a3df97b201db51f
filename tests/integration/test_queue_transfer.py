"""Transfer to a queue, end to end: an agent hands an accepted task to another queue
with a note (TransferTask with target_queue) and the router routes it again there."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from omniroute.embedded import Broker
from omniroute.v1 import agent_state_pb2, task_pb2
from tests.support.kafka import TopicTail
from tests.support.system import (
    CHAT,
    Assignments,
    Desk,
    System,
    decisions,
    eventually,
    inquiry_body,
    make_agent,
    metric_value,
    new_workspace,
    running,
)

pytestmark = pytest.mark.integration

CONFIG = """
default:
  service_levels: {chat: 60}
  queues:
    - name: billing
      match: {skills: [billing]}
    - name: tech
      match: {skills: [tech]}
      strategy: highest_proficiency
      required_skills: {tech: 2}
    - name: vip
      match: {segments: [vip]}
      accepts_transfers: false
"""
NOTE = "Customer Jane Roe, +34 600 000 000: modem resets nightly"
TaskEvents = TopicTail[task_pb2.TaskEvent]


@pytest.fixture(scope="module")
def system(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    config = Path(tmp_path_factory.mktemp("routing")) / "routing.yaml"
    config.write_text(CONFIG)
    yield from running(
        System(broker, routing_config=str(config)), "agent-state", "router", "ingest"
    )


@pytest.fixture
async def task_events(system: System) -> AsyncIterator[TaskEvents]:
    async with TopicTail(
        system.broker.bootstrap, system.topics["TOPIC_TASK_EVENTS"], task_pb2.TaskEvent
    ) as reader:
        yield reader  # type: ignore[misc]


async def transfer(desk: Desk, **fields: str) -> agent_state_pb2.TransferTaskResponse:
    """TransferTask, retried while agent-state has not yet seen the workspace's queues
    (UNAVAILABLE: the router's first snapshot of a new workspace comes within a tick)."""

    async def call() -> agent_state_pb2.TransferTaskResponse:
        try:
            return await desk.stub.TransferTask(agent_state_pb2.TransferTaskRequest(**fields))
        except grpc.aio.AioRpcError as error:
            assert error.code() != grpc.StatusCode.UNAVAILABLE, error.details()
            raise

    return await eventually(call)


async def offered_and_accepted(
    system: System, desk: Desk, assignments: Assignments, ws: str, agent_id: str
) -> tuple[str, task_pb2.Assignment]:
    body = inquiry_body(ws, "chat", requiredSkills=[{"name": "billing"}])
    inquiry_id = system.post_inquiry(body)
    first = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert (first.agent_id, first.queue) == (agent_id, "billing")
    await desk.accept(agent_id, inquiry_id)
    return inquiry_id, first


async def test_a_task_transferred_to_a_queue_goes_to_another_agent_there_with_the_note(
    system: System, desk: Desk, assignments: Assignments, task_events: TaskEvents
) -> None:
    ws = new_workspace()
    ana, tom = f"{ws}-ana", f"{ws}-tom"
    # ana is the most proficient in tech: without the rule she would get it back.
    await desk.login(make_agent(ws, ana, {"billing": 3, "tech": 5}, {CHAT: 1}))
    await desk.login(make_agent(ws, tom, {"tech": 3}, {CHAT: 1}))
    inquiry_id, first = await offered_and_accepted(system, desk, assignments, ws, ana)
    request_id = uuid.uuid4().hex
    fields = {
        "agent_id": ana,
        "inquiry_id": inquiry_id,
        "target_queue": "tech",
        "note": NOTE,
        "request_id": request_id,
    }
    answer = await transfer(desk, **fields)
    assert not answer.HasField("reservation") and not answer.HasField("target")
    # The slot is free once answered: the change is durable.
    assert [c.load for c in answer.agent.capacities] == [0]
    assert not (await desk.agent(ana)).reservations

    again = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id and a.agent_id != ana)
    assert (again.agent_id, again.queue, again.escalation_step) == (tom, "tech", 0)
    assert decisions(again.history) == [f"offered:{ana}", f"transferred:{ana}:tech:{NOTE}"]
    # Its original arrival rides along: the inquiry itself is the one first offered.
    assert again.inquiry.received_at == first.inquiry.received_at

    # A retry gets the same answer and publishes nothing twice.
    assert await transfer(desk, **fields) == answer
    await desk.accept(tom, inquiry_id)
    accepted = await task_events.wait_for(
        lambda e: e.inquiry_id == inquiry_id and e.type == e.TYPE_ACCEPTED and e.agent_id == tom
    )
    transferred = [
        e
        for e in task_events.records
        if e.inquiry_id == inquiry_id and e.type == e.TYPE_TRANSFERRED
    ]
    assert len(transferred) == 1 and task_events.records.index(transferred[0]) < (
        task_events.records.index(accepted)
    )
    (event,) = transferred
    assert (event.agent_id, event.target_queue, event.note, event.reservation_id) == (
        ana,
        "tech",
        NOTE,
        first.reservation_id,
    )
    # Counted per queue; the note is in no metric and no log line.
    metrics = system.router_metrics_url()
    transfers = 'omniroute_router_transfers_total{queue="billing",to_queue="tech"}'
    assert (metric_value(metrics, transfers) or 0) >= 1
    assert "Jane Roe" not in system.logs()


async def test_back_to_the_same_agent_only_when_nobody_else_could_ever_take_it(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    ana, low = f"{ws}-ana", f"{ws}-low"
    await desk.login(make_agent(ws, ana, {"billing": 3, "tech": 3}, {CHAT: 1}))
    # In the roster, but below tech's required proficiency: could never take it there.
    await desk.login(make_agent(ws, low, {"tech": 1}, {CHAT: 1}))
    inquiry_id, _ = await offered_and_accepted(system, desk, assignments, ws, ana)
    await transfer(desk, agent_id=ana, inquiry_id=inquiry_id, target_queue="tech", note="n")
    again = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id and a.attempt == 2)
    assert (again.agent_id, again.queue) == (ana, "tech")
    assert list(again.history)[-1] == f"transferred:{ana}:tech:n"


async def test_a_transfer_to_a_queue_is_validated_at_the_edge(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    ana = f"{ws}-ana"
    await desk.login(make_agent(ws, ana, {"billing": 3}, {CHAT: 2}))
    body = inquiry_body(ws, "chat", requiredSkills=[{"name": "billing"}])
    offered_id = system.post_inquiry(body)
    await assignments.wait_for(lambda a: a.inquiry_id == offered_id)
    with pytest.raises(grpc.aio.AioRpcError) as only_offered:
        await transfer(desk, agent_id=ana, inquiry_id=offered_id, target_queue="tech")
    assert only_offered.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "accept it first" in (only_offered.value.details() or "")
    await desk.accept(ana, offered_id)
    with pytest.raises(grpc.aio.AioRpcError) as closed_to_transfers:
        await transfer(desk, agent_id=ana, inquiry_id=offered_id, target_queue="vip")
    assert closed_to_transfers.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "target_queue: queue 'vip' takes no transfers" in (
        closed_to_transfers.value.details() or ""
    )
    for fields, field in [
        ({"target_queue": "nowhere"}, "target_queue: 'nowhere' is not a queue of workspace"),
        ({"target_queue": "tech", "target_agent_id": ana}, "target_agent_id and target_queue"),
        ({"note": "just a note"}, "target_queue is required"),
        ({"target_queue": "tech", "note": "x" * 2001}, "note is longer"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await transfer(desk, agent_id=ana, inquiry_id=offered_id, **fields)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert field in (refused.value.details() or ""), refused.value.details()
    # Nothing refused changed anything: ana still holds the task.
    assert [r.inquiry_id for r in (await desk.agent(ana)).reservations] == [offered_id]

"""Transfer to a queue under faults: agent-state and the router killed (SIGKILL) or paused
(SIGSTOP) in every window of a transfer, on real processes.

The windows: before the broker acknowledged anything (the agent is not answered; the desk
retries the same request), between the TRANSFERRED event's acknowledgement and the agent
record's (the event is written first: `Changes.events_first`; the restart frees the slot),
after both but before the router read the event, and the router killed while it re-queues.
In each, a transfer the agent was told of ends in the target queue with its note, once; a
retry with the same request gets the same answer and changes nothing more.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from aiokafka import AIOKafkaProducer

from omniroute.codec import encode, timestamp
from omniroute.embedded import Broker
from omniroute.kafka import EventProducer
from omniroute.ports import free_port
from omniroute.v1 import agent_state_pb2, agent_state_pb2_grpc, dead_letter_pb2, queue_pb2, task_pb2
from tests.support.agent_state import (
    agent_state_env,
    available_agent,
    load_of,
    reserve,
    settings_from,
)
from tests.support.agent_state import eventually as until
from tests.support.kafka import TopicTail
from tests.support.processes import ServiceProcess, paused
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
    port_open,
    read_assignments,
    running,
)

pytestmark = pytest.mark.integration

NOTE = "Customer Jane Roe, +34 600 000 000: modem resets nightly"
TaskEvent = task_pb2.TaskEvent
CUT_OFF = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


# -- agent-state alone: the router's snapshot and the topics stand in for the router ------


class AgentState:
    """One agent-state process (killed and restarted by the test) and a client of it."""

    def __init__(self, broker: Broker) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        env = agent_state_env(
            broker,
            AGENT_STATE_PORT=str(self.port),
            AGENT_STATE_METRICS_PORT=str(self.metrics_port),
            OFFER_TTL_S="300",
            LOG_LEVEL="INFO",
        )
        self.process = ServiceProcess("omniroute_agent_state", env)
        self.settings = settings_from(env)
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = agent_state_pb2_grpc.AgentStateStub(self.channel)

    def start(self) -> None:
        self.process.start()
        self.process.wait_until(lambda: port_open(self.port))

    async def knows_queues(self, workspace: str) -> None:
        """Publish the router's snapshot of the workspace's queues until agent-state has
        it (it follows the topic from its end): probed with a transfer to no queue of it,
        refused INVALID_ARGUMENT once the queues are known, changing nothing."""
        snapshot = queue_pb2.QueueSnapshot(
            workspace=workspace,
            queues=[queue_pb2.QueueStats(name="billing"), queue_pb2.QueueStats(name="tech")],
        )
        producer = EventProducer(self.settings, "test-router")
        await producer.start()

        async def publish() -> None:
            snapshot.taken_at.CopyFrom(timestamp(time.time()))
            await producer.publish(self.settings.topic_queue_snapshots, workspace, snapshot)

        try:
            await queues_known(self.stub, "ann", "q-1", publish)
        finally:
            await producer.stop()

    def metric(self, line_prefix: str) -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        return metric_value(url, line_prefix) or 0.0


async def queues_known(
    stub: agent_state_pb2_grpc.AgentStateStub,
    agent_id: str,
    inquiry_id: str,
    before: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Until agent-state knows the workspace's queues (from the router's snapshots, followed
    from the topic's end): probed with a transfer to no queue of it, which changes nothing
    and is refused UNAVAILABLE only while they are unknown (otherwise INVALID_ARGUMENT, or
    FAILED_PRECONDITION when the agent holds no such task). `before` each probe: publish a
    snapshot, where no router does."""
    probe = agent_state_pb2.TransferTaskRequest(
        agent_id=agent_id, inquiry_id=inquiry_id, target_queue="nowhere"
    )

    async def known() -> bool:
        if before is not None:
            await before()
        try:
            await stub.TransferTask(probe)
        except grpc.aio.AioRpcError as error:
            return error.code() != grpc.StatusCode.UNAVAILABLE
        raise AssertionError("a transfer to no queue of the workspace was made")

    await until(known, timeout_s=30)


@pytest.fixture
async def agent_state(broker: Broker) -> AsyncIterator[AgentState]:
    service = AgentState(broker)
    try:
        service.start()
        yield service
    except BaseException:
        print(service.process.log())
        raise
    finally:
        await service.channel.close()
        service.process.stop()


async def accepted_task(service: AgentState, ws: str) -> agent_state_pb2.ReserveAgentResponse:
    """ann holds inquiry q-1 accepted; the router's queues of `ws` are known."""
    await available_agent(service.stub, ws, "ann", {CHAT: 1})
    reserved = await service.stub.ReserveAgent(reserve(ws, "ann", "q-1"))
    await service.stub.AcceptTask(agent_state_pb2.TaskRequest(agent_id="ann", inquiry_id="q-1"))
    await service.knows_queues(ws)
    return reserved


def transfer_request() -> agent_state_pb2.TransferTaskRequest:
    return agent_state_pb2.TransferTaskRequest(
        agent_id="ann",
        inquiry_id="q-1",
        target_queue="tech",
        note=NOTE,
        request_id=uuid.uuid4().hex,
    )


async def retried(
    stub: agent_state_pb2_grpc.AgentStateStub, request: agent_state_pb2.TransferTaskRequest
) -> agent_state_pb2.TransferTaskResponse:
    """The desk's retry: the same request again while it is cut off (UNAVAILABLE: not yet
    durable, e.g. the broker just resumed; the change is kept), until answered."""

    async def call() -> agent_state_pb2.TransferTaskResponse | None:
        try:
            return await stub.TransferTask(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            assert error.code() in CUT_OFF, error.details()
            return None

    return await until(call, timeout_s=60)


async def one_transfer(service: AgentState, ws: str, reservation_id: str) -> TaskEvent:
    """The inquiry's TRANSFERRED, published once in effect (one event id), to tech with the
    note; and nothing after it (agent-state published no second transfer or ending)."""
    async with TopicTail(
        service.settings.kafka_bootstrap, service.settings.topic_task_events, TaskEvent
    ) as events:
        # A marker after anything agent-state published on the workspace's partition.
        await available_agent(service.stub, ws, "mark", {CHAT: 1})
        await service.stub.ReserveAgent(reserve(ws, "mark", "q-marker"))
        await events.wait_for(lambda e: e.inquiry_id == "q-marker")
        ours = [e for e in events.records if e.workspace == ws and e.inquiry_id == "q-1"]
    transferred = [e for e in ours if e.type == TaskEvent.TYPE_TRANSFERRED]
    assert {e.event_id for e in transferred} and len({e.event_id for e in transferred}) == 1
    assert ours[-1].type == TaskEvent.TYPE_TRANSFERRED, [TaskEvent.Type.Name(e.type) for e in ours]
    event = transferred[0]
    assert (event.agent_id, event.target_queue, event.note, event.reservation_id) == (
        "ann",
        "tech",
        NOTE,
        reservation_id,
    )
    return event


async def test_a_transfer_cut_off_by_a_kill_before_it_was_durable_is_retried_to_one_transfer(
    broker: Broker, agent_state: AgentState
) -> None:
    """The broker is paused while the transfer is made, agent-state is killed before
    anything is acknowledged: the agent was not answered. Whatever reached the broker
    (nothing, or the event, which is written first), the desk's retry with the same request
    is answered with the agent freed, and the transfer exists once."""
    ws = new_workspace()
    reserved = await accepted_task(agent_state, ws)
    request = transfer_request()
    with paused(broker.process):
        with pytest.raises(grpc.aio.AioRpcError) as cut_off:
            await agent_state.stub.TransferTask(request, timeout=1.5)
        assert cut_off.value.code() in CUT_OFF
        agent_state.process.stop(signal.SIGKILL)
    agent_state.start()
    await agent_state.knows_queues(ws)
    answer = await retried(agent_state.stub, request)
    assert load_of(answer.agent, CHAT) == 0 and not answer.agent.reservations
    assert await agent_state.stub.TransferTask(request) == answer  # the retry of the retry
    await one_transfer(agent_state, ws, reserved.reservation.reservation_id)


async def test_a_kill_after_the_transfer_event_and_before_the_agent_record_frees_the_slot(
    broker: Broker, agent_state: AgentState
) -> None:
    """What a SIGKILL between the TRANSFERRED's acknowledgement and the agent record's
    leaves (the event is written first): the record still holds the task, the topic has
    the transfer. The restart frees the slot; the desk's retry (same request) is answered
    by it and publishes no second transfer."""
    ws = new_workspace()
    reserved = await accepted_task(agent_state, ws)
    request = transfer_request()  # the desk's call, cut off by the kill
    agent_state.process.stop(signal.SIGKILL)
    # The event the transfer wrote before the kill (its fields as agent-state writes them).
    lost = TaskEvent(
        event_id=uuid.uuid4().hex,
        type=TaskEvent.TYPE_TRANSFERRED,
        inquiry_id="q-1",
        workspace=ws,
        agent_id="ann",
        reservation_id=reserved.reservation.reservation_id,
        channel=CHAT,  # type: ignore[arg-type]
        target_queue="tech",
        note=NOTE,
    )
    lost.occurred_at.CopyFrom(timestamp(time.time()))
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            agent_state.settings.topic_task_events, encode(lost), key=ws.encode()
        )
    finally:
        await producer.stop()

    agent_state.start()
    ann = await agent_state.stub.GetAgent(agent_state_pb2.GetAgentRequest(agent_id="ann"))
    assert load_of(ann, CHAT) == 0 and not ann.reservations  # freed before serving
    released = 'omniroute_agent_state_recovery_gaps_total{kind="released"}'
    assert agent_state.metric(released) == 1
    assert agent_state.metric('omniroute_agent_state_recovery_gaps_total{kind="release_missing"}') == 0  # fmt: skip
    found = await agent_state.stub.GetReservation(
        agent_state_pb2.GetReservationRequest(workspace=ws, inquiry_id="q-1")
    )
    assert not found.HasField("reservation") and found.last_event == lost
    await agent_state.knows_queues(ws)
    answer = await retried(agent_state.stub, request)
    assert load_of(answer.agent, CHAT) == 0 and not answer.agent.reservations
    assert (await one_transfer(agent_state, ws, lost.reservation_id)).event_id == lost.event_id


# -- the whole system: the router re-queues it ---------------------------------------------

CONFIG = """
default:
  service_levels: {chat: 60}
  queues:
    - name: billing
      match: {skills: [billing]}
    - name: tech
      match: {skills: [tech]}
      required_skills: {tech: 2}
"""


@pytest.fixture
def system(broker: Broker, tmp_path: Path) -> Iterator[System]:
    config = tmp_path / "routing.yaml"
    config.write_text(CONFIG)
    yield from running(
        System(broker, routing_config=str(config)), "agent-state", "router", "ingest"
    )


@pytest.fixture
async def desk(system: System) -> AsyncIterator[Desk]:
    desk = Desk(system.agent_state_target)
    yield desk
    await desk.close()


@pytest.fixture
async def assignments(system: System) -> AsyncIterator[Assignments]:
    reader = await read_assignments(system).start()
    yield reader
    await reader.stop()


async def transfer_answered(desk: Desk, request: agent_state_pb2.TransferTaskRequest) -> None:
    """TransferTask until answered: UNAVAILABLE while agent-state has not seen the
    workspace's queues yet (or was just restarted) is retried with the same request."""

    async def call() -> None:
        try:
            answer = await desk.stub.TransferTask(request, timeout=10)
        except grpc.aio.AioRpcError as error:
            assert error.code() != grpc.StatusCode.UNAVAILABLE, error.details()
            raise
        assert not answer.agent.reservations

    await eventually(call)


async def handled_by_ana(
    system: System, desk: Desk, assignments: Assignments, ws: str
) -> tuple[str, task_pb2.Assignment]:
    """ana (billing) holds a new chat accepted; tom (tech) is logged in."""
    await desk.login(make_agent(ws, f"{ws}-ana", {"billing": 3}, {CHAT: 1}))
    await desk.login(make_agent(ws, f"{ws}-tom", {"tech": 3}, {CHAT: 1}))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "chat", requiredSkills=[{"name": "billing"}]))
    first = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    assert (first.agent_id, first.queue) == (f"{ws}-ana", "billing")
    await desk.accept(f"{ws}-ana", inquiry_id)
    return inquiry_id, first


async def ends_with_tom_in_tech_once(
    desk: Desk, assignments: Assignments, ws: str, inquiry_id: str
) -> None:
    """tom is offered it in tech with the transfer and the note in its history, once; he
    accepts, and agent-state holds it with him: nothing else holds or offers it."""
    ana, tom = f"{ws}-ana", f"{ws}-tom"
    again = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id and a.agent_id == tom)
    assert again.queue == "tech"
    assert decisions(again.history) == [f"offered:{ana}", f"transferred:{ana}:tech:{NOTE}"]
    await desk.accept(tom, inquiry_id)

    async def settled() -> None:
        held = await desk.stub.GetReservation(
            agent_state_pb2.GetReservationRequest(workspace=ws, inquiry_id=inquiry_id)
        )
        assert (held.reservation.agent_id, held.reservation.accepted) == (tom, True)

    await eventually(settled)
    # Every offer made after the transfer (a restarted router may publish tom's again):
    # tom's, in tech, the transfer once in its history.
    after = [a for a in assignments.records if a.inquiry_id == inquiry_id and a.agent_id != ana]
    for offer in after:
        assert (offer.agent_id, offer.queue) == (tom, "tech")
        moves = [h for h in offer.history if h.startswith("transferred:")]
        assert moves == [f"transferred:{ana}:tech:{NOTE}"], list(offer.history)
    assert not (await desk.agent(ana)).reservations


async def test_agent_state_killed_after_the_answer_while_the_router_is_paused(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    """The router is paused before it reads the TRANSFERRED; agent-state is killed right
    after answering and restarted. The router, resumed, routes it in tech, once."""
    ws = new_workspace()
    inquiry_id, _ = await handled_by_ana(system, desk, assignments, ws)
    request = agent_state_pb2.TransferTaskRequest(
        agent_id=f"{ws}-ana", inquiry_id=inquiry_id, target_queue="tech", note=NOTE
    )
    request.request_id = uuid.uuid4().hex
    await queues_known(desk.stub, f"{ws}-ana", inquiry_id)  # before the router is paused
    router = system.processes["router"]
    router.pause()
    try:
        await transfer_answered(desk, request)
        system.processes["agent-state"].kill()
        system.restart("agent-state")
    finally:
        router.resume()
    await ends_with_tom_in_tech_once(desk, assignments, ws, inquiry_id)


async def test_the_router_killed_while_it_re_queues_a_transfer(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    """The router is killed as soon as it has offered the transferred task in tech (its
    tables and offsets not yet committed) and restarted: it reads the transfer again and
    the task still ends with tom in tech, the transfer once in its history."""
    ws = new_workspace()
    inquiry_id, _ = await handled_by_ana(system, desk, assignments, ws)
    request = agent_state_pb2.TransferTaskRequest(
        agent_id=f"{ws}-ana", inquiry_id=inquiry_id, target_queue="tech", note=NOTE
    )
    await queues_known(desk.stub, f"{ws}-ana", inquiry_id)
    await transfer_answered(desk, request)
    await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id and a.queue == "tech")
    system.processes["router"].kill()
    system.restart("router")
    await ends_with_tom_in_tech_once(desk, assignments, ws, inquiry_id)


async def test_the_transfer_read_again_after_the_sole_fit_took_it_back(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    """Nobody but ana could ever take it in tech: it comes back to her by a new offer,
    which she accepts. The router is killed and the TRANSFERRED is read again by the
    next one (delivery is at least once: a worker killed before committing its offset
    reads it again; here it is published again, so it is read again for certain). It
    names ana's old reservation, not the one she holds now: her task stays hers and the
    transfer is in its history once."""
    ws = new_workspace()
    ana = f"{ws}-ana"
    await desk.login(make_agent(ws, ana, {"billing": 3, "tech": 3}, {CHAT: 1}))
    inquiry_id = system.post_inquiry(inquiry_body(ws, "chat", requiredSkills=[{"name": "billing"}]))
    first = await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    await desk.accept(ana, inquiry_id)
    request = agent_state_pb2.TransferTaskRequest(
        agent_id=ana, inquiry_id=inquiry_id, target_queue="tech", note=NOTE
    )
    await queues_known(desk.stub, ana, inquiry_id)
    async with TopicTail(
        system.broker.bootstrap, system.topics["TOPIC_TASK_EVENTS"], TaskEvent
    ) as task_events:
        await transfer_answered(desk, request)
        back = await assignments.wait_for(
            lambda a: a.inquiry_id == inquiry_id and a.queue == "tech"
        )
        assert back.agent_id == ana and back.reservation_id != first.reservation_id
        await desk.accept(ana, inquiry_id)
        await task_events.wait_for(
            lambda e: (
                e.inquiry_id == inquiry_id
                and e.type == TaskEvent.TYPE_ACCEPTED
                and e.reservation_id == back.reservation_id
            )
        )
        transferred = await task_events.wait_for(
            lambda e: e.inquiry_id == inquiry_id and e.type == TaskEvent.TYPE_TRANSFERRED
        )
    system.processes["router"].kill()
    # The transfer read again, then a malformed event as a marker behind it on the
    # workspace's partition: once it is dead-lettered, the transfer was handled.
    marker = TaskEvent(event_id=uuid.uuid4().hex, workspace=ws)  # no inquiry id
    producer = AIOKafkaProducer(bootstrap_servers=system.broker.bootstrap)
    await producer.start()
    try:
        for event in (transferred, marker):
            await producer.send_and_wait(
                system.topics["TOPIC_TASK_EVENTS"], encode(event), key=ws.encode()
            )
    finally:
        await producer.stop()
    async with TopicTail(
        system.broker.bootstrap, system.topics["TOPIC_DEAD_LETTERS"], dead_letter_pb2.DeadLetter
    ) as letters:
        system.restart("router")
        await letters.wait_for(lambda d: d.value == encode(marker), timeout_s=60)
    metrics = system.router_metrics_url()
    assert metric_value(
        metrics, 'omniroute_router_events_total{input="task-events",outcome="duplicate"}'
    )
    # Not moved again (tech to tech), and ana keeps the task she holds.
    again = 'omniroute_router_transfers_total{queue="tech",to_queue="tech"}'
    assert not metric_value(metrics, again)
    held = await desk.stub.GetReservation(
        agent_state_pb2.GetReservationRequest(workspace=ws, inquiry_id=inquiry_id)
    )
    assert (held.reservation.agent_id, held.reservation.accepted) == (ana, True)
    assert held.reservation.reservation_id == back.reservation_id
    offers = [a for a in assignments.records if a.inquiry_id == inquiry_id]
    assert {a.reservation_id for a in offers} == {first.reservation_id, back.reservation_id}
    moves = [h for h in back.history if h.startswith("transferred:")]
    assert moves == [f"transferred:{ana}:tech:{NOTE}"], list(back.history)

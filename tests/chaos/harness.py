"""The chaos harness: simulated agent desks, a load generator and the evidence collector.

A `ChaosRun` logs in simulated desks (gRPC WatchOffers clients that accept after a
short delay and complete, some declining), tails every topic the rules are checked
against, and at the end judges the evidence (tests/chaos/invariants.py) and prints
one summary line. The services are the real processes of `tests.support.system`;
faults are injected by the scenarios on those processes.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import httpx

from omniroute.embedded import EmbeddedBroker
from omniroute.ports import free_port
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2
from tests.chaos.invariants import (
    Confirmed,
    Evidence,
    Key,
    Verdict,
    judge,
    picture_disagreements,
    resolved_keys,
    router_picture,
)
from tests.support.kafka import RecordTail, TopicTail
from tests.support.system import CHAT, System, inquiry_body, make_agent, new_workspace


class Broker(Protocol):
    """What a scenario needs of the `broker` fixture (the embedded broker or Apache
    Kafka): where clients connect, and its process, to pause."""

    @property
    def bootstrap(self) -> str: ...

    process: subprocess.Popen[bytes] | None


# Every summary line of the session, printed again at the end of the run.
SUMMARIES: list[str] = []

# How a desk reacts to a failed call: try again with the same request id, or give up.
RETRY = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
}
CALL_TIMEOUT_S = 5.0
GIVE_UP_S = 90.0


def broker_label(broker: Any) -> str:
    """A short name of the broker under test for the summary line."""
    kind = getattr(broker, "kind", None) or getattr(broker, "name", None)
    if isinstance(kind, str) and kind:
        return kind
    return "tansu" if isinstance(broker, EmbeddedBroker) else type(broker).__name__.lower()


@dataclass
class Behaviour:
    """How every desk of a run behaves; scenarios change it while the run goes on."""

    responsive: bool = True  # False: offers go unanswered (they expire)
    decline_percent: int = 10  # of first offers (a second offer is never declined)
    accept_delay_s: tuple[float, float] = (0.1, 0.5)
    handle_s: tuple[float, float] = (0.3, 1.5)


@dataclass
class Ledger:
    """What the desks were told, for the checks."""

    confirmed: list[Confirmed] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # calls answered "no such offer/task"
    gave_up: list[str] = field(default_factory=list)  # calls that never got an answer
    cross_workspace: int = 0
    offers: int = 0


class SimulatedDesk:
    """One agent's desktop over real gRPC: watches its offers, answers them, completes.

    Every mutating call carries a request id and is retried with the same id while
    agent-state is unreachable, as a real desktop would. A desk that finds its agent
    AWAY (a missed offer) or OFFLINE (a lapsed session) logs back in.
    """

    def __init__(
        self,
        target: str,
        agent: agent_pb2.Agent,
        behaviour: Behaviour,
        ledger: Ledger,
        seed: int,
    ) -> None:
        self.agent = agent
        self.behaviour = behaviour
        self.ledger = ledger
        self.rng = random.Random(seed)
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = agent_state_pb2_grpc.AgentStateStub(self.channel)
        self.handled: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Create the agent, log in, and start answering offers."""
        upsert = agent_state_pb2.UpsertAgentRequest(agent=self.agent)
        await self._retry(lambda: self.stub.UpsertAgent(upsert, timeout=CALL_TIMEOUT_S))
        await self._log_in()
        self._spawn(self._watch())
        self._spawn(self._presence())

    async def stop(self) -> None:
        """Stop answering and hang up."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.channel.close()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _log_in(self) -> None:
        request = agent_state_pb2.SetStatusRequest(
            agent_id=self.agent.id,
            status=agent_pb2.AGENT_STATUS_AVAILABLE,
            request_id=uuid.uuid4().hex,
        )
        await self._retry(lambda: self.stub.SetStatus(request, timeout=CALL_TIMEOUT_S))

    async def _watch(self) -> None:
        request = agent_state_pb2.WatchOffersRequest(agent_id=self.agent.id)
        while True:
            try:
                async for offer in self.stub.WatchOffers(request):
                    self._on_offer(offer)
            except grpc.aio.AioRpcError:
                pass  # agent-state restarted or paused: reconnect; open offers come again
            await asyncio.sleep(0.3)

    async def _presence(self) -> None:
        get = agent_state_pb2.GetAgentRequest(agent_id=self.agent.id)
        while True:
            await asyncio.sleep(1.0)
            try:
                agent = await self.stub.GetAgent(get, timeout=CALL_TIMEOUT_S)
                if agent.status in (agent_pb2.AGENT_STATUS_AWAY, agent_pb2.AGENT_STATUS_OFFLINE):
                    await self._log_in()
            except grpc.aio.AioRpcError:
                pass

    def _on_offer(self, offer: agent_state_pb2.Offer) -> None:
        reservation = offer.reservation
        workspace = offer.assignment.workspace or reservation.workspace
        if workspace and workspace != self.agent.workspace:
            self.ledger.cross_workspace += 1
            return
        if offer.status != agent_state_pb2.Offer.STATUS_OPEN:
            return  # withdrawn or timed out: a pending answer will be refused, as it should
        if reservation.reservation_id in self.handled:
            return
        self.handled.add(reservation.reservation_id)
        self.ledger.offers += 1
        self._spawn(self._answer(offer))

    async def _answer(self, offer: agent_state_pb2.Offer) -> None:
        await asyncio.sleep(self.rng.uniform(*self.behaviour.accept_delay_s))
        if not self.behaviour.responsive:
            return
        reservation = offer.reservation
        inquiry_id = reservation.inquiry_id or offer.assignment.inquiry_id
        task = agent_state_pb2.TaskRequest(
            agent_id=self.agent.id,
            inquiry_id=inquiry_id,
            reservation_id=reservation.reservation_id,
            request_id=uuid.uuid4().hex,
        )
        # Declines stay bounded, so an inquiry is not declined by every agent of its
        # workspace (the router would then rightly hold it back from them for a while).
        declines = offer.assignment.attempt <= 1 and (
            self.rng.randrange(100) < self.behaviour.decline_percent
        )
        if declines:
            await self._change("declined", inquiry_id, reservation.reservation_id, self.stub.DeclineTask, task)  # fmt: skip
            return
        if not await self._change("accepted", inquiry_id, reservation.reservation_id, self.stub.AcceptTask, task):  # fmt: skip
            return
        await asyncio.sleep(self.rng.uniform(*self.behaviour.handle_s))
        complete = agent_state_pb2.CompleteTaskRequest(
            agent_id=self.agent.id,
            inquiry_id=inquiry_id,
            resolution=task_pb2.RESOLUTION_RESOLVED,
            request_id=uuid.uuid4().hex,
        )
        await self._change("completed", inquiry_id, reservation.reservation_id, self.stub.CompleteTask, complete)  # fmt: skip

    async def _change(
        self, kind: str, inquiry_id: str, reservation_id: str, method: Any, request: Any
    ) -> bool:
        """One mutating call, retried with the same request id until answered."""
        what = f"{kind} ({self.agent.workspace}, {inquiry_id}) by {self.agent.id}"
        try:
            await self._retry(lambda: method(request, timeout=CALL_TIMEOUT_S))
        except grpc.aio.AioRpcError as exc:
            self.ledger.refused.append(f"{what}: {exc.code().name} {exc.details()}")
            return False
        except TimeoutError:
            self.ledger.gave_up.append(what)
            return False
        self.ledger.confirmed.append(
            Confirmed(kind, self.agent.workspace, inquiry_id, self.agent.id, reservation_id)
        )
        return True

    @staticmethod
    async def _retry(call: Callable[[], Awaitable[Any]]) -> Any:
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRY:
                    raise
                if time.monotonic() > deadline:
                    raise TimeoutError(str(exc)) from exc
                await asyncio.sleep(0.3)


@dataclass
class Load:
    """Inquiries posted through ingest at a steady rate; a refused or unanswered post is
    tried again with the same id (ingest de-duplicates) until `give_up_s`."""

    ingest_url: str
    keys: list[Key]
    rate_per_s: float
    give_up_s: float = 60.0
    accepted: set[Key] = field(default_factory=set)
    unaccepted: list[str] = field(default_factory=list)

    async def run(self) -> None:
        """Post every inquiry; returns when each is accepted or given up."""
        async with httpx.AsyncClient(base_url=self.ingest_url, timeout=10) as client:
            posts = []
            for key in self.keys:
                posts.append(asyncio.create_task(self._post(client, key)))
                await asyncio.sleep(1 / self.rate_per_s)
            await asyncio.gather(*posts)

    async def _post(self, client: httpx.AsyncClient, key: Key) -> None:
        workspace, inquiry_id = key
        body = inquiry_body(workspace, "chat", id=inquiry_id)
        deadline = time.monotonic() + self.give_up_s
        last = ""
        while time.monotonic() < deadline:
            try:
                response = await client.post("/v1/inquiries", json=body)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code == 202:
                    assert response.json()["id"] == inquiry_id, response.text
                    self.accepted.add(key)
                    return
                if response.status_code not in (429, 503):
                    raise AssertionError(f"ingest answered {response.status_code}: {response.text}")
                last = str(response.status_code)
            await asyncio.sleep(0.5)
        self.unaccepted.append(f"{key}: {last}")


class TableTail(RecordTail[tuple[bytes | None, bytes | None]]):
    """A Faust table's changelog: (key, value) records, values JSON or None (deleted)."""

    def _decode(self, record: Any) -> tuple[bytes | None, bytes | None]:
        return record.key, record.value


class ChaosRun:
    """One scenario's desks, topic readers and verdict, on a running `System`."""

    def __init__(
        self,
        system: System,
        scenario: str,
        broker: str,
        workspaces: int = 3,
        agents_per_workspace: int = 3,
        chat_capacity: int = 2,
    ) -> None:
        self.system = system
        self.scenario = scenario
        self.broker = broker
        self.workspaces = [new_workspace() for _ in range(workspaces)]
        self.agents_per_workspace = agents_per_workspace
        self.chat_capacity = chat_capacity
        self.behaviour = Behaviour()
        self.ledger = Ledger()
        self.expiries_allowed = True  # see Evidence.expiries_allowed
        self.desks: list[SimulatedDesk] = []
        self.loads: list[Load] = []
        bootstrap = system.broker.bootstrap
        topics = system.topics
        self.inquiries = TopicTail(bootstrap, topics["TOPIC_INQUIRIES"], inquiry_pb2.Inquiry)
        self.assignments = TopicTail(bootstrap, topics["TOPIC_ASSIGNMENTS"], task_pb2.Assignment)
        self.task_events = TopicTail(bootstrap, topics["TOPIC_TASK_EVENTS"], task_pb2.TaskEvent)
        self.agent_events = TopicTail(bootstrap, topics["TOPIC_AGENT_EVENTS"], agent_pb2.AgentEvent)
        app_id = system.env["ROUTER_APP_ID"]
        self.router_table = TableTail(bootstrap, f"{app_id}-inquiries-changelog")
        self._tails: list[RecordTail[Any]] = [
            self.inquiries,
            self.assignments,
            self.task_events,
            self.agent_events,
            self.router_table,
        ]

    async def __aenter__(self) -> ChaosRun:
        for tail in self._tails:
            await tail.start()
        seed = 0
        for workspace in self.workspaces:
            for n in range(self.agents_per_workspace):
                agent = make_agent(
                    workspace, f"{workspace}-a{n}", {"billing": 3}, {CHAT: self.chat_capacity}
                )
                seed += 1
                desk = SimulatedDesk(
                    self.system.agent_state_target, agent, self.behaviour, self.ledger, seed
                )
                await desk.start()
                self.desks.append(desk)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for desk in self.desks:
            await desk.stop()
        for tail in self._tails:
            await tail.stop()

    # -- load -----------------------------------------------------------------

    def keys(self, count: int, prefix: str = "") -> list[Key]:
        """`count` inquiries spread over the run's workspaces, with ids of their own."""
        prefix = prefix or uuid.uuid4().hex[:6]
        return [(self.workspaces[i % len(self.workspaces)], f"{prefix}-{i}") for i in range(count)]

    def load(self, keys: list[Key], rate_per_s: float) -> asyncio.Task[None]:
        """Start posting `keys` through ingest; await the task for the end of the load."""
        load = Load(self.system.ingest_url, keys, rate_per_s)
        self.loads.append(load)
        return asyncio.create_task(load.run())

    @property
    def accepted(self) -> set[Key]:
        """Every inquiry ingest accepted so far."""
        return set().union(*(load.accepted for load in self.loads))

    def resolved(self) -> set[Key]:
        """Accepted inquiries resolved so far (from task-events)."""
        return self.accepted & resolved_keys(self.task_events.records)

    def open_offers(self) -> int:
        """Offers published so far whose inquiry is not resolved yet (from the topics)."""
        done = resolved_keys(self.task_events.records)
        return len({(a.workspace, a.inquiry_id) for a in self.assignments.records} - done)

    async def until(self, condition: Callable[[], bool], timeout_s: float = 60.0) -> bool:
        """Wait until `condition()` holds (checked every 0.1 s); False after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    # -- faults -----------------------------------------------------------------

    async def in_thread(self, work: Callable[[], Any]) -> Any:
        """Blocking process control (a restart waits until ready) without stopping the
        desks and the load, which run on this event loop."""
        return await asyncio.to_thread(work)

    # -- verdict ------------------------------------------------------------------

    async def verdict(self, settle_s: float = 90.0, agree_s: float = 30.0) -> Verdict:
        """Wait until every accepted inquiry is resolved (at most `settle_s`) and the
        router's and agent-state's pictures agree (at most `agree_s` more), judge the
        evidence, print and record the summary line."""
        await self.until(lambda: self.accepted <= self.resolved(), settle_s)
        deadline = time.monotonic() + agree_s
        while True:
            evidence = await self.evidence()
            disagree = picture_disagreements(evidence.router, evidence.reservations)
            if not disagree or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        verdict = judge(evidence)
        line = verdict.line(self.broker, self.scenario)
        SUMMARIES.append(line)
        print(line)
        return verdict

    async def evidence(self) -> Evidence:
        """Everything the rules look at, as of now."""
        reservations, agents = await self._agent_state_picture()
        mine = set(self.workspaces)
        return Evidence(
            workspaces=mine,
            accepted=self.accepted,
            inquiries=[i for i in self.inquiries.records if i.workspace in mine],
            assignments=[a for a in self.assignments.records if a.workspace in mine],
            task_events=[e for e in self.task_events.records if e.workspace in mine],
            agent_events=[e for e in self.agent_events.records if e.agent.workspace in mine],
            router={
                k: v for k, v in router_picture(self.router_table.records).items() if k[0] in mine
            },
            reservations=reservations,
            agents=agents,
            confirmed=list(self.ledger.confirmed),
            cross_workspace=self.ledger.cross_workspace,
            expiries_allowed=self.expiries_allowed,
            now=time.time(),
        )

    async def _agent_state_picture(
        self,
    ) -> tuple[dict[Key, tuple[str, bool]], list[agent_pb2.Agent]]:
        """agent-state's open reservations and agents of the run's workspaces. Uses
        ListReservations where agent-state has it, else the agents' own reservations."""
        held: dict[Key, tuple[str, bool]] = {}
        agents: list[agent_pb2.Agent] = []
        async with grpc.aio.insecure_channel(self.system.agent_state_target) as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            for workspace in self.workspaces:
                listed = await SimulatedDesk._retry(
                    lambda ws=workspace: stub.ListAgents(
                        agent_state_pb2.ListAgentsRequest(workspace=ws), timeout=CALL_TIMEOUT_S
                    )
                )
                agents += listed.agents
                try:
                    reply = await stub.ListReservations(
                        agent_state_pb2.ListReservationsRequest(workspace=workspace),
                        timeout=CALL_TIMEOUT_S,
                    )
                    reservations = list(reply.reservations)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    reservations = [r for a in listed.agents for r in a.reservations]
                for r in reservations:
                    held[(r.workspace or workspace, r.inquiry_id)] = (r.agent_id, r.accepted)
        return held, agents

    def report(self, verdict: Verdict) -> str:
        """What a failed scenario shows: the summary, the findings, the desks' troubles."""
        lines = [verdict.line(self.broker, self.scenario), *verdict.details[:40]]
        if len(verdict.details) > 40:
            lines.append(f"... {len(verdict.details) - 40} more")
        lines += [f"desk refused: {r}" for r in self.ledger.refused[:10]]
        lines += [f"desk gave up: {r}" for r in self.ledger.gave_up[:10]]
        for load in self.loads:
            lines += [f"never accepted by ingest: {u}" for u in load.unaccepted[:5]]
        lines += self._log_lines(verdict)
        return "\n".join(lines)

    def _log_lines(self, verdict: Verdict, most: int = 60) -> list[str]:
        """The services' log lines about the first inquiries the findings name."""
        named = re.findall(r"\('ws-[0-9a-f]+', '([^']+)'\)|\(ws-[0-9a-f]+, ([^)]+)\)", "\n".join(verdict.details))  # fmt: skip
        ids = sorted({a or b for a, b in named})[:5]
        if not ids:
            return []
        lines = [f"--- service log lines about {', '.join(ids)} ---"]
        for name, proc in self.system.processes.items():
            text = proc.log_path.read_text(errors="replace")
            lines += [
                f"{name}: {line[:400]}"
                for line in text.splitlines()
                if any(f'"{i}"' in line for i in ids)
            ]
        return lines[: most + 1]


def chaos_env() -> dict[str, str]:
    """Settings every chaos system runs with: the timers an operator sets in minutes,
    scaled to seconds, so that offers expire and the router's reconciliation, sweep
    and checks of silent tasks all happen within one scenario."""
    return {
        "OFFER_TTL_S": "4",
        "OFFER_TTL_BY_CHANNEL": json.dumps({}),
        "EXPIRY_CHECK_S": "0.2",
        "ROUTER_OFFER_GRACE_S": "3",
        "ROUTER_TASK_SILENCE_S": "20",
        "ROUTER_RECONCILE_INTERVAL_S": "10",
        "ROUTER_SWEEP_INTERVAL_S": "10",
        "LOG_LEVEL": "INFO",
    }


@contextmanager
def chaos_system(
    broker: Broker,
    routers: int = 1,
    agent_state_env: dict[str, str] | None = None,
    router_env: dict[str, dict[str, str]] | None = None,
) -> Iterator[System]:
    """agent-state, ingest and `routers` router workers ("router", "router-2", ...) on
    `broker`, with topics of their own; every service's log is printed if the scenario
    fails. `router_env` adds settings per worker name (e.g. a wall clock)."""
    system = System(broker, partitions=4, extra_env=chaos_env())
    try:
        # Every process starts at once; then each is waited for.
        system.allocate_ports()
        system.spawn_ingest()
        system.spawn_agent_state(**(agent_state_env or {}))
        names = ["router"] + [f"router-{n}" for n in range(2, routers + 1)]
        for name in names:
            port = system.ports["router_metrics"] if name == "router" else free_port()
            env = {"ROUTER_METRICS_PORT": str(port), **(router_env or {}).get(name, {})}
            system.spawn_router(name, **env)
        system.wait_ingest()
        system.wait_agent_state()
        for name in names:
            system.wait_router(name)
        yield system
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()

"""A small contact centre in motion: agents log in, customers write and call.

Agents are created and logged in over gRPC at agent-state; inquiries arrive
over HTTP at ingest; each agent's desktop is simulated by a WatchOffers
stream that accepts offers and completes them after a short handle time.
Some outcomes show the router's other paths: a declined offer is re-routed,
a complaint is escalated to a specialist, an email needs a follow-up and
comes back to the same agent.

The `PEOPLE` are agents for a person at the desk (services/desk): the demo
creates them but leaves them offline; whoever signs in as one of them gets
offers alongside the simulated agents.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from omniroute.codec import timestamp
from omniroute.v1 import agent_pb2, agent_state_pb2, agent_state_pb2_grpc, inquiry_pb2, task_pb2

WORKSPACE = "acme"
CH = inquiry_pb2

AGENTS = [
    # id, name, tier, languages, skills, capacity per channel
    ("ana", "Ana Lima", 1, ["en", "es"], {"billing": 4, "returns": 3, "complaints": 3},
     {CH.CHANNEL_CHAT: 2, CH.CHANNEL_VOICE: 1, CH.CHANNEL_EMAIL: 4, CH.CHANNEL_SMS: 3,
      CH.CHANNEL_SOCIAL: 2}),
    ("ben", "Ben Okafor", 1, ["en"], {"technical": 4, "sales": 3, "billing": 2},
     {CH.CHANNEL_CHAT: 2, CH.CHANNEL_VOICE: 1, CH.CHANNEL_EMAIL: 4, CH.CHANNEL_SOCIAL: 2}),
    ("dev", "Dev Ortega", 1, ["es", "en"], {"sales": 4, "returns": 4, "billing": 3},
     {CH.CHANNEL_CHAT: 3, CH.CHANNEL_VOICE: 1, CH.CHANNEL_SMS: 3, CH.CHANNEL_IN_PERSON: 1}),
    ("carla", "Carla Reyes", 2, ["en", "es"],
     {"billing": 5, "technical": 5, "retention": 4, "complaints": 4},
     {CH.CHANNEL_CHAT: 2, CH.CHANNEL_VOICE: 1, CH.CHANNEL_EMAIL: 5, CH.CHANNEL_SOCIAL: 2}),
    ("dana", "Dana Weiss", 3, ["en", "es"],
     {"billing": 5, "complaints": 5, "technical": 3, "sales": 3, "returns": 3, "retention": 5},
     {CH.CHANNEL_CHAT: 1, CH.CHANNEL_VOICE: 1, CH.CHANNEL_EMAIL: 3, CH.CHANNEL_SOCIAL: 2}),
]  # fmt: skip

# Agents for people: created OFFLINE, worked in the browser at the desk.
PEOPLE = [
    ("sam", "Sam Park", 1, ["en", "es"],
     {"billing": 3, "technical": 3, "sales": 3, "returns": 3, "complaints": 3},
     {CH.CHANNEL_CHAT: 2, CH.CHANNEL_VOICE: 1, CH.CHANNEL_EMAIL: 3, CH.CHANNEL_SMS: 2,
      CH.CHANNEL_SOCIAL: 2, CH.CHANNEL_IN_PERSON: 1}),
    ("lee", "Lee Chen", 2, ["en", "es"],
     {"billing": 4, "technical": 4, "retention": 4, "complaints": 4, "returns": 3},
     {CH.CHANNEL_CHAT: 2, CH.CHANNEL_VOICE: 1, CH.CHANNEL_EMAIL: 3, CH.CHANNEL_SOCIAL: 2}),
]  # fmt: skip

# channel, language, kind, skills, subject, segment, what the agent does with it
SCRIPT = [
    ("chat", "en", "question", {"billing": 1}, "Charged twice for March", "", "resolve"),
    ("email", "en", "service_problem", {"technical": 2}, "Router keeps dropping", "", "resolve"),
    ("voice", "es", "question", {"billing": 1}, "Consulta sobre mi factura", "vip", "resolve"),
    ("sms", "es", "order", {}, "Quiero contratar fibra", "", "resolve"),
    ("social", "en", "complaint", {}, "Third outage this week!", "vip", "escalate"),
    ("chat", "en", "return", {}, "Return a damaged phone", "", "decline"),
    ("in_person", "es", "cancellation", {}, "Cancelar contrato", "", "resolve"),
    ("email", "en", "request", {"billing": 1}, "Update my billing address", "", "follow_up"),
]


@dataclass
class Tally:
    """What the demo saw, for the closing summary."""

    sent: int = 0
    offers: int = 0
    finished: int = 0
    sent_at: dict[str, float] = field(default_factory=dict)
    plan: dict[str, str] = field(default_factory=dict)  # inquiry -> scripted outcome
    subject: dict[str, str] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def say(text: str) -> None:
    """Print one line of the demo's story with the time."""
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


class _Token:
    """Adds `authorization: Bearer <token>` to a call's metadata."""

    def __init__(self, token: str) -> None:
        self.header = ("authorization", f"Bearer {token}")

    def with_token(self, details: Any) -> Any:
        return details._replace(metadata=grpc.aio.Metadata(*(details.metadata or ()), self.header))


class _BearerUnary(_Token, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.with_token(details), request)


# A channel files each interceptor under the first call kind it implements: one class each.
class _BearerStream(_Token, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.with_token(details), request)


def bearer_interceptors(token: str) -> list[Any] | None:
    """Interceptors that send `token` with every call (None without a token)."""
    return [_BearerUnary(token), _BearerStream(token)] if token else None


class Demo:
    """Drives the running stack; `run()` until `count` inquiries are done or forever."""

    def __init__(
        self,
        ingest_url: str,
        agent_state_target: str,
        count: int | None,
        *,
        ingest_key: str,
        token: str,
    ) -> None:
        self.ingest_url = ingest_url
        self.ingest_key = ingest_key  # an API key at ingest
        self.target = agent_state_target
        self.count = count
        self.token = token  # an administrator token at agent-state
        self.tally = Tally()
        self.names = {a[0]: a[1] for a in AGENTS}
        self.working: set[asyncio.Task[None]] = set()

    async def run(self) -> Tally:
        """Log the agents in, watch their offers and send inquiries."""
        interceptors = bearer_interceptors(self.token)
        async with grpc.aio.insecure_channel(self.target, interceptors=interceptors) as channel:
            stub = agent_state_pb2_grpc.AgentStateStub(channel)
            await self._log_in(stub)
            desks = [asyncio.create_task(self._desk(stub, a[0])) for a in AGENTS]
            sender = asyncio.create_task(self._send_inquiries())
            try:
                await self.tally.done.wait()
            finally:
                sender.cancel()
                for desk in desks:
                    desk.cancel()
                await asyncio.gather(sender, *desks, return_exceptions=True)
        return self.tally

    async def _log_in(self, stub: agent_state_pb2_grpc.AgentStateStub) -> None:
        for entry in AGENTS:
            agent_id, name, tier, languages, skills, _ = entry
            await stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=profile(entry)))
            await stub.SetStatus(
                agent_state_pb2.SetStatusRequest(
                    agent_id=agent_id, status=agent_pb2.AGENT_STATUS_AVAILABLE
                )
            )
            tiers = {1: "representative", 2: "specialist", 3: "supervisor"}
            say(f"agent    {name:<12} logged in ({tiers[tier]}; {', '.join(languages)}; "
                f"{', '.join(f'{s} {p}' for s, p in skills.items())})")  # fmt: skip
        for entry in PEOPLE:  # offline until someone signs in at the desk
            await stub.UpsertAgent(agent_state_pb2.UpsertAgentRequest(agent=profile(entry)))

    async def _send_inquiries(self) -> None:
        for n in itertools.count():
            if self.count is not None and n >= self.count:
                return
            channel, language, kind, skills, subject, segment, outcome = SCRIPT[n % len(SCRIPT)]
            body: dict[str, object] = {
                "workspace": WORKSPACE,
                "channel": channel,
                "kind": kind,
                "language": language,
                "subject": subject,
                "body": "(demo)",
                "customer": {"id": f"cust-{n}", "name": f"Customer {n}", "segment": segment},
                "requiredSkills": [{"name": s, "minProficiency": p} for s, p in skills.items()],
            }
            inquiry_id = await asyncio.to_thread(self._post, body)
            self.tally.sent += 1
            self.tally.sent_at[inquiry_id] = time.monotonic()
            self.tally.plan[inquiry_id] = outcome
            self.tally.subject[inquiry_id] = subject
            tag = f" ({segment})" if segment else ""
            say(f'inquiry  {channel:<9} {language}  {kind:<15} "{subject}"{tag}')
            await asyncio.sleep(1.5)

    def _post(self, body: dict[str, object]) -> str:
        request = urllib.request.Request(
            f"{self.ingest_url}/v1/inquiries",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.ingest_key}",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["id"])

    async def _desk(self, stub: agent_state_pb2_grpc.AgentStateStub, agent_id: str) -> None:
        """One agent's desktop: take each offer, work it, record the outcome."""
        name = self.names[agent_id]
        stream = stub.WatchOffers(agent_state_pb2.WatchOffersRequest(agent_id=agent_id))
        async for offer in stream:
            if offer.status != agent_state_pb2.Offer.STATUS_OPEN:
                continue  # a withdrawal, a time-out or a customer's message: nothing to start
            if offer.reservation.accepted:
                continue  # a task this desk already works on, sent again on (re)connecting
            a = offer.assignment
            inquiry_id = offer.reservation.inquiry_id or a.inquiry_id
            self.tally.offers += 1
            # The offer carries the inquiry's content (the router puts it on).
            subject = a.inquiry.subject or self.tally.subject.get(inquiry_id, inquiry_id[:8])
            waited = time.monotonic() - self.tally.sent_at.get(inquiry_id, time.monotonic())
            say(f"offer    \"{subject}\" -> {name} (tier {a.tier}, queue {a.queue or '-'}, "
                f"attempt {a.attempt}, {waited:.1f} s after it was sent)")  # fmt: skip
            work = asyncio.create_task(self._work(stub, agent_id, inquiry_id, a.tier))
            self.working.add(work)
            work.add_done_callback(self.working.discard)

    async def _work(self, stub: agent_state_pb2_grpc.AgentStateStub, agent_id: str, inquiry_id: str, tier: int) -> None:  # fmt: skip
        name = self.names[agent_id]
        subject = self.tally.subject.get(inquiry_id, inquiry_id[:8])
        outcome = self.tally.plan.get(inquiry_id, "resolve")
        task = agent_state_pb2.TaskRequest(agent_id=agent_id, inquiry_id=inquiry_id)
        await asyncio.sleep(random.uniform(0.3, 0.8))
        if outcome == "decline":
            self.tally.plan[inquiry_id] = "resolve"  # the next agent takes it
            await stub.DeclineTask(agent_state_pb2.TaskRequest(agent_id=agent_id, inquiry_id=inquiry_id, reason="busy"))  # fmt: skip
            say(f'decline  {name} declines "{subject}": the router offers it to someone else')
            return
        await stub.AcceptTask(task)
        await asyncio.sleep(random.uniform(1.0, 2.5))  # handle time
        complete = agent_state_pb2.CompleteTaskRequest(agent_id=agent_id, inquiry_id=inquiry_id)
        if outcome == "escalate" and tier < 2:
            complete.resolution = task_pb2.RESOLUTION_ESCALATED
            complete.escalation.target_tier = agent_pb2.TIER_SPECIALIST
            complete.escalation.reason = "refund above my authority"
            self.tally.plan[inquiry_id] = "resolve"
            say(f'escalate {name} escalates "{subject}" to a specialist')
        elif outcome == "follow_up":
            complete.resolution = task_pb2.RESOLUTION_FOLLOW_UP
            complete.follow_up.due_at.CopyFrom(timestamp(time.time() + 4))
            complete.follow_up.note = "confirm once the new address is live"
            self.tally.plan[inquiry_id] = "resolve"
            say(f'follow   {name} schedules a follow-up of "{subject}" in 4 s')
        else:
            complete.resolution = task_pb2.RESOLUTION_RESOLVED
        await stub.CompleteTask(complete)
        if complete.resolution == task_pb2.RESOLUTION_RESOLVED:
            self.tally.finished += 1
            say(f'resolved "{subject}" by {name}')
            if self.count is not None and self.tally.finished >= self.count:
                self.tally.done.set()


def profile(entry: tuple[Any, ...]) -> agent_pb2.Agent:
    """The agent-state profile of an `AGENTS` or `PEOPLE` entry."""
    agent_id, name, tier, languages, skills, capacity = entry
    return agent_pb2.Agent(
        id=agent_id,
        workspace=WORKSPACE,
        name=name,
        skills=skills,
        languages=languages,
        tier=tier,
        capacities=[
            agent_pb2.ChannelCapacity(channel=ch, capacity=n) for ch, n in capacity.items()
        ],
    )


def summary(tally: Tally, elapsed: Callable[[], float]) -> str:
    """One closing line."""
    return (
        f"{tally.sent} inquiries sent, {tally.offers} offers made, {tally.finished} resolved "
        f"in {elapsed():.0f} s"
    )

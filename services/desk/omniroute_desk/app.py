"""The desk's FastAPI app: the pages, a JSON API over agent-state, server-sent events.

Pages: `/` (the agent desk) and `/wallboard` (the supervisor wallboard), plain
HTML, JavaScript and CSS from `static/`. The browser calls the JSON API under
`/api` with `Authorization: Bearer <token>`:

- an agent's desktop token for `/api/agents/{agent_id}/...`: the desk passes
  it on to agent-state with every call, so agent-state decides what the agent
  may see and do (their own offers only);
- a supervisor token (`DESK_SUPERVISOR_TOKENS`) for `/api/wallboard/...`: the
  token names the one workspace it shows.

Live updates are server-sent events (`text/event-stream`) read by the page
with `fetch`, so the token travels in a header, never in a URL. A stream ends
with an `error` event when agent-state goes away; the page reconnects.
The desk holds no state of its own beyond the connections it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from google.protobuf import json_format
from google.protobuf.message import Message
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field, model_validator

from omniroute.codec import seconds, timestamp
from omniroute.grpc_client import read_ca
from omniroute.v1 import agent_pb2, agent_state_pb2, task_pb2
from omniroute_desk.feed import AssignmentIndex, AssignmentReader, SnapshotBoard, SnapshotReader
from omniroute_desk.gateway import AgentStateGateway
from omniroute_desk.metrics import DeskMetrics
from omniroute_desk.settings import DeskSettings

log = logging.getLogger("omniroute.desk")
STATIC = Path(__file__).parent / "static"
T = TypeVar("T")

# gRPC status from agent-state -> the HTTP status the browser gets.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

Id = Annotated[str, PathParam(min_length=1, max_length=256)]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]


# -- request bodies: every field validated here, errors name the field ----------------


class Presence(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    WRAP_UP = "wrap_up"
    OFFLINE = "offline"


PRESENCE_STATUS = {
    Presence.AVAILABLE: agent_pb2.AGENT_STATUS_AVAILABLE,
    Presence.AWAY: agent_pb2.AGENT_STATUS_AWAY,
    Presence.WRAP_UP: agent_pb2.AGENT_STATUS_WRAP_UP,
    Presence.OFFLINE: agent_pb2.AGENT_STATUS_OFFLINE,
}


class Outcome(StrEnum):
    RESOLVED = "resolved"
    FOLLOW_UP = "follow_up"
    ESCALATED = "escalated"


OUTCOME_RESOLUTION = {
    Outcome.RESOLVED: task_pb2.RESOLUTION_RESOLVED,
    Outcome.FOLLOW_UP: task_pb2.RESOLUTION_FOLLOW_UP,
    Outcome.ESCALATED: task_pb2.RESOLUTION_ESCALATED,
}


class EscalateTo(StrEnum):
    NEXT = "next"  # the next tier up
    SPECIALIST = "specialist"
    SUPERVISOR = "supervisor"


ESCALATION_TIER = {
    EscalateTo.NEXT: agent_pb2.TIER_UNSPECIFIED,
    EscalateTo.SPECIALIST: agent_pb2.TIER_SPECIALIST,
    EscalateTo.SUPERVISOR: agent_pb2.TIER_SUPERVISOR,
}


class SignIn(BaseModel):
    agent_id: str = Field(min_length=1, max_length=128)
    token: str = Field("", max_length=512)


class StatusChange(BaseModel):
    status: Presence
    reason: str = Field("", max_length=64)
    request_id: RequestId

    @model_validator(mode="after")
    def _away_needs_a_reason(self) -> StatusChange:
        if self.status is Presence.AWAY and not self.reason:
            raise ValueError("reason is required when the status is away")
        return self


class OfferAnswer(BaseModel):
    reservation_id: str = Field("", max_length=128)
    reason: str = Field("", max_length=200)
    request_id: RequestId


class Completion(BaseModel):
    outcome: Outcome
    follow_up_at: datetime | None = None
    note: str = Field("", max_length=2000)
    escalate_to: EscalateTo = EscalateTo.NEXT
    escalation_reason: str = Field("", max_length=500)
    target_queue: str = Field("", max_length=128)
    request_id: RequestId

    @model_validator(mode="after")
    def _outcome_details(self) -> Completion:
        if self.outcome is Outcome.FOLLOW_UP and self.follow_up_at is None:
            raise ValueError("follow_up_at is required for a follow-up")
        if self.follow_up_at is not None and self.follow_up_at.tzinfo is None:
            raise ValueError("follow_up_at needs a time zone, e.g. 2026-11-24T09:00:00Z")
        if self.outcome is Outcome.ESCALATED and not self.escalation_reason.strip():
            raise ValueError("escalation_reason is required for an escalation")
        return self


class Transfer(BaseModel):
    """To a colleague (`target_agent_id`), or to a queue with a note (`target_queue`)."""

    target_agent_id: str = Field("", max_length=128)
    target_queue: str = Field("", max_length=200)
    note: str = Field("", max_length=2000)
    reason: str = Field("", max_length=200)
    request_id: RequestId

    @model_validator(mode="after")
    def _one_target(self) -> Transfer:
        if bool(self.target_agent_id) == bool(self.target_queue):
            raise ValueError("target_agent_id or target_queue is required (one of them)")
        return self


# -- JSON for the browser ---------------------------------------------------------------


def as_json(message: Message) -> dict[str, Any]:
    """A protobuf message as the browser gets it: proto field names, enum names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def event(name: str, data: object) -> bytes:
    """One server-sent event."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def bearer_token(authorization: Annotated[str, Header()] = "") -> str:
    """The token of `Authorization: Bearer <token>`; 401 without one."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Authorization: Bearer <token> is required")
    return token.strip()


Token = Annotated[str, Depends(bearer_token)]


def workspace_of(supervisor_tokens: dict[str, str], presented: str) -> str:
    """The workspace a supervisor token is for ('' when unknown); constant time per token."""
    found = ""
    for token, workspace in supervisor_tokens.items():
        if hmac.compare_digest(presented.encode(), token.encode()) and not found:
            found = workspace
    return found


def create_app(
    settings: DeskSettings,
    gateway: AgentStateGateway | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The desk's web app; `gateway` and `registry` can be given by tests."""
    registry = registry or CollectorRegistry()
    metrics = DeskMetrics(registry)
    agent_state = gateway or AgentStateGateway(
        settings.agent_state_target,
        settings.agent_state_token,
        settings.agent_state_timeout_s,
        root_certificates=read_ca(settings.agent_state_tls_ca_file),
    )
    board = SnapshotBoard()
    index = AssignmentIndex(settings.desk_content_max)
    readers = [
        SnapshotReader(settings, board, "omniroute-desk"),
        AssignmentReader(settings, index, settings.desk_content_lookback_h * 3600),
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for reader in readers:
            reader.start()
        try:
            yield
        finally:
            for reader in readers:
                await reader.stop()
            await agent_state.close()

    app = FastAPI(
        title="Omniroute desk",
        description="The reference agent desk and supervisor wallboard.",
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def call(action: str, work: Awaitable[T]) -> T:
        """Run one agent-state call for an agent; its failure becomes an HTTP error."""
        try:
            result = await work
        except grpc.aio.AioRpcError as exc:
            metrics.actions.labels(action, exc.code().name.lower()).inc()
            raise HTTPException(HTTP_STATUS.get(exc.code(), 502), exc.details() or "") from None
        metrics.actions.labels(action, "ok").inc()
        return result

    def desk_error(exc: grpc.aio.AioRpcError) -> HTTPException:
        """A failed call made with the desk's own token: refusals are the desk's fault."""
        if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            log.error("agent-state refused the desk's token", extra={"code": exc.code().name})
            return HTTPException(502, "the desk's AGENT_STATE_TOKEN is not accepted by agent-state")
        return HTTPException(HTTP_STATUS.get(exc.code(), 502), exc.details() or "")

    def agent_reply(agent: agent_pb2.Agent) -> dict[str, Any]:
        return {"agent": as_json(agent), "now": time.time()}

    # -- pages -------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def desk_page() -> FileResponse:
        return FileResponse(STATIC / "desk.html", headers=_PAGE_HEADERS)

    @app.get("/wallboard", include_in_schema=False)
    async def wallboard_page() -> FileResponse:
        return FileResponse(STATIC / "wallboard.html", headers=_PAGE_HEADERS)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics_endpoint() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # -- signing in ------------------------------------------------------------------

    @app.get("/api/sign-in-options", tags=["agent"])
    async def sign_in_options() -> dict[str, Any]:
        """Agents to pick from on the sign-in page (`DESK_DEMO_AGENTS`; local demos only)."""
        agents = []
        for agent_id, token in settings.desk_demo_agents.items():
            try:
                agent = await agent_state.get_agent(agent_id, token)
            except grpc.aio.AioRpcError:
                continue  # not created yet, or agent-state away: not offered
            agents.append({"id": agent_id, "name": agent.name or agent_id, "token": token})
        return {"agents": agents}

    @app.post("/api/session", tags=["agent"])
    async def sign_in(body: SignIn) -> dict[str, Any]:
        """Check that the token is the agent's (agent-state answers GetAgent with it)."""
        try:
            agent = await call("sign_in", agent_state.get_agent(body.agent_id, body.token))
        except HTTPException as refused:
            log.info(
                "sign-in refused",
                extra={
                    "agent_id": body.agent_id,
                    "status": refused.status_code,
                    "reason": refused.detail,
                },
            )
            raise
        log.info("agent signed in", extra={"agent_id": body.agent_id})
        return agent_reply(agent)

    # -- an agent's desk -----------------------------------------------------------------

    @app.get("/api/agents/{agent_id}", tags=["agent"])
    async def get_agent(agent_id: Id, token: Token) -> dict[str, Any]:
        return agent_reply(await call("get_agent", agent_state.get_agent(agent_id, token)))

    @app.post("/api/agents/{agent_id}/status", tags=["agent"])
    async def set_status(agent_id: Id, body: StatusChange, token: Token) -> dict[str, Any]:
        agent = await call(
            "status",
            agent_state.set_status(
                agent_id, token, PRESENCE_STATUS[body.status], body.reason, body.request_id
            ),
        )
        return agent_reply(agent)

    @app.post("/api/agents/{agent_id}/offers/{inquiry_id}/accept", tags=["agent"])
    async def accept(agent_id: Id, inquiry_id: Id, body: OfferAnswer, token: Token) -> Any:
        request = agent_state_pb2.TaskRequest(
            agent_id=agent_id,
            inquiry_id=inquiry_id,
            reservation_id=body.reservation_id,
            request_id=body.request_id,
        )
        return agent_reply(await call("accept", agent_state.accept(token, request)))

    @app.post("/api/agents/{agent_id}/offers/{inquiry_id}/decline", tags=["agent"])
    async def decline(agent_id: Id, inquiry_id: Id, body: OfferAnswer, token: Token) -> Any:
        request = agent_state_pb2.TaskRequest(
            agent_id=agent_id,
            inquiry_id=inquiry_id,
            reservation_id=body.reservation_id,
            reason=body.reason,
            request_id=body.request_id,
        )
        return agent_reply(await call("decline", agent_state.decline(token, request)))

    @app.post("/api/agents/{agent_id}/tasks/{inquiry_id}/complete", tags=["agent"])
    async def complete(agent_id: Id, inquiry_id: Id, body: Completion, token: Token) -> Any:
        request = agent_state_pb2.CompleteTaskRequest(
            agent_id=agent_id,
            inquiry_id=inquiry_id,
            resolution=OUTCOME_RESOLUTION[body.outcome],
            request_id=body.request_id,
        )
        if body.outcome is Outcome.FOLLOW_UP and body.follow_up_at is not None:
            request.follow_up.due_at.CopyFrom(timestamp(body.follow_up_at.timestamp()))
            request.follow_up.note = body.note
        if body.outcome is Outcome.ESCALATED:
            request.escalation.target_tier = ESCALATION_TIER[body.escalate_to]
            request.escalation.reason = body.escalation_reason
            request.escalation.target_queue = body.target_queue
        return agent_reply(await call("complete", agent_state.complete(token, request)))

    @app.post("/api/agents/{agent_id}/tasks/{inquiry_id}/transfer", tags=["agent"])
    async def transfer(agent_id: Id, inquiry_id: Id, body: Transfer, token: Token) -> Any:
        request = agent_state_pb2.TransferTaskRequest(
            agent_id=agent_id,
            inquiry_id=inquiry_id,
            target_agent_id=body.target_agent_id,
            target_queue=body.target_queue,
            note=body.note,
            reason=body.reason,
            request_id=body.request_id,
        )
        answer = await call("transfer", agent_state.transfer(token, request))
        return agent_reply(answer.agent)

    def with_content(assignment: task_pb2.Assignment, workspace: str) -> None:
        """Fill in the inquiry from the assignments read, where the offer came without it."""
        if assignment.HasField("inquiry"):
            return
        known = index.get(assignment.workspace or workspace, assignment.inquiry_id)
        if known is not None:
            assignment.inquiry.CopyFrom(known.inquiry)
            assignment.queue = assignment.queue or known.queue
            if not assignment.history:
                assignment.history.extend(known.history)

    @app.get("/api/agents/{agent_id}/tasks/{inquiry_id}", tags=["agent"])
    async def task(agent_id: Id, inquiry_id: Id, token: Token) -> dict[str, Any]:
        """The content of an inquiry the agent holds (offered or accepted), for the task view."""
        agent = await call("get_agent", agent_state.get_agent(agent_id, token))
        if inquiry_id not in {r.inquiry_id for r in agent.reservations}:
            raise HTTPException(404, "no such task for this agent")
        assignment = task_pb2.Assignment(inquiry_id=inquiry_id, workspace=agent.workspace)
        with_content(assignment, agent.workspace)
        if not assignment.HasField("inquiry"):
            raise HTTPException(404, "the inquiry's content is not known to the desk")
        return {"assignment": as_json(assignment)}

    @app.get("/api/agents/{agent_id}/colleagues", tags=["agent"])
    async def colleagues(agent_id: Id, token: Token) -> dict[str, Any]:
        """The transfer targets: available agents of the agent's workspace, and the
        workspace's queues that accept transfers (from the router's latest snapshot)."""
        agent = await call("get_agent", agent_state.get_agent(agent_id, token))
        try:
            others = await agent_state.list_agents(
                agent.workspace, agent_pb2.AGENT_STATUS_AVAILABLE
            )
        except grpc.aio.AioRpcError as exc:
            raise desk_error(exc) from None
        snapshot = board.latest.get(agent.workspace)
        queues = [] if snapshot is None else snapshot.queues
        return {
            "agents": [
                {"id": a.id, "name": a.name or a.id, "tier": int(a.tier)}
                for a in others
                if a.id != agent_id
            ],
            "queues": [q.name for q in queues if not q.refuses_transfers],
        }

    @app.get("/api/agents/{agent_id}/events", tags=["agent"])
    async def agent_events(agent_id: Id, token: Token) -> StreamingResponse:
        """The agent's record whenever it changes, and every offer, as server-sent events."""
        first = await call("get_agent", agent_state.get_agent(agent_id, token))

        async def offers(put: Callable[[bytes], None]) -> None:
            call = agent_state.watch_offers(agent_id, token)
            try:
                async for offer in call:
                    with_content(offer.assignment, first.workspace)
                    put(event("offer", {**as_json(offer), "now": time.time()}))
            finally:
                call.cancel()

        async def record(put: Callable[[bytes], None]) -> None:
            last = first
            while True:
                await asyncio.sleep(settings.desk_agent_refresh_s)
                agent = await agent_state.get_agent(agent_id, token)
                if agent != last:
                    put(event("agent", agent_reply(agent)))
                    last = agent

        opening = event("agent", agent_reply(first))
        return _stream(metrics, "agent", settings.desk_keepalive_s, opening, offers, record)

    # -- the wallboard --------------------------------------------------------------------

    @app.get("/api/wallboard/events", tags=["wallboard"])
    async def wallboard_events(token: Token) -> StreamingResponse:
        """One workspace's agents and queues, live, as server-sent events."""
        workspace = workspace_of(settings.desk_supervisor_tokens, token)
        if not workspace:
            metrics.refused.labels("wallboard").inc()
            raise HTTPException(401, "unknown supervisor token")
        # Watch first, then list: no change falls between the two (the page keeps
        # the highest version of each agent).
        watch = agent_state.watch_agents(workspace)
        try:
            agents = await agent_state.list_agents(workspace)
        except grpc.aio.AioRpcError as exc:
            watch.cancel()
            raise desk_error(exc) from None
        opening = event("workspace", {"workspace": workspace, "now": time.time()}) + event(
            "agents", {"agents": [as_json(a) for a in agents], "now": time.time()}
        )

        async def changes(put: Callable[[bytes], None]) -> None:
            try:
                async for change in watch:
                    if change.agent.workspace == workspace:
                        put(event("agent", {**as_json(change), "now": time.time()}))
            finally:
                watch.cancel()

        async def queues(put: Callable[[bytes], None]) -> None:
            after = 0.0
            while True:
                snapshot = await board.next(workspace, after, settings.desk_keepalive_s)
                if snapshot is not None and snapshot.workspace == workspace:
                    after = seconds(snapshot.taken_at)
                    put(event("queues", {**as_json(snapshot), "now": time.time()}))

        return _stream(metrics, "wallboard", settings.desk_keepalive_s, opening, changes, queues)

    return app


# The pages load nothing from elsewhere and run only their own scripts.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Producer = Callable[[Callable[[bytes], None]], Awaitable[None]]


def _stream(
    metrics: DeskMetrics, page: str, keepalive_s: float, opening: bytes, *producers: Producer
) -> StreamingResponse:
    """Server-sent events from several producers until one of them stops or fails."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def run(producer: Producer) -> None:
        try:
            await producer(queue.put_nowait)
            queue.put_nowait(event("error", {"message": "stream ended"}))
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as exc:
            queue.put_nowait(event("error", {"code": exc.code().name, "message": exc.details()}))
        except Exception:
            log.exception("event stream failed", extra={"page": page})
            queue.put_nowait(event("error", {"message": "internal error"}))
        queue.put_nowait(None)

    async def body() -> AsyncIterator[bytes]:
        tasks = [asyncio.create_task(run(p)) for p in producers]
        metrics.streams.labels(page).inc()
        try:
            yield opening
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), keepalive_s)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    return  # the page reconnects
                yield item
        finally:
            metrics.streams.labels(page).dec()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

"""Queue figures for customers and channels: an inquiry's place in line, a workspace's queues.

- `GET /v1/workspaces/{workspace}/inquiries/{inquiry_id}/position`: state
  (waiting, offered, in_progress, or held while its queue is closed), queue,
  position (1 = next) and estimated wait in seconds (null: not known yet),
  and for a held one when its queue opens.
- `GET /v1/workspaces/{workspace}/queues`: per queue open (business hours)
  and when a closed one opens, depth, oldest wait, estimated wait of a
  newcomer, offers open and tasks in progress.

- `POST /v1/workspaces/{workspace}/inquiries/{inquiry_id}/callback`: the
  customer waiting on `channel` (voice or chat) asks to be called back at
  `number` (E.164) instead of waiting: 202 once the request is on the
  broker; 404 when the router lists no such inquiry, 409 when an agent
  already has it (callbacks.py).

All are read from the router's latest queue snapshot of the workspace
(`positions.QueueView`), authenticated like every API-key route. No fresh
snapshot (the router is down, or has never seen the workspace): 503 with
Retry-After, or 404 for a workspace no snapshot ever named.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from omniroute.codec import seconds
from omniroute.v1 import queue_pb2
from omniroute_ingest.callbacks import REALTIME, check_number, check_place
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.rest import ERRORS
from omniroute_ingest.errors import Rejected, invalid
from omniroute_ingest.positions import (
    Place,
    PlaceState,
    describe_callback,
    find_place,
    queue_figures,
    unlisted_waiting,
)
from omniroute_ingest.schemas import Workspace, _Model

InquiryId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@-]+$")]

FIGURE_ERRORS = {
    **ERRORS,
    404: {"description": "No such inquiry waiting or being handled, or no such workspace."},
    503: {"description": "No fresh queue snapshot from the router; retry later."},
}


class PositionOut(BaseModel):
    """An inquiry's place in line."""

    inquiry_id: str
    state: PlaceState
    queue: str
    position: int | None = Field(
        description="1 = offered next; 0 while offered to an agent; null once in progress."
    )
    estimated_wait_s: float | None = Field(
        description="Expected seconds until an agent takes it; null when not known "
        "(the queue had no answers recently)."
    )
    opens_at: float | None = Field(
        None,
        description="Held: when its queue opens (seconds since epoch); null otherwise or when "
        "no opening is in sight.",
    )
    as_of: float = Field(description="When the router took the figures (seconds since epoch).")


class QueueOut(BaseModel):
    """One queue of the workspace."""

    name: str
    open: bool = Field(description="False while the queue's business hours keep it closed.")
    opens_at: float | None = Field(
        None, description="Closed: its next opening (seconds since epoch); null otherwise."
    )
    depth: int = Field(description="Inquiries waiting for an agent.")
    oldest_wait_s: float
    estimated_wait_s: float | None = Field(
        description="Expected wait of an inquiry joining now; null when not known."
    )
    offered: int
    in_progress: int
    callbacks: int = Field(
        0,
        description="Customers to call back, not yet offered (those waiting also count in "
        "depth; those held until the queue opens do not).",
    )


class CallbackIn(_Model):
    """A callback request: the number to call and the channel the customer waits on."""

    number: str = Field(
        max_length=40, description="E.164, e.g. +15550001111 (spaces and dashes are dropped)."
    )
    channel: str = Field(description="The channel the customer waits on: voice or chat.")


class CallbackOut(BaseModel):
    """A callback request on the broker."""

    inquiry_id: str
    state: PlaceState = Field(description="Its state when asked (waiting, held or offered).")
    duplicate: bool = Field(
        description="A retry (same inquiry) this replica already published: nothing published "
        "again; the first request's number stands."
    )
    message: str = Field(description="What to tell the customer.")


class QueuesOut(BaseModel):
    """Every queue of the workspace."""

    workspace: str
    as_of: float
    queues: list[QueueOut]


def snapshot_of(intake: Intake, workspace: str) -> queue_pb2.QueueSnapshot:
    """The workspace's fresh snapshot; 404 for a workspace never seen, 503 when stale."""
    snapshot = intake.view.fresh(workspace)
    if snapshot is not None:
        return snapshot
    if not intake.view.known(workspace):
        raise Rejected(404, "not_found", "workspace: no queue figures for this workspace")
    raise Rejected(
        503,
        "unavailable",
        "no fresh queue figures from the router; retry later",
        headers={"Retry-After": str(intake.settings.ingest_retry_after_s)},
    )


async def request_callback(
    intake: Intake, workspace: str, inquiry_id: str, channel: int, number: str
) -> tuple[Place, bool]:
    """Publish a callback request for an inquiry the router lists and no agent has;
    (its place when asked, whether a retry recognised). `number` checked already."""
    place = find_place(snapshot_of(intake, workspace), inquiry_id)
    check_place(place)
    assert place is not None
    _, duplicate = await intake.callback(workspace, inquiry_id, channel, number)
    return place, duplicate


def router(intake: Intake) -> APIRouter:
    """The queue-figure and callback routes."""
    api = APIRouter(tags=["queues"])

    @api.get(
        "/v1/workspaces/{workspace}/inquiries/{inquiry_id}/position",
        response_model=PositionOut,
        responses=FIGURE_ERRORS,
        summary="An inquiry's place in line and estimated wait",
    )
    async def position(
        workspace: Workspace, inquiry_id: InquiryId, request: Request
    ) -> PositionOut:
        """Where the inquiry is, as the router last published it."""
        intake.authorize(request, "unknown", workspace)
        snapshot = snapshot_of(intake, workspace)
        place = find_place(snapshot, inquiry_id)
        if place is None:
            beyond = (
                f", or further back than the {intake_limit(snapshot)} listed per queue"
                if unlisted_waiting(snapshot)
                else ""
            )
            raise Rejected(
                404,
                "not_found",
                f"inquiry_id: not waiting or being handled (unknown, finished or not yet "
                f"queued{beyond})",
            )
        return PositionOut(
            inquiry_id=place.inquiry_id,
            state=place.state,
            queue=place.queue,
            position=place.position,
            estimated_wait_s=place.estimated_wait_s,
            opens_at=place.opens_at,
            as_of=seconds(snapshot.taken_at),
        )

    @api.get(
        "/v1/workspaces/{workspace}/queues",
        response_model=QueuesOut,
        responses=FIGURE_ERRORS,
        summary="The workspace's queues: depth, oldest wait, estimated wait",
    )
    async def queues(workspace: Workspace, request: Request) -> QueuesOut:
        """Every queue of the workspace, as the router last published it."""
        intake.authorize(request, "unknown", workspace)
        snapshot = snapshot_of(intake, workspace)
        return QueuesOut(
            workspace=workspace,
            as_of=seconds(snapshot.taken_at),
            queues=[QueueOut(**vars(figures)) for figures in queue_figures(snapshot)],
        )

    @api.post(
        "/v1/workspaces/{workspace}/inquiries/{inquiry_id}/callback",
        status_code=202,
        response_model=CallbackOut,
        responses={
            **FIGURE_ERRORS,
            404: {"description": "No such inquiry waiting (or no such workspace)."},
            409: {"description": "An agent is already handling the inquiry."},
        },
        summary="Ask to be called back instead of waiting (voice or chat)",
    )
    async def callback(
        workspace: Workspace,
        inquiry_id: InquiryId,
        body: CallbackIn,
        request: Request,
    ) -> CallbackOut:
        """The inquiry keeps its place and is offered to an agent as a call to `number`."""
        channel = REALTIME.get(body.channel.strip().lower())
        intake.authorize(request, body.channel if channel else "unknown", workspace)
        if channel is None:
            raise invalid("channel", "only voice or chat customers can be called back")
        number = check_number(body.number, "number")
        place, duplicate = await request_callback(intake, workspace, inquiry_id, channel, number)
        return CallbackOut(
            inquiry_id=inquiry_id,
            state=place.state,
            duplicate=duplicate,
            message=describe_callback(place.position),
        )

    return api


def intake_limit(snapshot: queue_pb2.QueueSnapshot) -> int:
    """How many waiting ids the router lists per queue (the longest list seen)."""
    return max((len(q.waiting_ids) for q in snapshot.queues), default=0)

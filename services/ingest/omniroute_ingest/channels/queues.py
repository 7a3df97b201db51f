"""Queue figures for customers and channels: an inquiry's place in line, a workspace's queues.

- `GET /v1/workspaces/{workspace}/inquiries/{inquiry_id}/position`: state
  (waiting, offered, in_progress, or held while its queue is closed), queue,
  position (1 = next) and estimated wait in seconds (null: not known yet),
  and for a held one when its queue opens.
- `GET /v1/workspaces/{workspace}/queues`: per queue open (business hours)
  and when a closed one opens, depth, oldest wait, estimated wait of a
  newcomer, offers open and tasks in progress.

Both are read from the router's latest queue snapshot of the workspace
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
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.rest import ERRORS
from omniroute_ingest.errors import Rejected
from omniroute_ingest.positions import PlaceState, find_place, queue_figures, unlisted_waiting
from omniroute_ingest.schemas import Workspace

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


class QueuesOut(BaseModel):
    """Every queue of the workspace."""

    workspace: str
    as_of: float
    queues: list[QueueOut]


def router(intake: Intake) -> APIRouter:
    """The queue-figure routes."""
    api = APIRouter(tags=["queues"])

    def snapshot_of(workspace: str) -> queue_pb2.QueueSnapshot:
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
        snapshot = snapshot_of(workspace)
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
        snapshot = snapshot_of(workspace)
        return QueuesOut(
            workspace=workspace,
            as_of=seconds(snapshot.taken_at),
            queues=[QueueOut(**vars(figures)) for figures in queue_figures(snapshot)],
        )

    return api


def intake_limit(snapshot: queue_pb2.QueueSnapshot) -> int:
    """How many waiting ids the router lists per queue (the longest list seen)."""
    return max((len(q.waiting_ids) for q in snapshot.queues), default=0)

"""In person: a customer checks in at a desk or in a store (`POST /v1/walk-in/{workspace}`).

The check-in kiosk or greeter posts the location and the reason for the
visit; the inquiry is channel IN_PERSON, its site the location (only agents
of that site are offered it), its thread the visit's ticket.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from omniroute.codec import MAX_SITE_LENGTH, timestamp
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.rest import ERRORS, IdempotencyKey
from omniroute_ingest.ids import new_id, stable_id
from omniroute_ingest.schemas import (
    AcceptedOut,
    CustomerIn,
    KindName,
    Workspace,
    _Model,
    kind_value,
)


class CheckInIn(_Model):
    """A walk-in check-in."""

    location: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_SITE_LENGTH,
            description="Desk or store id/name: the inquiry's site. It is offered only to "
            "agents whose profile has the same site (ignoring case).",
        ),
    ]
    location_type: Literal["desk", "store"] = "desk"
    reason: Annotated[
        str, Field(min_length=1, max_length=1000, description="Reason for the visit.")
    ]
    notes: Annotated[str, Field(max_length=10_000)] = ""
    customer: CustomerIn = CustomerIn()
    language: Annotated[str, Field(max_length=35)] = ""
    ticket: Annotated[str, Field(max_length=100, description="Queue ticket number, if any.")] = ""
    kind: KindName | None = None


def walk_in_inquiry(
    body: CheckInIn, workspace: str, inquiry_id: str, now: float
) -> inquiry_pb2.Inquiry:
    """The canonical inquiry of a check-in."""
    attributes = {"walk_in.location": body.location, "walk_in.location_type": body.location_type}
    if body.ticket:
        attributes["walk_in.ticket"] = body.ticket
    return inquiry_pb2.Inquiry(
        id=inquiry_id,
        workspace=workspace,
        channel=inquiry_pb2.CHANNEL_IN_PERSON,
        customer=inquiry_pb2.Customer(**body.customer.model_dump()),
        kind=kind_value(body.kind) if body.kind else inquiry_pb2.INQUIRY_KIND_UNSPECIFIED,
        subject=body.reason,
        body=body.notes,
        language=body.language or body.customer.language,
        thread_id="visit-" + (body.ticket or inquiry_id),
        received_at=timestamp(now),
        external_id=body.ticket,
        attributes=attributes,
        site=body.location,
    )


def router(intake: Intake) -> APIRouter:
    """The walk-in route."""
    api = APIRouter(tags=["walk-in"])

    @api.post(
        "/v1/walk-in/{workspace}",
        status_code=202,
        response_model=AcceptedOut,
        responses=ERRORS,
        summary="Walk-in check-in",
    )
    async def check_in(
        workspace: Workspace,
        body: CheckInIn,
        request: Request,
        idempotency_key: IdempotencyKey = "",
    ) -> AcceptedOut:
        """Publish the visit as an in-person inquiry (202 once the broker acknowledged)."""
        client = intake.authorize(request, "in_person", workspace)
        intake.check_steering(client, {}, body.customer.segment)
        intake.metrics.received.labels("in_person").inc()
        inquiry_id = (
            stable_id(workspace, "idempotency", idempotency_key) if idempotency_key else new_id()
        )
        accepted = await intake.accept(
            walk_in_inquiry(body, workspace, inquiry_id, intake.clock()), idempotency_key
        )
        return AcceptedOut(id=accepted.id, duplicate=accepted.duplicate)

    return api

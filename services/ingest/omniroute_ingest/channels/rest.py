"""Generic REST: `POST /v1/inquiries` and `POST /v1/inquiries/batch`.

The body is the protobuf JSON mapping of `Inquiry` (see `schemas`). Retries
are safe: with an `Idempotency-Key` header (or a client-supplied id) the same
inquiry is published once. Without an id, the id is derived from the key, so a
retry that reaches another replica still carries the same id and the router
de-duplicates it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header

from omniroute_ingest.channels.common import Intake
from omniroute_ingest.errors import Rejected, invalid
from omniroute_ingest.ids import new_id, stable_id
from omniroute_ingest.schemas import AcceptedOut, BatchIn, BatchOut, ErrorOut, InquiryIn

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Unparsable JSON."},
    413: {"model": ErrorOut, "description": "Body above the size limit."},
    422: {"model": ErrorOut, "description": "A field is missing or invalid; `fields` names it."},
    503: {"model": ErrorOut, "description": "The broker did not acknowledge; see Retry-After."},
}

#: The webhook routes add the signature refusals.
SIGNED_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: {"model": ErrorOut, "description": "Signature header missing."},
    403: {"model": ErrorOut, "description": "Signature does not match."},
}

IdempotencyKey = Annotated[
    str,
    Header(
        max_length=200,
        description="Makes retries safe: the same key within the TTL publishes once.",
    ),
]


def router(intake: Intake) -> APIRouter:
    """The REST routes, bound to `intake`."""
    api = APIRouter(tags=["rest"])

    @api.post(
        "/v1/inquiries",
        status_code=202,
        response_model=AcceptedOut,
        responses=ERRORS,
        summary="Submit one inquiry",
    )
    async def post_inquiry(item: InquiryIn, idempotency_key: IdempotencyKey = "") -> AcceptedOut:
        """Publish one inquiry; 202 only after the broker acknowledged it."""
        intake.metrics.received.labels(item.channel).inc()
        inquiry_id = item.id or (
            stable_id(item.workspace, "idempotency", idempotency_key)
            if idempotency_key
            else new_id()
        )
        accepted = await intake.accept(item.to_proto(inquiry_id, intake.clock()), idempotency_key)
        return AcceptedOut(id=accepted.id, duplicate=accepted.duplicate)

    @api.post(
        "/v1/inquiries/batch",
        status_code=202,
        response_model=BatchOut,
        responses=ERRORS,
        summary="Submit several inquiries",
    )
    async def post_batch(batch: BatchIn, idempotency_key: IdempotencyKey = "") -> BatchOut:
        """Validate every inquiry, then publish them all; 202 once the broker holds every one.

        On 503 some may have been published: retrying the same batch (same ids
        or the same Idempotency-Key) publishes only the missing ones.
        """
        if len(batch.inquiries) > intake.settings.ingest_max_batch:
            raise invalid(
                "inquiries", f"at most {intake.settings.ingest_max_batch} inquiries per batch"
            )
        for item in batch.inquiries:
            intake.metrics.received.labels(item.channel).inc()
        now = intake.clock()
        events = []
        for index, item in enumerate(batch.inquiries):
            key = f"{idempotency_key}/{index}" if idempotency_key else ""
            inquiry_id = item.id or (
                stable_id(item.workspace, "idempotency", key) if key else new_id()
            )
            events.append((item.to_proto(inquiry_id, now), key))
        outcomes = await asyncio.gather(
            *(intake.accept(event, key) for event, key in events), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, Rejected):
                raise outcome
            if isinstance(outcome, BaseException):
                raise outcome
        return BatchOut(
            results=[
                AcceptedOut(id=o.id, duplicate=o.duplicate)
                for o in outcomes
                if not isinstance(o, BaseException)
            ]
        )

    return api

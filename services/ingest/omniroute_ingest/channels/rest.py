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

from fastapi import APIRouter, Header, Request

from omniroute_ingest.channels.common import Intake
from omniroute_ingest.errors import Rejected, invalid
from omniroute_ingest.ids import new_id, stable_id
from omniroute_ingest.schemas import AcceptedOut, BatchIn, BatchOut, ErrorOut, InquiryIn

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Unparsable JSON."},
    401: {"model": ErrorOut, "description": "No API key, or an unknown one."},
    403: {
        "model": ErrorOut,
        "description": "The API key may not write this workspace, or set the named field.",
    },
    413: {"model": ErrorOut, "description": "Body above the size limit."},
    422: {"model": ErrorOut, "description": "A field is missing or invalid; `fields` names it."},
    429: {"model": ErrorOut, "description": "Over the client's rate; see Retry-After."},
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
    async def post_inquiry(
        item: InquiryIn, request: Request, idempotency_key: IdempotencyKey = ""
    ) -> AcceptedOut:
        """Publish one inquiry; 202 only after the broker acknowledged it."""
        client = intake.authorize(request, item.channel, item.workspace)
        intake.check_steering(client, item.attributes, item.customer.segment, item.priority)
        intake.metrics.received.labels(item.channel).inc()
        inquiry_id = item.id or (
            stable_id(item.workspace, "idempotency", idempotency_key)
            if idempotency_key
            else new_id()
        )
        event = item.to_proto(inquiry_id, intake.clock(), intake.received_at_skew(client))
        accepted = await intake.accept(event, idempotency_key)
        return AcceptedOut(id=accepted.id, duplicate=accepted.duplicate)

    @api.post(
        "/v1/inquiries/batch",
        status_code=202,
        response_model=BatchOut,
        responses=ERRORS,
        summary="Submit several inquiries",
    )
    async def post_batch(
        batch: BatchIn, request: Request, idempotency_key: IdempotencyKey = ""
    ) -> BatchOut:
        """Validate every inquiry, then publish them all; 202 once the broker holds every one.

        On 503 some may have been published: retrying the same batch (same ids
        or the same Idempotency-Key) publishes only the missing ones.
        """
        client = intake.authorize(request, "unknown")
        if len(batch.inquiries) > intake.settings.ingest_max_batch:
            raise invalid(
                "inquiries", f"at most {intake.settings.ingest_max_batch} inquiries per batch"
            )
        for index, item in enumerate(batch.inquiries):
            client.check_workspace(item.workspace)
            intake.check_steering(
                client,
                item.attributes,
                item.customer.segment,
                item.priority,
                prefix=f"inquiries[{index}].",
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
            event = item.to_proto(inquiry_id, now, intake.received_at_skew(client))
            events.append((event, key))
        for index, (event, _) in enumerate(events):  # none published when one is too large
            try:
                intake.check_size(event)
            except Rejected as exc:
                raise Rejected(413, "too_large", f"inquiries[{index}]: {exc.message}") from None
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

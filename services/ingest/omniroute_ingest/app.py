"""The HTTP API (FastAPI): channels submit inquiries; nothing is acknowledged before Kafka is.

- 202 `{"id": ...}` once the broker has acknowledged the inquiry;
- 400 for a body that is not JSON, 422 naming each bad field, 413 above the size limit;
- 503 with Retry-After when the broker does not acknowledge in time.
OpenAPI documentation is served at /docs and /openapi.json.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel

from omniroute.kafka import BrokerUnavailable
from omniroute_ingest.inquiry import InquiryIn
from omniroute_ingest.metrics import IngestMetrics
from omniroute_ingest.publisher import InquiryPublisher
from omniroute_ingest.settings import IngestSettings

log = logging.getLogger("omniroute.ingest")


class Accepted(BaseModel):
    """The broker has the inquiry."""

    id: str


class Problem(BaseModel):
    """What was wrong with a request."""

    error: str
    fields: list[dict[str, str]] = []


def create_app(
    settings: IngestSettings, registry: CollectorRegistry, publisher: InquiryPublisher | None = None
) -> FastAPI:
    """The ingest app; `publisher` defaults to one on the configured broker."""
    metrics = IngestMetrics(registry)
    publisher = publisher or InquiryPublisher(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        yield
        await publisher.stop()

    app = FastAPI(
        title="Omniroute ingest",
        version="1",
        description="Channel adapters: every customer contact becomes one canonical inquiry on Kafka.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, limit=settings.ingest_max_body_bytes, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        metrics.rejected.labels("unknown", "invalid").inc()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(
                {"error": "the body is not valid JSON", "fields": []}, status_code=400
            )
        fields = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "problem": e["msg"]}
            for e in errors
        ]
        return JSONResponse({"error": "invalid inquiry", "fields": fields}, status_code=422)

    @app.post(
        "/v1/inquiries",
        status_code=202,
        response_model=Accepted,
        responses={
            400: {"model": Problem},
            413: {"model": Problem},
            422: {"model": Problem},
            503: {"model": Problem},
        },
        summary="Submit an inquiry from any channel",
    )
    async def submit(body: InquiryIn) -> Any:
        metrics.received.labels(body.channel).inc()
        inquiry = body.to_proto()
        try:
            await publisher.publish(inquiry)
        except BrokerUnavailable:
            metrics.rejected.labels(body.channel, "broker_unavailable").inc()
            log.warning("broker unavailable; inquiry refused", extra={"inquiry_id": inquiry.id})
            return JSONResponse(
                {"error": "the broker is unavailable; retry later", "fields": []},
                status_code=503,
                headers={"Retry-After": str(settings.ingest_retry_after_s)},
            )
        metrics.accepted.labels(body.channel).inc()
        log.info(
            "inquiry accepted",
            extra={
                "inquiry_id": inquiry.id,
                "workspace": inquiry.workspace,
                "channel": body.channel,
            },
        )
        return Accepted(id=inquiry.id)

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class BodyLimit:
    """ASGI middleware: refuse bodies above `limit` bytes with 413, before parsing them."""

    def __init__(self, app: Any, limit: int, metrics: IngestMetrics) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        seen = 0

        async def counting() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counting, send)
        except _TooLarge:
            await self._too_large(send)

    async def _too_large(self, send: Any) -> None:
        self.metrics.rejected.labels("unknown", "too_large").inc()
        response = JSONResponse(
            {"error": f"the body is larger than {self.limit} bytes", "fields": []}, status_code=413
        )
        await response({"type": "http"}, _nothing, send)


class _TooLarge(Exception):
    pass


async def _nothing() -> dict[str, Any]:
    return {"type": "http.disconnect"}

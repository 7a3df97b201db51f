"""The FastAPI app: every HTTP channel, /healthz, /metrics and the OpenAPI docs (/docs).

`create_app(settings, publisher, registry)` builds it from settings passed in;
nothing here reads the environment. Every refusal is answered in one JSON
shape (`ErrorOut`) naming the bad fields and is counted per channel and
reason; bodies above the limits are refused with 413 before they are read
whole.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from omniroute_ingest.attachments import AttachmentStore
from omniroute_ingest.channels import (
    chat,
    chat_state,
    documents,
    email,
    queues,
    rest,
    sms,
    social,
    voice,
    walk_in,
)
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.errors import BodyTooLarge, Rejected, from_validation_errors
from omniroute_ingest.metrics import IngestMetrics
from omniroute_ingest.publisher import InquiryPublisher
from omniroute_ingest.settings import IngestSettings
from omniroute_ingest.understanding import Understanding

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Path prefixes whose bodies carry files (documents, raw mail): the attachment limit applies.
_FILE_PATHS = ("/v1/documents", "/v1/email")


def channel_of_path(path: str) -> str:
    """The channel label a request path belongs to ("unknown" for the generic REST API)."""
    for prefix, channel in (
        ("/v1/email", "email"),
        ("/v1/sms", "sms"),
        ("/v1/voice", "voice"),
        ("/v1/chat", "chat"),
        ("/v1/social", "social"),
        ("/v1/walk-in", "in_person"),
        ("/v1/documents", "fax"),
    ):
        if path.startswith(prefix):
            return channel
    return "unknown"


def create_app(
    settings: IngestSettings,
    publisher: InquiryPublisher,
    registry: CollectorRegistry,
    metrics: IngestMetrics | None = None,
    understanding: Understanding | None = None,
) -> FastAPI:
    """The ingest HTTP app; `publisher` must be started (and stopped) by the caller."""
    metrics = metrics or publisher.metrics
    intake = Intake(settings, publisher, metrics, understanding or Understanding())
    app = FastAPI(
        title="Omniroute ingest",
        version="1.0",
        description="Channel adapters: every customer contact becomes one canonical Inquiry on "
        "Kafka. A success answer means the broker acknowledged the inquiry; 503 with "
        "Retry-After means it did not and the client should retry.",
    )
    app.state.intake = intake
    store = AttachmentStore(settings.ingest_attachment_dir)
    app.state.store = store
    app.state.emails = emails = email.EmailIntake(intake, store)
    # Chat conversations live on Kafka; the service starts the store's reader.
    app.state.chats = chats = chat_state.ChatStore(settings, publisher, intake.monotonic)

    @app.exception_handler(Rejected)
    async def rejected(request: Request, exc: Rejected) -> JSONResponse:
        if exc.reason != "broker_unavailable":  # counted where the broker failed
            channel = getattr(request.state, "channel", None) or channel_of_path(request.url.path)
            metrics.reject(channel, exc.reason)
        log.info(
            "request refused",
            extra={"path": request.url.path, "status": exc.status, "reason": exc.reason},
        )
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return await rejected(
            request, Rejected(413, "too_large", f"body: larger than {exc.limit} bytes")
        )

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await rejected(request, from_validation_errors(exc.errors()))

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        """Answers 200 while the process serves requests."""
        return {"status": "ok"}

    @app.get(
        "/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse
    )
    async def prometheus() -> PlainTextResponse:
        """The service's metrics in the Prometheus text format."""
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(rest.router(intake))
    app.include_router(email.router(emails))
    app.include_router(sms.router(intake))
    app.include_router(voice.router(intake))
    app.include_router(chat.router(intake, chats))
    app.include_router(social.router(intake))
    app.include_router(documents.router(intake, store))
    app.include_router(walk_in.router(intake))
    app.include_router(queues.router(intake))
    app.add_middleware(
        BodyLimit,  # type: ignore[arg-type]
        metrics=metrics,
        default_limit=settings.ingest_max_body_bytes,
        file_limit=settings.ingest_max_attachment_bytes,
    )
    return app


class BodyLimit:
    """Refuses request bodies above the limit with 413, without reading them whole.

    Declared Content-Length is checked first; chunked bodies are counted as
    they stream in.
    """

    def __init__(
        self, app: ASGIApp, metrics: IngestMetrics, default_limit: int, file_limit: int
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.default_limit = default_limit
        self.file_limit = file_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.file_limit if path.startswith(_FILE_PATHS) else self.default_limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(path, limit, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException, so FastAPI's body parsing lets it through
                    # to the app's handler, which answers 413.
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(path, limit, send)

    async def _too_large(self, path: str, limit: int, send: Send) -> None:
        self.metrics.reject(channel_of_path(path), "too_large")
        body = Rejected(413, "too_large", f"body: larger than {limit} bytes").body()
        response = JSONResponse(body, status_code=413)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}

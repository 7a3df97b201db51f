"""The running service: the HTTP server, the SMTP listener, the drop folder and the
reader of the router's queue snapshots together.

`IngestService` is what `__main__` runs and what the integration tests start
in-process: start() connects to the broker (creating the topics) before any
listener accepts contacts, stop() closes the listeners first and flushes the
producer last, so nothing accepted is left unacknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from prometheus_client import CollectorRegistry

from omniroute.feeds import SnapshotReader
from omniroute_ingest.app import create_app
from omniroute_ingest.channels.smtp import SmtpListener
from omniroute_ingest.dropfolder import DropFolder
from omniroute_ingest.metrics import IngestMetrics
from omniroute_ingest.publisher import InquiryPublisher
from omniroute_ingest.settings import IngestSettings
from omniroute_ingest.understanding import Understanding

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class IngestService:
    """Every listener of ingest, sharing one publisher."""

    def __init__(self, settings: IngestSettings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = IngestMetrics(self.registry)
        self.publisher = InquiryPublisher(settings, self.metrics)
        self.understanding = Understanding.from_settings(settings)
        self.app = create_app(
            settings, self.publisher, self.registry, self.metrics, self.understanding
        )
        self._server = _Server(
            uvicorn.Config(
                self.app,
                host=settings.ingest_host,
                port=settings.ingest_port,
                log_config=None,  # our JSON logging, configured by __main__
                lifespan="off",
                access_log=False,  # paths can hold ids only, but one line per request is noise
            )
        )
        self._serve_task: asyncio.Task[None] | None = None
        # The router's queue snapshots, for answers about place in line.
        self.snapshots = SnapshotReader(
            settings, self.app.state.intake.view.board, "omniroute-ingest"
        )
        self.smtp = SmtpListener(self.app.state.emails, settings)
        self.drop_folder = (
            DropFolder(self.app.state.intake, self.app.state.store)
            if settings.ingest_drop_dir
            else None
        )

    @property
    def http_port(self) -> int:
        """The bound HTTP port (useful when configured as 0)."""
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.settings.ingest_port

    async def start(self) -> None:
        """Connect to the broker, then open the listeners."""
        await asyncio.to_thread(self.understanding.warm_up)
        await self.publisher.start()
        self.snapshots.start()
        self.app.state.chats.reader.start()
        self._serve_task = asyncio.create_task(self._server.serve(), name="http")
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()  # raises why the server could not start
                raise RuntimeError("HTTP server stopped during startup")
            await asyncio.sleep(0.02)
        if self.settings.ingest_smtp_enabled:
            await self.smtp.start()
        if self.drop_folder is not None:
            await self.drop_folder.start()
        log.info("ingest listening", extra={"http_port": self.http_port})

    async def stop(self) -> None:
        """Close the listeners, then flush and disconnect the producer."""
        if self.drop_folder is not None:
            await self.drop_folder.stop()
        await self.smtp.stop()
        if self._serve_task is not None:
            self._server.should_exit = True
            await self._serve_task
            self._serve_task = None
        await self.snapshots.stop()
        await self.app.state.chats.reader.stop()
        await self.publisher.stop()
        log.info("ingest stopped")

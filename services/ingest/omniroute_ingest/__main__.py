"""Entry point: `python -m omniroute_ingest` serves the HTTP API."""

from __future__ import annotations

import uvicorn
from prometheus_client import CollectorRegistry

from omniroute import logs
from omniroute_ingest.app import create_app
from omniroute_ingest.settings import IngestSettings


def main() -> None:
    """Read the settings and serve until SIGTERM/SIGINT (uvicorn shuts down gracefully)."""
    settings = IngestSettings.from_env()
    logs.configure("ingest", settings.log_level)
    app = create_app(settings, CollectorRegistry())
    uvicorn.run(
        app,
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_config=None,  # keep our JSON lines
        access_log=False,  # access lines would carry client addresses; metrics count requests
    )


if __name__ == "__main__":
    main()

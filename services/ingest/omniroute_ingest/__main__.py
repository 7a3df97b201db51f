"""`python -m omniroute_ingest`: read the settings once, run the service, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal

from omniroute import logs
from omniroute_ingest.service import IngestService
from omniroute_ingest.settings import IngestSettings


async def run(settings: IngestSettings) -> None:
    """Run ingest until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = IngestService(settings)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()


def main() -> None:
    """Entry point of the `omniroute-ingest` command."""
    settings = IngestSettings.from_env()
    logs.configure("ingest", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()

"""Entry point: `python -m omniroute_agent_state` serves the AgentState gRPC API."""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import CollectorRegistry

from omniroute import logs
from omniroute.metrics import serve
from omniroute_agent_state.app import create_server
from omniroute_agent_state.settings import AgentStateSettings

log = logging.getLogger("omniroute.agent_state")


async def run(settings: AgentStateSettings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    registry = CollectorRegistry()
    stop_metrics = serve(
        settings.agent_state_metrics_port, registry, settings.agent_state_metrics_host
    )
    service = await create_server(settings, registry)
    log.info(
        "agent-state serving",
        extra={"port": service.port, "metrics_port": settings.agent_state_metrics_port},
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("agent-state stopping")
    await service.stop(settings.shutdown_grace_s)
    stop_metrics()


def main() -> None:
    """Read the settings and run."""
    settings = AgentStateSettings.from_env()
    logs.configure("agent-state", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()

"""Live configuration: re-read the routing YAML on SIGHUP.

A valid file replaces the configuration of every workspace at once (the
adapter hands each workspace's core its new rules inside that workspace's
next event); an invalid one is refused with the same file:line errors as at
start, and the configuration in force stays. Either way a log line and
`omniroute_router_config_reloads_total{result}` say what happened.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from enum import StrEnum

from prometheus_client import Counter

from omniroute_router import config as routing_config
from omniroute_router.config import RoutingConfig

log = logging.getLogger("omniroute.router")


class ReloadResult(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"


class ConfigReloader:
    """Reads `path` again when asked and hands a valid configuration to `apply`."""

    def __init__(self, path: str, apply: Callable[[RoutingConfig], None], reloads: Counter) -> None:
        self.path = path
        self.apply = apply
        self.reloads = reloads

    def reload(self) -> ReloadResult:
        """Re-read and validate the file; apply it, or refuse it and keep the old one."""
        if not self.path:
            log.error(
                "routing configuration refused",
                extra={"reason": "ROUTING_CONFIG is not set: there is no file to reload"},
            )
            return self._count(ReloadResult.REFUSED)
        try:
            loaded = routing_config.load(self.path)
        except routing_config.ConfigError as exc:
            # The message names the file, the line and the field; it never
            # holds personal data (the file is the operator's).
            log.error(
                "routing configuration refused; the previous one stays in force",
                extra={"path": self.path, "reason": str(exc)},
            )
            return self._count(ReloadResult.REFUSED)
        self.apply(loaded)
        log.info(
            "routing configuration reloaded",
            extra={"path": self.path, "workspaces": sorted(loaded.workspaces)},
        )
        return self._count(ReloadResult.APPLIED)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reload on SIGHUP, in `loop` (between events: the core is never mid-change)."""
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def _count(self, result: ReloadResult) -> ReloadResult:
        self.reloads.labels(result.value).inc()
        return result

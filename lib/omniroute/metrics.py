"""Prometheus helpers shared by the services.

Names follow `omniroute_<subsystem>_<name>_<unit>`; each service defines its
metrics in its own `metrics` module on a registry passed in, so tests can use
an isolated `CollectorRegistry()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, start_http_server

# Latency buckets from 1 ms to 30 s: routing decisions are milliseconds,
# broker round trips tens of milliseconds, waits in queue seconds.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


OTHER_WORKSPACE = "other"


class WorkspaceLabel:
    """The `workspace` label value of a workspace: its name when configured, else "other".

    Workspace names come from clients (ingest, agent desktops, the topics), so
    labelling every one would let anyone create series without bound.
    """

    def __init__(self, configured: Iterable[str]) -> None:
        names = frozenset(configured)
        self._every = "*" in names
        self._names = names

    def __call__(self, workspace: str) -> str:
        return workspace if self._every or workspace in self._names else OTHER_WORKSPACE


def serve(port: int, registry: CollectorRegistry, host: str = "0.0.0.0") -> Callable[[], None]:
    """Expose `registry` on http://host:port/metrics from a background thread.

    Returns a function that stops the server.
    """
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop

"""The broker's floor: a Faust agent that consumes inquiries and produces one event each.

Same broker, same Faust settings as the router, no routing work: what the
router achieves is compared with this.

    python -m benchmarks.floor   (FLOOR_IN, FLOOR_OUT, KAFKA_BOOTSTRAP from the environment)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import faust

from omniroute.kafka import ensure_topics
from omniroute.settings import CommonSettings
from omniroute_router.transport import app_class


def main() -> None:
    """Run the forwarding worker until stopped."""
    settings = CommonSettings.from_env()
    source, sink = os.environ["FLOOR_IN"], os.environ["FLOOR_OUT"]
    asyncio.run(ensure_topics(settings, [source, sink]))
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = app_class(settings)(
        os.environ.get("FLOOR_APP_ID", "bench-floor"),
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.kafka_partitions,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_s,
        broker_rebalance_timeout=settings.kafka_session_timeout_s,
        consumer_auto_offset_reset="earliest",
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "value_serializer": "raw"}
    inbound = app.topic(source, **raw)
    outbound = app.topic(sink, **raw)

    @app.agent(inbound)
    async def forward(stream: Any) -> None:
        async for event in stream.events():
            await outbound.send(key=event.key, value=event.value)

    faust.Worker(
        app, loglevel="WARNING", override_logging=False, quiet=True
    ).execute_from_commandline()


if __name__ == "__main__":
    main()

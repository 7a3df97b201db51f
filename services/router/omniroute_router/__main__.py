"""Entry point: `python -m omniroute_router` starts one router worker.

Start several with the same ROUTER_APP_ID to share the partitions; when one
stops or dies its partitions and their state move to the others.
"""

from __future__ import annotations

import asyncio
import logging

import faust
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from omniroute import logs
from omniroute.grpc_client import read_ca
from omniroute.kafka import compacted, ensure_topics
from omniroute.metrics import serve
from omniroute_router import config as routing_config
from omniroute_router.app import Router, create_app, input_topics, ticks_topic_name
from omniroute_router.metrics import RouterMetrics
from omniroute_router.reservations import AgentStateClient
from omniroute_router.settings import RouterSettings

log = logging.getLogger("omniroute.router")


STATE_TABLES = ("inquiries", "agents", "threads", "workspaces", "contents", "answered")


def changelog_topics(settings: RouterSettings) -> list[str]:
    """The Faust changelog topics of the router's state tables."""
    return [f"{settings.router_app_id}-{table}-changelog" for table in STATE_TABLES]


async def prepare_topics(settings: RouterSettings) -> None:
    """Create the topics, and refuse to start when their partition counts differ.

    The router relies on one workspace's events sitting on the same partition
    number of every input topic; topics of different sizes break that.
    """
    topics = [
        *input_topics(settings),
        ticks_topic_name(settings),
        settings.topic_assignments,
        settings.topic_dead_letters,
        settings.topic_queue_snapshots,
    ]
    await ensure_topics(settings, topics)
    # The tables' changelogs too, before Faust's consumer subscribes to them.
    # Left to Faust, they are created while the consumer starts; on a broker
    # that does not auto-create topics (Apache Kafka as deployed) the consumer
    # can cache "0 partitions" for one, and every event then crashes the
    # agent with PartitionsMismatch until its metadata is refreshed.
    changelogs = changelog_topics(settings)
    await ensure_topics(settings, changelogs, {t: compacted(settings) for t in changelogs})
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(
            [*input_topics(settings), ticks_topic_name(settings)]
        )
    finally:
        await admin.close()
    sizes = {t["topic"]: len(t["partitions"]) for t in described}
    if len(set(sizes.values())) != 1:
        raise SystemExit(
            f"input topics must have the same number of partitions, found {sizes}; "
            "recreate them with KAFKA_PARTITIONS partitions"
        )


def main() -> None:
    """Read the settings, prepare the topics and run a Faust worker until stopped."""
    settings = RouterSettings.from_env()
    logs.configure("router", settings.log_level)
    config = (
        routing_config.load(settings.routing_config)
        if settings.routing_config
        else routing_config.RoutingConfig()
    )
    asyncio.run(prepare_topics(settings))
    asyncio.set_event_loop(
        asyncio.new_event_loop()
    )  # the worker's, after asyncio.run closed its own
    registry = CollectorRegistry()
    serve(settings.router_metrics_port, registry, settings.router_metrics_host)
    agent_state = AgentStateClient(
        settings.agent_state_target,
        settings.agent_state_token,
        settings.agent_state_timeout_s,
        root_certificates=read_ca(settings.agent_state_tls_ca_file),
    )
    router = Router(settings, config, RouterMetrics(registry), agent_state)
    app = create_app(settings, router)
    log.info(
        "router starting",
        extra={"app_id": settings.router_app_id, "metrics_port": settings.router_metrics_port},
    )
    # Faust's own services log every start and stop at INFO under the module
    # their classes live in; keep them to warnings.
    logging.getLogger("omniroute_router.transport").setLevel(logging.WARNING)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()

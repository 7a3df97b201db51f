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
from omniroute_router.reload import ConfigReloader
from omniroute_router.reservations import AgentStateClient
from omniroute_router.settings import RouterSettings

log = logging.getLogger("omniroute.router")


STATE_TABLES = ("inquiries", "agents", "threads", "workspaces", "sweeps", "contents", "answered")


def changelog_topics(settings: RouterSettings) -> list[str]:
    """The Faust changelog topics of the router's state tables."""
    return [f"{settings.router_app_id}-{table}-changelog" for table in STATE_TABLES]


def partition_mismatches(sizes: dict[str, int], expected: int) -> list[str]:
    """One line per topic whose partition count is not `expected` (KAFKA_PARTITIONS)."""
    return [
        f"topic {topic!r} has {count} partitions, KAFKA_PARTITIONS is {expected}"
        for topic, count in sorted(sizes.items())
        if count != expected
    ]


async def prepare_topics(settings: RouterSettings) -> None:
    """Create the topics, and refuse to start when a partition count is not KAFKA_PARTITIONS.

    A workspace lives on partition hash(workspace) mod N of every input topic,
    and its routing state on the same partition of the changelog topics. A
    topic of another size sends a workspace's events to one worker and its
    state to another (two owners), so the router refuses to start instead.
    Moving state to a new partition count is not supported: recreate the
    topics (or start a new ROUTER_APP_ID) with the new count.
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
        existing = set(await admin.list_topics())
        prefix = f"{settings.router_app_id}-"
        # Every changelog of the app id, also of tables a newer version added.
        state = {t for t in existing if t.startswith(prefix) and t.endswith("-changelog")}
        checked = [*input_topics(settings), ticks_topic_name(settings), *sorted(state)]
        described = await admin.describe_topics(checked)
    finally:
        await admin.close()
    sizes = {t["topic"]: len(t["partitions"]) for t in described}
    mismatches = partition_mismatches(sizes, settings.kafka_partitions)
    if mismatches:
        raise SystemExit(
            "router refuses to start: "
            + "; ".join(mismatches)
            + ". Every input and state topic must have KAFKA_PARTITIONS partitions, or a "
            "workspace's events and its routing state land on different workers. "
            "Recreate the topics with the same count (or set KAFKA_PARTITIONS to match)."
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
    metrics = RouterMetrics(registry)
    router = Router(settings, config, metrics, agent_state)
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
    # SIGHUP re-reads ROUTING_CONFIG, in the worker's loop, between events.
    reloader = ConfigReloader(settings.routing_config, router.reload, metrics.config_reloads)
    reloader.install(worker.loop)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()

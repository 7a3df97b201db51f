"""Apache Kafka from its Maven Central jars, one KRaft process on loopback, for dev and tests.

The Apache Kafka test tier, `make run BROKER=kafka` and `make bench
BROKER=kafka` use it; no service imports it. The jars come from
`make kafka-broker` (tests/kafka/pom.xml, the version of the compose file's
image). `KafkaBroker` has the same interface as the embedded Tansu broker
(`omniroute.embedded.Broker`): it formats its storage in a folder of its own,
starts `java -cp 'jars/*' kafka.Kafka server.properties` as one combined
broker and controller on free loopback ports, waits until a metadata request
names it, and stops it by pid. Unlike Tansu it keeps its data on disk, so
`start()` after `stop()` brings the same topics back.

The broker settings are those of deploy/docker-compose.yml (a test checks
them against it); `TEST_PROPERTIES` lists the few that differ, all for a
faster start on a single test machine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from omniroute.embedded import stop_process
from omniroute.ports import free_port
from omniroute.settings import BrokerKind

# The compose file's fixed KRaft cluster id (KAFKA_CLUSTER_ID's default).
CLUSTER_ID = "U8fwYDxOQged5ssMVE-vBA"

# The compose file's broker settings (its KAFKA_* environment, as the image
# turns it into server.properties), minus addresses and paths, which are ours.
COMPOSE_PROPERTIES: dict[str, str] = {
    "node.id": "1",
    "process.roles": "broker,controller",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "auto.create.topics.enable": "false",
    "num.partitions": "8",
    "default.replication.factor": "1",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
}

# Differences from the compose file's broker, each for a faster test broker.
TEST_PROPERTIES: dict[str, str] = {
    # Internal topics are created on first use (the first group join, the
    # first transaction); 50 partitions each take seconds on 2 cores.
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.num.partitions": "4",
    # Tests may use sessions shorter than the services' 6 s.
    "group.min.session.timeout.ms": "1000",
    # The cleaner looks for work every second (default 15 s), so a test sees
    # a compacted topic compact; small segments give it closed ones to clean.
    "log.cleaner.backoff.ms": "1000",
    # Few threads: the whole test machine has two cores.
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.threads": "1",
}

# Small heap, serial GC and the JVM's class-data sharing: a broker that starts
# in seconds and leaves the cores to the services under test.
JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-Xshare:auto",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

_LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=INFO
"""


class KafkaBroker:
    """One Apache Kafka node (broker and KRaft controller) on 127.0.0.1, by pid."""

    kind = BrokerKind.KAFKA

    def __init__(
        self,
        jars: Path,
        port: int | None = None,
        log_path: Path | None = None,
        data_dir: Path | None = None,
        java: str | None = None,
        properties: Mapping[str, str] | None = None,
        start_timeout_s: float = 90.0,
    ) -> None:
        self.jars = jars
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.controller_port = free_port()
        self._owns_dir = data_dir is None
        self.dir = data_dir or Path(tempfile.mkdtemp(prefix="kafka-"))
        self.log_path = log_path or self.dir / "kafka.log"
        self.java = java or shutil.which("java") or "java"
        self.extra_properties = dict(properties or {})
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The address clients bootstrap from."""
        return f"{self.host}:{self.port}"

    def server_properties(self) -> dict[str, str]:
        """The broker's server.properties: the compose file's settings on our loopback ports."""
        return {
            **COMPOSE_PROPERTIES,
            **TEST_PROPERTIES,
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "log.dirs": str(self.dir / "data"),
            **self.extra_properties,
        }

    def start(self) -> KafkaBroker:
        """Format the storage (first start only), start the node, wait until it serves."""
        config = self.dir / "server.properties"
        config.write_text(
            "".join(f"{key}={value}\n" for key, value in self.server_properties().items())
        )
        (self.dir / "log4j.properties").write_text(_LOG4J)
        if not (self.dir / "data" / "meta.properties").exists():
            self._format(config)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*self._java(), "kafka.Kafka", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal goes to us, not straight to it
            )
        try:
            self._wait_until_serving()
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(
                f"Apache Kafka did not start ({exc}); its log:\n{self.log()}"
            ) from None
        return self

    def stop(self) -> None:
        """Stop the node by its pid (SIGTERM, then SIGKILL after 15 s); keeps its data."""
        stop_process(self.process, 15)

    def close(self) -> None:
        """Stop, and delete the storage folder if this broker made it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        """The end of what the broker wrote (for failure reports)."""
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    def _java(self) -> list[str]:
        return [
            self.java,
            *JVM_OPTIONS,
            f"-Dlog4j.configuration=file:{self.dir / 'log4j.properties'}",
            "-cp",
            str(self.jars / "*"),
        ]

    def _format(self, config: Path) -> None:
        """Write the KRaft metadata the node needs before its first start."""
        # C1 only: the formatter runs for a moment, compiling more costs more.
        command = [
            *self._java(),
            "-XX:TieredStopAtLevel=1",
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            CLUSTER_ID,
            "--config",
            str(config),
        ]
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
        with open(self.log_path, "ab") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"formatting Kafka's storage failed; its output:\n{self.log()}")

    def _wait_until_serving(self) -> None:
        """Until a metadata request answers with this broker in it."""
        deadline = time.monotonic() + self.start_timeout_s
        # aiokafka is async; the caller may be inside an event loop (a fixture),
        # so each probe runs on a loop of its own in a worker thread.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"it exited with {self.process.returncode}")
                if (
                    _accepts(self.host, self.port)
                    and pool.submit(asyncio.run, _serves(self.bootstrap)).result()
                ):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not serving after {self.start_timeout_s:.0f} s")
                time.sleep(0.2)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port (quietly, unlike a client)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def _serves(bootstrap: str) -> bool:
    """Whether the broker at `bootstrap` answers a metadata request naming a broker."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError):
        return False
    finally:
        await admin.close()

"""The local broker for `make run`, the tests and the benchmark: Tansu or Apache Kafka.

Tansu (the embedded default) comes from PyPI and needs nothing else. Apache
Kafka is the production broker, at the version of the compose file's image;
it needs Java and the jars `make kafka-broker` fetches with Maven into
`.cache/kafka/<version>/`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from devstack.processes import ROOT
from omniroute.embedded import Broker, EmbeddedBroker
from omniroute.embedded_kafka import KafkaBroker
from omniroute.settings import BrokerKind

__all__ = ["BrokerKind", "kafka_jars", "kafka_missing", "kafka_version", "new_broker"]

COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
KAFKA_IMAGE = "apache/kafka"


def compose_kafka_service() -> dict[str, object]:
    """The compose file's `kafka` service (image, environment, ...)."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    service: dict[str, object] = compose["services"]["kafka"]
    return service


def kafka_version() -> str:
    """The Apache Kafka version operators run: the compose file's image tag."""
    image = str(compose_kafka_service()["image"])
    name, _, tag = image.partition(":")
    if name != KAFKA_IMAGE or not tag:
        raise ValueError(f"{COMPOSE_FILE}: kafka image {image!r} is not {KAFKA_IMAGE}:<version>")
    return tag


def kafka_jars() -> Path:
    """Where `make kafka-broker` puts the jars (KAFKA_JARS overrides it)."""
    return Path(os.environ.get("KAFKA_JARS") or ROOT / ".cache" / "kafka" / kafka_version())


def kafka_missing() -> str | None:
    """Why Apache Kafka cannot run here, or None when it can."""
    if shutil.which("java") is None:
        return "no `java` on PATH (install Java 17+, e.g. apt-get install openjdk-17-jre-headless)"
    jars = kafka_jars()
    if not (jars / f"kafka_2.13-{kafka_version()}.jar").is_file():
        return f"Apache Kafka's jars are not in {jars}: run `make kafka-broker` (needs Maven)"
    return None


def new_broker(kind: BrokerKind, port: int | None = None, log_path: Path | None = None) -> Broker:
    """A broker of `kind`, not started yet, on `port` (default: a free one)."""
    match kind:
        case BrokerKind.TANSU:
            return EmbeddedBroker(port=port, log_path=log_path)
        case BrokerKind.KAFKA:
            if (reason := kafka_missing()) is not None:
                raise RuntimeError(f"Apache Kafka cannot run: {reason}")
            return KafkaBroker(kafka_jars(), port=port, log_path=log_path)

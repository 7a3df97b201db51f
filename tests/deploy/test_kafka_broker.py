"""The Apache Kafka the tests run is the one operators run: same version, same settings.

The test tier's broker (omniroute.embedded_kafka) is resolved by
tests/kafka/pom.xml and configured in code; here both are checked against
the compose file's Kafka service, so that changing one without the other fails.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from devstack.brokers import compose_kafka_service, kafka_jars, kafka_version
from omniroute.embedded_kafka import CLUSTER_ID, COMPOSE_PROPERTIES, TEST_PROPERTIES, KafkaBroker
from tests.deploy.test_compose import resolve

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "tests" / "kafka" / "pom.xml"
# Compose settings the test broker sets to its own loopback ports and folders.
ADDRESSES = {
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "controller.quorum.voters",
    "log.dirs",
}


def compose_properties() -> dict[str, str]:
    """The compose file's KAFKA_* environment as server.properties (as the image maps it)."""
    env = compose_kafka_service()["environment"]
    assert isinstance(env, dict)
    return {
        name.removeprefix("KAFKA_").lower().replace("_", "."): resolve(value)
        for name, value in env.items()
        if name.startswith("KAFKA_")
    }


def test_the_pom_resolves_the_compose_images_version() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pinned = ET.parse(POM).getroot().find("m:properties/m:kafka.version", ns)
    assert pinned is not None
    assert pinned.text == kafka_version() == "3.9.1"
    assert kafka_jars().name == kafka_version()


def test_make_fetches_the_compose_images_version() -> None:
    shown = subprocess.run(
        ["make", "-s", "-n", "kafka-broker", "KAFKA_JARS=/nonexistent"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"-Dkafka.version={kafka_version()} " in shown


def test_the_test_broker_has_the_compose_brokers_settings() -> None:
    compose = compose_properties()
    ours = KafkaBroker(Path("jars"), data_dir=Path("kafka")).server_properties()
    assert {k: v for k, v in compose.items() if k not in ADDRESSES} == COMPOSE_PROPERTIES
    for key, value in COMPOSE_PROPERTIES.items():
        assert ours[key] == value, key
    # What differs is an addition for speed, never a change of a compose setting.
    assert not TEST_PROPERTIES.keys() & compose.keys()
    assert resolve(compose_kafka_service()["environment"]["CLUSTER_ID"]) == CLUSTER_ID  # type: ignore[index]


def test_the_test_broker_listens_on_loopback_only() -> None:
    ours = KafkaBroker(Path("jars"), port=19092, data_dir=Path("kafka")).server_properties()
    assert ours["listeners"].startswith("PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:")
    assert ours["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert ours["log.dirs"] == "kafka/data"

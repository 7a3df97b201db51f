"""deploy/docker-compose.yml is valid Compose and matches what the services really read.

No Docker engine runs here: the file is validated against the Compose
Specification's JSON schema (vendored in tests/deploy/compose-spec). Then
every Omniroute service in it is
cross-checked against the code: its Dockerfile, its command, its environment
variables (fields of its settings class), its ports, and the topics kafka-init
creates.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from omniroute.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
SCHEMA = Path(__file__).parent / "compose-spec" / "compose-spec.json"
# Compose service -> the Python package it runs.
SERVICES = {
    "agent-state": "omniroute_agent_state",
    "router": "omniroute_router",
    "ingest": "omniroute_ingest",
    "desk": "omniroute_desk",
}


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    return dict(compose()["services"][name])


def resolve(value: object) -> str:
    """A compose value with `${VAR:-default}` replaced by its default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def settings_fields(package: str) -> dict[str, Any]:
    """Environment variable -> default of the service's settings class."""
    module = importlib.import_module(f"{package}.settings")
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, CommonSettings) and cls.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{package}.settings should define one settings class: {classes}"
    return {name.upper(): f.default for name, f in classes[0].model_fields.items()}


def container_ports(svc: dict[str, Any]) -> set[int]:
    ports = {int(resolve(p).rsplit(":", 1)[-1]) for p in svc.get("ports", [])}
    return ports | {int(p) for p in svc.get("expose", [])}


# -- the file is valid Compose -------------------------------------------------


def test_the_compose_file_validates_against_the_compose_specification_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_third_party_images_are_pinned_and_omniroute_images_are_built_from_the_repo() -> None:
    for name, svc in compose()["services"].items():
        if name in SERVICES:
            build = svc["build"]
            assert (DEPLOY / build["context"]).resolve() == ROOT, name
            assert build["dockerfile"] == f"services/{name}/Dockerfile"
            assert (ROOT / build["dockerfile"]).is_file(), f"{build['dockerfile']} is missing"
        else:
            image = svc["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: pin the image tag"
            assert not image.endswith(":latest"), name


def test_every_long_running_service_restarts_and_reports_health() -> None:
    for name, svc in compose()["services"].items():
        if name == "kafka-init":
            assert svc["restart"] == "no"
            continue
        assert svc["restart"] == "unless-stopped", name
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_start_order_follows_health_checks() -> None:
    services = compose()["services"]
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in SERVICES:
        condition = services[name]["depends_on"]["kafka-init"]["condition"]
        assert condition == "service_completed_successfully", name
    assert services["router"]["depends_on"]["agent-state"]["condition"] == "service_healthy"


# -- it matches what the services read ------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_the_command_runs_the_service_package_as_its_dockerfile_does(name: str) -> None:
    package = SERVICES[name]
    svc = service(name)
    assert svc["command"] == ["python", "-m", package]
    assert importlib.util.find_spec(f"{package}.__main__") is not None, package
    dockerfile = (ROOT / "services" / name / "Dockerfile").read_text()
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", dockerfile, re.M)
    assert cmd is not None, f"services/{name}/Dockerfile has no exec-form CMD"
    assert json.loads(cmd.group(1)) == ["python", "-m", package]
    assert re.search(r"^USER\s+(?!root\b)\S+", dockerfile, re.M), f"{name} must not run as root"


@pytest.mark.parametrize("name", SERVICES)
def test_every_environment_variable_is_a_setting_of_the_service(name: str) -> None:
    fields = settings_fields(SERVICES[name])
    unknown = set(service(name)["environment"]) - set(fields)
    assert not unknown, f"{name} does not read {sorted(unknown)}; its settings are {sorted(fields)}"


@pytest.mark.parametrize("name", SERVICES)
def test_the_service_listens_on_all_interfaces_on_the_ports_compose_publishes(name: str) -> None:
    svc = service(name)
    env = {k: resolve(v) for k, v in svc["environment"].items()}
    fields = settings_fields(SERVICES[name])
    ports = {k: int(env.get(k, fields[k])) for k in fields if k.endswith("_PORT")}
    # AGENT_STATE_PORT in the router's settings would be agent-state's, not its own.
    own = {k: v for k, v in ports.items() if k in env}
    assert own, f"{name}: set its ports explicitly"
    assert set(own.values()) == container_ports(svc), (own, container_ports(svc))
    for key, value in env.items():
        if key.endswith("_HOST"):
            assert value == "0.0.0.0", f"{name}: {key} must be 0.0.0.0 in a container"
    health = " ".join(svc["healthcheck"]["test"])
    # A service's own probe module reads the same settings, so it follows the port.
    own_probe = f"python -m {SERVICES[name]}.healthcheck" in health
    assert own_probe or any(str(p) in health for p in own.values()), (
        f"{name}: health check on another port"
    )


def test_the_router_reaches_agent_state_where_it_listens() -> None:
    target = service("router")["environment"]["AGENT_STATE_TARGET"]
    host, port = target.rsplit(":", 1)
    assert host == "agent-state"
    assert int(port) == int(resolve(service("agent-state")["environment"]["AGENT_STATE_PORT"]))


def test_prometheus_scrapes_every_service_on_its_metrics_port() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    services = compose()["services"]
    scraped: dict[str, set[int]] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                scraped.setdefault(host, set()).add(int(port))
        for dns in job.get("dns_sd_configs", []):
            for host in dns["names"]:
                scraped.setdefault(host, set()).add(int(dns["port"]))
    for name in SERVICES:
        assert name in scraped, f"prometheus does not scrape {name}"
        assert scraped[name] <= container_ports(services[name]), name
    router_env = services["router"]["environment"]
    assert scraped["router"] == {int(router_env["ROUTER_METRICS_PORT"])}


def test_kafka_init_creates_every_topic_the_services_use(tmp_path: Path) -> None:
    """Run the real script against a stand-in kafka-topics.sh that records its calls."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "kafka-topics.sh"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$*" in *--describe*) printf "Topic: t\\tPartitionCount: 8\\tReplicationFactor: 1\\n";; esac\n'
    )
    fake.chmod(0o755)
    init = service("kafka-init")
    env = {k: resolve(v) for k, v in init["environment"].items()}
    result = subprocess.run(
        ["sh", str(DEPLOY / "kafka" / "create-topics.sh")],
        env={"PATH": os.environ["PATH"], "KAFKA_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    created: dict[str, str] = {}
    for line in calls.read_text().splitlines():
        if "--create" in line:
            topic = re.search(r"--topic (\S+)", line)
            policy = re.search(r"cleanup\.policy=(\w+)", line)
            assert topic and policy and "--partitions 8 " in line, line
            created[topic.group(1)] = policy.group(1)
            if policy.group(1) == "compact":
                # Compacted topics roll and compact within the services' setting.
                assert f"max.compaction.lag.ms={env['KAFKA_MAX_COMPACTION_LAG_MS']}" in line, line
    wanted = {
        resolve(value)
        for name in SERVICES
        for key, value in service(name)["environment"].items()
        if key.startswith("TOPIC_")
    }
    assert wanted <= set(created), f"not created: {sorted(wanted - set(created))}"
    app_id = env["ROUTER_APP_ID"]
    assert created[f"{app_id}-ticks"] == "delete"
    for table in ("inquiries", "agents", "threads", "workspaces", "contents", "answered"):
        assert created[f"{app_id}-{table}-changelog"] == "compact"
    assert created[env["TOPIC_AGENT_SNAPSHOTS"]] == "compact"
    assert created["chat-conversations"] == "compact"  # ingest's conversations
    assert created[env["TOPIC_INQUIRIES"]] == "delete"
    assert created[env["TOPIC_QUEUE_SNAPSHOTS"]] == "delete"


def test_kafka_init_refuses_topics_with_another_partition_count(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "kafka-topics.sh"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\ncase "$*" in *--describe*) printf "Topic: t\\tPartitionCount: 4\\n";; esac\n'
    )
    fake.chmod(0o755)
    env = {k: resolve(v) for k, v in service("kafka-init")["environment"].items()}
    result = subprocess.run(
        ["sh", str(DEPLOY / "kafka" / "create-topics.sh")],
        env={"PATH": os.environ["PATH"], "KAFKA_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "has 4 partitions, KAFKA_PARTITIONS is 8" in result.stderr


def test_every_compose_variable_is_documented_with_its_default() -> None:
    text = COMPOSE_FILE.read_text()
    variables = dict(re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", text))
    example = (DEPLOY / ".env.example").read_text()
    readme = (DEPLOY / "README.md").read_text()
    for name, default in variables.items():
        assert re.search(rf"^#?\s*{name}={re.escape(default)}$", example, re.M), (
            f"{name}={default} missing from deploy/.env.example"
        )
        assert f"`{name}`" in readme, f"{name} missing from deploy/README.md"


# -- secure by default ------------------------------------------------------------

REQUIRED = re.compile(r"^\$\{([A-Z0-9_]+):\?[^}]+\}$")


def required_variable(value: object) -> str:
    """The variable a `${VAR:?message}` value requires (compose refuses to start without it)."""
    match = REQUIRED.match(str(value))
    assert match, f"{value!r} must be ${{VAR:?...}}: no default, no start without it"
    return match.group(1)


def mounted(svc: dict[str, Any], container_path: str) -> str:
    """The host file mounted read-only at `container_path`."""
    for volume in svc.get("volumes", []):
        host, _, rest = str(volume).partition(":")
        target, _, mode = rest.partition(":")
        if target == container_path:
            assert mode == "ro", f"{container_path} must be mounted read-only"
            return host
    raise AssertionError(f"nothing mounted at {container_path}")


def test_agent_state_requires_tokens_and_serves_tls() -> None:
    env = service("agent-state")["environment"]
    assert required_variable(env["AGENT_STATE_ADMIN_TOKENS"]) == "AGENT_STATE_ADMIN_TOKENS"
    assert required_variable(env["AGENT_STATE_DESKTOP_TOKENS"]) == "AGENT_STATE_DESKTOP_TOKENS"
    assert str(env.get("AGENT_STATE_ALLOW_ANONYMOUS", "false")).lower() == "false"
    svc = service("agent-state")
    assert mounted(svc, env["AGENT_STATE_TLS_CERT_FILE"]) == "./secrets/agent-state.pem"
    assert mounted(svc, env["AGENT_STATE_TLS_KEY_FILE"]) == "./secrets/agent-state.key"


def test_the_router_presents_its_token_and_checks_agent_states_certificate() -> None:
    router = service("router")
    env = router["environment"]
    assert required_variable(env["AGENT_STATE_TOKEN"]) == "AGENT_STATE_TOKEN"
    assert mounted(router, env["AGENT_STATE_TLS_CA_FILE"]) == "./secrets/ca.pem"


def test_the_desk_presents_its_token_and_checks_agent_states_certificate() -> None:
    desk = service("desk")
    env = desk["environment"]
    assert env["AGENT_STATE_TARGET"] == service("router")["environment"]["AGENT_STATE_TARGET"]
    assert required_variable(env["AGENT_STATE_TOKEN"]) == "DESK_AGENT_STATE_TOKEN"
    assert required_variable(env["DESK_SUPERVISOR_TOKENS"]) == "DESK_SUPERVISOR_TOKENS"
    assert mounted(desk, env["AGENT_STATE_TLS_CA_FILE"]) == "./secrets/ca.pem"
    assert "DESK_DEMO_AGENTS" not in env, "the demo pick list hands out tokens: local runs only"


def test_agent_state_and_kafka_are_not_published_unless_asked() -> None:
    for name in ("agent-state", "kafka"):
        assert not service(name).get("ports"), f"{name} must not be published by default"
    for override, name in (
        ("docker-compose.desks.yml", "agent-state"),
        ("docker-compose.kafka-external.yml", "kafka"),
    ):
        services = yaml.safe_load((DEPLOY / override).read_text())["services"]
        assert set(services) == {name} and services[name]["ports"], override


def test_prometheus_is_published_on_loopback_only() -> None:
    [port] = service("prometheus")["ports"]
    assert resolve(port).startswith("127.0.0.1:"), port


def test_grafana_has_no_default_admin_password() -> None:
    env = service("grafana")["environment"]
    assert required_variable(env["GF_SECURITY_ADMIN_PASSWORD"]) == "GRAFANA_ADMIN_PASSWORD"


def test_secrets_are_never_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {"deploy/.env", "deploy/secrets/"} <= set(ignored)
    example = (DEPLOY / ".env.example").read_text()
    for name in (
        "AGENT_STATE_ADMIN_TOKENS",
        "AGENT_STATE_TOKEN",
        "DESK_AGENT_STATE_TOKEN",
        "DESK_SUPERVISOR_TOKENS",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert re.search(rf"^{name}=$", example, re.M), f"{name} must be empty in .env.example"


def test_ingest_requires_api_keys_and_is_never_anonymous() -> None:
    env = service("ingest")["environment"]
    assert required_variable(env["INGEST_API_KEYS"]) == "INGEST_API_KEYS"
    assert str(env.get("INGEST_ALLOW_ANONYMOUS", "false")).lower() == "false"

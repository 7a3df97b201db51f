"""Container health probe: exit 0 when the local gRPC health service says SERVING.

`python -m omniroute_agent_state.healthcheck` reads the same settings as the
service (port, TLS certificate), so the probe follows the configuration. With
TLS, the certificate must name `localhost`, which the probe connects as.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omniroute_agent_state.settings import AgentStateSettings


def probe(settings: AgentStateSettings, timeout_s: float = 2.0) -> bool:
    """Whether the service on this host answers SERVING."""
    target = f"127.0.0.1:{settings.agent_state_port}"
    if settings.agent_state_tls_cert_file:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=Path(settings.agent_state_tls_cert_file).read_bytes()
        )
        channel = grpc.secure_channel(
            target, credentials, options=[("grpc.ssl_target_name_override", "localhost")]
        )
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


if __name__ == "__main__":
    sys.exit(0 if probe(AgentStateSettings.from_env()) else 1)

"""ingest's settings, read once from the environment in `__main__`."""

from __future__ import annotations

from pydantic import Field

from omniroute.settings import CommonSettings


class IngestSettings(CommonSettings):
    """Settings of services/ingest (env var = upper-case field name)."""

    ingest_host: str = Field("0.0.0.0", description="Address the HTTP server binds.")
    ingest_port: int = Field(8080, description="HTTP port (API, /healthz, /metrics, /docs).")
    ingest_max_body_bytes: int = Field(
        1_000_000, gt=0, description="Largest request body accepted (413 above it)."
    )
    ingest_publish_timeout_s: float = Field(
        10.0, gt=0, description="How long to wait for the broker before answering 503."
    )
    ingest_retry_after_s: int = Field(
        5, ge=1, description="Retry-After sent with 503 when the broker is unavailable."
    )

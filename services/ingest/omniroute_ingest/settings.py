"""ingest's settings: one typed object, read from the environment once in `__main__`.

Every field is read from the environment variable of the same name in upper
case (`ingest_port` from `INGEST_PORT`).
"""

from __future__ import annotations

from pydantic import Field

from omniroute.settings import CommonSettings


class IngestSettings(CommonSettings):
    """Settings of services/ingest."""

    ingest_host: str = Field("0.0.0.0", description="Address the HTTP server binds.")
    ingest_port: int = Field(
        8080, ge=0, le=65535, description="HTTP port (API, /healthz, /metrics, /docs)."
    )
    ingest_max_body_bytes: int = Field(
        1_000_000, gt=0, description="Largest JSON/form request body accepted (413 above it)."
    )
    ingest_max_attachment_bytes: int = Field(
        10_000_000,
        gt=0,
        description="Largest attachment, uploaded document or raw email accepted (413 above it).",
    )
    ingest_max_batch: int = Field(
        100, ge=1, description="Most inquiries accepted in one batch request."
    )
    ingest_publish_timeout_s: float = Field(
        5.0, gt=0, description="How long to wait for the broker's acknowledgement before 503."
    )
    ingest_retry_after_s: int = Field(
        5, ge=1, description="Retry-After (seconds) sent with 503 when the broker is unavailable."
    )
    ingest_idempotency_ttl_s: float = Field(
        86_400.0,
        gt=0,
        description="How long an accepted Idempotency-Key or inquiry id is remembered (per "
        "process) so that a retry is not published again.",
    )
    ingest_idempotency_max_entries: int = Field(
        100_000, ge=1, description="Most keys remembered for idempotency (oldest dropped first)."
    )
    ingest_attachment_dir: str = Field(
        "data/ingest/attachments",
        description="Where attachment and document bytes are stored; inquiries carry file:// "
        "references to them.",
    )
    ingest_sms_auth_token: str = Field(
        "",
        description="SMS/voice provider auth token. When set, webhooks must carry a valid "
        "X-Twilio-Signature (HMAC-SHA1 of URL and parameters); empty = not checked.",
    )
    ingest_public_base_url: str = Field(
        "",
        description="The base URL the SMS/voice provider posts to (e.g. https://ingest.example). "
        "Signatures are computed over it; empty = the URL the request arrived on.",
    )
    ingest_social_app_secret: str = Field(
        "",
        description="Social platform app secret. When set, webhook POSTs must carry a valid "
        "X-Hub-Signature-256; empty = not checked.",
    )
    ingest_social_verify_token: str = Field(
        "", description="Token the social platform echoes in the GET verification challenge."
    )
    ingest_smtp_enabled: bool = Field(
        False,
        description="Run the SMTP listener. Off by default so that several ingest processes on "
        "one machine (tests, the dev stack) do not compete for the SMTP port.",
    )
    ingest_smtp_host: str = Field("0.0.0.0", description="Address the SMTP listener binds.")
    ingest_smtp_port: int = Field(2525, ge=0, le=65535, description="SMTP listener port.")
    ingest_smtp_workspaces: dict[str, str] = Field(
        default_factory=dict,
        description='Recipient address -> workspace, JSON (e.g. {"help@acme.example": "acme"}). '
        "Other recipients go to INGEST_SMTP_DEFAULT_WORKSPACE, or to the local part of the "
        "address when that is empty.",
    )
    ingest_smtp_default_workspace: str = Field(
        "", description="Workspace for mail to recipients not in INGEST_SMTP_WORKSPACES."
    )
    ingest_drop_dir: str = Field(
        "",
        description="Watched drop folder: files in <dir>/<workspace>/ become inquiries. "
        "Empty = no folder is watched.",
    )
    ingest_drop_processed_dir: str = Field(
        "", description="Where handled drop files go (default <drop dir>/../processed)."
    )
    ingest_drop_failed_dir: str = Field(
        "", description="Where unusable drop files go (default <drop dir>/../failed)."
    )
    ingest_drop_channel: str = Field(
        "postal_mail", description="Channel of drop-folder documents: postal_mail or fax."
    )
    ingest_drop_poll_s: float = Field(1.0, gt=0, description="How often the drop folder is read.")
    ingest_rules_path: str = Field(
        "",
        description="YAML file of classification rules per workspace (kinds, skills, priority, "
        "sentiment). Empty = no rules.",
    )
    ingest_languages: list[str] = Field(
        default_factory=lambda: ["en", "es", "fr", "de", "it", "pt", "nl"],
        description="Languages the detector chooses among (ISO 639-1, JSON list).",
    )
    ingest_language_min_chars: int = Field(
        20, ge=1, description="Shortest text (letters) for which the language is detected."
    )

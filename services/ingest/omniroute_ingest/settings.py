"""ingest's settings: one typed object, read from the environment once in `__main__`.

Every field is read from the environment variable of the same name in upper
case (`ingest_port` from `INGEST_PORT`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from omniroute.settings import CommonSettings, is_loopback
from omniroute_ingest.clients import ApiKey


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
    ingest_api_keys: dict[str, ApiKey] = Field(
        default_factory=dict,
        description='API keys of REST, batch, chat and walk-in clients, JSON name -> {"key": '
        '"...", "workspaces": ["acme"] or ["*"], "steer": false}. Requests need '
        "`Authorization: Bearer <key>`; with no keys, they are refused (401).",
    )
    ingest_allow_anonymous: bool = Field(
        False,
        description="Local development only: no API key needed (every right), and webhooks "
        "whose secret is not configured are accepted unsigned. Accepted only when INGEST_HOST "
        "is a loopback address.",
    )
    ingest_received_at_skew_s: float = Field(
        300.0,
        ge=0,
        description="A receivedAt from a client without the steer right is clamped to within "
        "this many seconds of now, so a client's clock cannot move it up the queue.",
    )
    ingest_rate_per_s: float = Field(
        20.0,
        ge=0,
        description="Requests per second per client (API key, or remote address for webhooks) "
        "before 429 with Retry-After; 0 = no limit.",
    )
    ingest_rate_burst: int = Field(
        100, ge=1, description="Requests a client may send at once above the sustained rate."
    )
    ingest_chat_max_bytes: int = Field(
        64_000_000,
        ge=10_000,
        description="Memory for live chat conversations (their start: customer, subject, "
        "attributes); beyond it the least recently active are forgotten (then 404).",
    )
    ingest_chat_idle_ttl_s: float = Field(
        4 * 3600.0,
        gt=0,
        description="A chat conversation without a request for this long is forgotten.",
    )
    topic_chat_conversations: str = Field(
        "chat-conversations",
        description="Ingest's chat conversations (compacted, key workspace/conversation id): "
        "every replica follows it, so any replica serves any conversation.",
    )
    ingest_chat_sync_wait_s: float = Field(
        3.0,
        ge=0,
        description="How long a request for a chat conversation this replica has not seen "
        "waits for it to arrive from the conversations topic (started on another replica "
        "a moment ago) before 404.",
    )
    ingest_position_wait_s: float = Field(
        2.0,
        ge=0,
        description="How long a call's IVR answer and a chat's first answer wait for the "
        "router's next queue snapshot to place the new inquiry in line (the router publishes "
        "one per ROUTER_TICK_S); 0: answer at once, with the place only if already known.",
    )
    ingest_snapshot_max_age_s: float = Field(
        15.0,
        gt=0,
        description="A workspace's queue snapshot older than this is not used for position "
        "and queue answers (503: the router is not publishing).",
    )
    ingest_sms_auth_token: str = Field(
        "",
        description="SMS/voice provider auth token: webhooks must carry a valid "
        "X-Twilio-Signature (HMAC-SHA1 of the public URL and the parameters). Empty: SMS and "
        "voice webhooks are refused (unless INGEST_ALLOW_ANONYMOUS).",
    )
    ingest_public_base_url: str = Field(
        "",
        description="The base URL the SMS/voice provider posts to (e.g. https://ingest.example); "
        "signatures are computed over it, never over the request's Host header. Required with "
        "INGEST_SMS_AUTH_TOKEN.",
    )
    ingest_social_app_secret: str = Field(
        "",
        description="Social platform app secret: webhook POSTs must carry a valid "
        "X-Hub-Signature-256. Empty: they are refused (unless INGEST_ALLOW_ANONYMOUS).",
    )
    ingest_social_verify_token: str = Field(
        "",
        description="Token the social platform echoes in the GET verification challenge "
        "(compared in constant time). Empty: every challenge is refused.",
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
    ingest_smtp_tls_cert_file: str = Field(
        "",
        description="PEM certificate chain; with INGEST_SMTP_TLS_KEY_FILE the SMTP listener "
        "offers STARTTLS.",
    )
    ingest_smtp_tls_key_file: str = Field("", description="PEM private key of the certificate.")
    ingest_smtp_require_tls: bool = Field(
        False, description="Refuse mail until the client has started TLS (needs the certificate)."
    )
    ingest_smtp_users: dict[str, str] = Field(
        default_factory=dict,
        description="SMTP AUTH users, JSON user -> password: when set, every sender must "
        "authenticate (PLAIN or LOGIN), over TLS when a certificate is configured.",
    )
    ingest_smtp_max_recipients: int = Field(
        10,
        ge=1,
        description="Most recipients accepted in one SMTP message (452 for the rest); every "
        "workspace among them gets its own inquiry.",
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

    @model_validator(mode="after")
    def _secure(self) -> IngestSettings:
        """Refuse settings that would make ingest open or check signatures against Host."""
        if self.ingest_allow_anonymous and not is_loopback(self.ingest_host):
            raise ValueError(
                "INGEST_ALLOW_ANONYMOUS is for a loopback INGEST_HOST only; "
                "configure INGEST_API_KEYS instead"
            )
        if self.ingest_sms_auth_token and not self.ingest_public_base_url:
            raise ValueError(
                "INGEST_PUBLIC_BASE_URL is required with INGEST_SMS_AUTH_TOKEN: signatures are "
                "checked against the URL the provider posts to, never the Host header"
            )
        if self.ingest_smtp_require_tls and not self.ingest_smtp_tls_cert_file:
            raise ValueError("INGEST_SMTP_REQUIRE_TLS needs INGEST_SMTP_TLS_CERT_FILE")
        if bool(self.ingest_smtp_tls_cert_file) != bool(self.ingest_smtp_tls_key_file):
            raise ValueError("INGEST_SMTP_TLS_CERT_FILE and INGEST_SMTP_TLS_KEY_FILE go together")
        return self

"""Helpers for provider webhooks: reading form posts and checking their signatures."""

from __future__ import annotations

import logging

from fastapi import Request

from omniroute_ingest.channels.common import Intake
from omniroute_ingest.errors import Rejected, invalid
from omniroute_ingest.settings import IngestSettings
from omniroute_ingest.signatures import provider_signature_valid

log = logging.getLogger(__name__)


async def signed_form(request: Request, intake: Intake, channel: str) -> dict[str, str]:
    """The form fields of a provider webhook, after checking its signature.

    A missing signature is 401, a wrong one 403; both are logged without the
    payload. With no INGEST_SMS_AUTH_TOKEN every webhook is refused (403), unless
    INGEST_ALLOW_ANONYMOUS (loopback development). Rate-limited per address (429).
    """
    request.state.channel = channel
    settings = intake.settings
    intake.limit_peer(request)
    if not settings.ingest_sms_auth_token and not settings.ingest_allow_anonymous:
        raise Rejected(
            403, "bad_signature", "X-Twilio-Signature: cannot be checked (no INGEST_SMS_AUTH_TOKEN)"
        )
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise Rejected(415, "unsupported_media", "body: expected application/x-www-form-urlencoded")
    form = await request.form()
    params = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    fields = dict(params)
    if settings.ingest_sms_auth_token:
        signature = request.headers.get("x-twilio-signature", "")
        url = _public_url(request, settings)
        if not signature:
            log.warning(
                "webhook without signature", extra={"channel": channel, "path": request.url.path}
            )
            raise Rejected(401, "bad_signature", "X-Twilio-Signature: missing")
        if not provider_signature_valid(settings.ingest_sms_auth_token, url, params, signature):
            log.warning(
                "webhook with a wrong signature",
                extra={"channel": channel, "path": request.url.path},
            )
            raise Rejected(403, "bad_signature", "X-Twilio-Signature: does not match")
    return fields


def require(fields: dict[str, str], *names: str) -> None:
    """Raise 422 naming the first required field that is missing or empty."""
    for name in names:
        if not fields.get(name, "").strip():
            raise invalid(name, "required")


def _public_url(request: Request, settings: IngestSettings) -> str:
    """The URL the provider signed: the configured public base URL, never the Host header."""
    url = settings.ingest_public_base_url.rstrip("/") + request.url.path
    return url + (f"?{request.url.query}" if request.url.query else "")

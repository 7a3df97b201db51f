"""The SMTP listener (aiosmtpd): inbound mail becomes email inquiries.

It runs on the service's own event loop (not aiosmtpd's threaded
Controller), so it shares the publisher. The recipient decides the workspace
(`INGEST_SMTP_WORKSPACES`, else `INGEST_SMTP_DEFAULT_WORKSPACE`, else the local
part of the address). The DATA reply is given only after the broker
acknowledged: 250 accepted, 451 when the broker is unavailable (the sending
server retries later), 5xx for a malformed message or one that is too large.
Optional: STARTTLS with a configured certificate (and refusing mail without
it), and AUTH PLAIN/LOGIN against configured users (compared in constant time).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import ssl
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from omniroute_ingest.channels.email import EmailIntake
from omniroute_ingest.errors import Rejected
from omniroute_ingest.settings import IngestSettings

log = logging.getLogger(__name__)

_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def workspace_for(recipient: str, settings: IngestSettings) -> str | None:
    """The workspace a recipient address belongs to, or None when it is not ours."""
    address = recipient.strip().lower()
    mapped = {k.lower(): v for k, v in settings.ingest_smtp_workspaces.items()}
    if address in mapped:
        return mapped[address]
    if settings.ingest_smtp_default_workspace:
        return settings.ingest_smtp_default_workspace
    local = address.split("@", 1)[0].split("+", 1)[0]
    return local if _WORKSPACE.match(local) else None


class InboundMail:
    """aiosmtpd handler: checks recipients, publishes DATA, answers with the outcome."""

    def __init__(self, emails: EmailIntake, settings: IngestSettings) -> None:
        self.emails = emails
        self.settings = settings

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Accept recipients that map to a workspace, at most INGEST_SMTP_MAX_RECIPIENTS."""
        if len(envelope.rcpt_tos) >= self.settings.ingest_smtp_max_recipients:
            return "452 4.5.3 too many recipients"
        if workspace_for(address, self.settings) is None:
            return "550 5.1.1 recipient is not a workspace address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Publish one inquiry per workspace among the recipients."""
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        workspaces = sorted(
            {w for r in envelope.rcpt_tos if (w := workspace_for(r, self.settings)) is not None}
        )
        ids = []
        for workspace in workspaces:
            try:
                accepted = await self.emails.accept(raw, workspace)
            except Rejected as exc:
                if exc.reason == "broker_unavailable":
                    return "451 4.3.0 temporarily unable to accept the message, try again later"
                self.emails.intake.metrics.reject("email", exc.reason)
                log.info("mail refused", extra={"reason": exc.reason, "problem": exc.message})
                if exc.reason == "too_large":
                    return f"552 5.3.4 {exc.message}"
                return f"554 5.6.0 {exc.message}"
            ids.append(accepted.id)
        return f"250 2.0.0 accepted as {' '.join(ids)}"


class Users:
    """SMTP AUTH: the configured users' passwords, compared in constant time."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = {user.encode(): password.encode() for user, password in users.items()}

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        expected = self._users.get(data.login, b"")
        matched = hmac.compare_digest(data.password, expected) and bool(expected)
        if not matched:
            log.warning("SMTP authentication failed", extra={"mechanism": mechanism})
        return AuthResult(success=matched, handled=False)


def tls_context(settings: IngestSettings) -> ssl.SSLContext | None:
    """The STARTTLS context when a certificate is configured (read once at start)."""
    if not settings.ingest_smtp_tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.ingest_smtp_tls_cert_file, settings.ingest_smtp_tls_key_file)
    return context


class SmtpListener:
    """An SMTP server on the running event loop."""

    def __init__(self, emails: EmailIntake, settings: IngestSettings) -> None:
        self.settings = settings
        self.handler = InboundMail(emails, settings)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._server is None or not self._server.sockets:
            return self.settings.ingest_smtp_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen on INGEST_SMTP_HOST:INGEST_SMTP_PORT."""
        limit = self.settings.ingest_max_attachment_bytes + self.settings.ingest_max_body_bytes
        loop = asyncio.get_running_loop()
        context = tls_context(self.settings)
        users = self.settings.ingest_smtp_users
        self._server = await loop.create_server(
            lambda: SMTP(
                self.handler,
                data_size_limit=limit,
                hostname="omniroute-ingest",
                ident="Omniroute ingest",
                enable_SMTPUTF8=True,
                decode_data=False,
                tls_context=context,
                require_starttls=self.settings.ingest_smtp_require_tls,
                authenticator=Users(users) if users else None,
                auth_required=bool(users),
                auth_require_tls=context is not None,
            ),
            host=self.settings.ingest_smtp_host,
            port=self.settings.ingest_smtp_port,
        )
        log.info("SMTP listening", extra={"smtp_port": self.port})

    async def stop(self) -> None:
        """Stop accepting connections and wait for open sessions to close."""
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)
            except TimeoutError:
                log.warning("SMTP sessions still open at shutdown")
            self._server = None

"""The errors channels raise and the one JSON shape every refusal is answered with.

`Rejected` carries the HTTP status, a machine-readable reason (also the
`reason` label of `omniroute_ingest_rejected_total`) and the bad fields. It
never carries the payload: messages name fields, not their contents.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException


class Rejected(Exception):
    """A contact refused with a 4xx (or 503 when the broker is unavailable)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON answer."""
        return {"error": self.reason, "message": self.message, "fields": self.fields}


def invalid(field: str, message: str, status: int = 422) -> Rejected:
    """A malformed input naming the bad field."""
    return Rejected(
        status, "invalid", f"{field}: {message}", [{"field": field, "message": message}]
    )


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """Dotted field name of a validation error location (`inquiries[2].channel`)."""
    parts: list[str] = []
    for index, item in enumerate(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif index == 0 and item in ("body", "form", "query", "header", "path"):
            continue  # the request part, not a field name
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "body"


def from_validation_errors(errors: list[dict[str, Any]] | Any) -> Rejected:
    """One `Rejected` (422, or 400 for unparsable JSON) from pydantic/FastAPI errors."""
    fields = [
        {"field": field_path(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in errors
    ]
    if any(e.get("type") == "json_invalid" for e in errors):
        return Rejected(400, "invalid", "body: not valid JSON", fields)
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return Rejected(422, "invalid", summary or "invalid request", fields)


class BodyTooLarge(HTTPException):
    """A request body streamed past the size limit (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body: larger than {limit} bytes")
        self.limit = limit

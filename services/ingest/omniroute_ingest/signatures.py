"""Webhook request signatures: pure functions, compared in constant time.

- SMS and voice providers (Twilio's scheme): base64 of HMAC-SHA1, keyed with
  the account's auth token, over the full URL followed by every POST
  parameter name and value, sorted by name; sent as `X-Twilio-Signature`.
  Tested against the provider's published example vector.
- Social platforms (Meta's scheme): `sha256=` + hex HMAC-SHA256 of the raw
  body keyed with the app secret; sent as `X-Hub-Signature-256`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def provider_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The X-Twilio-Signature value for a form POST to `url` with `params`."""
    # Names sorted; a repeated name contributes its distinct values, sorted
    # (as the provider's own validators do).
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(name + v for name in sorted(values) for v in sorted(values[name]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def provider_signature_valid(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str
) -> bool:
    """Whether `signature` is the provider's signature of this request."""
    expected = provider_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def hub_signature(app_secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value of a webhook body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def hub_signature_valid(app_secret: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is the platform's signature of `body`."""
    return hmac.compare_digest(hub_signature(app_secret, body).encode(), signature.strip().encode())

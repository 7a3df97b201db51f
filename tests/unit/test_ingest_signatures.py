"""Webhook signature schemes against published vectors, and tampering."""

from __future__ import annotations

import hashlib
import hmac

from omniroute_ingest.signatures import (
    hub_signature,
    hub_signature_valid,
    provider_signature,
    provider_signature_valid,
)

# The provider's documented example (auth token 12345).
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
]


def test_provider_signature_matches_the_published_vector() -> None:
    assert provider_signature("12345", URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert provider_signature_valid("12345", URL, reversed(PARAMS), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_repeated_parameters_count_once_per_distinct_value() -> None:
    params = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert provider_signature("12345", URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_provider_signature_fails_on_any_change() -> None:
    good = provider_signature("12345", URL, PARAMS)
    assert not provider_signature_valid("12345", URL + "&x=1", PARAMS, good)
    assert not provider_signature_valid("other", URL, PARAMS, good)
    assert not provider_signature_valid("12345", URL, [*PARAMS[:-1], ("To", "+1")], good)
    assert not provider_signature_valid("12345", URL, PARAMS, "")


def test_hub_signature_is_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"object":"page"}'
    expected = "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert hub_signature("secret", body) == expected
    assert hub_signature_valid("secret", body, expected)
    assert not hub_signature_valid("secret", body + b" ", expected)
    assert not hub_signature_valid("secret", body, "sha1=" + expected[7:])

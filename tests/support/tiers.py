"""Which broker tiers a test runs on.

Every test that uses the `broker` fixture runs on both brokers by default (the
`broker_kind` fixture's params in tests/conftest.py): every test of broker
behaviour, the routing loop, delivery and recovery stays there. A test whose
subject does not depend on the broker (the desk's page in a browser, the
names and queries of the Prometheus rules and dashboard) is marked
`embedded_tier_only`, with a comment saying why, and runs on the embedded
broker only, which every machine has; its test id still names the broker
(`[tansu]`).
"""

from __future__ import annotations

import pytest

from devstack.brokers import BrokerKind

MARKER = "embedded_tier_only"

embedded_tier_only = getattr(pytest.mark, MARKER)


def limit_tiers(metafunc: pytest.Metafunc) -> None:
    """A marked test that uses the broker gets the embedded tier as its only broker."""
    if metafunc.definition.get_closest_marker(MARKER) and "broker_kind" in metafunc.fixturenames:
        only = pytest.mark.parametrize("broker_kind", [BrokerKind.TANSU], indirect=True, ids=str)
        metafunc.definition.add_marker(only)

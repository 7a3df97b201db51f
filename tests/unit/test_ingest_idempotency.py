"""The idempotency cache and stable ids: time is passed in, no I/O."""

from __future__ import annotations

from omniroute_ingest.idempotency import IdempotencyCache
from omniroute_ingest.ids import stable_id


def test_keys_expire_after_the_ttl() -> None:
    cache = IdempotencyCache(ttl_s=10, max_entries=100)
    cache.put("k", "id-1", now=0.0)
    assert cache.get("k", now=9.9) == "id-1"
    assert cache.get("k", now=10.0) is None
    assert len(cache) == 0


def test_the_oldest_keys_go_first_beyond_the_bound() -> None:
    cache = IdempotencyCache(ttl_s=100, max_entries=2)
    for index, key in enumerate("abc"):
        cache.put(key, f"id-{key}", now=float(index))
    assert (cache.get("a", 3.0), cache.get("b", 3.0), cache.get("c", 3.0)) == (None, "id-b", "id-c")


def test_stable_ids_depend_on_workspace_and_parts_only() -> None:
    assert stable_id("acme", "sms", "SM1") == stable_id("acme", "sms", "SM1")
    assert stable_id("acme", "sms", "SM1") != stable_id("globex", "sms", "SM1")
    assert stable_id("acme", "sms", "SM1") != stable_id("acme", "sms1", "SM")

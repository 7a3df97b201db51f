"""A bounded, in-memory TTL cache of recently accepted keys, for safe retries.

It is per process: a retry that reaches another replica, or this one after a
restart, is published again. That is still safe, because ids derived from an
Idempotency-Key (or given by the client) are stable, and the router
de-duplicates by inquiry id; the cache only spares the topic the duplicate.
"""

from __future__ import annotations

from collections import OrderedDict


class IdempotencyCache:
    """Remembers key -> value for `ttl_s` seconds, at most `max_entries` (oldest evicted).

    Time is passed in, so the cache reads no clock.
    """

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def get(self, key: str, now: float) -> str | None:
        """The value remembered for `key`, or None when unknown or expired."""
        self._expire(now)
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: str, value: str, now: float) -> None:
        """Remember `key` -> `value` from `now` on."""
        self._entries.pop(key, None)
        self._entries[key] = (now + self._ttl_s, value)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        self._expire(now)

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        # Entries are in insertion order and share one TTL, so expired ones lead.
        while self._entries:
            key, (expires, _) = next(iter(self._entries.items()))
            if expires > now:
                break
            del self._entries[key]

"""Answers to calls that carried a `request_id`, kept so that a retry gets the same answer.

Plain Python, time passed in (monotonic seconds). An entry is kept for
`ttl_s` and at most `max_entries` are kept (oldest forgotten first); a
retry after that, or after a restart, falls back to the natural key (the
roster answers a repeated accept, decline, complete, transfer or status by
what already happened).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from google.protobuf.message import Message

from omniroute.v1 import agent_state_pb2
from omniroute_agent_state.roster import InvalidRequest

MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class Remembered:
    """The first answer to a request id and the outbox batch its change is in."""

    request: bytes
    answer: Message
    seq: int
    at: float


class RequestLog:
    """Answers by (method, request id), oldest first."""

    def __init__(self, ttl_s: float = 600.0, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple[str, str], Remembered] = OrderedDict()

    def find(self, method: str, request: Message, mono: float) -> Remembered | None:
        """The remembered answer to this request's id; None when it is new (or has none).

        INVALID_ARGUMENT when the id was used for a different request (one that
        differs in more than what it only carries along, see `_CARRIED`).
        """
        request_id = _request_id(request)
        if not request_id:
            return None
        self._forget(mono)
        found = self.entries.get((method, request_id))
        if found is None:
            return None
        if found.request != _fingerprint(request):
            raise InvalidRequest(
                f"request_id {request_id!r} was already used for a different {method} request"
            )
        return found

    def remember(
        self, method: str, request: Message, answer: Message, seq: int, mono: float
    ) -> None:
        """Keep `answer` (a copy) for retries of this request's id."""
        request_id = _request_id(request)
        if not request_id:
            return
        kept = type(answer)()
        kept.CopyFrom(answer)
        self.entries[(method, request_id)] = Remembered(_fingerprint(request), kept, seq, mono)
        self.entries.move_to_end((method, request_id))
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    def _forget(self, mono: float) -> None:
        while self.entries:
            key, oldest = next(iter(self.entries.items()))
            if oldest.at > mono - self.ttl_s:
                return
            del self.entries[key]


def _request_id(request: Message) -> str:
    request_id = str(getattr(request, "request_id", ""))
    if len(request_id) > MAX_REQUEST_ID:
        raise InvalidRequest(f"request_id is longer than {MAX_REQUEST_ID} characters")
    return request_id


# Fields a request carries along without agent-state deciding anything by them:
# a retry may rebuild them (the router's assignment holds the time it was made),
# so they are no part of what makes it the same request.
_CARRIED: dict[type[Message], tuple[str, ...]] = {
    agent_state_pb2.ReserveAgentRequest: ("assignment",),
}


def _fingerprint(request: Message) -> bytes:
    carried = _CARRIED.get(type(request))
    if carried:
        decided = type(request)()
        decided.CopyFrom(request)
        for name in carried:
            decided.ClearField(name)
        request = decided
    return request.SerializeToString(deterministic=True)

"""How big a record may be: one size budget that ingest, the router and agent-state share.

Every producer of the services writes records of at most
`KAFKA_MAX_REQUEST_BYTES` (aiokafka's and Apache Kafka's default, 1 MiB: the
producer refuses a larger record before it is sent, Apache Kafka's broker one
above its `message.max.bytes`). An inquiry's content travels further than its
own record, and grows on the way:

- the router keeps the inquiry as published in its contents table, as base64
  text in a JSON value: 4/3 of its size (contents.py);
- the router's `Assignment` carries the inquiry, its history and the offer's
  fields; agent-state keeps it as a `HeldContent` record on `agent-snapshots`
  and in checkpoint chunks, each with ids around it (content.py);
- a conversation's later messages join the inquiry's content.

So the budget, from the producer's limit down (`SizeBudget`):

- `record_bytes`: a record's value, leaving room for the key and the batch's
  own framing;
- `assignment_bytes`: an `Assignment` (or a conversation message) that
  agent-state holds, leaving room for the `HeldContent` and checkpoint
  envelope around it;
- `inquiry_bytes`: an encoded `Inquiry`: what its base64 copy in the router's
  table can hold. ingest refuses a larger one (413); the router dead-letters
  one that reaches the topic anyway. An assignment has the remaining quarter
  for the history and the offer's fields.

What grows past the budget downstream (a long history, a conversation's
messages) is cut to fit with a marker saying so (`fit_assignment`,
`fit_inquiry`): the full text stays on the `inquiries` topic, the audit
trail. Plain Python: no Kafka here.
"""

from __future__ import annotations

from dataclasses import dataclass

from omniroute.v1 import inquiry_pb2, task_pb2

#: aiokafka's default max_request_size; Apache Kafka's broker takes slightly
#: more by default (message.max.bytes 1,048,588).
DEFAULT_MAX_REQUEST_BYTES = 1_048_576
#: Room for a record's key, headers and the record batch's framing (a v2 batch
#: is 61 bytes plus about 20 per record; keys are ids of at most a few hundred).
RECORD_OVERHEAD = 2048
#: Room for what agent-state writes around an assignment or message it holds:
#: the `HeldContent`'s reservation and agent ids, a checkpoint chunk's id,
#: index and offset, and the `CheckpointRecord` around it.
HELD_OVERHEAD = 4096
#: History entries an assignment keeps however tight the budget (the newest).
HISTORY_KEPT = 50


def truncation_marker(omitted: int) -> str:
    """What replaces the end of a text cut to fit (`omitted`: bytes left out)."""
    return (
        f"\n\n[... {omitted} more bytes not shown: too large to carry; "
        "the full inquiry is on the inquiries topic]"
    )


@dataclass(frozen=True)
class SizeBudget:
    """The sizes every record and content must stay within, from the producer's limit."""

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    @property
    def record_bytes(self) -> int:
        """Largest record value a producer of the services sends."""
        return self.max_request_bytes - RECORD_OVERHEAD

    @property
    def assignment_bytes(self) -> int:
        """Largest `Assignment` or `ConversationMessage` published or held by agent-state."""
        return self.record_bytes - HELD_OVERHEAD

    @property
    def inquiry_bytes(self) -> int:
        """Largest encoded `Inquiry`: its base64 copy in JSON (the router's table) fits a record."""
        # base64 of n bytes is 4 * ceil(n / 3) characters, JSON adds two quotes.
        return 3 * ((self.record_bytes - 2) // 4)

    def inquiry_problem(self, size: int) -> str | None:
        """Why an inquiry of `size` encoded bytes cannot be carried (None: it can)."""
        if size <= self.inquiry_bytes:
            return None
        return (
            f"Inquiry: {size} bytes encoded, above the limit of {self.inquiry_bytes} bytes "
            f"that one inquiry may carry through routing (from KAFKA_MAX_REQUEST_BYTES "
            f"{self.max_request_bytes})"
        )


def fit_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, with the marker, at a character boundary
    (empty when not even the marker fits)."""
    data = text.encode()
    if len(data) <= limit:
        return text
    longest = len(truncation_marker(len(data)).encode())  # omitting at most len(data)
    if limit < longest:
        return ""
    head = data[: limit - longest].decode(errors="ignore")
    return head + truncation_marker(len(data) - len(head.encode()))


def fit_inquiry(inquiry: inquiry_pb2.Inquiry, limit: int) -> bool:
    """Cut `inquiry` (in place) to at most `limit` encoded bytes; whether anything was cut.

    The body is cut (its start kept, with the marker) when that is enough;
    otherwise the attachments' references go from the last, then the
    attributes, then the body and the subject are cut: the routing fields
    (id, workspace, channel, skills) stay whole.
    """
    if inquiry.ByteSize() <= limit:
        return False
    if not _cut_body(inquiry, limit):
        while inquiry.ByteSize() > limit and inquiry.attachments:
            inquiry.attachments.pop()
        if inquiry.ByteSize() > limit:
            inquiry.attributes.clear()
        if inquiry.ByteSize() > limit and not _cut_body(inquiry, limit):
            inquiry.body = ""
            excess = inquiry.ByteSize() - limit + _SLACK
            inquiry.subject = fit_text(inquiry.subject, len(inquiry.subject.encode()) - excess)
    return True


#: A field's length prefix can shrink by a few bytes as it is cut: aim a little lower.
_SLACK = 16


def _cut_body(inquiry: inquiry_pb2.Inquiry, limit: int) -> bool:
    """Cut the body so that the inquiry fits `limit`, when cutting the body can do it."""
    excess = inquiry.ByteSize() - limit + _SLACK
    size = len(inquiry.body.encode())
    if excess > size - len(truncation_marker(size).encode()):
        return inquiry.ByteSize() <= limit
    inquiry.body = fit_text(inquiry.body, size - excess)
    return True


def fit_assignment(assignment: task_pb2.Assignment, limit: int) -> bool:
    """Cut `assignment` (in place) to at most `limit` encoded bytes; whether anything was cut.

    The history's oldest entries go first (down to the newest `HISTORY_KEPT`,
    an entry `omitted:<n>` saying how many went), then the inquiry's content
    is cut (`fit_inquiry`), then the rest of the history.
    """
    if assignment.ByteSize() <= limit:
        return False
    history = list(assignment.history)
    dropped = 0
    while assignment.ByteSize() > limit and len(history) - dropped > HISTORY_KEPT:
        # Half of what is left above the kept entries each round: few rounds for a long history.
        dropped += max(1, (len(history) - dropped - HISTORY_KEPT) // 2)
        _set_history(assignment, history[dropped:], dropped)
    if assignment.ByteSize() > limit and assignment.HasField("inquiry"):
        around = assignment.ByteSize() - assignment.inquiry.ByteSize()
        fit_inquiry(assignment.inquiry, max(0, limit - around - 8))
    if assignment.ByteSize() > limit:
        _set_history(assignment, [], len(history))
    return True


def fit_message(message: task_pb2.ConversationMessage, limit: int) -> bool:
    """Cut a conversation message's content (in place) to at most `limit` encoded bytes."""
    if message.ByteSize() <= limit:
        return False
    around = message.ByteSize() - message.message.ByteSize()
    return fit_inquiry(message.message, max(0, limit - around - 8))


def _set_history(assignment: task_pb2.Assignment, kept: list[str], dropped: int) -> None:
    del assignment.history[:]
    if dropped:
        assignment.history.append(f"omitted:{dropped}")
    assignment.history.extend(kept)

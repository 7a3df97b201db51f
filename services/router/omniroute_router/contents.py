"""The inquiry's content on every offer: kept in a table while the router routes it.

An agent's desk must show what the customer wrote (channel, name, subject,
body, attachments) with the offer itself, whichever router worker made it and
after any fail-over. So the router keeps the inquiry as it was published in a
Faust table (a changelog topic, like the rest of its state), puts it on each
`Assignment` it makes (`Assignment.inquiry`, which agent-state passes on to
the desk with the offer), and drops it when routing of the inquiry ends.
The table is read and written in `tables.py`.
"""

from __future__ import annotations

from omniroute.codec import InvalidEvent, decode
from omniroute.v1 import inquiry_pb2, task_pb2


def content_key(workspace: str, inquiry_id: str) -> str:
    """Inquiry ids are scoped by workspace, so is their content."""
    return f"{workspace}/{inquiry_id}"


def attach(assignment: task_pb2.Assignment, encoded: bytes | None) -> None:
    """Put the inquiry's content (as published) on the assignment, when there is one."""
    if not encoded:
        return
    try:
        assignment.inquiry.CopyFrom(decode(inquiry_pb2.Inquiry, encoded))
    except InvalidEvent:
        pass  # unreadable state must not stop the offer; it goes out without content

"""The inquiry's content on every offer: kept in a table while the router routes it.

An agent's desk must show what the customer wrote (channel, name, subject,
body, attachments) with the offer itself, whichever router worker made it and
after any fail-over. So the router keeps the inquiry as it was published in a
Faust table (a changelog topic, like the rest of its state), puts it on each
`Assignment` it makes (`Assignment.inquiry`, which agent-state passes on to
the desk with the offer), and drops it when routing of the inquiry ends.

It also keeps, in the same table and on the same partition, the customer
messages whose delivery to the agent's desk failed (agent-state unreachable),
until conversations.py has delivered them or the agent no longer holds the
inquiry: a worker that dies with a delivery pending leaves it to the next.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, MutableMapping
from typing import Any

from omniroute.codec import InvalidEvent, decode
from omniroute.sizes import SizeBudget, fit_inquiry
from omniroute.v1 import inquiry_pb2, task_pb2


def content_key(workspace: str, inquiry_id: str) -> str:
    """Inquiry ids are scoped by workspace, so is their content."""
    return f"{workspace}/{inquiry_id}"


def undelivered_key(workspace: str, inquiry_id: str) -> str:
    """Where the messages of an inquiry not yet delivered to its agent are kept."""
    return f"{content_key(workspace, inquiry_id)}#undelivered"


class InquiryContents:
    """Encoded inquiries by workspace and id; `table` is a Faust table or a plain dict."""

    def __init__(
        self, table: MutableMapping[str, Any] | None = None, sizes: SizeBudget | None = None
    ) -> None:
        self.table: MutableMapping[str, Any] = table if table is not None else {}
        # Every value must fit one changelog record (omniroute.sizes).
        self.sizes = sizes or SizeBudget()

    def keep(self, workspace: str, inquiry_id: str, encoded: bytes) -> None:
        """Remember the inquiry as published (JSON table values: base64 text)."""
        self.table[content_key(workspace, inquiry_id)] = base64.b64encode(encoded).decode()

    def attach(self, assignment: task_pb2.Assignment) -> None:
        """Put the inquiry's content on the assignment, when the router still has it."""
        stored = self.table.get(content_key(assignment.workspace, assignment.inquiry_id))
        if not stored:
            return
        try:
            assignment.inquiry.CopyFrom(decode(inquiry_pb2.Inquiry, base64.b64decode(stored)))
        except (InvalidEvent, ValueError):
            pass  # unreadable state must not stop the offer; it goes out without content

    def add_message(self, workspace: str, inquiry_id: str, message: inquiry_pb2.Inquiry) -> None:
        """A later message of the conversation joined the inquiry: its text and
        attachments go on the content, so the next offer shows the whole conversation.

        A conversation grown past the inquiry limit is cut to it, with a marker
        (`omniroute.sizes.fit_inquiry`): its table record must stay writable.
        Each message still reaches the desk whole, on its own."""
        key = content_key(workspace, inquiry_id)
        stored = self.table.get(key)
        if not stored:
            return
        try:
            inquiry = decode(inquiry_pb2.Inquiry, base64.b64decode(stored))
        except (InvalidEvent, ValueError):
            return
        if message.body:
            inquiry.body = f"{inquiry.body}\n\n{message.body}" if inquiry.body else message.body
        inquiry.attachments.extend(message.attachments)
        fit_inquiry(inquiry, self.sizes.inquiry_bytes)
        self.keep(workspace, inquiry_id, inquiry.SerializeToString())

    def undelivered(self, workspace: str, inquiry_id: str) -> list[task_pb2.ConversationMessage]:
        """The inquiry's messages waiting to be delivered to its agent, oldest first."""
        found = []
        for stored in self.table.get(undelivered_key(workspace, inquiry_id)) or ():
            try:
                found.append(decode(task_pb2.ConversationMessage, base64.b64decode(stored)))
            except (InvalidEvent, ValueError):
                continue  # unreadable state: that message stays in the content only
        return found

    def keep_undelivered(
        self, workspace: str, inquiry_id: str, messages: Iterable[task_pb2.ConversationMessage]
    ) -> None:
        """Set the inquiry's messages waiting for delivery (none: the entry goes)."""
        encoded = [base64.b64encode(m.SerializeToString()).decode() for m in messages]
        # The newest that fit one table record; older ones are in the content already.
        room = self.sizes.record_bytes
        while encoded and sum(len(e) + 4 for e in encoded) > room:
            encoded.pop(0)
        key = undelivered_key(workspace, inquiry_id)
        if encoded:
            self.table[key] = encoded
        else:
            self.table.pop(key, None)

    def forget(self, workspace: str, inquiry_ids: Iterable[str]) -> None:
        """Drop the content (and undelivered messages) of inquiries whose routing ended."""
        for inquiry_id in inquiry_ids:
            self.table.pop(content_key(workspace, inquiry_id), None)
            self.table.pop(undelivered_key(workspace, inquiry_id), None)

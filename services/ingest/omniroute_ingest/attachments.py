"""Where attachment bytes go: inquiries carry references (file:// URIs), never the bytes.

The store is a folder (INGEST_ATTACHMENT_DIR); in production it would be a
volume shared with the agent desktops or an object store behind the same
interface.
"""

from __future__ import annotations

import re
from pathlib import Path

from omniroute.v1 import inquiry_pb2


def safe_name(name: str, fallback: str = "attachment") -> str:
    """A file name without directories or odd characters (never empty)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:120]
    return cleaned or fallback


class AttachmentStore:
    """Stores attachment bytes under `<root>/<workspace>/<inquiry id>/<name>`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def save(
        self, workspace: str, inquiry_id: str, name: str, content_type: str, data: bytes
    ) -> inquiry_pb2.Attachment:
        """Write the bytes and return the reference the inquiry carries."""
        folder = self.root / safe_name(workspace, "workspace") / safe_name(inquiry_id, "inquiry")
        folder.mkdir(parents=True, exist_ok=True)
        filename = safe_name(name)
        path = folder / filename
        index = 1
        while path.exists() and path.read_bytes() != data:  # same name, other file
            path = folder / f"{index}-{filename}"
            index += 1
        path.write_bytes(data)
        return inquiry_pb2.Attachment(
            name=name[:200] or filename,
            content_type=content_type,
            size_bytes=len(data),
            uri=path.as_uri(),
        )

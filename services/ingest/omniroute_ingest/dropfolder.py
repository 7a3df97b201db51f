"""The watched drop folder: files put in `<INGEST_DROP_DIR>/<workspace>/` become inquiries.

A mail-room scanner or fax server writes a PDF/TIFF there, optionally with a
`<file>.json` sidecar of metadata (channel, sender_name, sender_address,
subject, notes, language, external_id). A file is taken once its size and
modification time held still for one poll (so half-written files wait). After
the broker acknowledged, the file (and its sidecar) moves to
`<processed>/<workspace>/<inquiry id>-<name>`; a file that can never become
an inquiry moves to `<failed>/<workspace>/` with a `.reason.txt`: among them
symbolic links (never followed, so a link cannot make ingest publish a file
from elsewhere) and files above INGEST_MAX_ATTACHMENT_BYTES (refused by their
size before a byte is read). When the
broker is unavailable the file stays and is tried again at the next poll; its
id is derived from its content, so a retry is not a second inquiry.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import shutil
import stat
from pathlib import Path

from omniroute_ingest.attachments import AttachmentStore
from omniroute_ingest.channels.common import Intake
from omniroute_ingest.channels.documents import DocumentMeta, accept_document
from omniroute_ingest.errors import Rejected, invalid

log = logging.getLogger(__name__)

_SKIP_SUFFIXES = (".json", ".part", ".tmp", ".reason.txt")


class DropFolder:
    """Polls the drop folder and publishes new files."""

    def __init__(self, intake: Intake, store: AttachmentStore) -> None:
        settings = intake.settings
        self.intake = intake
        self.store = store
        self.root = Path(settings.ingest_drop_dir)
        self.processed = Path(settings.ingest_drop_processed_dir or self.root.parent / "processed")
        self.failed = Path(settings.ingest_drop_failed_dir or self.root.parent / "failed")
        self.poll_s = settings.ingest_drop_poll_s
        self.default_channel = settings.ingest_drop_channel
        self._last_seen: dict[Path, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create the folders and start polling."""
        for folder in (self.root, self.processed, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="drop-folder")
        log.info("watching drop folder", extra={"drop_dir": str(self.root)})

    async def stop(self) -> None:
        """Stop polling (a file being published finishes first)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # one bad poll must not end the watcher
                log.exception("drop folder poll failed")
            await asyncio.sleep(self.poll_s)

    async def poll_once(self) -> int:
        """Handle every file that is ready; returns how many were published."""
        ready = await asyncio.to_thread(self._ready_files)
        published = 0
        for workspace, path in ready:
            published += await self._handle(workspace, path)
        return published

    def _ready_files(self) -> list[tuple[str, Path]]:
        seen: dict[Path, tuple[int, int]] = {}
        ready = []
        for folder in sorted(
            p
            for p in self.root.iterdir()
            if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
        ):
            for path in sorted(folder.iterdir()):
                if (
                    not path.is_file()
                    or path.name.startswith(".")
                    or path.name.endswith(_SKIP_SUFFIXES)
                ):
                    continue
                stat = path.stat()
                seen[path] = (stat.st_size, stat.st_mtime_ns)
                if self._last_seen.get(path) == seen[path]:
                    ready.append((folder.name, path))
        self._last_seen = seen
        return ready

    async def _handle(self, workspace: str, path: Path) -> int:
        try:
            if not _valid_workspace(workspace):
                raise invalid("workspace", "folder name is not a valid workspace")
            limit = self.intake.settings.ingest_max_attachment_bytes
            data, meta = await asyncio.to_thread(_read, path, self.default_channel, limit)
            accepted = await accept_document(
                self.intake, self.store, workspace, path.name, data, meta
            )
        except Rejected as exc:
            if exc.reason == "broker_unavailable":
                log.warning(
                    "drop file kept for retry: broker unavailable", extra={"file": path.name}
                )
                self._last_seen.pop(path, None)  # stays ready: tried again next poll
                return 0
            self.intake.metrics.reject(meta_channel(path, self.default_channel), exc.reason)
            await asyncio.to_thread(
                self._move, path, self.failed / workspace / path.name, exc.message
            )
            log.info("drop file failed", extra={"file": path.name, "reason": exc.reason})
            return 0
        await asyncio.to_thread(
            self._move, path, self.processed / workspace / f"{accepted.id}-{path.name}", None
        )
        log.info(
            "drop file published",
            extra={"file": path.name, "inquiry_id": accepted.id, "workspace": workspace},
        )
        return 1

    def _move(self, path: Path, target: Path, reason: str | None) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        sidecar = path.with_name(path.name + ".json")
        if sidecar.exists():
            shutil.move(str(sidecar), target.with_name(target.name + ".json"))
        if reason is not None:
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
        self._last_seen.pop(path, None)


def meta_channel(path: Path, default: str) -> str:
    """The metric channel label of a drop file (from its sidecar, else the default)."""
    try:
        channel = str(
            json.loads(path.with_name(path.name + ".json").read_text()).get("channel", "")
        )
    except (OSError, ValueError, AttributeError):
        channel = default
    return "fax" if channel == "fax" else "postal_mail"


_SIDECAR_LIMIT = 64_000


def _read_regular(path: Path, limit: int, field: str) -> bytes:
    """The bytes of a regular file that is no symbolic link, refused above `limit` unread."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise invalid(field, "a symbolic link (never followed): drop the file itself") from None
        raise
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise invalid(field, "not a regular file")
        if info.st_size > limit:
            raise Rejected(
                413,
                "too_large",
                f"{field}: larger than {limit} bytes",
                [{"field": field, "message": f"larger than {limit} bytes"}],
            )
        return file.read(limit + 1)  # a file still growing is cut at the limit + 1


def _read(path: Path, default_channel: str, limit: int) -> tuple[bytes, DocumentMeta]:
    data = _read_regular(path, limit, "file")
    meta = DocumentMeta(channel=default_channel)
    sidecar = path.with_name(path.name + ".json")
    if sidecar.exists() or sidecar.is_symlink():
        try:
            fields = json.loads(_read_regular(sidecar, _SIDECAR_LIMIT, "sidecar"))
            if not isinstance(fields, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise invalid("sidecar", f"{sidecar.name} is not a JSON object ({exc})") from None
        known = set(DocumentMeta.__dataclass_fields__)
        meta = DocumentMeta(
            **{"channel": default_channel, **{k: str(v) for k, v in fields.items() if k in known}}
        )
    return data, meta


def _valid_workspace(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name) is not None

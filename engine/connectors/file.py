"""File connectors: pick up files dropped into a directory; write delivered messages out as files.

Many hospital systems still exchange HL7 through shared folders. The rules here exist because a
folder, unlike a socket, has no handshake:

* A file is only read once it has not changed for ``min_age`` seconds, because many writers create
  the file and fill it in place instead of renaming a finished file into the folder.
* A file leaves the inbox only after the channel has decided about it (stored it): it is moved to
  ``done/`` or to ``error/`` (with a ``<name>.error.txt`` saying why). If the channel cannot take it
  (the store is down), the file stays where it is and is read again at the next poll. Nothing is ever
  deleted or overwritten, so an operator can always find what arrived.
* Files are read in name order and a poll stops at the first file the channel could not take, so the
  order senders rely on (A01 before A08) is kept across retries.
* The destination writes a temporary hidden file, fsyncs it and renames it into place, so a reader of
  the outbox never sees half a message and a power cut does not lose a delivery already committed.

Blocking file I/O runs in worker threads (``asyncio.to_thread``) so a slow network share does not stall
the event loop that also serves the MLLP and HTTP listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult, unquote

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import Field, field_validator

from engine.connectors.base import Destination, Options, Outbound, SendResult, Source
from engine.errors import ChannelError, DeliveryError
from engine.hl7v2.charset import codec_for
from engine.message import ContentType, Outcome, OutcomeStatus

if TYPE_CHECKING:
    import ssl

    from engine.config import AppConfig
    from engine.connectors.base import Receiver

__all__ = [
    "FileDestination",
    "FileDestinationOptions",
    "FileSource",
    "FileSourceOptions",
    "make_directories",
    "split_batch",
    "sync_directory",
]

log = logging.getLogger(__name__)

_OK = (OutcomeStatus.ACCEPTED, OutcomeStatus.FILTERED)
ContentTypeName = Literal["hl7v2", "xml", "json", "text", "bytes"]


def url_directory(url: SplitResult) -> str:
    """The directory of a ``file://`` URL: everything after ``file://`` (``file://in`` is relative)."""
    return unquote(url.netloc + url.path)


def _check_file_url(url: SplitResult) -> str | None:
    if not url_directory(url).strip():
        return f"file URL needs a directory: file:///abs/dir or file://relative/dir, not {url.geturl()!r}"
    return None


def _brief(exc: BaseException) -> str:
    """An exception for a log line: its first line only.

    Database errors append the SQL parameters (message bytes) on later lines; those must not reach logs.
    """
    text = str(exc).strip().splitlines()
    first = text[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# --------------------------------------------------------------------------------------------------
# batch files

_MSH_AT_LINE_START = re.compile(rb"(?:^|(?<=\r)|(?<=\n))MSH")
# HL7 batch envelope segments (v2.5 §2.10.3): file/batch header and trailer, never part of a message
_ENVELOPE_LINE = re.compile(rb"(?:^|(?<=\r)|(?<=\n))(?:FHS|BHS|BTS|FTS)[^\r\n]*(?:\r\n|\r|\n)?")


def split_batch(raw: bytes) -> list[bytes]:
    """Split a file of several HL7 v2 messages at each ``MSH`` that starts a line.

    Batch envelope segments (FHS/BHS/BTS/FTS) are dropped. Anything else before the first MSH is kept
    as a piece of its own, so the channel records it as an error instead of it vanishing silently.
    A file without any MSH is returned whole.
    """
    starts = [m.start() for m in _MSH_AT_LINE_START.finditer(raw)]
    if not starts:
        return [raw]
    pieces: list[bytes] = []
    head = _ENVELOPE_LINE.sub(b"", raw[: starts[0]])
    if head.strip():
        pieces.append(head)
    for begin, end in zip(starts, [*starts[1:], len(raw)], strict=True):
        pieces.append(_ENVELOPE_LINE.sub(b"", raw[begin:end]))
    return pieces


# --------------------------------------------------------------------------------------------------
# source


class FileSourceOptions(Options):
    pattern: str = Field(
        "*.hl7",
        description="file names to read (shell pattern, case-sensitive; "
        "names starting with '.' are never read)",
    )
    poll_interval: float = Field(5.0, gt=0, description="seconds between two looks at the directory")
    content_type: ContentTypeName = Field("hl7v2", description="what the files hold")
    done_dir: str = Field(
        "done", description="where accepted and filtered files are moved (relative to the watched directory)"
    )
    error_dir: str = Field(
        "error",
        description="where errored files are moved, each with a "
        "<name>.error.txt saying why (relative to the watched directory)",
    )
    min_age: float = Field(
        1.0,
        ge=0,
        description="seconds since the last change before a file is read, "
        "so that half-written files are left alone",
    )
    split_batch: bool = Field(
        False,
        description="a file holds several HL7 v2 messages, each starting "
        "with MSH at the start of a line; FHS/BHS/BTS/FTS lines are dropped",
    )

    @field_validator("pattern")
    @classmethod
    def _name_pattern(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value:
            raise ValueError(
                "pattern matches file names in the watched directory; "
                "it cannot be empty or contain a path separator"
            )
        return value

    @field_validator("done_dir", "error_dir")
    @classmethod
    def _not_inbox(cls, value: str) -> str:
        if not value.strip() or Path(value) == Path("."):
            raise ValueError(
                "must name a directory other than the watched one, or files would be read again and again"
            )
        return value


@dataclass(slots=True)
class _Progress:
    """How far a split batch file got when the channel stopped taking messages (store down)."""

    identity: tuple[int, int]  # (mtime_ns, size): the same file, not a new one of the same name
    done: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Ready:
    path: Path
    identity: tuple[int, int]


class FileSource(Source):
    """Polls a directory; each matching file (or each message of a batch file) goes to the channel."""

    scheme = "file"
    Options = FileSourceOptions
    options: FileSourceOptions

    def __init__(
        self, url: SplitResult, options: Any, receiver: Receiver, app: AppConfig, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(url, options, receiver, app, tls)
        self.directory = app.resolve(url_directory(url))
        self.done_dir = self.directory / self.options.done_dir
        self.error_dir = self.directory / self.options.error_dir
        self._scheduler: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()
        self._poll_task: asyncio.Task[int] | None = None
        self._stopping = False
        self._progress: dict[Path, _Progress] = {}
        # received but could not be moved away: not read again while unchanged (no duplicates)
        self._stuck: dict[Path, tuple[int, int]] = {}

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        return _check_file_url(url)

    def describe(self) -> str:
        return f"file://{self.directory} ({self.options.pattern})"

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_dirs)
        self._stopping = False
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._scheduled_poll,
            "interval",
            seconds=self.options.poll_interval,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),  # first poll right away
            id=f"file-source:{self.directory}",
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("file source watching %s for %s", self.directory, self.options.pattern)

    def up(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    async def stop(self) -> None:
        """Stop polling; a file being handled is finished first, so it is never left half-moved."""
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)  # done by the loop soon after: let it run
            self._scheduler = None
            await asyncio.sleep(0)
        task = self._poll_task
        if task is not None and not task.done():
            await asyncio.wait([task])

    def _prepare_dirs(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for target in (self.done_dir, self.error_dir):
            if target.resolve() == self.directory.resolve():
                raise ChannelError(f"{target} is the watched directory itself; files would be read again")

    async def _scheduled_poll(self) -> None:
        """The scheduler's job. The poll runs in its own task, shielded: shutting the scheduler down
        cancels this job, and a cancelled poll could store a message without moving its file."""
        if self._stopping:
            return
        task = self._poll_task
        if task is None or task.done():
            task = self._poll_task = asyncio.create_task(self.poll())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not self._stopping:
                raise

    async def poll(self) -> int:
        """Handle every file that is ready; returns how many left the inbox."""
        async with self._lock:
            try:
                ready = await asyncio.to_thread(self._ready_files)
            except OSError as exc:
                log.warning("file source %s: cannot list the directory: %s", self.directory, _brief(exc))
                return 0
            handled = 0
            for item in ready:
                if self._stopping:
                    break
                taken = await self._take(item)
                if taken is None:  # the channel cannot take messages now: keep order, retry next poll
                    break
                handled += taken
            return handled

    def _ready_files(self) -> list[_Ready]:
        now = time.time()
        out: list[_Ready] = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not fnmatchcase(entry.name, self.options.pattern):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                if now - st.st_mtime < self.options.min_age:
                    continue
                path = Path(entry.path)
                identity = (st.st_mtime_ns, st.st_size)
                if self._stuck.get(path) == identity:
                    continue
                out.append(_Ready(path, identity))
        out.sort(key=lambda r: r.path.name)
        return out

    async def _take(self, item: _Ready) -> int | None:
        """Read one file into the channel and move it; 1 moved, 0 skipped, None: channel unavailable."""
        path = item.path
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.warning("file source: cannot read %s: %s", path.name, _brief(exc))
            return 0
        pieces = split_batch(raw) if self.options.split_batch else [raw]
        progress = self._progress.pop(path, None)
        if progress is None or progress.identity != item.identity:
            progress = _Progress(item.identity)
        content_type = ContentType(self.options.content_type)
        while progress.done < len(pieces):
            try:
                outcome, _ = await self.receiver.receive(
                    pieces[progress.done], peer=f"file:{path}", content_type=content_type
                )
            except Exception as exc:  # the channel could not store it: the file stays for the next poll
                if progress.done:
                    self._progress[path] = progress
                log.warning(
                    "file source: %s not taken (%s); left in place for the next poll", path.name, _brief(exc)
                )
                return None
            progress.done += 1
            if outcome.status not in _OK:
                progress.failures.append(_failure_line(outcome, progress.done, len(pieces)))
        await self._file_away(item, progress, len(pieces))
        return 1

    async def _file_away(self, item: _Ready, progress: _Progress, count: int) -> None:
        path = item.path
        target = self.error_dir if progress.failures else self.done_dir
        try:
            moved = await asyncio.to_thread(_move_without_overwrite, path, target, bool(progress.failures))
        except OSError as exc:
            self._stuck[path] = item.identity
            log.error(
                "file source: %s was received but cannot be moved to %s (%s); it is not read "
                "again while unchanged, until the engine restarts",
                path.name,
                target,
                _brief(exc),
            )
            return
        self._stuck.pop(path, None)
        if progress.failures:
            note = _error_note(progress.failures, count)
            try:
                await asyncio.to_thread(_write_note, moved.with_name(moved.name + ".error.txt"), note)
            except OSError as exc:
                log.error("file source: cannot write the error note for %s: %s", moved.name, _brief(exc))
            log.warning(
                "file source: %s -> %s (%d of %d messages not accepted)",
                path.name,
                moved,
                len(progress.failures),
                count,
            )
        else:
            log.info("file source: %s -> %s", path.name, moved)


def _failure_line(outcome: Outcome, number: int, count: int) -> str:
    reason = outcome.error.text if outcome.error is not None else "(no reason given)"
    if count == 1:
        return f"status: {outcome.status.value}\nmessage_id: {outcome.message_id}\nreason: {reason}"
    return f"message {number} of {count}: {outcome.status.value} (message_id {outcome.message_id}): {reason}"


def _error_note(failures: list[str], count: int) -> str:
    text = "\n".join(failures) + "\n"
    accepted = count - len(failures)
    if count > 1 and accepted:
        text += (
            f"{accepted} of {count} messages were accepted or filtered; "
            "sending this whole file again would store them twice.\n"
        )
    return text


def _free_name(directory: Path, name: str, with_note: bool) -> Path:
    """``name`` in ``directory``, or ``stem.N.suffix`` for the first N not taken (never overwrite)."""
    base = Path(name)
    candidate = directory / name
    n = 0
    while os.path.lexists(candidate) or (with_note and os.path.lexists(f"{candidate}.error.txt")):
        n += 1
        candidate = directory / f"{base.stem}.{n}{base.suffix}"
    return candidate


def _move_without_overwrite(src: Path, directory: Path, with_note: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    dst = _free_name(directory, src.name, with_note)
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(src, dst)  # done/error on another file system: copy, then remove
    return dst


def _write_note(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8") as fh:
        fh.write(text)


# --------------------------------------------------------------------------------------------------
# destination

PLACEHOLDERS = ("channel", "destination", "message_id", "control_id", "date")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_PART = 100  # characters kept of one placeholder value; file names are limited to 255 bytes


class FileDestinationOptions(Options):
    filename: str = Field(
        "{channel}-{message_id}.hl7",
        description=(
            "name of each file; placeholders {channel}, {destination}, {message_id}, {control_id} and "
            "{date} (YYYYMMDD, UTC); characters other than A-Z a-z 0-9 . _ - in their values become _"
        ),
    )
    charset: str | None = Field(None, description="charset of the files; empty = as received")
    fsync: bool = Field(
        True,
        description="flush each file and its directory to disk before the delivery "
        "counts as done (survives a power cut)",
    )

    @field_validator("filename")
    @classmethod
    def _template(cls, value: str) -> str:
        if not value or any(sep in value for sep in ("/", "\\", "\0")):
            raise ValueError("filename is a file name: it cannot be empty or contain a path separator")
        if value.startswith("."):
            raise ValueError("filename cannot start with '.': hidden names are used for files being written")
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise ValueError(f"bad filename template {value!r}: {exc}") from None
        for name in names:
            if name not in PLACEHOLDERS:
                raise ValueError(
                    f"unknown placeholder {{{name}}} in filename "
                    f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
                )
        if not {"message_id", "control_id"} & set(names):
            raise ValueError(
                "filename needs {message_id} or {control_id}, "
                "or every message would overwrite the previous one"
            )
        try:
            value.format(**dict.fromkeys(PLACEHOLDERS, "x"))
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"bad filename template {value!r}: {exc}") from None
        return value

    @field_validator("charset")
    @classmethod
    def _charset(cls, value: str | None) -> str | None:
        if value is not None and codec_for(value) is None:
            raise ValueError(f"unknown charset {value!r}")
        return value


def sanitise(value: str) -> str:
    """A placeholder value made safe for a file name: only ``[A-Za-z0-9._-]``, no leading dot."""
    safe = _UNSAFE.sub("_", value)[:_MAX_PART]
    stripped = safe.lstrip(".")
    return "_" * (len(safe) - len(stripped)) + stripped


class FileDestination(Destination):
    """Writes each delivery to its own file, atomically; the same delivery always gets the same name."""

    scheme = "file"
    Options = FileDestinationOptions
    idempotent = True
    options: FileDestinationOptions

    def __init__(
        self,
        url: SplitResult,
        options: Any,
        app: AppConfig,
        tls: ssl.SSLContext | None,
        channel_id: str,
        destination_id: str,
    ) -> None:
        super().__init__(url, options, app, tls, channel_id, destination_id)
        self.directory = app.resolve(url_directory(url))
        self._codec = codec_for(self.options.charset) if self.options.charset else None
        self._unsynced = False  # renames not yet made durable by a directory fsync

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        return _check_file_url(url)

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        except OSError as exc:  # may be a share not mounted yet: sends fail (and retry) until it is
            log.warning(
                "file destination %s: cannot create %s: %s", self.destination_id, self.directory, _brief(exc)
            )

    def filename_for(self, out: Outbound) -> str:
        values = {
            "channel": out.channel_id,
            "destination": self.destination_id,
            "message_id": str(out.message_id),
            "control_id": out.control_id,
            "date": datetime.now(UTC).strftime("%Y%m%d"),
        }
        return self.options.filename.format(**{k: sanitise(v) for k, v in values.items()})

    async def send(self, out: Outbound) -> SendResult:
        payload = out.payload(self._codec)
        name = self.filename_for(out)
        try:
            await asyncio.to_thread(
                atomic_write, self.directory / name, payload, fsync=self.options.fsync, sync_dir=False
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DeliveryError(f"cannot write {name} in {self.directory}: {reason}") from exc
        self._unsynced = True
        return SendResult(sent=payload)

    async def flush(self) -> None:
        """One directory fsync for the batch of renames, before their statuses are committed."""
        if self._unsynced and self.options.fsync:
            await asyncio.to_thread(sync_directory, self.directory)
        self._unsynced = False


def atomic_write(path: Path, data: bytes, *, fsync: bool = True, sync_dir: bool = True) -> None:
    """Write ``data`` so that ``path`` holds either its old content or all of ``data``, never a part.

    The temporary file is hidden (leading dot) in the same directory, so ``os.replace`` is a rename on
    one file system and readers that skip dot files never see it.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask, like open()
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync and sync_dir:
        sync_directory(path.parent)  # the rename itself reaches the disk


def sync_directory(path: Path) -> None:
    """fsync a directory, so that renames into it reach the disk."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def make_directories(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each new name synced in its parent, so that a file
    renamed into it survives a crash with the folders that hold it."""
    if folder.is_dir():
        return
    make_directories(folder.parent)
    try:
        folder.mkdir()
    except FileExistsError:  # made meanwhile by another thread or process
        return
    sync_directory(folder.parent)

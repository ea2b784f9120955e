"""The XDS.b repository's document bytes: a content-addressed file store under the data directory.

Each document is a file named after the SHA-256 of its bytes (``ab/cd/abcd…``), written to a hidden
temporary file beside it, fsynced, renamed into place and its directory fsynced: a crash leaves the
old state or the whole document, never a part, and identical documents are stored once. The address
is SHA-256, not XDS's SHA-1 (ITI TF-3 §4.2.3.2 ``hash``), which is also computed: two documents made
to share a SHA-1 must not share a file.

Reading verifies: ``read`` hashes what it read and refuses bytes whose SHA-256 is not their name
(a disk or an operator changed them), so the repository never serves a document other than the one
it registered. Writing takes an iterable of chunks, so an MTOM part can be stored as it arrives.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.connectors.file import sync_directory

__all__ = ["BlobCorrupted", "BlobStore", "BlobWriter", "StoredBlob"]


class BlobCorrupted(OSError):
    """A stored document whose bytes no longer match its address."""


@dataclass(frozen=True)
class StoredBlob:
    address: str  # SHA-256, lower-case hex: the file's name
    sha1: str  # lower-case hex: the XDS hash
    size: int


class BlobWriter:
    """One document on its way into the store: a hidden temporary file until ``commit``."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        store.root.mkdir(parents=True, exist_ok=True)
        self._tmp = store.root / f".incoming-{secrets.token_hex(8)}.tmp"
        self._out: BinaryIO | None = open(self._tmp, "wb")  # noqa: SIM115 - closed by commit/abort
        self._sha256 = hashlib.sha256()
        self._sha1 = hashlib.sha1()  # XDS hash: SHA-1
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._out is None:
            raise ValueError("the document was already committed or abandoned")
        self._sha256.update(data)
        self._sha1.update(data)
        self.size += len(data)
        self._out.write(data)

    def commit(self) -> StoredBlob:
        """Make the document durable under its address (blocking: fsync); the same bytes already
        stored are kept once."""
        out, self._out = self._out, None
        if out is None:
            raise ValueError("the document was already committed or abandoned")
        try:
            out.flush()
            os.fsync(out.fileno())
            out.close()
            blob = StoredBlob(self._sha256.hexdigest(), self._sha1.hexdigest(), self.size)
            final = self.store.path(blob.address)
            if final.exists():  # the same document again: stored once
                self._tmp.unlink()
                return blob
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp, final)
            sync_directory(final.parent)
            return blob
        except BaseException:
            out.close()
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            raise

    def abort(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            out.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, address: str) -> Path:
        if len(address) != 64 or not all(c in "0123456789abcdef" for c in address):
            raise ValueError(f"{address!r} is not a SHA-256 address")
        return self.root / address[:2] / address[2:4] / address

    def writer(self) -> BlobWriter:
        """A document to be written chunk by chunk (an MTOM part as it arrives), then ``commit``ted."""
        return BlobWriter(self)

    def put(self, chunks: Iterable[bytes] | bytes) -> StoredBlob:
        """Store the bytes (durably, before returning) and say where and what they are."""
        if isinstance(chunks, bytes | bytearray | memoryview):
            chunks = [bytes(chunks)]
        writer = self.writer()
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    def read(self, address: str) -> bytes:
        """The document's bytes, verified against their address; BlobCorrupted when they differ,
        FileNotFoundError when there is no such document."""
        data = self.path(address).read_bytes()
        if hashlib.sha256(data).hexdigest() != address:
            raise BlobCorrupted(f"stored document {address} does not match its SHA-256: it was altered")
        return data

    def exists(self, address: str) -> bool:
        return self.path(address).is_file()

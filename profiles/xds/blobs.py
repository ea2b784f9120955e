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

from engine.connectors.file import sync_directory

__all__ = ["BlobCorrupted", "BlobStore", "StoredBlob"]

_CHUNK = 1 << 20


class BlobCorrupted(OSError):
    """A stored document whose bytes no longer match its address."""


@dataclass(frozen=True)
class StoredBlob:
    address: str  # SHA-256, lower-case hex: the file's name
    sha1: str  # lower-case hex: the XDS hash
    size: int


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, address: str) -> Path:
        if len(address) != 64 or not all(c in "0123456789abcdef" for c in address):
            raise ValueError(f"{address!r} is not a SHA-256 address")
        return self.root / address[:2] / address[2:4] / address

    def put(self, chunks: Iterable[bytes] | bytes) -> StoredBlob:
        """Store the bytes (durably, before returning) and say where and what they are."""
        if isinstance(chunks, bytes | bytearray | memoryview):
            chunks = [bytes(chunks)]
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".incoming-{secrets.token_hex(8)}.tmp"
        sha256, sha1, size = hashlib.sha256(), hashlib.sha1(), 0  # XDS hash: SHA-1
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    sha256.update(chunk)
                    sha1.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            blob = StoredBlob(sha256.hexdigest(), sha1.hexdigest(), size)
            final = self.path(blob.address)
            if final.exists():  # the same document again: stored once
                tmp.unlink()
                return blob
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            sync_directory(final.parent)
            return blob
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def read(self, address: str) -> bytes:
        """The document's bytes, verified against their address; BlobCorrupted when they differ,
        FileNotFoundError when there is no such document."""
        data = self.path(address).read_bytes()
        if hashlib.sha256(data).hexdigest() != address:
            raise BlobCorrupted(f"stored document {address} does not match its SHA-256: it was altered")
        return data

    def exists(self, address: str) -> bool:
        return self.path(address).is_file()

"""The repository's document store: content-addressed, atomic, stored once, verified on read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiles.xds.blobs import BlobCorrupted, BlobStore

CDA = "<ClinicalDocument xmlns='urn:hl7-org:v3'><title>出院小结</title></ClinicalDocument>".encode()


def test_a_document_is_stored_under_its_sha256_with_its_xds_hash_and_size(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "documents")
    blob = store.put(CDA)
    assert blob.address == hashlib.sha256(CDA).hexdigest()
    assert blob.sha1 == hashlib.sha1(CDA).hexdigest() and blob.size == len(CDA)
    assert store.read(blob.address) == CDA
    assert store.path(blob.address).relative_to(tmp_path / "documents").parts[:2] == (
        blob.address[:2],
        blob.address[2:4],
    )
    assert store.put(CDA) == blob  # the same document again: one file
    assert [p for p in (tmp_path / "documents").rglob("*") if p.is_file()] == [store.path(blob.address)]


def test_chunks_are_hashed_as_they_are_written(tmp_path: Path) -> None:
    chunks = [bytes([n]) * 100_000 for n in range(20)]
    blob = BlobStore(tmp_path).put(iter(chunks))
    assert blob.size == 2_000_000 and blob.sha1 == hashlib.sha1(b"".join(chunks)).hexdigest()


def test_an_altered_file_is_refused_on_read(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob = store.put(CDA)
    store.path(blob.address).write_bytes(CDA.replace("出院".encode(), "入院".encode()))
    with pytest.raises(BlobCorrupted, match="was altered"):
        store.read(blob.address)
    with pytest.raises(FileNotFoundError):
        store.read("0" * 64)
    with pytest.raises(ValueError, match="not a SHA-256"):
        store.read("../../etc/passwd")


def test_a_write_that_fails_halfway_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"half a document"
        raise ConnectionResetError("the sender went away")

    store = BlobStore(tmp_path)
    with pytest.raises(ConnectionResetError):
        store.put(broken())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

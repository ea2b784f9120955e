"""The XDS.b Document Repository: ITI-41 stores documents and registers them, ITI-43 gives them back
(ITI TF-2 §3.41.4.1.3, §3.43.4.1.3; xds.md §4 rows 18-21, §5).

ITI-41, in two halves:

* ``provide`` (off the event loop, no database): the documents of the request matched to their
  DocumentEntries, each document's bytes in the content store (an MTOM part is there already: the
  SOAP source wrote it as it arrived; inline base64 is decoded and written now), its SHA-1 and size
  checked against what the metadata says (XDSRepositoryMetadataError when they differ) and set on
  the entry with this repository's uniqueId, the metadata checked against the schema and the
  checklist. A DocumentEntry without its document is XDSMissingDocument, a document without a
  DocumentEntry XDSMissingDocumentMetadata.
* ``register_in`` (on the writer, inside the transaction that stores the message): a uniqueId this
  repository holds with other bytes is XDSNonIdenticalHash (or ...Size); then the registry
  registers the submission in the same transaction, and its errors are the answer's. Nothing is
  written unless everything is accepted; the same document sent again is accepted and kept once.

ITI-43 (``retrieve``, on a read thread): each document asked for, read back from the content store
and verified against its SHA-256 there and its registered SHA-1 and size.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from urllib.parse import unquote

from lxml import etree
from sqlalchemy import Connection, select

from engine.store.db import utcnow
from engine.store.writer import insert_rows
from ihe._ebxml import DocumentEntry, RegistryError, Submission, read_submission, set_slot
from ihe._mtom import XOP
from ihe._soap import SoapFault
from ihe._xsd import schema_errors, xds_schema
from ihe.iti43 import XDSB, DocumentRequest
from profiles.xds.blobs import BlobCorrupted, BlobStore, StoredBlob
from profiles.xds.package import Package, PartRef
from profiles.xds.registry import Registered, Registry
from profiles.xds.schema import repository_documents

__all__ = ["Provided", "Repository", "RetrievedDocument"]

_B = f"{{{XDSB}}}"
_REPOSITORY_METADATA = "XDSRepositoryMetadataError"


@dataclass
class Provided:
    """An ITI-41 request read and checked: the submission, each entry's stored bytes, the errors."""

    submission: Submission | None
    blobs: dict[str, StoredBlob] = field(default_factory=dict)  # DocumentEntry id -> its document
    errors: list[RegistryError] = field(default_factory=list)

    def entries(self) -> list[tuple[DocumentEntry, StoredBlob]]:
        assert self.submission is not None
        return [(e, self.blobs[e.id]) for e in self.submission.documents if e.id in self.blobs]


@dataclass(frozen=True)
class RetrievedDocument:
    request: DocumentRequest
    mime_type: str
    content: bytes
    blob: StoredBlob


class Repository:
    def __init__(self, unique_id: str, blobs: BlobStore, registry: Registry) -> None:
        self.unique_id = unique_id
        self.blobs = blobs
        self.registry = registry

    # -- ITI-41 ---------------------------------------------------------------------------------
    def provide(self, body: etree._Element, package: Package) -> Provided:
        """Read a ProvideAndRegisterDocumentSetRequest (blocking: it may write documents)."""
        documents: dict[str, StoredBlob] = {}
        errors: list[RegistryError] = []
        for element in body.iterfind(f"{_B}Document"):
            doc_id = element.get("id", "")
            if doc_id in documents:
                errors.append(RegistryError(_REPOSITORY_METADATA, "two Documents have this id", doc_id))
                continue
            documents[doc_id] = self._document(element, package, doc_id)
            element.text = None  # validated (and never stored) without its content
        schema = schema_errors(xds_schema(), body)
        if schema:
            errors += [RegistryError(_REPOSITORY_METADATA, f"schema: {e}") for e in schema]
            return Provided(None, errors=errors)
        submission, found = read_submission(body, registry=False)
        errors += found
        provided = Provided(submission, errors=errors)
        entries = {e.id: e for e in submission.documents}
        for doc_id in documents:
            if doc_id not in entries:
                errors.append(
                    RegistryError(
                        "XDSMissingDocumentMetadata", "a Document has no DocumentEntry of its id", doc_id
                    )
                )
        for entry in submission.documents:
            blob = documents.get(entry.id)
            if blob is None:
                errors.append(
                    RegistryError(
                        "XDSMissingDocument", "the DocumentEntry's document is not in the request", entry.id
                    )
                )
                continue
            self._describe(entry, blob, errors)
            provided.blobs[entry.id] = blob
        return provided

    def _document(self, element: etree._Element, package: Package, doc_id: str) -> StoredBlob:
        include = element.find(f"{{{XOP}}}Include")
        if include is not None:
            href = include.get("href", "")
            cid = _content_id(href)
            part = package.parts.get(cid) if href.startswith("cid:") else None
            element.remove(include)
            if part is None:
                raise SoapFault(
                    "Sender", f"Document {doc_id}: xop:Include {href!r} names no part of the MTOM package"
                )
            return part.blob if isinstance(part, PartRef) else self.blobs.put(part)
        try:
            content = base64.b64decode("".join((element.text or "").split()), validate=True)
        except (binascii.Error, ValueError):
            raise SoapFault("Sender", f"Document {doc_id}: its content is not base64") from None
        return self.blobs.put(content)

    def _describe(self, entry: DocumentEntry, blob: StoredBlob, errors: list[RegistryError]) -> None:
        """Check the hash and size the entry gives against the bytes; give them, and our id, to it."""
        given_hash, given_size = entry.slot("hash"), entry.slot("size")
        if given_hash and given_hash.lower() != blob.sha1:
            errors.append(
                RegistryError(
                    _REPOSITORY_METADATA,
                    f"hash {given_hash} is not the SHA-1 of the document sent ({blob.sha1})",
                    entry.id,
                )
            )
        if given_size and given_size != str(blob.size):
            errors.append(
                RegistryError(
                    _REPOSITORY_METADATA,
                    f"size {given_size} is not the size of the document sent ({blob.size} bytes)",
                    entry.id,
                )
            )
        set_slot(entry, "hash", blob.sha1)
        set_slot(entry, "size", str(blob.size))
        set_slot(entry, "repositoryUniqueId", self.unique_id)

    def register_in(self, conn: Connection, provided: Provided, message_id: int | None) -> Registered:
        """Store and register (inside the message's transaction): all of it or nothing."""
        if provided.errors or provided.submission is None:
            return Registered(errors=list(provided.errors))
        entries = provided.entries()
        held = {
            r.unique_id: r
            for r in conn.execute(
                select(
                    repository_documents.c.unique_id, repository_documents.c.hash, repository_documents.c.size
                ).where(repository_documents.c.unique_id.in_([e.unique_id for e, _ in entries]))
            )
        }
        errors: list[RegistryError] = []
        for entry, blob in entries:
            row = held.get(entry.unique_id)
            if row is not None and row.hash != blob.sha1:
                errors.append(
                    RegistryError(
                        "XDSNonIdenticalHash",
                        f"document {entry.unique_id} is held with another hash ({row.hash})",
                        entry.id,
                    )
                )
            elif row is not None and row.size != blob.size:
                errors.append(
                    RegistryError(
                        "XDSNonIdenticalSize",
                        f"document {entry.unique_id} is held with another size ({row.size})",
                        entry.id,
                    )
                )
        if errors:
            return Registered(errors=errors)
        registered = self.registry.register(conn, provided.submission, message_id)
        if registered.errors:
            return registered
        now = utcnow()
        rows = [_row(entry, blob, now, message_id) for entry, blob in entries if entry.unique_id not in held]
        if rows:
            insert_rows(conn, [(repository_documents, rows)])
        return registered

    # -- ITI-43 ---------------------------------------------------------------------------------
    def retrieve(
        self, conn: Connection, requests: list[DocumentRequest]
    ) -> tuple[list[RetrievedDocument], list[RegistryError]]:
        """The documents asked for that this repository holds, read and verified; an error for each other."""
        errors: list[RegistryError] = []
        ours = [r for r in requests if r.repository_unique_id == self.unique_id]
        for r in requests:
            if r.repository_unique_id != self.unique_id:
                errors.append(
                    RegistryError(
                        "XDSUnknownRepositoryId",
                        f"repository {r.repository_unique_id or '(none)'} is not this repository "
                        f"({self.unique_id})",
                        r.document_unique_id,
                    )
                )
        t = repository_documents
        rows = {
            r.unique_id: r
            for r in conn.execute(
                select(t.c.unique_id, t.c.address, t.c.hash, t.c.size, t.c.mime_type).where(
                    t.c.unique_id.in_({r.document_unique_id for r in ours})
                )
            )
        }
        found: list[RetrievedDocument] = []
        for r in ours:
            row = rows.get(r.document_unique_id)
            if row is None:
                errors.append(
                    RegistryError(
                        "XDSDocumentUniqueIdError",
                        f"document {r.document_unique_id} is not in this repository",
                        r.document_unique_id,
                    )
                )
                continue
            try:
                content = self.blobs.read(row.address)
                if hashlib.sha1(content).hexdigest() != row.hash or len(content) != row.size:
                    raise BlobCorrupted(f"document {r.document_unique_id} is not the one registered")
            except OSError as exc:  # missing or altered on disk: never served as if it were the document
                errors.append(
                    RegistryError(
                        "XDSRepositoryError",
                        f"document {r.document_unique_id} cannot be read back as stored: "
                        f"{type(exc).__name__}",
                        r.document_unique_id,
                    )
                )
                continue
            found.append(
                RetrievedDocument(r, row.mime_type, content, StoredBlob(row.address, row.hash, row.size))
            )
        return found, errors


def _content_id(href: str) -> str:
    return unquote(href[4:].strip()).strip("<>")


def _row(
    entry: DocumentEntry, blob: StoredBlob, now: dt.datetime, message_id: int | None
) -> dict[str, object]:
    return {
        "unique_id": entry.unique_id,
        "address": blob.address,
        "hash": blob.sha1,
        "size": blob.size,
        "mime_type": entry.mime_type,
        "stored_at": now,
        "message_id": message_id,
    }

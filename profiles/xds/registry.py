"""XDS.b Document Registry: ITI-42 Register Document Set-b into the registry tables (ITI TF-2 §3.42).

``Registry.register`` takes a submission read by ``ihe._ebxml.read_submission`` (the message's own
checks) and does the checks that need the registry, in the order of the checklist (xds.md §4):

* the SubmissionSet's patient is known to the EMPI in the affinity domain (XDSUnknownPatientId);
* a pre-assigned entryUUID already in the registry (XDSRegistryMetadataError);
* a SubmissionSet or Folder uniqueId already registered (XDSDuplicateUniqueIdInRegistry);
* a DocumentEntry uniqueId already registered: the same hash and size is the same document sent
  again and is accepted without a second entry (a retry must not fail); otherwise
  XDSNonIdenticalHash / XDSNonIdenticalSize;
* association ends outside the message must be registered (XDSRegistryError); an RPLC, APND, XFRM
  or XFRM_RPLC target must be an Approved DocumentEntry (XDSRegistryDeprecatedDocumentError when it
  is deprecated) of the same patient (XDSPatientIdDoesNotMatch).

All or nothing: on any error nothing is written. Otherwise symbolic ids become ``urn:uuid:`` ids
everywhere, every object is stored Approved at version 1 with its metadata as answered later, the
targets of RPLC and XFRM_RPLC are deprecated, and Folders that held a replaced document hold its
replacement too (NIST 12327). The caller's transaction commits it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from sqlalchemy import Connection, select, update

from engine.store.writer import insert_rows
from ihe._ebxml import (
    HAS_MEMBER,
    REFERENCE_IDS,
    RIM,
    STATUS_TYPE,
    Code,
    DocumentEntry,
    Folder,
    RegistryError,
    Submission,
)
from profiles.xds.schema import (
    associations,
    document_codes,
    documents,
    folder_codes,
    folders,
    reference_ids,
    submission_sets,
)

__all__ = ["APPROVED", "DEPRECATED", "STATUS_URN", "Registered", "Registry", "dtm14", "follow_merge"]

# an object's status as its column keeps it; the metadata answered carries the StatusType URN
APPROVED, DEPRECATED = "Approved", "Deprecated"
STATUS_URN = STATUS_TYPE
_IHE = "urn:ihe:iti:2007:AssociationType:"
_REPLACING = {f"{_IHE}RPLC", f"{_IHE}XFRM_RPLC"}
_ON_DOCUMENTS = _REPLACING | {f"{_IHE}APND", f"{_IHE}XFRM"}
_TABLES = (submission_sets, documents, document_codes, reference_ids, folders, folder_codes, associations)

# the EMPI's answer to "who is this affinity-domain patient id": the person's id, None if unknown
PersonOf = Callable[[Connection, str], "int | None"]


@dataclass
class Registered:
    errors: list[RegistryError] = field(default_factory=list)
    uuids: dict[str, str] = field(default_factory=dict)  # symbolic id -> urn:uuid
    resubmitted: list[str] = field(default_factory=list)  # uniqueIds already registered, identical
    deprecated: list[str] = field(default_factory=list)  # entryUUIDs an RPLC replaced


def follow_merge(conn: Connection, merged: int, survivor: int) -> None:
    """ITI-8 A40 merged two persons: their registry entries are the survivor's from now on (found by
    its ids, never again by the subsumed one, which the EMPI no longer knows)."""
    for table in (documents, submission_sets, folders):
        conn.execute(update(table).where(table.c.person_id == merged).values(person_id=survivor))


def dtm14(value: str) -> str | None:
    """A DTM padded to 14 digits, so that text order is time order at every precision."""
    return value.ljust(14, "0") if value else None


def _code(code: Code | None) -> str | None:
    return f"{code.code}^^{code.scheme}" if code is not None else None


class Registry:
    def __init__(self, next_id: Callable[[], int], person_of: PersonOf) -> None:
        self.next_id = next_id
        self.person_of = person_of

    def register(self, conn: Connection, submission: Submission, message_id: int | None) -> Registered:
        out = Registered()
        ss = submission.submission_set
        assert ss is not None, "read_submission reports a submission without a SubmissionSet"
        person = self.person_of(conn, ss.patient_id)
        if person is None:
            out.errors.append(
                RegistryError(
                    "XDSUnknownPatientId", f"patient id {ss.patient_id} is not known to the registry", ss.id
                )
            )
            return out  # every other check would only repeat it
        self._uuids(conn, submission, out)
        self._unique_ids(conn, submission, out)
        self._associations(conn, submission, out, ss.patient_id)
        if out.errors:
            return out
        self._write(conn, submission, out, person, message_id)
        return out

    # -- checks ---------------------------------------------------------------------------------
    def _uuids(self, conn: Connection, submission: Submission, out: Registered) -> None:
        given = [
            i for i in submission.ids() | {a.id for a in submission.associations} if i.startswith("urn:uuid:")
        ]
        for table in (documents, submission_sets, folders, associations):
            for taken in conn.execute(
                select(table.c.entry_uuid).where(table.c.entry_uuid.in_(given))
            ).scalars():
                out.errors.append(
                    RegistryError(
                        "XDSRegistryMetadataError", f"entryUUID {taken} is already in the registry", taken
                    )
                )
        for object_id in submission.ids() | {a.id for a in submission.associations}:
            out.uuids[object_id] = (
                object_id if object_id.startswith("urn:uuid:") else f"urn:uuid:{uuid.uuid4()}"
            )

    def _unique_ids(self, conn: Connection, submission: Submission, out: Registered) -> None:
        ss = submission.submission_set
        assert ss is not None
        if conn.execute(
            select(submission_sets.c.id).where(submission_sets.c.unique_id == ss.unique_id)
        ).first():
            out.errors.append(
                RegistryError(
                    "XDSDuplicateUniqueIdInRegistry",
                    f"SubmissionSet uniqueId {ss.unique_id} is registered",
                    ss.id,
                )
            )
        for folder in submission.folders:
            if conn.execute(select(folders.c.id).where(folders.c.unique_id == folder.unique_id)).first():
                out.errors.append(
                    RegistryError(
                        "XDSDuplicateUniqueIdInRegistry",
                        f"Folder uniqueId {folder.unique_id} is registered",
                        folder.id,
                    )
                )
        for entry in submission.documents:
            known = conn.execute(
                select(documents.c.hash, documents.c.size).where(documents.c.unique_id == entry.unique_id)
            ).first()
            if known is None:
                continue
            sent_hash, sent_size = entry.slot("hash").lower(), entry.slot("size")
            if known.hash and sent_hash and known.hash != sent_hash:
                out.errors.append(
                    RegistryError(
                        "XDSNonIdenticalHash",
                        f"uniqueId {entry.unique_id} is registered with another hash ({known.hash})",
                        entry.id,
                    )
                )
            elif known.size is not None and sent_size and int(known.size) != int(sent_size):
                out.errors.append(
                    RegistryError(
                        "XDSNonIdenticalSize",
                        f"uniqueId {entry.unique_id} is registered with size {known.size}",
                        entry.id,
                    )
                )
            else:
                out.resubmitted.append(entry.unique_id)

    def _associations(self, conn: Connection, submission: Submission, out: Registered, patient: str) -> None:
        outside = submission.external_ends()
        found: dict[str, Any] = {}
        if outside:
            for row in conn.execute(
                select(documents.c.entry_uuid, documents.c.status, documents.c.patient_id).where(
                    documents.c.entry_uuid.in_(outside)
                )
            ):
                found[row.entry_uuid] = row
            for table in (folders, submission_sets):
                for row in conn.execute(
                    select(table.c.entry_uuid, table.c.status, table.c.patient_id).where(
                        table.c.entry_uuid.in_(outside)
                    )
                ):
                    found[row.entry_uuid] = row
        for a in submission.associations:
            for end in (a.source, a.target):
                if end in outside and end not in found:
                    out.errors.append(
                        RegistryError(
                            "XDSRegistryError",
                            f"association end {end} is neither in the submission nor registered",
                            a.id,
                        )
                    )
            if a.type in _ON_DOCUMENTS and a.target in found:
                target = found[a.target]
                if target.status != APPROVED:
                    out.errors.append(
                        RegistryError(
                            "XDSRegistryDeprecatedDocumentError",
                            f"{a.target} is deprecated: it cannot be {a.type[len(_IHE) :]}'d",
                            a.id,
                        )
                    )
                if target.patient_id != patient:
                    out.errors.append(
                        RegistryError(
                            "XDSPatientIdDoesNotMatch", f"{a.target} belongs to another patient", a.id
                        )
                    )

    # -- writing --------------------------------------------------------------------------------
    def _write(
        self, conn: Connection, submission: Submission, out: Registered, person: int, message_id: int | None
    ) -> None:
        ss = submission.submission_set
        assert ss is not None
        now = dt.datetime.now(dt.UTC)
        ids = out.uuids
        rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in _TABLES}
        skipped = {e.id for e in submission.documents if e.unique_id in out.resubmitted}
        rows[submission_sets.name].append(
            {
                "id": self.next_id(),
                "entry_uuid": ids[ss.id],
                "unique_id": ss.unique_id,
                "status": APPROVED,
                "patient_id": ss.patient_id,
                "person_id": person,
                "source_id": ss.source_id,
                "submission_time": dtm14(ss.submission_time),
                "content_type_code": _code(ss.content_type),
                "author_persons": "\n".join(a.person for a in ss.authors if a.person) or None,
                "registered_at": now,
                "message_id": message_id,
                "metadata": _stored(ss.element, ids),
            }
        )
        for entry in submission.documents:
            if entry.id not in skipped:
                self._document_rows(entry, rows, ids, ss.id, person, now, message_id)
        stamp = now.strftime("%Y%m%d%H%M%S")
        for folder in submission.folders:
            self._folder_rows(folder, rows, ids, person, stamp, now, message_id)
        for a in submission.associations:
            if a.target in skipped or a.source in skipped:
                continue  # the identical document sent again: its first registration stands
            rows[associations.name].append(
                {
                    "id": self.next_id(),
                    "entry_uuid": ids[a.id],
                    "type": a.type,
                    "source_uuid": ids.get(a.source, a.source),
                    "target_uuid": ids.get(a.target, a.target),
                    "status": APPROVED,
                    "registered_at": now,
                    "message_id": message_id,
                    "metadata": _stored(a.element, ids, association_type=a.type),
                }
            )
        insert_rows(conn, [(t, rows[t.name]) for t in _TABLES])
        outside = submission.external_ends()
        grown = {a.source for a in submission.associations if a.type == HAS_MEMBER and a.source in outside}
        self._replacements(conn, submission, out, now, message_id, grown)
        if grown:  # a registered Folder given documents: its lastUpdateTime is now (TF-3 §4.2.3.4.4)
            conn.execute(
                update(folders).where(folders.c.entry_uuid.in_(grown)).values(last_update_time=stamp)
            )

    def _document_rows(
        self,
        entry: DocumentEntry,
        rows: dict[str, list[dict[str, Any]]],
        ids: dict[str, str],
        ss_id: str,
        person: int,
        now: dt.datetime,
        message_id: int | None,
    ) -> None:
        row_id = self.next_id()
        entry_uuid = ids[entry.id]
        one = {name: _code(codes[0]) for name, codes in entry.codes.items() if codes}
        rows[documents.name].append(
            {
                "id": row_id,
                "entry_uuid": entry_uuid,
                "lid": entry_uuid,
                "version": 1,
                "status": APPROVED,
                "patient_id": entry.patient_id,
                "person_id": person,
                "unique_id": entry.unique_id,
                "object_type": entry.object_type,
                "mime_type": entry.mime_type,
                "hash": entry.slot("hash").lower() or None,
                "size": int(entry.slot("size")) if entry.slot("size") else None,
                "repository_unique_id": entry.slot("repositoryUniqueId") or None,
                "creation_time": dtm14(entry.slot("creationTime")),
                "service_start_time": dtm14(entry.slot("serviceStartTime")),
                "service_stop_time": dtm14(entry.slot("serviceStopTime")),
                "class_code": one.get("classCode"),
                "type_code": one.get("typeCode"),
                "format_code": one.get("formatCode"),
                "facility_type_code": one.get("healthcareFacilityTypeCode"),
                "practice_setting_code": one.get("practiceSettingCode"),
                "author_persons": "\n".join(a.person for a in entry.authors if a.person) or None,
                "submission_set_uuid": ids[ss_id],
                "registered_at": now,
                "message_id": message_id,
                "metadata": _stored(entry.element, ids, lid=entry_uuid),
            }
        )
        for attribute in ("eventCodeList", "confidentialityCode"):
            for code in {c for c in (_code(x) for x in entry.codes.get(attribute, [])) if c}:
                rows[document_codes.name].append(
                    {"document_id": row_id, "attribute": attribute, "code": code}
                )
        for value in set(entry.slots.get(REFERENCE_IDS, [])):
            rows[reference_ids.name].append({"document_id": row_id, "value": value[:256]})

    def _folder_rows(
        self,
        folder: Folder,
        rows: dict[str, list[dict[str, Any]]],
        ids: dict[str, str],
        person: int,
        stamp: str,
        now: dt.datetime,
        message_id: int | None,
    ) -> None:
        row_id = self.next_id()
        rows[folders.name].append(
            {
                "id": row_id,
                "entry_uuid": ids[folder.id],
                "lid": ids[folder.id],
                "version": 1,
                "unique_id": folder.unique_id,
                "status": APPROVED,
                "patient_id": folder.patient_id,
                "person_id": person,
                "last_update_time": stamp,
                "registered_at": now,
                "message_id": message_id,
                "metadata": _stored(folder.element, ids, lid=ids[folder.id]),
            }
        )
        for code in {c for c in (_code(x) for x in folder.codes) if c}:
            rows[folder_codes.name].append({"folder_id": row_id, "code": code})

    def _replacements(
        self,
        conn: Connection,
        submission: Submission,
        out: Registered,
        now: dt.datetime,
        message_id: int | None,
        grown: set[str],
    ) -> None:
        """RPLC / XFRM_RPLC: the replaced entry is deprecated, and the folders that held it hold the
        replacement too (added to ``grown``)."""
        for a in (a for a in submission.associations if a.type in _REPLACING):
            new, old = out.uuids.get(a.source, a.source), a.target
            conn.execute(update(documents).where(documents.c.entry_uuid == old).values(status=DEPRECATED))
            out.deprecated.append(old)
            holders = conn.execute(
                select(associations.c.source_uuid)
                .join(folders, folders.c.entry_uuid == associations.c.source_uuid)
                .where(associations.c.target_uuid == old, associations.c.type == HAS_MEMBER)
            ).scalars()
            extra = []
            for folder_uuid in holders:
                entry_uuid = f"urn:uuid:{uuid.uuid4()}"
                extra.append(
                    {
                        "id": self.next_id(),
                        "entry_uuid": entry_uuid,
                        "type": HAS_MEMBER,
                        "source_uuid": folder_uuid,
                        "target_uuid": new,
                        "status": APPROVED,
                        "registered_at": now,
                        "message_id": message_id,
                        "metadata": _has_member(entry_uuid, folder_uuid, new),
                    }
                )
                grown.add(folder_uuid)
            insert_rows(conn, [(associations, extra)])


def _has_member(entry_uuid: str, source: str, target: str) -> str:
    """The metadata of an association the registry makes itself (a Folder holding a replacement)."""
    element = etree.Element(
        f"{{{RIM}}}Association",
        nsmap={"rim": RIM},
        id=entry_uuid,
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association",
        associationType=HAS_MEMBER,
        sourceObject=source,
        targetObject=target,
        status=STATUS_URN + APPROVED,
    )
    return str(etree.tostring(element, encoding="unicode"))


def _stored(
    element: etree._Element,
    ids: dict[str, str],
    *,
    lid: str | None = None,
    association_type: str | None = None,
) -> str:
    """The object as the registry answers it: symbolic ids resolved, status Approved, its lid."""
    copy = etree.fromstring(etree.tostring(element))
    for node in copy.iter():
        for attribute in ("id", "classifiedObject", "registryObject", "sourceObject", "targetObject"):
            value = node.get(attribute)
            if value is not None and value in ids:
                node.set(attribute, ids[value])
            elif attribute == "id" and value is not None and not value.startswith("urn:uuid:"):
                node.set("id", f"urn:uuid:{uuid.uuid4()}")  # a Classification's or ExternalIdentifier's own
    copy.set("status", STATUS_URN + APPROVED)
    if lid is not None:
        copy.set("lid", lid)
    if association_type is not None:
        copy.set("associationType", association_type)  # the full URN, whatever short form was sent
    return str(etree.tostring(copy, encoding="unicode"))

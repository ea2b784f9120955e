"""The registry's DocumentEntries as the web console shows them (``profiles.xds.console``): a
patient's entries newest first, one entry with its associations, a held document's bytes as text.

Read-only, on the registry's tables: a patient's entries by the EMPI's person (the index
``ix_xds_documents_person_status``, as ITI-18 FindDocuments finds them: whichever of the person's ids
they were registered under), or by the patient id as registered when the EMPI does not know it
(``ix_xds_documents_patient``). Everything an entry shows that is not a column (title, code display
names, authors, confidentiality) is read from its stored ebRIM metadata.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree
from sqlalchemy import Connection, and_, func, or_, select

from ihe._ebxml import DE_AUTHOR, DE_CODES, HAS_MEMBER, ON_DEMAND, RIM
from profiles.xds.registry import APPROVED, DEPRECATED
from profiles.xds.schema import associations, documents, folders, repository_documents, submission_sets

__all__ = [
    "STATUSES",
    "Cursor",
    "Filters",
    "association_name",
    "decode_text",
    "dtm_iso",
    "entry_detail",
    "find_entries",
    "held_document",
    "is_text",
    "parse_cursor",
]

_R = f"{{{RIM}}}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)  # our own stored metadata
_BY_SCHEME = {scheme: name for name, scheme in DE_CODES.items()}
_IHE = "urn:ihe:iti:2007:AssociationType:"
STATUSES = {"approved": (APPROVED,), "deprecated": (DEPRECATED,), "all": (APPROVED, DEPRECATED)}
_CURSOR = re.compile(r"^(\d{14}|):(\d{1,19})$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]{0,40})["']""")
# GB2312 and GBK documents often hold characters of their supersets: read them as GB 18030
_WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "euc_cn": "gb18030"}

Cursor = tuple[str, int]  # (creation time padded to 14 digits, or "" when none; the row's id)


@dataclass(frozen=True)
class Filters:
    statuses: tuple[str, ...] = (APPROVED, DEPRECATED)
    class_code: str | None = None  # a code, or code^^scheme
    type_code: str | None = None
    since: str | None = None  # creationTime at or after, 14 digits (UTC)
    until: str | None = None  # creationTime before
    limit: int = 50
    before: Cursor | None = None  # the next page: entries after this one in the answer's order


def parse_cursor(text: str) -> Cursor | None:
    """A ``next_before`` of an earlier answer; None when it is not one."""
    m = _CURSOR.match(text)
    return (m[1], int(m[2])) if m else None


def dtm14(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def dtm_iso(value: str | None) -> str | None:
    """An XDS DTM (UTC, any precision) as ISO 8601 text of the same precision: ``2026-12-01``,
    ``2026-12-01T08:30Z``, ``2026-12-01T08:30:05Z``."""
    if not value or not value.isdigit() or len(value) < 4:
        return value or None
    v = value[:14]
    out = v[:4]
    if len(v) >= 6:
        out += f"-{v[4:6]}"
    if len(v) >= 8:
        out += f"-{v[6:8]}"
    if len(v) >= 10:
        out += f"T{v[8:10]}:{v[10:12] if len(v) >= 12 else '00'}"
        if len(v) >= 14:
            out += f":{v[12:14]}"
        out += "Z"
    return out


# -- the stored metadata ----------------------------------------------------------------------------
def _name(element: etree._Element, tag: str = "Name") -> str:
    found = element.find(f"{_R}{tag}/{_R}LocalizedString")
    return found.get("value", "") if found is not None else ""


def _slots(element: etree._Element) -> dict[str, list[str]]:
    return {
        s.get("name", ""): [(v.text or "").strip() for v in s.iterfind(f"{_R}ValueList/{_R}Value")]
        for s in element.iterfind(f"{_R}Slot")
    }


def _code(classification: etree._Element) -> dict[str, str]:
    scheme = (_slots(classification).get("codingScheme") or [""])[0]
    return {
        "code": classification.get("nodeRepresentation", ""),
        "scheme": scheme,
        "display": _name(classification),
    }


def person_name(xcn: str) -> str:
    """An authorPerson (XCN, or free text) as a name to read: 王^小明 -> 王小明, ^Smith^John -> John Smith."""
    if "^" not in xcn:
        return xcn
    parts = xcn.split("^")
    family = parts[1].split("&")[0] if len(parts) > 1 else ""
    given = parts[2] if len(parts) > 2 else ""
    if not family and not given:
        return parts[0]
    if _CJK.search(family + given):
        return f"{family}{given}"
    return " ".join(p for p in (given, family) if p)


def institution_name(xon: str) -> str:
    """An authorInstitution (XON): its organisation name, component 1."""
    return xon.split("^", 1)[0]


def _read(metadata: str) -> dict[str, Any]:
    """What the console shows of an ExtrinsicObject that is not a column."""
    element = etree.fromstring(metadata.encode("utf-8"), _PARSER)
    codes: dict[str, list[dict[str, str]]] = {}
    authors: list[dict[str, Any]] = []
    for c in element.iterfind(f"{_R}Classification"):
        scheme = c.get("classificationScheme", "")
        if scheme == DE_AUTHOR:
            slots = _slots(c)
            person = (slots.get("authorPerson") or [""])[0]
            authors.append(
                {
                    "person": person,
                    "person_name": person_name(person),
                    "institutions": slots.get("authorInstitution", []),
                    "institution_names": [institution_name(i) for i in slots.get("authorInstitution", [])],
                    "roles": slots.get("authorRole", []),
                    "specialties": slots.get("authorSpecialty", []),
                    "telecoms": slots.get("authorTelecommunication", []),
                }
            )
        elif scheme in _BY_SCHEME:
            codes.setdefault(_BY_SCHEME[scheme], []).append(_code(c))
    return {
        "title": _name(element),
        "comments": _name(element, "Description"),
        "slots": _slots(element),
        "codes": codes,
        "authors": authors,
    }


def _first(codes: dict[str, list[dict[str, str]]], name: str) -> dict[str, str] | None:
    found = codes.get(name) or []
    return found[0] if found else None


def _entry(row: Any, held: bool, ss: Any, folder_list: list[dict[str, str]]) -> dict[str, Any]:
    meta = _read(row.metadata)
    codes, authors = meta["codes"], meta["authors"]
    institutions = [n for a in authors for n in a["institution_names"] if n]
    persons = [a["person_name"] for a in authors if a["person_name"]]
    return {
        "entry_uuid": row.entry_uuid,
        "unique_id": row.unique_id,
        "status": row.status,
        "patient_id": row.patient_id,
        "title": meta["title"],
        "class_code": _first(codes, "classCode"),
        "type_code": _first(codes, "typeCode"),
        "format_code": _first(codes, "formatCode"),
        "healthcare_facility_type": _first(codes, "healthcareFacilityTypeCode"),
        "practice_setting": _first(codes, "practiceSettingCode"),
        "confidentiality": codes.get("confidentialityCode", []),
        "creation_time": dtm_iso((meta["slots"].get("creationTime") or [""])[0]),
        "service_start_time": dtm_iso((meta["slots"].get("serviceStartTime") or [""])[0]),
        "service_stop_time": dtm_iso((meta["slots"].get("serviceStopTime") or [""])[0]),
        "author_institution": institutions[0] if institutions else None,
        "author_person": persons[0] if persons else None,
        "authors": authors,
        "mime_type": row.mime_type,
        "size": row.size,
        "hash": row.hash,
        "repository_unique_id": row.repository_unique_id,
        "held_here": held,
        "submission_set": (
            {
                "entry_uuid": ss.entry_uuid,
                "unique_id": ss.unique_id,
                "submission_time": dtm_iso(ss.submission_time),
                "source_id": ss.source_id,
            }
            if ss is not None
            else None
        ),
        "folders": folder_list,
        "_meta": meta,
    }


# -- queries ----------------------------------------------------------------------------------------
def _code_condition(column: Any, wanted: str) -> Any:
    """``code^^scheme`` exactly, or a code of any scheme."""
    if "^^" in wanted:
        return column == wanted
    return column.startswith(f"{wanted}^^", autoescape=True)


def _around(
    conn: Connection, rows: Sequence[Any]
) -> tuple[set[str], dict[str, Any], dict[str, list[dict[str, str]]]]:
    """For these entries: the uniqueIds the repository here holds, their SubmissionSets, their Folders."""
    unique_ids = {r.unique_id for r in rows}
    held = (
        set(
            conn.execute(
                select(repository_documents.c.unique_id).where(
                    repository_documents.c.unique_id.in_(unique_ids)
                )
            ).scalars()
        )
        if unique_ids
        else set()
    )
    s = submission_sets
    ss_uuids = {r.submission_set_uuid for r in rows}
    sets = (
        {
            r.entry_uuid: r
            for r in conn.execute(
                select(s.c.entry_uuid, s.c.unique_id, s.c.submission_time, s.c.source_id).where(
                    s.c.entry_uuid.in_(ss_uuids)
                )
            )
        }
        if ss_uuids
        else {}
    )
    a, f = associations, folders
    held_by: dict[str, list[dict[str, str]]] = {}
    uuids = [r.entry_uuid for r in rows]
    if uuids:
        for r in conn.execute(
            select(a.c.target_uuid, f.c.entry_uuid, f.c.unique_id, f.c.status, f.c.metadata)
            .join(f, f.c.entry_uuid == a.c.source_uuid)
            .where(a.c.target_uuid.in_(uuids), a.c.type == HAS_MEMBER)
            .order_by(a.c.id)
        ):
            title = _name(etree.fromstring(r.metadata.encode("utf-8"), _PARSER))
            held_by.setdefault(r.target_uuid, []).append(
                {"entry_uuid": r.entry_uuid, "unique_id": r.unique_id, "title": title, "status": r.status}
            )
    return held, sets, held_by


def find_entries(
    conn: Connection, *, person: int | None, patient_id: str, filters: Filters
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """A patient's DocumentEntries, newest creationTime first (those without one last), one page;
    the cursor of the next page, None when this was the last."""
    d = documents
    created = func.coalesce(d.c.creation_time, "")
    conditions: list[Any] = [
        d.c.person_id == person if person is not None else d.c.patient_id == patient_id,
        d.c.status.in_(filters.statuses),
    ]
    if filters.class_code:
        conditions.append(_code_condition(d.c.class_code, filters.class_code))
    if filters.type_code:
        conditions.append(_code_condition(d.c.type_code, filters.type_code))
    if filters.since:
        conditions.append(d.c.creation_time >= filters.since)
    if filters.until:
        conditions.append(d.c.creation_time < filters.until)
    if filters.before is not None:
        at, ident = filters.before
        conditions.append(or_(created < at, and_(created == at, d.c.id < ident)))
    rows = conn.execute(
        select(d, created.label("created"))
        .where(and_(*conditions))
        .order_by(created.desc(), d.c.id.desc())
        .limit(filters.limit + 1)
    ).all()
    following: Cursor | None = None
    if len(rows) > filters.limit:
        rows = rows[: filters.limit]
        following = (rows[-1].created, int(rows[-1].id))
    held, sets, held_by = _around(conn, rows)
    out = []
    for r in rows:
        entry = _entry(r, r.unique_id in held, sets.get(r.submission_set_uuid), held_by.get(r.entry_uuid, []))
        del entry["_meta"]
        out.append(entry)
    return out, following


def association_name(kind: str) -> str:
    """``urn:ihe:iti:2007:AssociationType:RPLC`` -> ``RPLC``."""
    return kind[len(_IHE) :] if kind.startswith(_IHE) else kind.rsplit(":", 1)[-1]


def entry_detail(conn: Connection, entry_uuid: str) -> dict[str, Any] | None:
    """One DocumentEntry with everything its metadata says, and its associations with other
    entries (RPLC, APND, XFRM, XFRM_RPLC, signs) in both directions; None when unknown."""
    d = documents
    row = conn.execute(select(d).where(d.c.entry_uuid == entry_uuid)).first()
    if row is None:
        return None
    held, sets, held_by = _around(conn, [row])
    entry = _entry(
        row, row.unique_id in held, sets.get(row.submission_set_uuid), held_by.get(row.entry_uuid, [])
    )
    meta = entry.pop("_meta")
    slots = meta["slots"]
    entry |= {
        "lid": row.lid,
        "version": row.version,
        "object_type": "on-demand" if row.object_type == ON_DEMAND else "stable",
        "comments": meta["comments"] or None,
        "language_code": (slots.get("languageCode") or [None])[0],
        "legal_authenticator": (slots.get("legalAuthenticator") or [None])[0],
        "source_patient_id": (slots.get("sourcePatientId") or [None])[0],
        "source_patient_info": slots.get("sourcePatientInfo", []),
        "reference_ids": slots.get("urn:ihe:iti:xds:2013:referenceIdList", []),
        "event_codes": meta["codes"].get("eventCodeList", []),
        "slots": slots,
        "registered_at": row.registered_at,
        "message_id": row.message_id,
        "associations": _associations(conn, entry_uuid),
    }
    return entry


def _associations(conn: Connection, entry_uuid: str) -> list[dict[str, Any]]:
    a = associations
    rows = conn.execute(
        select(a.c.entry_uuid, a.c.type, a.c.source_uuid, a.c.target_uuid, a.c.status)
        .where(or_(a.c.source_uuid == entry_uuid, a.c.target_uuid == entry_uuid), a.c.type != HAS_MEMBER)
        .order_by(a.c.id)
    ).all()
    others = {r.target_uuid if r.source_uuid == entry_uuid else r.source_uuid for r in rows}
    d = documents
    found = (
        {
            r.entry_uuid: r
            for r in conn.execute(
                select(d.c.entry_uuid, d.c.unique_id, d.c.status, d.c.metadata).where(
                    d.c.entry_uuid.in_(others)
                )
            )
        }
        if others
        else {}
    )
    out = []
    for r in rows:
        outgoing = r.source_uuid == entry_uuid
        other = r.target_uuid if outgoing else r.source_uuid
        doc = found.get(other)
        meta = _read(doc.metadata) if doc is not None else None
        out.append(
            {
                "entry_uuid": r.entry_uuid,
                "type": association_name(r.type),
                "direction": "outgoing" if outgoing else "incoming",  # this entry is its source / target
                "other": {
                    "entry_uuid": other,
                    "unique_id": doc.unique_id if doc is not None else None,
                    "status": doc.status if doc is not None else None,
                    "title": meta["title"] if meta is not None else None,
                    "creation_time": (
                        dtm_iso((meta["slots"].get("creationTime") or [""])[0]) if meta is not None else None
                    ),
                },
            }
        )
    return out


def held_document(conn: Connection, entry_uuid: str) -> tuple[Any, Any] | None:
    """The entry (entry_uuid, unique_id, patient_id, mime_type, repository_unique_id) and the row of
    the repository here holding its document (None); None when there is no such entry."""
    d, t = documents, repository_documents
    row = conn.execute(
        select(d.c.entry_uuid, d.c.unique_id, d.c.patient_id, d.c.mime_type, d.c.repository_unique_id).where(
            d.c.entry_uuid == entry_uuid
        )
    ).first()
    if row is None:
        return None
    held = conn.execute(
        select(t.c.unique_id, t.c.mime_type, t.c.size).where(t.c.unique_id == row.unique_id)
    ).first()
    return row, held


# -- a document's bytes as text -------------------------------------------------------------------------
def is_text(mime_type: str) -> bool:
    """Whether a document of this type is read as text (XML, plain text, JSON)."""
    m = mime_type.split(";", 1)[0].strip().lower()
    return m.startswith("text/") or m.endswith("+xml") or m in ("application/xml", "application/json")


def decode_text(content: bytes) -> tuple[str | None, str | None]:
    """The document as text and the encoding it was read in: a byte order mark, else the XML
    declaration's encoding, else UTF-8; (None, None) when the bytes are not text in that encoding."""
    candidates: Iterable[str]
    if content.startswith(codecs.BOM_UTF8):
        candidates, content = ("utf-8",), content[len(codecs.BOM_UTF8) :]
    elif content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ("utf-16",)
    else:
        m = _XML_ENCODING.match(content)
        declared = m[1].decode("ascii").lower() if m else "utf-8"
        try:
            name = codecs.lookup(declared).name
        except LookupError:
            return None, None
        candidates = (_WIDER.get(name, name),)
    for encoding in candidates:
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return None, None

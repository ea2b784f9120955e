"""The archive's studies as the web console shows them (``profiles.dicom.console``): a search over the
index (``profiles.dicom.schema``), newest received first and paged, and one study with its series and
their instances; the ATNA records of those reads.

Searching (every filter optional, all of them together):

* ``patient_id``: the Patient ID as the PACS sent it (equal); ``name``: each word of it found in the
  patient's name (any of its alphabetic, ideographic or phonetic groups, case ignored);
* ``accession``, ``source_ae``: equal; ``modality``: a series of the study has it;
* ``since``/``until``: the study date (DA, inclusive); ``status``: ``known``/``unknown`` (the EMPI
  knows the patient or not, the list of ``hie dicom unreconciled``); ``published``: ``yes``/``no``
  (its XDS-I.b manifest registered);
* paging: ``limit`` rows, then ``before`` the cursor of the last row (its last receipt and UID).

Reads are audited as the DICOM PS3.15 events a PACS workstation writes: a search is 110112 Query
(the query text, and each patient it names or shows), opening a study is 110103 DICOM Instances
Accessed (the patient and the study).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydicom.uid import UID
from sqlalchemy import ColumnElement, Connection, and_, exists, or_, select

from engine.audit import AuditEvent, EventId
from engine.config import AppConfig
from engine.console import events
from profiles.dicom.archive import valid_uid
from profiles.dicom.schema import instances, series, studies
from profiles.dicom.sop_classes import STORAGE

__all__ = [
    "INSTANCES_ACCESSED",
    "MAX_SERIES_INSTANCES",
    "QUERY",
    "Cursor",
    "StudySearch",
    "accessed_event",
    "parse_study_date",
    "patient_key",
    "query_event",
    "search_studies",
    "sop_class_name",
    "study_detail",
    "transfer_syntax_name",
    "wado_base",
]

QUERY: EventId = events.QUERY
INSTANCES_ACCESSED: EventId = ("110103", "DICOM Instances Accessed", "DCM")
STUDY_UID = "110180"  # ParticipantObjectIDTypeCode: Study Instance UID
MAX_SERIES_INSTANCES = 2000  # instances listed per series in a study's detail (the count is always whole)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_SOP_NAMES = {uid: keyword for keyword, uid in STORAGE.items()}
_WORDS = re.compile(r"[\s^=]+")


# -- parameters ---------------------------------------------------------------------------------------


def parse_study_date(text: str) -> str | None:
    """``20261201`` or ``2026-12-01`` as a DA (``20261201``); None when it is not a date."""
    value = text.strip()
    for form in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, form).strftime("%Y%m%d")
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Cursor:
    """Where a page of the search ended: the last row's last receipt and its Study Instance UID."""

    received: dt.datetime
    study_uid: str

    def text(self) -> str:
        return f"{(self.received - _EPOCH) // _MICRO}_{self.study_uid}"

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        micros, _, uid = text.partition("_")
        if not micros.isdigit() or len(micros) > 18 or not valid_uid(uid):
            return None
        return cls(_EPOCH + int(micros) * _MICRO, uid)


@dataclass(frozen=True)
class StudySearch:
    patient_id: str | None = None
    name: str | None = None
    accession: str | None = None
    modality: str | None = None
    since: str | None = None  # DA
    until: str | None = None  # DA
    source_ae: str | None = None
    status: str | None = None  # known | unknown
    published: bool | None = None
    before: Cursor | None = None
    limit: int = 50

    def conditions(self) -> list[ColumnElement[bool]]:
        s = studies.c
        out: list[ColumnElement[bool]] = []
        if self.patient_id is not None:
            out.append(s.patient_id == self.patient_id)
        for word in _WORDS.split(self.name or ""):
            if word:
                out.append(s.patient_name.icontains(word, autoescape=True))
        if self.accession is not None:
            out.append(s.accession_number == self.accession)
        if self.modality is not None:
            out.append(
                exists().where(and_(series.c.study_uid == s.study_uid, series.c.modality == self.modality))
            )
        if self.since is not None:
            out.append(s.study_date >= self.since)
        if self.until is not None:
            out.append(and_(s.study_date != "", s.study_date <= self.until))
        if self.source_ae is not None:
            out.append(s.source_ae == self.source_ae)
        if self.status is not None:
            out.append(s.patient_status == self.status)
        if self.published is not None:
            out.append(s.published_at.is_not(None) if self.published else s.published_at.is_(None))
        if self.before is not None:
            at = self.before.received
            out.append(
                or_(
                    s.last_received_at < at,
                    and_(s.last_received_at == at, s.study_uid < self.before.study_uid),
                )
            )
        return out


# -- reading --------------------------------------------------------------------------------------------


def patient_key(patient_id: str, issuer: str) -> str:
    """The patient as an audit record names him (``id^^^issuer``, as HL7 CX)."""
    return f"{patient_id}^^^{issuer}" if issuer else patient_id


def _study_json(row: Any) -> dict[str, Any]:
    return {
        "study_uid": row.study_uid,
        "patient_id": row.patient_id,
        "issuer": row.issuer,
        "domain": row.domain,
        "person_id": row.person_id,
        "patient_status": row.patient_status,
        "patient_name": row.patient_name,
        "birth_date": row.birth_date,
        "sex": row.sex,
        "study_date": row.study_date,
        "study_time": row.study_time,
        "accession_number": row.accession_number,
        "study_id": row.study_id,
        "description": row.description,
        "referring_physician": row.referring_physician,
        "source_ae": row.source_ae,
        "instances": row.instances,
        "first_received_at": row.first_received_at,
        "last_received_at": row.last_received_at,
        "published_at": row.published_at,
        "manifest_uid": row.manifest_uid,
    }


def _series_summary(conn: Connection, uids: Sequence[str]) -> dict[str, tuple[list[str], int]]:
    """Per study: its modalities (sorted, each once) and how many series it has."""
    found: dict[str, tuple[set[str], int]] = {}
    if not uids:
        return {}
    rows = conn.execute(
        select(series.c.study_uid, series.c.modality).where(series.c.study_uid.in_(list(uids)))
    ).all()
    for row in rows:
        modalities, n = found.get(row.study_uid, (set(), 0))
        if row.modality:
            modalities.add(row.modality)
        found[row.study_uid] = (modalities, n + 1)
    return {uid: (sorted(m), n) for uid, (m, n) in found.items()}


def search_studies(conn: Connection, search: StudySearch) -> tuple[list[dict[str, Any]], str | None]:
    """A page of matching studies, newest received first; the cursor of the next page, if any."""
    rows = conn.execute(
        select(studies)
        .where(*search.conditions())
        .order_by(studies.c.last_received_at.desc(), studies.c.study_uid.desc())
        .limit(search.limit + 1)
    ).all()
    more = len(rows) > search.limit
    rows = rows[: search.limit]
    summary = _series_summary(conn, [r.study_uid for r in rows])
    out = []
    for row in rows:
        modalities, count = summary.get(row.study_uid, ([], 0))
        out.append({**_study_json(row), "modalities": modalities, "series": count})
    following = Cursor(rows[-1].last_received_at, rows[-1].study_uid).text() if more and rows else None
    return out, following


def sop_class_name(uid: str) -> str:
    """``CT Image Storage`` for ``1.2.840.10008.5.1.4.1.1.2``: the archive's keyword spelt out, else
    the standard's name, else the UID."""
    keyword = _SOP_NAMES.get(uid)
    if keyword is not None:
        words = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", keyword)
        return words.replace("X Ray", "X-Ray").replace("Multi Frame", "Multi-frame")
    return _uid_name(uid)


def transfer_syntax_name(uid: str) -> str:
    return _uid_name(uid)


def _uid_name(uid: str) -> str:
    try:
        name = str(UID(uid).name)
    except Exception:  # a malformed UID of an old archive row: shown as it is
        return uid
    return name if name and name != uid else uid


def study_detail(conn: Connection, study_uid: str) -> dict[str, Any] | None:
    """The study, its series (by series number) and each series' instances (by instance number)."""
    row = conn.execute(select(studies).where(studies.c.study_uid == study_uid)).first()
    if row is None:
        return None
    series_rows = conn.execute(
        select(series)
        .where(series.c.study_uid == study_uid)
        .order_by(series.c.series_number.is_(None), series.c.series_number, series.c.series_uid)
    ).all()
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sizes: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    found = conn.execute(
        select(
            instances.c.sop_instance_uid,
            instances.c.series_uid,
            instances.c.sop_class_uid,
            instances.c.transfer_syntax,
            instances.c.instance_number,
            instances.c.size,
            instances.c.received_at,
            instances.c.message_id,
            instances.c.source_ae,
        )
        .where(instances.c.study_uid == study_uid)
        .order_by(
            instances.c.series_uid,
            instances.c.instance_number.is_(None),
            instances.c.instance_number,
            instances.c.sop_instance_uid,
        )
    )
    for inst in found:
        counts[inst.series_uid] += 1
        sizes[inst.series_uid] += int(inst.size)
        if len(items[inst.series_uid]) >= MAX_SERIES_INSTANCES:
            continue
        items[inst.series_uid].append(
            {
                "sop_instance_uid": inst.sop_instance_uid,
                "sop_class_uid": inst.sop_class_uid,
                "sop_class": sop_class_name(inst.sop_class_uid),
                "instance_number": inst.instance_number,
                "transfer_syntax_uid": inst.transfer_syntax,
                "transfer_syntax": transfer_syntax_name(inst.transfer_syntax),
                "size": int(inst.size),
                "received_at": inst.received_at,
                "message_id": inst.message_id,
                "source_ae": inst.source_ae,
            }
        )
    listed = []
    for s in series_rows:
        listed.append(
            {
                "series_uid": s.series_uid,
                "modality": s.modality,
                "series_number": s.series_number,
                "description": s.description,
                "body_part": s.body_part,
                "instances": counts.get(s.series_uid, 0),
                "size": sizes.get(s.series_uid, 0),
                "instances_listed": items.get(s.series_uid, []),
            }
        )
    modalities = sorted({s.modality for s in series_rows if s.modality})
    return {
        **_study_json(row),
        "modalities": modalities,
        "size": sum(sizes.values()),
        "series": listed,
    }


# -- WADO -------------------------------------------------------------------------------------------------


def wado_base(app: AppConfig, request_host: str) -> str | None:
    """Where this engine serves WADO-RS (``profiles.dicom.wado``): the first enabled ``wado://``
    channel's ``http(s)://host:port/path``, a wildcard listening address as the host the console was
    reached at; None when no channel serves it."""
    for channel in app.channels:
        if not channel.enabled or not channel.source.url.startswith("wado://"):
            continue
        url = urlsplit(channel.source.url)
        host = url.hostname or ""
        if host in ("", "0.0.0.0", "::"):
            host = request_host or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if (channel.source.model_extra or {}).get("tls") else "http"
        port = url.port or (443 if scheme == "https" else 80)
        return f"{scheme}://{host}:{port}{url.path.rstrip('/')}"
    return None


# -- audit ----------------------------------------------------------------------------------------------


def query_event(
    *, user: str, network: str, uri: str, query: str, patients: Iterable[str], matches: int
) -> AuditEvent:
    """110112 Query: the search (by URI, its text in base64 as PS3.15 wants ParticipantObjectQuery),
    then each patient it asked for or showed."""
    search = events.query_object(uri, query, matches=str(matches))
    return events.section_event(
        "studies",
        QUERY,
        "E",
        user=user,
        network=network,
        objects=[*events.patient_objects(patients), search],
        description=f"studies search: {query or '(no filter)'}; {matches} shown",
    )


def accessed_event(*, user: str, network: str, study: dict[str, Any]) -> AuditEvent:
    """110103 DICOM Instances Accessed, action R: the patient and the study (its SOP classes)."""
    classes = sorted({i["sop_class_uid"] for s in study["series"] for i in s["instances_listed"]})
    detail = {"instances": str(study["instances"])}
    if classes:
        detail["SOPClassUID"] = " ".join(classes)
    study_object = {"type": 2, "role": 3, "id_type": STUDY_UID, "id": study["study_uid"], "detail": detail}
    patient = events.patient_objects([patient_key(study["patient_id"], study["issuer"])])
    return events.section_event(
        "studies",
        INSTANCES_ACCESSED,
        "R",
        user=user,
        network=network,
        objects=[*patient, study_object],
        description="study viewed in the console",
    )

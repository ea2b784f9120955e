"""C-FIND, C-MOVE and C-GET on the archive's index: the Patient Root and Study Root Query/Retrieve
information models (PS3.4 C.6.1, C.6.2), hierarchical (relational queries are not offered).

Matching (PS3.4 C.2.2.2), on the keys the index keeps:

* *single value*: equal (a PN ignores case, as most archives do);
* *list of UIDs* (``uid1\\uid2``) for the UID keys;
* *wild card*: ``*`` any run, ``?`` any one character, for the text keys;
* *range* ``a-b``, ``a-``, ``-b`` for DA (StudyDate, PatientBirthDate) and TM (StudyTime);
* *universal* (empty): the key is returned, not matched.

A key the archive does not index is returned empty (C.2.2.1.3 lets an SCP do so). Answers carry
the keys asked for, the level's unique key, Retrieve AE Title, and the counts asked for
(NumberOfStudyRelatedInstances...). Text is answered in UTF-8 (Specific Character Set ISO_IR 192),
whatever the charset of the sending PACS was: a Chinese name is a Chinese name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy import Column, ColumnElement, Connection, and_, func, select

from profiles.dicom.schema import instances, series, studies

__all__ = ["LEVELS", "QueryError", "find", "instances_for"]

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
PATIENT_ROOT = {
    "1.2.840.10008.5.1.4.1.2.1.1",  # FIND
    "1.2.840.10008.5.1.4.1.2.1.2",  # MOVE
    "1.2.840.10008.5.1.4.1.2.1.3",  # GET
}


class QueryError(ValueError):
    """An identifier the SCP cannot process: C-FIND/MOVE/GET status 0xA900 or 0xC000 with the reason."""

    def __init__(self, reason: str, status: int = 0xA900) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class _Key:
    column: Column[Any]
    kind: str  # text | pn | uid | date | time | int


_PATIENT_KEYS = {
    "PatientID": _Key(studies.c.patient_id, "text"),
    "IssuerOfPatientID": _Key(studies.c.issuer, "text"),
    "PatientName": _Key(studies.c.patient_name, "pn"),
    "PatientBirthDate": _Key(studies.c.birth_date, "date"),
    "PatientSex": _Key(studies.c.sex, "text"),
}
_STUDY_KEYS = {
    "StudyInstanceUID": _Key(studies.c.study_uid, "uid"),
    "StudyDate": _Key(studies.c.study_date, "date"),
    "StudyTime": _Key(studies.c.study_time, "time"),
    "AccessionNumber": _Key(studies.c.accession_number, "text"),
    "StudyID": _Key(studies.c.study_id, "text"),
    "StudyDescription": _Key(studies.c.description, "text"),
    "ReferringPhysicianName": _Key(studies.c.referring_physician, "pn"),
}
_SERIES_KEYS = {
    "SeriesInstanceUID": _Key(series.c.series_uid, "uid"),
    "Modality": _Key(series.c.modality, "text"),
    "SeriesNumber": _Key(series.c.series_number, "int"),
    "SeriesDescription": _Key(series.c.description, "text"),
    "BodyPartExamined": _Key(series.c.body_part, "text"),
}
_IMAGE_KEYS = {
    "SOPInstanceUID": _Key(instances.c.sop_instance_uid, "uid"),
    "SOPClassUID": _Key(instances.c.sop_class_uid, "uid"),
    "InstanceNumber": _Key(instances.c.instance_number, "int"),
}
_UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}


def _value(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if type(value).__name__ == "MultiValue" or isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _condition(key: _Key, value: str) -> ColumnElement[bool] | None:
    col = key.column
    if value in ("", "*"):
        return None
    if key.kind == "uid":
        uids = [u.strip() for u in value.split("\\") if u.strip()]
        return col.in_(uids) if len(uids) > 1 else col == uids[0]
    if key.kind in ("date", "time") and "-" in value:
        low, _, high = value.partition("-")
        parts = []
        if low:
            parts.append(col >= low.strip())
        if high:
            # a TM upper bound covers its whole last unit: 1030 is up to 103059.999
            parts.append(col <= high.strip() + ("\uffff" if key.kind == "time" else ""))
        return and_(*parts)
    if key.kind == "int":
        try:
            return col == int(value)
        except ValueError:
            raise QueryError(f"{col.name}: {value!r} is not an integer") from None
    if "*" in value or "?" in value:
        pattern = _like(value)
        return col.ilike(pattern, escape="\\") if key.kind == "pn" else col.like(pattern, escape="\\")
    if key.kind == "pn":
        return func.lower(col) == value.lower()
    return col == value


def _conditions(ds: Dataset, keys: dict[str, _Key]) -> list[ColumnElement[bool]]:
    out = []
    for keyword, key in keys.items():
        if keyword in ds:
            cond = _condition(key, _value(ds, keyword))
            if cond is not None:
                out.append(cond)
    return out


def _level(ds: Dataset, patient_root: bool) -> str:
    level = _value(ds, "QueryRetrieveLevel").upper()
    if level not in LEVELS:
        raise QueryError(f"Query/Retrieve Level (0008,0052) {level!r} is not one of {', '.join(LEVELS)}")
    if level == "PATIENT" and not patient_root:
        raise QueryError("the Study Root model has no PATIENT level")
    return level


def _require_unique(ds: Dataset, above: list[str], level: str) -> None:
    """Hierarchical queries: each level above the one asked needs its unique key (C.4.1.2.1)."""
    for upper in above:
        keyword = _UNIQUE[upper]
        if not _value(ds, keyword):
            raise QueryError(f"a {level} level query needs a single {keyword} of the {upper} level")


def _scope(ds: Dataset, level: str, patient_root: bool) -> list[ColumnElement[bool]]:
    order = LEVELS if patient_root else LEVELS[1:]
    above = list(order[: order.index(level)])
    _require_unique(ds, above, level)
    conds = _conditions(ds, _PATIENT_KEYS)
    if level in ("STUDY", "SERIES", "IMAGE"):
        conds += _conditions(ds, _STUDY_KEYS)
    if level in ("SERIES", "IMAGE"):
        conds += _conditions(ds, _SERIES_KEYS)
    if level == "IMAGE":
        conds += _conditions(ds, _IMAGE_KEYS)
    return conds


def find(conn: Connection, ds: Dataset, *, patient_root: bool, ae_title: str) -> Iterator[Dataset]:
    """The C-FIND answers to one identifier, one dataset per match."""
    level = _level(ds, patient_root)
    conds = _scope(ds, level, patient_root)
    if level == "PATIENT":
        yield from _patients(conn, ds, conds, ae_title)
        return
    stmt = select(*_columns(level)).select_from(_joined(level))
    for row in conn.execute(stmt.where(*conds).order_by(*_order(level))):
        yield _answer(conn, ds, level, row._mapping, ae_title)


def _joined(level: str) -> Any:
    joined: Any = studies
    if level in ("SERIES", "IMAGE"):
        joined = joined.join(series, series.c.study_uid == studies.c.study_uid)
    if level == "IMAGE":
        joined = joined.join(instances, instances.c.series_uid == series.c.series_uid)
    return joined


def _columns(level: str) -> list[Any]:
    cols: list[Any] = [k.column for k in (*_PATIENT_KEYS.values(), *_STUDY_KEYS.values())]
    cols += [studies.c.instances.label("study_instances")]
    if level in ("SERIES", "IMAGE"):
        cols += [k.column for k in _SERIES_KEYS.values()] + [series.c.instances.label("series_instances")]
    if level == "IMAGE":
        cols += [k.column for k in _IMAGE_KEYS.values()]
    return cols


def _order(level: str) -> list[Any]:
    order: list[Any] = [studies.c.study_date, studies.c.study_uid]
    if level in ("SERIES", "IMAGE"):
        order += [series.c.series_number, series.c.series_uid]
    if level == "IMAGE":
        order += [instances.c.instance_number, instances.c.sop_instance_uid]
    return order


def _patients(conn: Connection, ds: Dataset, conds: list[ColumnElement[bool]], ae: str) -> Iterator[Dataset]:
    stmt = (
        select(
            studies.c.patient_id,
            studies.c.issuer,
            func.max(studies.c.patient_name).label("patient_name"),
            func.max(studies.c.birth_date).label("birth_date"),
            func.max(studies.c.sex).label("sex"),
            func.count().label("studies"),
            func.sum(studies.c.instances).label("instances"),
        )
        .where(*conds)
        .group_by(studies.c.patient_id, studies.c.issuer)
        .order_by(studies.c.patient_id)
    )
    for row in conn.execute(stmt):
        out = _base(ds, "PATIENT", ae)
        values = {
            "PatientID": row.patient_id,
            "IssuerOfPatientID": row.issuer,
            "PatientName": row.patient_name,
            "PatientBirthDate": row.birth_date,
            "PatientSex": row.sex,
            "NumberOfPatientRelatedStudies": row.studies,
            "NumberOfPatientRelatedInstances": row.instances,
        }
        _fill(out, ds, values, always=("PatientID",))
        yield out


def _base(ds: Dataset, level: str, ae: str) -> Dataset:
    out = Dataset()
    out.SpecificCharacterSet = "ISO_IR 192"
    out.QueryRetrieveLevel = level
    out.RetrieveAETitle = ae
    return out


def _fill(out: Dataset, ds: Dataset, values: dict[str, Any], always: tuple[str, ...]) -> None:
    """The keys asked for (and the level's unique key), with our values; unknown keys empty."""
    for elem in ds:
        keyword = elem.keyword
        if not keyword or keyword in ("QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"):
            continue
        value = values.get(keyword)
        setattr(out, keyword, "" if value is None else value)
    for keyword in always:
        setattr(out, keyword, values.get(keyword) or "")


def _answer(conn: Connection, ds: Dataset, level: str, row: Any, ae: str) -> Dataset:
    out = _base(ds, level, ae)
    values: dict[str, Any] = {k: row[key.column.name] for k, key in _PATIENT_KEYS.items()}
    values |= {k: row[key.column.name] for k, key in _STUDY_KEYS.items()}
    values["NumberOfStudyRelatedInstances"] = row["study_instances"]
    study = row["study_uid"]
    if "ModalitiesInStudy" in ds or "NumberOfStudyRelatedSeries" in ds:
        modalities = conn.execute(
            select(series.c.modality)
            .where(series.c.study_uid == study)
            .distinct()
            .order_by(series.c.modality)
        ).scalars()
        found = [m for m in modalities if m]
        values["ModalitiesInStudy"] = "\\".join(found)
        values["NumberOfStudyRelatedSeries"] = conn.execute(
            select(func.count()).select_from(series).where(series.c.study_uid == study)
        ).scalar_one()
    always: tuple[str, ...] = ("StudyInstanceUID",)
    if level in ("SERIES", "IMAGE"):
        values |= {k: row[key.column.name] for k, key in _SERIES_KEYS.items()}
        values["NumberOfSeriesRelatedInstances"] = row["series_instances"]
        always += ("SeriesInstanceUID",)
    if level == "IMAGE":
        values |= {k: row[key.column.name] for k, key in _IMAGE_KEYS.items()}
        always += ("SOPInstanceUID",)
    _fill(out, ds, values, always)
    return out


@dataclass(frozen=True)
class Selected:
    study_uid: str
    sop_instance_uid: str
    path: str
    patient: str
    sop_class_uid: str
    transfer_syntax: str


def instances_for(conn: Connection, ds: Dataset, *, patient_root: bool) -> list[Selected]:
    """The instances a C-MOVE or C-GET identifier names (unique keys at and above its level)."""
    level = _level(ds, patient_root)
    unique = _UNIQUE[level]
    if not _value(ds, unique):
        raise QueryError(f"a {level} level retrieve needs {unique}")
    conds = _scope(ds, level, patient_root)
    stmt = (
        select(
            instances.c.study_uid,
            instances.c.sop_instance_uid,
            instances.c.path,
            instances.c.sop_class_uid,
            instances.c.transfer_syntax,
            studies.c.patient_id,
            studies.c.issuer,
        )
        .select_from(_joined("IMAGE"))
        .where(*conds)
        .order_by(instances.c.study_uid, instances.c.series_uid, instances.c.instance_number)
    )
    return [
        Selected(r.study_uid, r.sop_instance_uid, r.path, _cx(r), r.sop_class_uid, r.transfer_syntax)
        for r in conn.execute(stmt)
    ]


def _cx(row: Any) -> str:
    return f"{row.patient_id}^^^{row.issuer}" if row.issuer else str(row.patient_id)

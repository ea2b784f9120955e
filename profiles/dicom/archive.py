"""The image archive's files: one DICOM file (PS3.10) per instance, kept as it was received.

Layout under ``dicom.archive_dir``: ``<Study Instance UID>/<Series Instance UID>/<SOP Instance
UID>.dcm``. UIDs are checked before they become path parts (PS3.5 §9.1: digits and dots, at most 64
characters), so a dataset cannot name a path outside the archive.

A received file becomes part of the archive atomically: its bytes are synced, then it is renamed
into place and its folder synced, before the C-STORE is indexed and answered. A crash leaves either
no file or a whole one; a whole file the index does not know yet (the crash came between the rename
and the commit) is written again when the PACS sends the instance again, as it will, having had no
Success.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from engine.connectors.file import make_directories, sync_directory
from profiles.dicom.header import scan

__all__ = ["Archive", "DatasetError", "InstanceInfo", "header_info", "read_header", "valid_uid"]

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def valid_uid(value: str) -> bool:
    return 0 < len(value) <= 64 and _UID.match(value) is not None


class DatasetError(ValueError):
    """A dataset the archive cannot keep: the reason is the C-STORE's Error Comment; ``mismatch``
    when the dataset contradicts its request (0xA900), else it cannot be understood (0xC000)."""

    def __init__(self, reason: str, *, mismatch: bool = False) -> None:
        super().__init__(reason)
        self.mismatch = mismatch


@dataclass(frozen=True)
class InstanceInfo:
    """What the index keeps of an instance: its identity, its patient, study and series."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    patient_id: str
    issuer: str
    patient_name: str
    birth_date: str
    sex: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    study_description: str
    referring_physician: str
    modality: str
    series_number: int | None
    series_description: str
    body_part: str
    instance_number: int | None
    issuer_oid: str = ""  # (0010,0024) Universal Entity ID of the issuer, when the PACS sends one

    def summary(self) -> dict[str, Any]:
        """What the message store keeps of a C-STORE (no pixel data), for auditors."""
        return {k: v for k, v in self.__dict__.items() if v not in ("", None)}


def _text(ds: Dataset, keyword: str, limit: int = 200) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)[:limit]
    return str(value).strip()[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def read_header(path: Path, *, sop_class_uid: str = "", sop_instance_uid: str = "") -> InstanceInfo:
    """Read a received file's header (up to the pixel data) and check what the archive needs.

    ``sop_class_uid``/``sop_instance_uid``: the C-STORE request's Affected SOP Class and Instance,
    which the dataset must repeat (PS3.4 B.2.3: otherwise 0xA900, dataset does not match).
    """
    try:
        with path.open("rb") as fp:
            ds = dcmread(fp, stop_before_pixels=True)
            _check_pixel_data(fp, ds, path.stat().st_size)
        info = _info(ds)
    except DatasetError:
        raise
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DatasetError(f"cannot read the dataset: {type(exc).__name__}: {exc}") from exc
    return _checked(info, sop_class_uid, sop_instance_uid)


def header_info(
    head: bytes, size: int, tail: bytes, *, sop_class_uid: str = "", sop_instance_uid: str = ""
) -> InstanceInfo:
    """``read_header`` from a file's first bytes (``head``, say 64 KB) and its last 8 (``tail``),
    without pydicom's dataset (``header.scan``): about a tenth of the time. Raises
    ``header.Unreadable`` when the file is for ``read_header`` (big endian, deflated, a header
    longer than ``head``, what the scan does not follow), DatasetError when it is refused."""
    found = scan(head, size)
    if found.pixel_data is not None:
        offset, header, length = found.pixel_data
        if length == 0xFFFFFFFF:
            if tail != _SEQUENCE_DELIMITER:
                raise DatasetError(
                    "the encapsulated Pixel Data (7FE0,0010) is cut short: no sequence delimiter"
                )
        elif offset + header + length > size:
            missing = offset + header + length - size
            raise DatasetError(f"the Pixel Data (7FE0,0010) is cut short: {missing} bytes missing")
    v = found.values

    def text(tag: int, limit: int = 200) -> str:
        return v.get(tag, "")[:limit]

    def number(tag: int) -> int | None:
        try:
            return int(v[tag]) if v.get(tag) else None
        except ValueError:
            return None

    info = InstanceInfo(
        sop_class_uid=text(0x00080016, 64),
        sop_instance_uid=text(0x00080018, 64),
        study_uid=text(0x0020000D, 64),
        series_uid=text(0x0020000E, 64),
        transfer_syntax=found.transfer_syntax,
        patient_id=text(0x00100020, 64),
        issuer=text(0x00100021, 64),
        issuer_oid=found.issuer_oid,
        patient_name=text(0x00100010),
        birth_date=text(0x00100030, 8),
        sex=text(0x00100040, 16),
        study_date=text(0x00080020, 8),
        study_time=text(0x00080030, 16),
        accession_number=text(0x00080050, 64),
        study_id=text(0x00200010, 16),
        study_description=text(0x00081030),
        referring_physician=text(0x00080090),
        modality=text(0x00080060, 16),
        series_number=number(0x00200011),
        series_description=text(0x0008103E),
        body_part=text(0x00180015, 64),
        instance_number=number(0x00200013),
    )
    return _checked(info, sop_class_uid, sop_instance_uid)


def _checked(info: InstanceInfo, sop_class_uid: str, sop_instance_uid: str) -> InstanceInfo:
    for name, value in (
        ("Study Instance UID (0020,000D)", info.study_uid),
        ("Series Instance UID (0020,000E)", info.series_uid),
        ("SOP Instance UID (0008,0018)", info.sop_instance_uid),
        ("SOP Class UID (0008,0016)", info.sop_class_uid),
    ):
        if not value:
            raise DatasetError(f"the dataset has no {name}")
        if not valid_uid(value):
            raise DatasetError(f"the dataset's {name} is not a valid UID: {value[:70]!r}")
    if sop_instance_uid and info.sop_instance_uid != sop_instance_uid:
        raise DatasetError(
            "the dataset's SOP Instance UID differs from the request's Affected SOP Instance UID",
            mismatch=True,
        )
    if sop_class_uid and info.sop_class_uid != sop_class_uid:
        raise DatasetError(
            "the dataset's SOP Class UID differs from the request's Affected SOP Class UID", mismatch=True
        )
    return info


_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0, little endian
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}


def _check_pixel_data(fp: BinaryIO, ds: Dataset, size: int) -> None:
    """A dataset cut short in its pixel data (a sender that died, a broken network) is refused:
    the header was read up to the Pixel Data element, whose own length must fit in the file, or,
    encapsulated (undefined length), whose fragments must end with the sequence delimiter."""
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8 or head[:4] not in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):
        return  # no pixel data (an SR, a KOS) or read to the end
    implicit, little = ds.original_encoding
    if implicit is None or not little:
        return  # big endian (retired) or deflated: not checked here
    if implicit:
        length, header = int.from_bytes(head[4:8], "little"), 8
    elif head[4:6] in _LONG_VRS:
        length, header = int.from_bytes(head[8:12], "little"), 12
    else:
        length, header = int.from_bytes(head[6:8], "little"), 8
    if length == 0xFFFFFFFF:
        fp.seek(max(size - 8, 0))
        if fp.read(8) != _SEQUENCE_DELIMITER:
            raise DatasetError("the encapsulated Pixel Data (7FE0,0010) is cut short: no sequence delimiter")
    elif start + header + length > size:
        missing = start + header + length - size
        raise DatasetError(f"the Pixel Data (7FE0,0010) is cut short: {missing} bytes missing")


def _info(ds: Dataset) -> InstanceInfo:
    meta = getattr(ds, "file_meta", None)
    transfer = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    issuer_oid = ""
    qualifiers = ds.get("IssuerOfPatientIDQualifiersSequence")
    if qualifiers:
        issuer_oid = _text(qualifiers[0], "UniversalEntityID", 64)
    return InstanceInfo(
        sop_class_uid=_text(ds, "SOPClassUID", 64),
        sop_instance_uid=_text(ds, "SOPInstanceUID", 64),
        study_uid=_text(ds, "StudyInstanceUID", 64),
        series_uid=_text(ds, "SeriesInstanceUID", 64),
        transfer_syntax=transfer,
        patient_id=_text(ds, "PatientID", 64),
        issuer=_text(ds, "IssuerOfPatientID", 64),
        issuer_oid=issuer_oid,
        patient_name=_text(ds, "PatientName"),
        birth_date=_text(ds, "PatientBirthDate", 8),
        sex=_text(ds, "PatientSex", 16),
        study_date=_text(ds, "StudyDate", 8),
        study_time=_text(ds, "StudyTime", 16),
        accession_number=_text(ds, "AccessionNumber", 64),
        study_id=_text(ds, "StudyID", 16),
        study_description=_text(ds, "StudyDescription"),
        referring_physician=_text(ds, "ReferringPhysicianName"),
        modality=_text(ds, "Modality", 16),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription"),
        body_part=_text(ds, "BodyPartExamined", 64),
        instance_number=_int(ds, "InstanceNumber"),
    )


class Archive:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / ".incoming"  # received files before they are placed (same filesystem)

    def prepare(self) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def relative(info: InstanceInfo) -> str:
        # the UIDs were checked by read_header: digits and dots only
        return f"{info.study_uid}/{info.series_uid}/{info.sop_instance_uid}.dcm"

    def path(self, relative: str) -> Path:
        """An archived file's path from the relative one the index keeps: refused unless it is
        ``<study>/<series>/<instance>.dcm`` with UIDs for names (read as written, no file system
        call: a path made only of UIDs cannot leave the archive)."""
        parts = relative.split("/")
        if (
            len(parts) != 3
            or not parts[2].endswith(".dcm")
            or not all(valid_uid(p) for p in (parts[0], parts[1], parts[2][:-4]))
        ):
            raise ValueError(f"not a path in the archive: {relative!r}")
        return self.root / relative

    def place(self, received: Path, info: InstanceInfo, *, synced: bool = False) -> tuple[str, int]:
        """Make a received file (a whole PS3.10 file) the instance's archived copy, durably.

        Renamed when it is on the archive's filesystem, else copied. ``synced``: the receiver has
        already synced its bytes. Returns its relative path and size.
        """
        relative = self.relative(info)
        target = self.root / relative
        make_directories(target.parent)
        size = received.stat().st_size
        if not synced:
            _sync(received)
        try:
            os.replace(received, target)
        except OSError:  # another filesystem: copy next to the target, then rename
            part = target.with_name(f".{target.name}.part")
            shutil.copyfile(received, part)
            _sync(part)
            os.replace(part, target)
        sync_directory(target.parent)
        return relative, size


def _sync(path: Path) -> None:
    """fsync a file's bytes before it is renamed into place."""
    with path.open("rb") as fh:
        os.fsync(fh.fileno())

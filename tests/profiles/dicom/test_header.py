"""The receiver's own header reader gives what pydicom's reading gives (``read_header``), for the
encodings and shapes PACS send, refuses what ``read_header`` refuses with the same reason, and
hands over to pydicom what it does not read itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from profiles.dicom.archive import DatasetError, InstanceInfo, header_info, read_header
from profiles.dicom.header import Unreadable
from tests.profiles.dicom.conftest import ct

HEAD = 64 * 1024


def saved(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def fast(path: Path) -> InstanceInfo:
    raw = path.read_bytes()
    return header_info(raw[:HEAD], len(raw), raw[-8:])


def plain() -> Dataset:
    return ct(generate_uid(), generate_uid(), 3, issuer="HOSP_A", rows=32)


def gb18030() -> Dataset:
    ds = plain()
    ds.SpecificCharacterSet = "GB18030"
    ds.PatientName = "Wang^Xiaohong=王^小红"
    ds.StudyDescription = "头颅 MR 增强"
    return ds


def implicit() -> Dataset:
    ds = plain()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def with_sequences() -> Dataset:
    ds = plain()
    qualifier = Dataset()
    qualifier.UniversalEntityID = "1.2.156.112604.1.1"
    qualifier.UniversalEntityIDType = "ISO"
    ds.IssuerOfPatientIDQualifiersSequence = [qualifier]
    ds["IssuerOfPatientIDQualifiersSequence"].is_undefined_length = True
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    referenced.ReferencedSOPInstanceUID = generate_uid()
    ds.ReferencedStudySequence = [referenced, referenced]
    ds["ReferencedStudySequence"].is_undefined_length = True
    ds.SeriesDescription = "a series\\with two values"
    return ds


def implicit_with_sequences() -> Dataset:
    ds = with_sequences()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def encapsulated() -> Dataset:
    ds = plain()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(500) + b"\xff\xd9"])
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    return ds


def key_objects() -> Dataset:  # no pixel data at all
    ds = plain()
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit"):
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.59"
    return ds


@pytest.mark.parametrize(
    "make", [plain, gb18030, implicit, with_sequences, implicit_with_sequences, encapsulated, key_objects]
)
def test_the_same_as_pydicom_reads(make: object, tmp_path: Path) -> None:
    path = saved(make(), tmp_path / "x.dcm")  # type: ignore[operator]
    assert fast(path) == read_header(path)


def test_fields_that_matter_to_the_index(tmp_path: Path) -> None:
    info = fast(saved(with_sequences(), tmp_path / "q.dcm"))
    assert info.issuer_oid == "1.2.156.112604.1.1"
    assert info.series_description == "a series\\with two values"
    name = fast(saved(gb18030(), tmp_path / "g.dcm"))
    assert name.patient_name == "Wang^Xiaohong=王^小红"
    assert name.study_description == "头颅 MR 增强"


@pytest.mark.parametrize("make", [plain, encapsulated])
def test_cut_short_pixel_data_is_refused_with_pydicoms_reason(make: object, tmp_path: Path) -> None:
    whole = saved(make(), tmp_path / "whole.dcm")  # type: ignore[operator]
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-300])
    with pytest.raises(DatasetError) as ours:
        fast(cut)
    with pytest.raises(DatasetError) as theirs:
        read_header(cut)
    assert str(ours.value) == str(theirs.value) and "cut short" in str(ours.value)


def test_a_missing_study_uid_is_refused_with_pydicoms_reason(tmp_path: Path) -> None:
    ds = plain()
    del ds.StudyInstanceUID
    path = saved(ds, tmp_path / "x.dcm")
    with pytest.raises(DatasetError, match=r"no Study Instance UID \(0020,000D\)"):
        fast(path)


@pytest.mark.parametrize("syntax", [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_big_endian_and_deflated_go_to_pydicom(syntax: str, tmp_path: Path) -> None:
    ds = plain()
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(Unreadable, match="transfer syntax"):
        fast(path)
    assert read_header(path).sop_instance_uid == ds.SOPInstanceUID


def test_a_header_longer_than_what_was_read_goes_to_pydicom(tmp_path: Path) -> None:
    ds = plain()
    ds.add_new(0x00291010, "OB", bytes(HEAD))  # a private element of 64 KB before the pixel data
    path = saved(ds, tmp_path / "x.dcm")
    with pytest.raises(Unreadable):
        fast(path)
    assert read_header(path).sop_instance_uid == ds.SOPInstanceUID


def test_not_a_dicom_file_goes_to_pydicom(tmp_path: Path) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(b"MSH|^~\\&|" * 100)
    with pytest.raises(Unreadable):
        fast(path)

"""Writes the synthetic CT study of ``ct-study/`` (run by hand after changing it; the README's
walk-through and the tests read the committed files):

    .venv/bin/python tests/data/dicom/make_samples.py

Three 64 x 64 slices of one study for hospital A's patient A10001 (欧阳明轩, the walk-through's
made-up patient, fed to the EMPI in its step 7), Explicit VR Little Endian, names in UTF-8. The UIDs
are fixed (``2.25`` UUID-derived from the file names), so the README can name the study.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

OUT = Path(__file__).resolve().parent / "ct-study"
CT = "1.2.840.10008.5.1.4.1.1.2"


def uid(name: str) -> str:
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'hie:tests/data/dicom/' + name).int}"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    study, series = uid("study"), uid("series")
    for n in range(1, 4):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = UID(CT)
        sop = uid(f"instance-{n}")
        ds.file_meta.MediaStorageSOPInstanceUID = UID(sop)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID, ds.SOPInstanceUID = CT, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName = "Ouyang^Mingxuan=欧阳^明轩"
        ds.PatientID, ds.IssuerOfPatientID = "A10001", "HOSP_A"
        ds.PatientBirthDate, ds.PatientSex = "19850312", "M"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20261201", "103000", "CT20261201001"
        ds.StudyID, ds.StudyDescription, ds.ReferringPhysicianName = "1", "胸部 CT 平扫", "Li^Wei"
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription, ds.BodyPartExamined = "CT", 1, "轴位", "CHEST"
        ds.InstanceNumber = n
        ds.Rows = ds.Columns = 64
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = bytes((i * n) % 256 for i in range(64 * 64 * 2))
        path = OUT / f"ct-{n}.dcm"
        ds.save_as(path, enforce_file_format=True)
        print(f"{path.name}: {path.stat().st_size:,} bytes")
    print(f"study {study}")


if __name__ == "__main__":
    main()

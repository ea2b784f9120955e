"""The XDS-I.b imaging manifest: a DICOM Key Object Selection document (KOS) referencing every instance
of a study (IHE RAD TF-3 §4.68.4.1.3.1, PS3.3 A.35.4, TID 2010 "Key Object Selection"; xds.md §7).

* SOP Class KOS ``1.2.840.10008.5.1.4.1.1.88.59``, in a series of its own (modality ``KO``);
* document title (113030, DCM, "Manifest"), TID 2010 as the content template;
* Current Requested Procedure Evidence Sequence (0040,A375): the study, its series, each series with
  Retrieve AE Title (0008,0054) (the archive's C-MOVE/C-GET) and Retrieve Location UID (0040,E011)
  (the Imaging Document Source's repositoryUniqueId, where RAD-69 retrieves), and every instance;
* a content item per instance (IMAGE, or COMPOSITE for what is not an image: SR, KOS, PDF);
* the patient as the XDS affinity domain knows him: Patient ID and its issuer's OID in the
  qualifiers, so that the manifest and its DocumentEntry name the same patient.

Each version of a study's manifest is a new instance (new SOP Instance UID); the DocumentEntry of a
newer one replaces the older (RPLC).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from profiles.dicom.sop_classes import KOS

__all__ = ["ManifestInstance", "ManifestStudy", "build_manifest", "manifest_bytes"]

_NOT_IMAGES = {KOS, "1.2.840.10008.5.1.4.1.1.104.1"} | {
    f"1.2.840.10008.5.1.4.1.1.88.{n}" for n in (11, 22, 33, 34, 35, 40, 50, 59, 65, 67, 69, 70, 71)
}


@dataclass(frozen=True)
class ManifestInstance:
    series_uid: str
    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class ManifestStudy:
    study_uid: str
    patient_id: str
    issuer_oid: str  # the affinity domain of patient_id
    issuer_namespace: str
    patient_name: str
    birth_date: str
    sex: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    referring_physician: str
    instances: list[ManifestInstance]


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def build_manifest(
    study: ManifestStudy, *, retrieve_ae: str, retrieve_location_uid: str, now: datetime
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(KOS)
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPInstanceUID = uid
    ds.SOPClassUID = KOS
    ds.SpecificCharacterSet = "ISO_IR 192"
    # Patient (PS3.3 C.7.1.1), as the affinity domain names him
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.IssuerOfPatientID = study.issuer_namespace
    qualifiers = Dataset()
    qualifiers.UniversalEntityID = study.issuer_oid
    qualifiers.UniversalEntityIDType = "ISO"
    ds.IssuerOfPatientIDQualifiersSequence = Sequence([qualifiers])
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    # General Study (C.7.2.1): the study the manifest describes
    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.AccessionNumber = study.accession_number
    ds.StudyID = study.study_id
    ds.ReferringPhysicianName = study.referring_physician
    # Key Object Document Series (C.17.6.1) and General Equipment (C.7.5.1)
    ds.Modality = "KO"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 999
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.Manufacturer = "hie"
    # Key Object Document (C.17.6.2)
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence(
        [_evidence(study, retrieve_ae, retrieve_location_uid)]
    )
    # SR Document Content (C.17.3): the root container, TID 2010
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code("113030", "DCM", "Manifest")])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = Sequence([template])
    ds.ContentSequence = Sequence([_content_item(i) for i in study.instances])
    return ds


def _evidence(study: ManifestStudy, retrieve_ae: str, retrieve_location_uid: str) -> Dataset:
    by_series: dict[str, list[ManifestInstance]] = {}
    for i in study.instances:
        by_series.setdefault(i.series_uid, []).append(i)
    series_items = []
    for series_uid, members in by_series.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.RetrieveAETitle = retrieve_ae
        item.RetrieveLocationUID = retrieve_location_uid
        item.ReferencedSOPSequence = Sequence([_reference(m) for m in members])
        series_items.append(item)
    evidence = Dataset()
    evidence.StudyInstanceUID = study.study_uid
    evidence.ReferencedSeriesSequence = Sequence(series_items)
    return evidence


def _reference(instance: ManifestInstance) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = instance.sop_class_uid
    ref.ReferencedSOPInstanceUID = instance.sop_instance_uid
    return ref


def _content_item(instance: ManifestInstance) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "COMPOSITE" if instance.sop_class_uid in _NOT_IMAGES else "IMAGE"
    item.ReferencedSOPSequence = Sequence([_reference(instance)])
    return item


def manifest_bytes(ds: Dataset) -> bytes:
    """The manifest as a DICOM file (PS3.10): the document the XDS repository keeps."""
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()

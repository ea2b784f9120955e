"""RAD-69 Retrieve Imaging Document Set: the request read (IHE RAD TF-3 §4.69; xds.md §7).

A request names studies, their series and, in each, the instances wanted (``xdsb:DocumentRequest``:
RepositoryUniqueId and DocumentUniqueId, the SOP Instance UID), then the transfer syntaxes the
consumer accepts, in order of preference::

    <iherad:RetrieveImagingDocumentSetRequest>
      <iherad:StudyRequest studyInstanceUID="...">
        <iherad:SeriesRequest seriesInstanceUID="...">
          <xdsb:DocumentRequest>
            <xdsb:RepositoryUniqueId>...</xdsb:RepositoryUniqueId>
            <xdsb:DocumentUniqueId>...</xdsb:DocumentUniqueId>
          </xdsb:DocumentRequest>
        </iherad:SeriesRequest>
      </iherad:StudyRequest>
      <iherad:TransferSyntaxUIDList><iherad:TransferSyntaxUID>...</iherad:TransferSyntaxUID>...
    </iherad:RetrieveImagingDocumentSetRequest>

The answer is an ITI-43 ``RetrieveDocumentSetResponse`` (``ihe.iti43.retrieve_response``), MTOM,
each instance ``application/dicom``. What the request gets wrong is a RegistryError, as the NIST
test cases for the Imaging Document Source expect (xds.md §7): a study or series without its UID,
or no DocumentRequest, is ``XDSIRequestError``; no transfer syntax is ``XDSRepositoryError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ihe._ebxml import RegistryError
from ihe.iti43 import XDSB, DocumentRequest

__all__ = ["IMAGING_RETRIEVE", "RAD", "ImagingRequest", "parse_imaging_retrieve"]

RAD = "urn:ihe:rad:xdsi-b:2009"
IMAGING_RETRIEVE = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
_R = f"{{{RAD}}}"
_B = f"{{{XDSB}}}"


@dataclass(frozen=True)
class ImagingRequest:
    study_uid: str
    series_uid: str
    document: DocumentRequest


def _text(element: etree._Element, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def parse_imaging_retrieve(
    body: etree._Element,
) -> tuple[list[ImagingRequest], list[str], list[RegistryError]]:
    """The instances asked for, the transfer syntaxes accepted, and what is wrong with the request."""
    if body.tag != f"{_R}RetrieveImagingDocumentSetRequest":
        return (
            [],
            [],
            [RegistryError("XDSIRequestError", f"not a RetrieveImagingDocumentSetRequest: {body.tag}")],
        )
    asked: list[ImagingRequest] = []
    errors: list[RegistryError] = []
    studies = body.findall(f"{_R}StudyRequest")
    if not studies:
        errors.append(RegistryError("XDSIRequestError", "the request names no study (StudyRequest)"))
    for study in studies:
        study_uid = (study.get("studyInstanceUID") or "").strip()
        if not study_uid:
            errors.append(RegistryError("XDSIRequestError", "a StudyRequest has no studyInstanceUID"))
            continue
        series_list = study.findall(f"{_R}SeriesRequest")
        if not series_list:
            errors.append(RegistryError("XDSIRequestError", f"study {study_uid} names no series", study_uid))
        for series in series_list:
            series_uid = (series.get("seriesInstanceUID") or "").strip()
            if not series_uid:
                errors.append(
                    RegistryError("XDSIRequestError", "a SeriesRequest has no seriesInstanceUID", study_uid)
                )
                continue
            documents = series.findall(f"{_B}DocumentRequest")
            if not documents:
                errors.append(
                    RegistryError("XDSIRequestError", f"series {series_uid} names no instance", series_uid)
                )
            for doc in documents:
                request = DocumentRequest(
                    _text(doc, f"{_B}RepositoryUniqueId"),
                    _text(doc, f"{_B}DocumentUniqueId"),
                    _text(doc, f"{_B}HomeCommunityId"),
                )
                if not request.document_unique_id:
                    errors.append(
                        RegistryError("XDSIRequestError", "a DocumentRequest has no DocumentUniqueId")
                    )
                    continue
                asked.append(ImagingRequest(study_uid, series_uid, request))
    syntaxes = [
        (t.text or "").strip()
        for t in body.iterfind(f"{_R}TransferSyntaxUIDList/{_R}TransferSyntaxUID")
        if (t.text or "").strip()
    ]
    if not syntaxes:
        errors.append(
            RegistryError(
                "XDSRepositoryError", "the request names no transfer syntax (TransferSyntaxUIDList)"
            )
        )
    return asked, syntaxes, errors

"""XDS-I.b end to end over real sockets: a study pushed by dcmtk's storescu is archived, reconciled,
published as a KOS manifest (RAD-68), found with ITI-18, its instances retrieved with RAD-69 and its
metadata with WADO-RS; and every way a RAD-69 request can be wrong answered with the XDS error the
NIST cases expect."""

from __future__ import annotations

import io
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import httpx
import pytest
from lxml import etree
from pydicom import dcmread

from engine.store.db import utcnow
from ihe._ebxml import RIM, RS
from ihe.iti18 import QUERY
from ihe.iti43 import XDSB
from ihe.rad69 import IMAGING_RETRIEVE, RAD
from profiles.dicom.publish import publish_due
from tests.profiles.dicom.conftest import Pacs, Study, write_study
from tests.profiles.dicom.test_publish import LATER
from tests.profiles.xds.conftest import body_of, envelope

SOAP = "application/soap+xml; charset=UTF-8"
SOURCE = "1.2.156.112600.1.2.2"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
XDSI = pytest.mark.pacs(channels=("xds-registry", "xdsi-source", "wado"))


def find_documents(patient: str) -> bytes:
    return envelope(
        "urn:ihe:iti:2007:RegistryStoredQuery",
        f"""<query:AdhocQueryRequest xmlns:query="{QUERY}" xmlns:rim="{RIM}">
  <query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>
  <rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">
    <rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList>
      <rim:Value>'{patient.replace("&", "&amp;")}'</rim:Value></rim:ValueList></rim:Slot>
    <rim:Slot name="$XDSDocumentEntryStatus"><rim:ValueList>
      <rim:Value>('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')</rim:Value></rim:ValueList></rim:Slot>
  </rim:AdhocQuery></query:AdhocQueryRequest>""",
    )


def imaging_request(
    study: str,
    series: str,
    uids: list[str],
    *,
    repository: str = SOURCE,
    syntaxes: tuple[str, ...] = (EXPLICIT,),
) -> bytes:
    documents = "".join(
        f"<xdsb:DocumentRequest><xdsb:RepositoryUniqueId>{repository}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{uid}</xdsb:DocumentUniqueId></xdsb:DocumentRequest>"
        for uid in uids
    )
    listed = "".join(f"<iherad:TransferSyntaxUID>{t}</iherad:TransferSyntaxUID>" for t in syntaxes)
    return envelope(
        IMAGING_RETRIEVE,
        f'<iherad:RetrieveImagingDocumentSetRequest xmlns:iherad="{RAD}" xmlns:xdsb="{XDSB}">'
        f'<iherad:StudyRequest studyInstanceUID="{study}"><iherad:SeriesRequest seriesInstanceUID="{series}">'
        f"{documents}</iherad:SeriesRequest></iherad:StudyRequest>"
        f"<iherad:TransferSyntaxUIDList>{listed}</iherad:TransferSyntaxUIDList>"
        "</iherad:RetrieveImagingDocumentSetRequest>",
    )


def parts(response: httpx.Response) -> tuple[etree._Element, list[bytes]]:
    """The MTOM answer: its envelope's body element and its binary parts."""
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + response.content)
    payloads = [p.get_payload(decode=True) for p in message.iter_parts()]
    root = etree.fromstring(payloads[0])
    body = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert body is not None
    return body[0], [bytes(p) for p in payloads[1:]]


async def published_study(pacs: Pacs, tmp_path: Path) -> Study:
    await pacs.feed("A1001")
    study = write_study(tmp_path / "study", 3)
    assert (await pacs.store(*study.files)).statuses == ["Success"] * 3
    services = pacs.rt.services
    assert services is not None
    (done,) = publish_due(services, utcnow() + LATER)
    assert done.study_uid == study.uid
    return study


@XDSI
async def test_stored_published_found_and_retrieved(pacs: Pacs, tmp_path: Path) -> None:
    study = await published_study(pacs, tmp_path)
    async with httpx.AsyncClient(timeout=30) as client:
        registry = f"http://127.0.0.1:{pacs.ports['xds-registry']}/xds/registry"
        found = await client.post(
            registry,
            content=find_documents("A1001^^^&1.2.156.112604.1.1&ISO"),
            headers={"Content-Type": SOAP},
        )
        answer = body_of(found.content)
        (entry,) = answer.iter(f"{{{RIM}}}ExtrinsicObject")
        assert entry.get("mimeType") == "application/dicom"
        assert study.uid in etree.tostring(entry).decode()  # its referenceIdList names the study

        source = f"http://127.0.0.1:{pacs.ports['xdsi-source']}/xdsi/source"
        uids = sorted(pacs.instance_uids(study.uid))
        got = await client.post(
            source, content=imaging_request(study.uid, study.series, uids), headers={"Content-Type": SOAP}
        )
    assert got.status_code == 200
    body, binaries = parts(got)
    status = body.find(f"{{{RS}}}RegistryResponse")
    assert status is not None and status.get("status", "").endswith(":Success")
    returned = [b.findtext(f"{{{XDSB}}}DocumentUniqueId") for b in body.iter(f"{{{XDSB}}}DocumentResponse")]
    assert sorted(returned) == uids  # type: ignore[type-var]
    assert {str(dcmread(io.BytesIO(b)).SOPInstanceUID) for b in binaries} == set(uids)

    # and a web viewer gets the same study with WADO-RS
    async with httpx.AsyncClient(timeout=30) as client:
        wado = f"http://127.0.0.1:{pacs.ports['wado']}/dicomweb/studies/{study.uid}/metadata"
        metadata = (await client.get(wado, headers={"Accept": "application/dicom+json"})).json()
    assert sorted(m["00080018"]["Value"][0] for m in metadata) == uids


@XDSI
async def test_what_a_rad69_request_gets_wrong(pacs: Pacs, tmp_path: Path) -> None:
    study = await published_study(pacs, tmp_path)
    uid = sorted(pacs.instance_uids(study.uid))[0]
    source = f"http://127.0.0.1:{pacs.ports['xdsi-source']}/xdsi/source"

    async def codes(request: bytes) -> tuple[str, list[str], int]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(source, content=request, headers={"Content-Type": SOAP})
        body, binaries = parts(response)
        status = body.find(f"{{{RS}}}RegistryResponse")
        assert status is not None
        errors = [e.get("errorCode", "") for e in status.iter(f"{{{RS}}}RegistryError")]
        return status.get("status", "").rsplit(":", 1)[-1], errors, len(binaries)

    assert await codes(imaging_request(study.uid, study.series, [uid], repository="1.2.3")) == (
        "Failure",
        ["XDSUnknownRepositoryId"],
        0,
    )
    assert await codes(imaging_request(study.uid, "1.2.3.4", [uid])) == (
        "Failure",
        ["XDSDocumentUniqueIdError"],
        0,
    )
    assert await codes(imaging_request("", study.series, [uid])) == ("Failure", ["XDSIRequestError"], 0)
    assert await codes(imaging_request(study.uid, study.series, [uid], syntaxes=())) == (
        "Failure",
        ["XDSRepositoryError"],
        0,
    )
    # archived in explicit VR little endian; a consumer that takes only implicit gets nothing
    assert await codes(imaging_request(study.uid, study.series, [uid], syntaxes=(IMPLICIT,))) == (
        "Failure",
        ["XDSRepositoryError"],
        0,
    )
    # one good, one unknown: the good one comes, with PartialSuccess
    status, errors, sent = await codes(imaging_request(study.uid, study.series, [uid, "1.2.3.99"]))
    assert (status, errors, sent) == ("PartialSuccess", ["XDSDocumentUniqueIdError"], 1)

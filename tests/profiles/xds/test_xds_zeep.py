"""A real SOAP client against the published WSDLs: zeep loads each service's WSDL and schemas from
the engine (and nothing from anywhere else), then submits, finds and retrieves a document.

zeep does not implement XML Schema substitution groups, and ebRIM's ``RegistryObjectList`` holds
the substitutes of the abstract ``rim:Identifiable`` (ExtrinsicObject, RegistryPackage,
Association, ObjectRef). So zeep builds every request from the WSDL, but the submission's
RegistryObjectList is filled in by a zeep egress plugin from the official example, and a stored
query's results are read from zeep's raw response with lxml. The retrieval is zeep's own, MTOM
response included.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import requests
import zeep
from lxml import etree
from zeep.transports import Transport
from zeep.wsa import WsAddressingPlugin

from tests.ihe.test_soap import EXAMPLES
from tests.profiles.xds.conftest import Xds

XDSB = "urn:ihe:iti:xds-b:2007"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
PATIENT = "SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
CDA = "<ClinicalDocument xmlns='urn:hl7-org:v3'><title>门诊病历</title></ClinicalDocument>".encode()


class RecordingTransport(Transport):
    """zeep's HTTP transport, noting every document it loads (WSDL, schemas)."""

    def __init__(self) -> None:
        super().__init__(session=requests.Session(), timeout=30)
        self.loaded: list[str] = []

    def load(self, url: str) -> bytes:
        self.loaded.append(url)
        return bytes(super().load(url))


def client(url: str, *plugins: Any) -> tuple[zeep.Client, RecordingTransport]:
    transport = RecordingTransport()
    return zeep.Client(
        f"{url}?wsdl", transport=transport, plugins=[WsAddressingPlugin(), *plugins]
    ), transport


class ExampleMetadata:
    """zeep egress plugin: the official ITI-41 example's metadata in the RegistryObjectList."""

    def egress(self, envelope: Any, http_headers: Any, operation: Any, binding_options: Any) -> Any:
        listed = envelope.find(f".//{{{RIM}}}RegistryObjectList")
        if listed is not None:
            example = etree.parse(str(EXAMPLES / "ProvideAndRegisterDocumentSet-bRequest.xml")).getroot()
            for element in example.find(f".//{{{RIM}}}RegistryObjectList"):
                listed.append(element)
        return envelope, http_headers

    def ingress(self, envelope: Any, http_headers: Any, operation: Any) -> Any:
        return envelope, http_headers


def values(*given: str) -> dict[str, Any]:
    """A rim:ValueList as zeep takes it (its Value elements are a repeated sequence)."""
    return {"_value_1": [{"Value": v} for v in given]}


def exchange(xds: Xds) -> dict[str, Any]:
    registry, registry_loads = client(xds.registry)
    repository, repository_loads = client(xds.repository, ExampleMetadata())
    submitted = repository.service["DocumentRepository_ProvideAndRegisterDocumentSet-b"](
        SubmitObjectsRequest={"RegistryObjectList": {}}, Document=[{"id": "Document01", "_value_1": CDA}]
    )
    with registry.settings(raw_response=True):
        found = registry.service.DocumentRegistry_RegistryStoredQuery(
            ResponseOption={"returnType": "LeafClass", "returnComposedObjects": True},
            AdhocQuery={
                "id": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
                "Slot": [
                    {"name": "$XDSDocumentEntryPatientId", "ValueList": values(f"'{PATIENT}'")},
                    {
                        "name": "$XDSDocumentEntryStatus",
                        "ValueList": values("('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"),
                    },
                ],
            },
        )
    retrieved = repository.service.DocumentRepository_RetrieveDocumentSet(
        DocumentRequest=[
            {"RepositoryUniqueId": xds.unique_id, "DocumentUniqueId": "1.3.6.1.4.1.21367.2005.3.9999.32"}
        ]
    )
    return {
        "submitted": submitted,
        "found": etree.fromstring(found.content),
        "retrieved": retrieved,
        "loaded": registry_loads.loaded + repository_loads.loaded,
    }


async def test_zeep_submits_finds_and_retrieves_with_the_published_wsdls(xds: Xds) -> None:
    await xds.know("SELF-5")
    got = await asyncio.to_thread(exchange, xds)
    success = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    assert got["submitted"].status == success
    (answer,) = got["found"].iter(f"{{{QUERY}}}AdhocQueryResponse")
    assert answer.get("status") == success
    (entry,) = answer.iter(f"{{{RIM}}}ExtrinsicObject")
    slots = {s.get("name"): [v.text for v in s.iter(f"{{{RIM}}}Value")] for s in entry.iter(f"{{{RIM}}}Slot")}
    assert slots["hash"] == [hashlib.sha1(CDA).hexdigest()] and slots["size"] == [str(len(CDA))]
    response = got["retrieved"]
    assert response.RegistryResponse.status == success
    (document,) = response.DocumentResponse
    assert document.DocumentUniqueId == "1.3.6.1.4.1.21367.2005.3.9999.32" and document.Document == CDA
    # every WSDL and schema came from the engine: a client on a private network needs nothing else
    assert got["loaded"] and all(url.startswith("http://127.0.0.1:") for url in got["loaded"])

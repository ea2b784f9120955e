"""All fourteen ITI-18 stored queries asked over real HTTP (SQLite and PostgreSQL), as a Document
Consumer would: each answers Success with the objects the query defines, LeafClass and ObjectRef,
and the answer is valid against the published schemas; a LeafClass answer by ids about two patients
is XDSResultNotSinglePatient, and a Find… for a patient the EMPI does not know is XDSUnknownPatientId.

The registry: submission 1 (SubmissionSet ss1 holding doc1 and a Folder that holds doc1), then
submission 2 (ss2 holding doc2, which replaces doc1 by RPLC; the registry makes the Folder hold doc2).
"""

from __future__ import annotations

from collections import Counter

from lxml import etree

from ihe._ebxml import RIM
from ihe._xsd import schema_errors, xds_schema
from tests.ihe.test_ebxml import WITH_REPOSITORY_SLOTS
from tests.profiles.xds.conftest import ITI, PATIENT, Xds, body_of, envelope, second_version
from tests.profiles.xds.test_package_queries import APPROVED, BOTH, FOLDER_UNIQUE_ID, listed, request
from tests.profiles.xds.test_registry import with_folder
from tests.profiles.xds.test_xds_http import SUCCESS

RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
DOC1 = "1.3.6.1.4.1.21367.2005.3.9999.32"
SS1 = "1.3.6.1.4.1.21367.2005.3.9999.33"


def kinds(answer: etree._Element) -> Counter[str]:
    """What the answer holds: documents, packages (SubmissionSets and Folders), associations, refs."""
    found = answer.find(f"{{{RIM}}}RegistryObjectList")
    assert found is not None
    return Counter(etree.QName(e).localname for e in found)


async def ask(xds: Xds, name: str, *slots: tuple[str, str], return_type: str = "LeafClass") -> etree._Element:
    query = etree.tostring(request(name, *slots, return_type=return_type), encoding="unicode")
    answer = await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", query))
    assert answer.status_code == 200, answer.text
    return body_of(answer.content)


async def register(xds: Xds, submission: str) -> None:
    answer = await xds.post(xds.registry, envelope(f"{ITI}RegisterDocumentSet-b", submission))
    assert body_of(answer.content).get("status") == SUCCESS, answer.text


async def test_every_stored_query_answers_over_http(xds: Xds) -> None:
    await xds.know("SELF-5")
    await register(xds, with_folder(WITH_REPOSITORY_SLOTS))
    first = await ask(xds, "GetDocuments", ("$XDSDocumentEntryUniqueId", listed(DOC1)))
    (doc1,) = [e.get("id", "") for e in first.iter(f"{{{RIM}}}ExtrinsicObject")]
    await register(xds, second_version(WITH_REPOSITORY_SLOTS, 1, replaces=doc1))
    patient = f"'{PATIENT}'"
    (folder,) = [
        e.get("id", "")
        for e in (await ask(xds, "GetFolders", ("$XDSFolderUniqueId", listed(FOLDER_UNIQUE_ID)))).iter(
            f"{{{RIM}}}RegistryPackage"
        )
    ]
    by_doc1 = ("$XDSDocumentEntryEntryUUID", f"'{doc1}'")
    cases: list[tuple[str, tuple[tuple[str, str], ...], dict[str, int]]] = [
        (
            "FindDocuments",
            (("$XDSDocumentEntryPatientId", patient), ("$XDSDocumentEntryStatus", BOTH)),
            {"ExtrinsicObject": 2},
        ),
        (
            "FindDocumentsByReferenceId",
            (
                ("$XDSDocumentEntryPatientId", patient),
                ("$XDSDocumentEntryStatus", BOTH),
                ("$XDSDocumentEntryReferenceIdList", listed("nothing^^^&1.2.3&ISO")),
            ),
            {},
        ),
        (
            "FindSubmissionSets",
            (("$XDSSubmissionSetPatientId", patient), ("$XDSSubmissionSetStatus", APPROVED)),
            {"RegistryPackage": 2},
        ),
        (
            "FindFolders",
            (("$XDSFolderPatientId", patient), ("$XDSFolderStatus", APPROVED)),
            {"RegistryPackage": 1},
        ),
        (
            "GetAll",
            (
                ("$patientId", patient),
                ("$XDSDocumentEntryStatus", BOTH),
                ("$XDSSubmissionSetStatus", APPROVED),
                ("$XDSFolderStatus", APPROVED),
            ),
            {"ExtrinsicObject": 2, "RegistryPackage": 3, "Association": 6},
        ),
        ("GetDocuments", (by_doc1,), {"ExtrinsicObject": 1}),
        ("GetFolders", (("$XDSFolderEntryUUID", f"'{folder}'"),), {"RegistryPackage": 1}),
        ("GetAssociations", (("$uuid", f"'{doc1}'"),), {"Association": 3}),  # ss1, folder, rplc
        ("GetDocumentsAndAssociations", (by_doc1,), {"ExtrinsicObject": 1, "Association": 3}),
        ("GetSubmissionSets", (("$uuid", f"'{doc1}'"),), {"RegistryPackage": 1, "Association": 1}),
        (
            "GetSubmissionSetAndContents",
            (("$XDSSubmissionSetUniqueId", f"'{SS1}'"),),
            {"RegistryPackage": 2, "ExtrinsicObject": 1, "Association": 3},
        ),
        (
            "GetFolderAndContents",
            (("$XDSFolderEntryUUID", f"'{folder}'"),),
            {"RegistryPackage": 1, "ExtrinsicObject": 2, "Association": 3},
        ),
        ("GetFoldersForDocument", (by_doc1,), {"RegistryPackage": 1}),
        (
            "GetRelatedDocuments",
            (by_doc1, ("$AssociationTypes", listed(RPLC))),
            {"ExtrinsicObject": 2, "Association": 1},
        ),
    ]
    assert len({name for name, _, _ in cases}) == 14
    for name, slots, expected in cases:
        leaf = await ask(xds, name, *slots)
        assert leaf.get("status") == SUCCESS and errors_of_element(leaf) == [], name
        assert kinds(leaf) == Counter(expected), name
        assert schema_errors(xds_schema(), leaf) == [], name  # as the published schemas define it
        refs = await ask(xds, name, *slots, return_type="ObjectRef")
        assert (
            kinds(refs) == Counter({"ObjectRef": sum(expected.values())}) if expected else kinds(refs) == {}
        )
        # LeafClass packages carry their status now; the replaced document says Deprecated
        for element in leaf.iter(f"{{{RIM}}}ExtrinsicObject"):
            assert element.get("status", "").endswith(
                "Deprecated" if element.get("id") == doc1 else "Approved"
            )


def errors_of_element(answer: etree._Element) -> list[str]:
    return [
        e.get("errorCode", "")
        for e in answer.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0}RegistryError")
    ]


async def test_query_errors_of_the_package_queries(xds: Xds) -> None:
    await xds.know("SELF-5")
    await xds.know("OTHER-7", name="另一^个人", born="19700707")
    await register(xds, with_folder(WITH_REPOSITORY_SLOTS))
    await register(xds, second_version(WITH_REPOSITORY_SLOTS, 1).replace("SELF-5^^^", "OTHER-7^^^"))
    stranger = (("$XDSFolderPatientId", "'NOBODY-1^^^&1.3.6.1.4.1.21367.2005.3.7&ISO'"),)
    answer = await ask(xds, "FindFolders", *stranger, ("$XDSFolderStatus", APPROVED))
    assert errors_of_element(answer) == ["XDSUnknownPatientId"]
    both = await ask(xds, "GetSubmissionSets", ("$uuid", listed(*await _document_uuids(xds))))
    assert errors_of_element(both) == ["XDSResultNotSinglePatient"] and kinds(both) == {}
    refs = await ask(
        xds, "GetSubmissionSets", ("$uuid", listed(*await _document_uuids(xds))), return_type="ObjectRef"
    )
    assert kinds(refs) == Counter({"ObjectRef": 4})
    missing = await ask(xds, "GetFolderAndContents", ("$XDSDocumentEntryFormatCode", listed("a^^b")))
    assert errors_of_element(missing) == ["XDSStoredQueryMissingParam"]


async def _document_uuids(xds: Xds) -> list[str]:
    answer = await ask(
        xds,
        "GetDocuments",
        ("$XDSDocumentEntryUniqueId", listed(DOC1, "1.3.6.1.4.1.21367.2005.3.9999.321")),
        return_type="ObjectRef",
    )
    return [e.get("id", "") for e in answer.iter(f"{{{RIM}}}ObjectRef")]

"""The stored queries about SubmissionSets, Folders and relations (FindSubmissionSets, FindFolders,
GetAll, GetFolders, GetSubmissionSets, GetSubmissionSetAndContents, GetFolderAndContents,
GetFoldersForDocument, GetRelatedDocuments), on SQLite and PostgreSQL, over a small registry:

* submission 1 (2004): SubmissionSet ``ss1`` holding DocumentEntry ``doc1`` and Folder ``folder``,
  which holds ``doc1`` too;
* submission 2 (2026): SubmissionSet ``ss2`` holding ``doc2``, which replaces ``doc1`` (RPLC): ``doc1``
  is Deprecated, and the registry makes ``folder`` hold ``doc2`` as well (TF-3 §4.2.2.1.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

import pytest
from lxml import etree
from sqlalchemy import Engine, select

from ihe._ebxml import HAS_MEMBER, RIM
from ihe.iti18 import QUERIES, STATUS, parse_stored_query
from profiles.xds.contents import get_all, get_folder_and_contents, get_submission_set_and_contents
from profiles.xds.find_documents import TooManyResults
from profiles.xds.find_packages import find_folders, find_submission_sets
from profiles.xds.get_queries import (
    NotSinglePatient,
    get_folders,
    get_folders_for_document,
    get_related_documents,
    get_submission_sets,
)
from profiles.xds.lookups import Answer
from profiles.xds.schema import associations
from tests.ihe.test_ebxml import WITH_REPOSITORY_SLOTS
from tests.profiles.xds.conftest import KNOWN, PATIENT, register, second_version
from tests.profiles.xds.test_registry import with_folder

PERSON = KNOWN[PATIENT]
FORMAT = "CDAR2/IHE 1.0^^Connect-a-thon formatCodes"
CONTENT_TYPE = "History and Physical^^Connect-a-thon contentTypeCodes"
FOLDER_CODE = "Discharge^^Connect-a-thon folderCodeList"
FOLDER_UNIQUE_ID = "1.3.6.1.4.1.21367.2005.3.9999.40"


def request(name: str, *slots: tuple[str, str], return_type: str = "LeafClass") -> etree._Element:
    """An AdhocQueryRequest for the stored query ``name``; each slot's value as it would be sent."""
    (query_id,) = [i for i, q in QUERIES.items() if q.name == name]
    body = "".join(
        f'<rim:Slot name="{n}"><rim:ValueList><rim:Value>{escape(v)}</rim:Value></rim:ValueList></rim:Slot>'
        for n, v in slots
    )
    return etree.fromstring(
        '<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
        f'xmlns:rim="{RIM}"><query:ResponseOption returnType="{return_type}"/>'
        f'<rim:AdhocQuery id="{query_id}">{body}</rim:AdhocQuery></query:AdhocQueryRequest>'
    )


def listed(*values: str) -> str:
    return "(" + ",".join(f"'{v}'" for v in values) + ")"


APPROVED = listed(f"{STATUS}Approved")
BOTH = listed(f"{STATUS}Approved", f"{STATUS}Deprecated")


@dataclass
class Registry:
    db: Engine
    ids: dict[str, str]  # ss1, ss2, doc1, doc2, folder, and the associations: ss1-doc1, ss1-folder,
    # folder-doc1, ss2-doc2, rplc, folder-doc2 (made by the registry)

    def names(self, answer: Answer) -> list[str]:
        """The answer's objects by their names in this registry, in answer order."""
        by_uuid = {u: n for n, u in self.ids.items()}
        return [by_uuid.get(u, u) for u in answer.uuids]


@pytest.fixture
def reg(db: Engine) -> Registry:
    first = register(db, with_folder(WITH_REPOSITORY_SLOTS))
    later = second_version(WITH_REPOSITORY_SLOTS, 1, replaces=first.uuids["Document01"])
    second = register(db, later.replace("20041225235050", "20261203101500"))
    assert first.errors == [] and second.errors == []
    ids = {
        "ss1": first.uuids["SubmissionSet01"],
        "ss2": second.uuids["SubmissionSet01"],
        "doc1": first.uuids["Document01"],
        "doc2": second.uuids["Document01"],
        "folder": first.uuids["Folder01"],
        "ss1-doc1": first.uuids["as01"],
        "ss1-folder": first.uuids["asf1"],
        "folder-doc1": first.uuids["asf2"],
        "ss2-doc2": second.uuids["as01"],
        "rplc": second.uuids["rplc1"],
    }
    with db.connect() as conn:
        ids["folder-doc2"] = conn.execute(
            select(associations.c.entry_uuid).where(
                associations.c.source_uuid == ids["folder"], associations.c.target_uuid == ids["doc2"]
            )
        ).scalar_one()
    return Registry(db, ids)


def test_find_submission_sets_by_each_parameter_newest_first(reg: Registry) -> None:
    def find(*slots: tuple[str, str]) -> list[str]:
        query = parse_stored_query(
            request(
                "FindSubmissionSets",
                ("$XDSSubmissionSetPatientId", f"'{PATIENT}'"),
                ("$XDSSubmissionSetStatus", APPROVED),
                *slots,
            )
        )
        with reg.db.connect() as conn:
            return reg.names(find_submission_sets(conn, query, PERSON))

    assert find() == ["ss2", "ss1"]
    assert find(("$XDSSubmissionSetSubmissionTimeFrom", "2026")) == ["ss2"]
    assert find(("$XDSSubmissionSetSubmissionTimeTo", "20261203101500")) == ["ss1"]  # To is exclusive
    assert find(("$XDSSubmissionSetSourceId", listed("3670984664", "1.2.3"))) == ["ss2", "ss1"]
    assert find(("$XDSSubmissionSetSourceId", listed("1.2.3"))) == []
    assert find(("$XDSSubmissionSetAuthorPerson", listed("Sherry%"))) == ["ss2", "ss1"]
    assert find(("$XDSSubmissionSetAuthorPerson", listed("Gerald%"))) == []
    assert find(("$XDSSubmissionSetContentType", listed(CONTENT_TYPE))) == ["ss2", "ss1"]
    assert find(("$XDSSubmissionSetContentType", listed("X^^Connect-a-thon contentTypeCodes"))) == []
    with reg.db.connect() as conn:  # another person has none
        query = parse_stored_query(
            request(
                "FindSubmissionSets",
                ("$XDSSubmissionSetPatientId", f"'{PATIENT}'"),
                ("$XDSSubmissionSetStatus", APPROVED),
            )
        )
        assert find_submission_sets(conn, query, PERSON + 1).uuids == []
        with pytest.raises(TooManyResults):
            find_submission_sets(conn, query, PERSON, limit=1)


def test_find_folders_by_codes_and_last_update_time(reg: Registry) -> None:
    def find(*slots: tuple[str, str], return_type: str = "LeafClass") -> Answer:
        query = parse_stored_query(
            request(
                "FindFolders",
                ("$XDSFolderPatientId", f"'{PATIENT}'"),
                ("$XDSFolderStatus", APPROVED),
                *slots,
                return_type=return_type,
            )
        )
        with reg.db.connect() as conn:
            return find_folders(conn, query, PERSON)

    answer = find()
    assert reg.names(answer) == ["folder"]
    # the registry keeps lastUpdateTime: submission 2 gave the folder a document, so it changed then
    folder = etree.fromstring(answer.metadata[reg.ids["folder"]])
    (updated,) = folder.xpath(
        "rim:Slot[@name='lastUpdateTime']/rim:ValueList/rim:Value/text()", namespaces={"rim": RIM}
    )
    assert len(updated) == 14 and updated.startswith("20")
    assert reg.names(find(("$XDSFolderLastUpdateTimeFrom", updated))) == ["folder"]
    assert reg.names(find(("$XDSFolderLastUpdateTimeTo", updated))) == []
    assert reg.names(find(("$XDSFolderCodeList", listed(FOLDER_CODE, "Other^^x")))) == ["folder"]
    # repeated: every repetition must match (AND)
    both = find(("$XDSFolderCodeList", listed(FOLDER_CODE)), ("$XDSFolderCodeList", listed("Other^^x")))
    assert both.uuids == []
    assert find(return_type="ObjectRef").metadata == {}


def test_get_all_is_everything_about_the_patient(reg: Registry) -> None:
    def everything(documents: str = BOTH, *slots: tuple[str, str], limit: int = 1000) -> list[str]:
        query = parse_stored_query(
            request(
                "GetAll",
                ("$patientId", f"'{PATIENT}'"),
                ("$XDSDocumentEntryStatus", documents),
                ("$XDSSubmissionSetStatus", APPROVED),
                ("$XDSFolderStatus", APPROVED),
                *slots,
            )
        )
        with reg.db.connect() as conn:
            return reg.names(get_all(conn, query, PERSON, limit))

    objects = ["ss1", "ss2", "doc1", "doc2", "folder"]
    links = ["ss1-doc1", "ss1-folder", "folder-doc1", "ss2-doc2", "rplc", "folder-doc2"]
    assert sorted(everything()) == sorted(objects + links)
    # without Deprecated entries doc1 is left out, but the associations touching the others stay
    assert sorted(everything(APPROVED)) == sorted([o for o in objects if o != "doc1"] + links)
    assert "doc2" not in everything(BOTH, ("$XDSDocumentEntryFormatCode", listed("Other^^x")))
    with pytest.raises(TooManyResults):  # a limit of 3 objects: 5 objects and their 6 associations
        everything(BOTH, limit=3)


def test_a_submission_set_and_its_contents(reg: Registry) -> None:
    def contents(*slots: tuple[str, str]) -> list[str]:
        with reg.db.connect() as conn:
            return reg.names(
                get_submission_set_and_contents(
                    conn, parse_stored_query(request("GetSubmissionSetAndContents", *slots)), 1000
                )
            )

    by_uuid = ("$XDSSubmissionSetEntryUUID", f"'{reg.ids['ss1']}'")
    assert contents(by_uuid) == ["ss1", "doc1", "folder", "ss1-doc1", "ss1-folder", "folder-doc1"]
    by_unique_id = ("$XDSSubmissionSetUniqueId", "'1.3.6.1.4.1.21367.2005.3.9999.33'")
    assert contents(by_unique_id) == contents(by_uuid)
    # a DocumentEntry left out by formatCode takes the associations to it along
    other_format = ("$XDSDocumentEntryFormatCode", listed("Other^^x"))
    assert contents(by_uuid, other_format) == ["ss1", "folder", "ss1-folder"]
    assert contents(by_uuid, ("$XDSDocumentEntryFormatCode", listed(FORMAT)))[:2] == ["ss1", "doc1"]
    assert contents(("$XDSSubmissionSetEntryUUID", "'urn:uuid:00000000-0000-4000-8000-000000000000'")) == []


def test_a_folder_and_its_contents_and_the_folders_of_a_document(reg: Registry) -> None:
    with reg.db.connect() as conn:
        by_uuid = parse_stored_query(
            request("GetFolderAndContents", ("$XDSFolderEntryUUID", f"'{reg.ids['folder']}'"))
        )
        assert reg.names(get_folder_and_contents(conn, by_uuid, 1000)) == [
            "folder",
            "doc1",
            "doc2",
            "folder-doc1",
            "rplc",
            "folder-doc2",
        ]  # every association with both ends in the answer: the RPLC between its entries too
        confidential = parse_stored_query(
            request(
                "GetFolderAndContents",
                ("$XDSFolderUniqueId", f"'{FOLDER_UNIQUE_ID}'"),
                ("$XDSDocumentEntryConfidentialityCode", listed("N^^2.16.840.1.113883.5.25")),
            )
        )
        assert reg.names(get_folder_and_contents(conn, confidential, 1000)) == ["folder"]
        folders = get_folders(
            conn, parse_stored_query(request("GetFolders", ("$XDSFolderUniqueId", listed(FOLDER_UNIQUE_ID))))
        )
        assert reg.names(folders) == ["folder"]
        assert etree.fromstring(folders.metadata[reg.ids["folder"]]).find(f"{{{RIM}}}Slot") is not None
        for document in ("doc1", "doc2"):
            held_by = parse_stored_query(
                request("GetFoldersForDocument", ("$XDSDocumentEntryEntryUUID", f"'{reg.ids[document]}'"))
            )
            assert reg.names(get_folders_for_document(conn, held_by)) == ["folder"]
        # by uniqueId: every entry of that uniqueId
        by_unique_id = parse_stored_query(
            request(
                "GetFoldersForDocument", ("$XDSDocumentEntryUniqueId", "'1.3.6.1.4.1.21367.2005.3.9999.32'")
            )
        )
        assert reg.names(get_folders_for_document(conn, by_unique_id)) == ["folder"]


def test_the_submission_sets_that_hold_objects(reg: Registry) -> None:
    def holders(*uuids: str, return_type: str = "LeafClass") -> list[str]:
        query = parse_stored_query(
            request("GetSubmissionSets", ("$uuid", listed(*uuids)), return_type=return_type)
        )
        with reg.db.connect() as conn:
            return reg.names(get_submission_sets(conn, query))

    assert holders(reg.ids["doc2"]) == ["ss2", "ss2-doc2"]
    assert holders(reg.ids["folder"]) == ["ss1", "ss1-folder"]
    assert holders(reg.ids["doc1"], reg.ids["doc2"]) == ["ss1", "ss2", "ss1-doc1", "ss2-doc2"]
    # the folder holds doc2 (the registry's association), but no SubmissionSet of this query does
    assert holders("urn:uuid:00000000-0000-4000-8000-000000000000") == []


def test_related_documents_by_association_type(reg: Registry) -> None:
    def related(document: str, *types: str) -> list[str]:
        query = parse_stored_query(
            request(
                "GetRelatedDocuments",
                ("$XDSDocumentEntryEntryUUID", f"'{reg.ids[document]}'"),
                ("$AssociationTypes", listed(*types)),
            )
        )
        with reg.db.connect() as conn:
            return reg.names(get_related_documents(conn, query))

    assert related("doc2", "urn:ihe:iti:2007:AssociationType:RPLC") == ["doc1", "doc2", "rplc"]
    rplc_or_apnd = ("urn:ihe:iti:2007:AssociationType:RPLC", "urn:ihe:iti:2007:AssociationType:APND")
    assert related("doc1", *rplc_or_apnd) == ["doc1", "doc2", "rplc"]
    assert related("doc1", "RPLC") == ["doc1", "doc2", "rplc"]  # a bare type, as some consumers send it
    # no relation of these types: nothing at all, not even the document itself
    assert related("doc2", "urn:ihe:iti:2007:AssociationType:APND") == []
    # HasMember ends at a SubmissionSet or Folder, not a document: not a related document
    assert related("doc2", HAS_MEMBER) == []


def test_answers_about_two_patients_are_refused_as_leaf_class_only(reg: Registry) -> None:
    other = "OTHER-7^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
    KNOWN[other] = 77
    try:
        theirs = register(reg.db, second_version(WITH_REPOSITORY_SLOTS, 2).replace("SELF-5^^^", "OTHER-7^^^"))
    finally:
        del KNOWN[other]
    both = listed(reg.ids["doc1"], theirs.uuids["Document01"])
    with reg.db.connect() as conn:
        with pytest.raises(NotSinglePatient):
            get_submission_sets(conn, parse_stored_query(request("GetSubmissionSets", ("$uuid", both))))
        refs = get_submission_sets(
            conn, parse_stored_query(request("GetSubmissionSets", ("$uuid", both), return_type="ObjectRef"))
        )
    assert len(refs.uuids) == 4 and refs.metadata == {}

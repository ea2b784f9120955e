"""FindDocuments over registered entries, on SQLite and PostgreSQL: every parameter narrows the
answer as TF-2 §3.18.4.1.2.3.7.1 says, and too broad a LeafClass query is XDSTooManyResults."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from lxml import etree
from sqlalchemy import Engine

from ihe.iti18 import STATUS, parse_stored_query
from profiles.xds.find_documents import TooManyResults, find_documents
from tests.ihe.test_ebxml import WITH_REPOSITORY_SLOTS
from tests.profiles.xds.conftest import PATIENT, register, second_version

FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
DE = "$XDSDocumentEntry"


def query(*slots: tuple[str, str], return_type: str = "LeafClass") -> etree._Element:
    given = (
        ("$XDSDocumentEntryPatientId", f"'{PATIENT}'"),
        ("$XDSDocumentEntryStatus", f"('{STATUS}Approved')"),
    )
    body = "".join(
        f'<rim:Slot name="{n}"><rim:ValueList><rim:Value>{escape(v)}</rim:Value></rim:ValueList></rim:Slot>'
        for n, v in (*given, *slots)
    )
    return etree.fromstring(
        '<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">'
        f'<query:ResponseOption returnType="{return_type}"/>'
        f'<rim:AdhocQuery id="{FIND}">{body}</rim:AdhocQuery>'
        "</query:AdhocQueryRequest>"
    )


def found(db: Engine, *slots: tuple[str, str], limit: int = 1000) -> list[str]:
    with db.connect() as conn:
        return [f.entry_uuid for f in find_documents(conn, parse_stored_query(query(*slots)), limit=limit)]


@pytest.fixture
def three(db: Engine) -> dict[str, str]:
    """Three documents of the patient: the example (2005), a 2026 one with an event code, a CT study."""
    first = register(db, WITH_REPOSITORY_SLOTS).uuids["Document01"]
    event = (
        '<rim:Classification id="ev" classificationScheme="urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4" '
        'classifiedObject="Document01" nodeRepresentation="{code}">'
        '<rim:Slot name="codingScheme"><rim:ValueList>'
        "<rim:Value>DCM</rim:Value></rim:ValueList></rim:Slot></rim:Classification>"
    )
    later = second_version(WITH_REPOSITORY_SLOTS, 1).replace("20051224", "20261201")
    later = later.replace(
        '<rim:ExternalIdentifier id="ei01"', event.format(code="MR") + '<rim:ExternalIdentifier id="ei01"'
    )
    ct = (
        second_version(WITH_REPOSITORY_SLOTS, 2)
        .replace("20051224", "20261202")
        .replace("Gerald Smitty", "王建国")
    )
    ct = ct.replace(
        '<rim:ExternalIdentifier id="ei01"', event.format(code="CT") + '<rim:ExternalIdentifier id="ei01"'
    )
    return {
        "2005": first,
        "mr": register(db, later).uuids["Document01"],
        "ct": register(db, ct).uuids["Document01"],
    }  # fmt: skip


def test_find_documents_narrows_by_each_parameter(db: Engine, three: dict[str, str]) -> None:
    assert found(db) == [three["ct"], three["mr"], three["2005"]]  # newest first
    assert found(db, ("$XDSDocumentEntryCreationTimeFrom", "2026")) == [three["ct"], three["mr"]]
    assert found(db, ("$XDSDocumentEntryCreationTimeTo", "20261202")) == [three["mr"], three["2005"]]
    assert found(db, ("$XDSDocumentEntryEventCodeList", "('CT^^DCM','US^^DCM')")) == [three["ct"]]
    both = (
        ("$XDSDocumentEntryEventCodeList", "('CT^^DCM')"),
        ("$XDSDocumentEntryEventCodeList", "('MR^^DCM')"),
    )
    assert found(db, *both) == []  # repeated: AND
    assert found(db, ("$XDSDocumentEntryAuthorPerson", "('王%')")) == [three["ct"]]
    assert found(db, ("$XDSDocumentEntryTypeCode", "('34108-1^^LOINC')")) == [
        three["ct"],
        three["mr"],
        three["2005"],
    ]
    assert found(db, ("$XDSDocumentEntryTypeCode", "('11506-3^^LOINC')")) == []
    started = (
        ("$XDSDocumentEntryServiceStartTimeFrom", "200412230800"),
        ("$XDSDocumentEntryServiceStartTimeTo", "2005"),
    )
    assert found(db, *started) == [three["ct"], three["mr"], three["2005"]]


def test_a_leaf_class_answer_above_the_limit_is_too_many_results(db: Engine, three: dict[str, str]) -> None:
    with pytest.raises(TooManyResults):
        found(db, limit=2)
    assert len(found(db, limit=3)) == 3
    with db.connect() as conn:  # ObjectRefs may be ten times as many
        refs = find_documents(conn, parse_stored_query(query(return_type="ObjectRef")), limit=1)
    assert len(refs) == 3 and all(r.metadata == "" for r in refs)


def test_another_patient_or_a_deprecated_entry_is_not_found(db: Engine, three: dict[str, str]) -> None:
    replaced = register(db, second_version(WITH_REPOSITORY_SLOTS, 3, replaces=three["2005"])).uuids[
        "Document01"
    ]
    assert three["2005"] not in found(db) and replaced in found(db)
    with db.connect() as conn:
        text = etree.tostring(query()).decode().replace("SELF-5", "SELF-6")
        assert find_documents(conn, parse_stored_query(etree.fromstring(text))) == []

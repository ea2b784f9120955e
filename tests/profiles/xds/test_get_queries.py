"""GetDocuments and GetAssociations over registered entries, on SQLite and PostgreSQL; a LeafClass
answer about two patients is XDSResultNotSinglePatient, with no metadata."""

from __future__ import annotations

import pytest
from lxml import etree
from sqlalchemy import Engine

from ihe.iti18 import parse_stored_query
from profiles.xds.get_queries import NotSinglePatient, get_associations, get_documents
from tests.ihe.test_ebxml import WITH_REPOSITORY_SLOTS
from tests.profiles.xds.conftest import KNOWN, register, second_version

GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


def get(db: Engine, name: str, values: list[str], return_type: str = "LeafClass") -> list[str]:
    listed = ",".join(f"'{v}'" for v in values)
    request = etree.fromstring(
        '<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">'
        f'<query:ResponseOption returnType="{return_type}"/><rim:AdhocQuery id="{GET_DOCUMENTS}">'
        f'<rim:Slot name="{name}"><rim:ValueList><rim:Value>({listed})</rim:Value></rim:ValueList></rim:Slot>'
        "</rim:AdhocQuery></query:AdhocQueryRequest>"
    )
    with db.connect() as conn:
        answer = get_documents(conn, parse_stored_query(request))
    assert all(etree.fromstring(m).get("id") == u for u, m in answer.metadata.items())
    return answer.uuids


def test_documents_by_entry_uuid_or_unique_id_and_their_associations(db: Engine) -> None:
    first = register(db, WITH_REPOSITORY_SLOTS)
    second = register(db, second_version(WITH_REPOSITORY_SLOTS, 1))
    one, two = first.uuids["Document01"], second.uuids["Document01"]
    assert get(db, "$XDSDocumentEntryEntryUUID", [two, one]) == [one, two]
    assert get(db, "$XDSDocumentEntryUniqueId", ["1.3.6.1.4.1.21367.2005.3.9999.321"]) == [two]
    assert get(db, "$XDSDocumentEntryEntryUUID", ["urn:uuid:00000000-0000-4000-8000-000000000000"]) == []
    with db.connect() as conn:
        answer = get_associations(conn, [one], leaf=True)
    assert answer.uuids == [first.uuids["as01"]]
    assert etree.fromstring(answer.metadata[first.uuids["as01"]]).get("targetObject") == one


def test_a_leaf_class_answer_about_two_patients_is_refused(db: Engine) -> None:
    KNOWN["OTHER-7^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"] = 77
    try:
        mine = register(db, WITH_REPOSITORY_SLOTS).uuids["Document01"]
        other = second_version(WITH_REPOSITORY_SLOTS, 1).replace("SELF-5^^^", "OTHER-7^^^")
        theirs = register(db, other).uuids["Document01"]
    finally:
        del KNOWN["OTHER-7^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"]
    with pytest.raises(NotSinglePatient):
        get(db, "$XDSDocumentEntryEntryUUID", [mine, theirs])
    assert get(db, "$XDSDocumentEntryEntryUUID", [mine, theirs], "ObjectRef") == [mine, theirs]

"""ITI-18 stored queries read from AdhocQueryRequest: the fourteen query ids, their parameters'
grammar, and the error code TF-2 §3.18.4.1.3 gives each mistake."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from lxml import etree

from ihe._soap import parse_envelope
from ihe.iti18 import QUERIES, STATUS, QueryError, parse_stored_query, parse_values
from tests.ihe.test_soap import EXAMPLES

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
PATIENT = "'320102198503120311^^^&2.16.156.10011.1.3&ISO'"
APPROVED = f"('{STATUS}Approved')"
BASE = [("$XDSDocumentEntryPatientId", [PATIENT]), ("$XDSDocumentEntryStatus", [APPROVED])]


def request(query_id: str, *slots: tuple[str, list[str]], return_type: str = "LeafClass") -> etree._Element:
    body = "".join(
        f'<rim:Slot name="{name}"><rim:ValueList>'
        + "".join(f"<rim:Value>{escape(v)}</rim:Value>" for v in values)
        + "</rim:ValueList></rim:Slot>"
        for name, values in slots
    )
    return etree.fromstring(
        '<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">'
        f'<query:ResponseOption returnComposedObjects="true" returnType="{return_type}"/>'
        f'<rim:AdhocQuery id="{query_id}">{body}</rim:AdhocQuery></query:AdhocQueryRequest>'
    )


def test_fourteen_stored_queries_are_known() -> None:
    assert len(QUERIES) == 14
    assert {q.name for q in QUERIES.values()} >= {"FindDocuments", "GetAll", "FindDocumentsByReferenceId"}


def test_a_find_documents_query_with_or_and_and_parameters() -> None:
    query = parse_stored_query(
        request(
            FIND_DOCUMENTS,
            ("$XDSDocumentEntryPatientId", [PATIENT]),
            (
                "$XDSDocumentEntryStatus",
                [f"('{STATUS}Approved',", f"'{STATUS}Deprecated')"],
            ),  # one list, two Values
            (
                "$XDSDocumentEntryClassCode",
                ["('11506-3^^2.16.840.1.113883.6.1','18842-5^^2.16.840.1.113883.6.1')"],
            ),
            ("$XDSDocumentEntryEventCodeList", ["('T-D3000^^SRT')"]),
            ("$XDSDocumentEntryEventCodeList", ["('CT^^DCM','MR^^DCM')"]),  # repeated: AND
            ("$XDSDocumentEntryCreationTimeFrom", ["20261101"]),
            ("$XDSDocumentEntryAuthorPerson", ["('%王建国%')"]),
        )
    )
    assert query.name == "FindDocuments" and query.return_type == "LeafClass"
    assert query.value("$XDSDocumentEntryPatientId") == "320102198503120311^^^&2.16.156.10011.1.3&ISO"
    assert query.values("$XDSDocumentEntryStatus") == [f"{STATUS}Approved", f"{STATUS}Deprecated"]
    assert query.params["$XDSDocumentEntryEventCodeList"] == [["T-D3000^^SRT"], ["CT^^DCM", "MR^^DCM"]]
    assert query.value("$XDSDocumentEntryCreationTimeFrom") == "20261101"


def test_the_official_example_is_read_leniently_up_to_its_code_without_a_scheme() -> None:
    body = parse_envelope((EXAMPLES / "RegistryStoredQueryRequest_SOAP.xml").read_bytes()).body
    with pytest.raises(QueryError) as raised:  # ('Emergency Department'): a code needs ^^scheme
        parse_stored_query(body)
    assert raised.value.code == "XDSRegistryError" and "code^^scheme" in raised.value.context
    facility = body.find(".//{*}Slot[@name='$XDSDocumentEntryHealthcareFacilityTypeCode']")
    assert facility is not None
    facility.getparent().remove(facility)  # type: ignore[union-attr]
    query = parse_stored_query(body)  # its id has spaces, its patient no quotes, its status a wrong prefix
    assert query.name == "FindDocuments"
    assert query.value("$XDSDocumentEntryPatientId") == "st3498702^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
    assert query.values("$XDSDocumentEntryStatus") == [f"{STATUS}Approved"]


@pytest.mark.parametrize(
    ("slots", "query_id", "code", "words"),
    [
        ([], "urn:uuid:00000000-0000-0000-0000-000000000000", "XDSUnknownStoredQuery", "is not known"),
        ([BASE[0]], FIND_DOCUMENTS, "XDSStoredQueryMissingParam", "$XDSDocumentEntryStatus"),
        (
            [BASE[0], ("$XDSDocumentEntryStatus", ["('urn:x:Unknown')"])],
            FIND_DOCUMENTS,
            "XDSStoredQueryMissingParam",  # only unknown status values: as if none
            "$XDSDocumentEntryStatus",
        ),
        (
            [("$XDSDocumentEntryEntryUUID", ["('urn:uuid:a')"]), ("$XDSDocumentEntryUniqueId", ["'1.2'"])],
            GET_DOCUMENTS,
            "XDSStoredQueryParamNumber",
            "not both",
        ),
        ([], GET_DOCUMENTS, "XDSStoredQueryMissingParam", "EntryUUID or"),
        (
            [("$XDSDocumentEntryPatientId", [f"({PATIENT},'x^^^&1.2&ISO')"]), BASE[1]],
            FIND_DOCUMENTS,
            "XDSStoredQueryParamNumber",
            "takes one value, not 2",
        ),
        (
            [*BASE, ("$XDSDocumentEntryClassCode", ["('11506-3')"])],
            FIND_DOCUMENTS,
            "XDSRegistryError",
            "is not code^^scheme",
        ),
        (
            [*BASE, ("$Nonsense", ["'x'"])],
            FIND_DOCUMENTS,
            "XDSRegistryError",
            "has no parameter $Nonsense",
        ),
        (
            [BASE[0], *BASE],
            FIND_DOCUMENTS,
            "XDSStoredQueryParamNumber",
            "given more than once",
        ),
    ],
)  # fmt: skip
def test_each_mistake_has_its_error_code(
    slots: list[tuple[str, list[str]]], query_id: str, code: str, words: str
) -> None:
    with pytest.raises(QueryError) as raised:
        parse_stored_query(request(query_id, *slots))
    assert raised.value.code == code and words in raised.value.context, raised.value


def test_values_grammar() -> None:
    assert parse_values("('a','b''s')", parameter="$p") == ["a", "b's"]
    assert parse_values(" (1, 2) ", parameter="$p") == ["1", "2"]
    assert parse_values("'x'", parameter="$p") == ["x"]
    assert parse_values("bare-value", parameter="$p") == ["bare-value"]
    with pytest.raises(QueryError, match="separated by commas"):
        parse_values("('a' 'b')", parameter="$p")
    with pytest.raises(QueryError, match="not a quoted value"):
        parse_values("('a', b)", parameter="$p")


def test_a_return_type_other_than_leaf_class_or_object_ref_is_refused() -> None:
    with pytest.raises(QueryError, match="returnType RegistryObject"):
        parse_stored_query(request(GET_DOCUMENTS, ("$uuid", ["'x'"]), return_type="RegistryObject"))

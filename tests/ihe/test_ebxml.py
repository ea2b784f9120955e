"""XDS.b metadata read from ebRIM: the official examples read cleanly, and each breach of the
metadata checklist (xds.md §4) is the error code the notes give, located at the object's id."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from lxml import etree

from ihe._ebxml import HAS_MEMBER, RegistryError, read_submission
from ihe._soap import parse_envelope
from tests.ihe.test_soap import EXAMPLES

REGISTER = (EXAMPLES / "RegisterDocumentSet-bRequest.xml").read_text("utf-8")
WITH_REPOSITORY_SLOTS = REGISTER.replace(
    '<rim:Slot name="creationTime">',
    '<rim:Slot name="hash"><rim:ValueList><rim:Value>DA39A3EE5E6B4B0D3255BFEF95601890AFD80709</rim:Value>'
    '</rim:ValueList></rim:Slot><rim:Slot name="size"><rim:ValueList><rim:Value>0</rim:Value></rim:ValueList>'
    '</rim:Slot><rim:Slot name="repositoryUniqueId"><rim:ValueList><rim:Value>1.2.156.112606.1.99</rim:Value>'
    '</rim:ValueList></rim:Slot><rim:Slot name="creationTime">',
    1,
)


def read(text: str, *, registry: bool = True) -> list[RegistryError]:
    _, errors = read_submission(etree.fromstring(text.encode("utf-8")), registry=registry)
    return errors


def test_the_official_provide_and_register_request_reads_cleanly() -> None:
    request = parse_envelope((EXAMPLES / "ProvideAndRegisterDocumentSet-bRequest_SOAP.xml").read_bytes())
    submission, errors = read_submission(request.body, registry=False)
    assert errors == []
    ss = submission.submission_set
    assert ss is not None and ss.unique_id == "1.3.6.1.4.1.21367.2005.3.9999.33"
    assert ss.patient_id == "SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO" and ss.source_id == "3670984664"
    (entry,) = submission.documents
    assert entry.id == "Document01" and entry.unique_id == "1.3.6.1.4.1.21367.2005.3.9999.32"
    assert entry.patient_id == ss.patient_id and entry.mime_type == "text/xml"
    assert entry.codes["typeCode"][0].code == "34108-1" and entry.codes["typeCode"][0].scheme == "LOINC"
    assert entry.authors[0].person == "Gerald Smitty"
    assert entry.authors[0].institutions == ["Cleveland Clinic", "Parma Community"]
    assert entry.slots["sourcePatientInfo"][1] == "PID-5|Doe^John^^^"
    (member,) = submission.associations
    assert member.type == HAS_MEMBER and (member.source, member.target) == ("SubmissionSet01", "Document01")


def test_the_registry_needs_what_the_repository_adds() -> None:
    assert read(REGISTER, registry=False) == []
    missing = {e.context for e in read(REGISTER)}  # the ITI-42 example omits what a repository adds
    assert {f"XDSDocumentEntry.{n} is missing" for n in ("hash", "size", "repositoryUniqueId")} == missing
    assert read(WITH_REPOSITORY_SLOTS) == []  # an upper-case SHA-1 is accepted


def remove_classification(scheme: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        start = text.index(f'classificationScheme="urn:uuid:{scheme}"')
        start = text.rindex("<rim:Classification", 0, start)
        end = text.index("</rim:Classification>", start) + len("</rim:Classification>")
        return text[:start] + text[end:]

    return change


CASES: list[tuple[str, Callable[[str], str], str, str, str]] = [
    (
        "no classCode",
        remove_classification("41a5887f-8865-4c09-adf7-e362475b143a"),
        "XDSRegistryMetadataError",
        "XDSDocumentEntry.classCode is missing",
        "Document01",
    ),
    (
        "a document of another patient",
        lambda t: t.replace(
            'value="SELF-5^^^&amp;1.3.6.1.4.1.21367.2005.3.7&amp;ISO">',
            'value="OTHER-9^^^&amp;1.3.6.1.4.1.21367.2005.3.7&amp;ISO">',
            1,
        ),
        "XDSPatientIdDoesNotMatch",
        "is not the SubmissionSet's",
        "Document01",
    ),
    (
        "one uniqueId for the document and the submission set",
        lambda t: t.replace("1.3.6.1.4.1.21367.2005.3.9999.33", "1.3.6.1.4.1.21367.2005.3.9999.32"),
        "XDSRegistryDuplicateUniqueIdInMessage",
        "uniqueId 1.3.6.1.4.1.21367.2005.3.9999.32",
        "SubmissionSet01",
    ),
    (
        "a hash that is not SHA-1",
        lambda t: t.replace("DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "md5:1234"),
        "XDSRegistryMetadataError",
        "hash 'md5:1234' is not 40 hexadecimal digits",
        "Document01",
    ),
    (
        "a creation time that is not a DTM",
        lambda t: t.replace("<rim:Value>20051224</rim:Value>", "<rim:Value>2005-12-24</rim:Value>"),
        "XDSRegistryMetadataError",
        "creationTime '2005-12-24' is not a DTM",
        "Document01",
    ),
    (
        "service stop before start",
        lambda t: t.replace("200412230801", "200412220801"),
        "XDSRegistryMetadataError",
        "serviceStartTime is after serviceStopTime",
        "Document01",
    ),
    (
        "an upper-case UUID",
        lambda t: t.replace('id="Document01"', 'id="urn:uuid:AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"').replace(
            '"Document01"', '"urn:uuid:AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"'
        ),
        "XDSRegistryMetadataError",
        "is not a lower-case urn:uuid:",
        "urn:uuid:AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE",
    ),
    (
        "a document outside the submission set",
        lambda t: t.replace('targetObject="Document01"', 'targetObject="Document99"'),
        "XDSRegistryMetadataError",
        "is not a member (HasMember) of the SubmissionSet",
        "Document01",
    ),
    (
        "a HasMember without SubmissionSetStatus",
        lambda t: t.replace('<rim:Slot name="SubmissionSetStatus">', '<rim:Slot name="Status">'),
        "XDSRegistryMetadataError",
        "needs one SubmissionSetStatus",
        "as01",
    ),
    (
        "a slot name reserved to IHE",
        lambda t: t.replace(
            '<rim:Slot name="languageCode">',
            '<rim:Slot name="urn:ihe:iti:xds:2099:secret"><rim:ValueList><rim:Value>x</rim:Value>'
            '</rim:ValueList></rim:Slot><rim:Slot name="languageCode">',
        ),
        "XDSRegistryError",
        "reserved to IHE",
        "Document01",
    ),
    (
        "an author who is nobody",
        lambda t: re.sub(
            r'<rim:Slot name="authorInstitution">.*?</rim:Slot>',
            "",
            t.replace("Gerald Smitty", ""),
            count=1,
            flags=re.S,
        ),
        "XDSRegistryMetadataError",
        "an author needs an authorPerson",
        "Document01",
    ),
    (
        "a patient id without an ISO authority",
        lambda t: t.replace("SELF-5^^^&amp;1.3.6.1.4.1.21367.2005.3.7&amp;ISO", "SELF-5^^^HOSP_A"),
        "XDSRegistryMetadataError",
        "is not ID^^^&OID&ISO",
        "SubmissionSet01",
    ),
]


@pytest.mark.parametrize(("why", "change", "code", "context", "location"), CASES, ids=[c[0] for c in CASES])
def test_each_metadata_error_has_its_code_and_location(
    why: str, change: Callable[[str], str], code: str, context: str, location: str
) -> None:
    errors = read(change(WITH_REPOSITORY_SLOTS))
    assert any(e.code == code and context in e.context and e.location == location for e in errors), errors


def test_two_submission_sets_are_refused() -> None:
    start = WITH_REPOSITORY_SLOTS.index("<rim:RegistryPackage")
    end = WITH_REPOSITORY_SLOTS.index("</rim:RegistryPackage>") + len("</rim:RegistryPackage>")
    second = (
        WITH_REPOSITORY_SLOTS[start:end]
        .replace("SubmissionSet01", "SubmissionSet02")
        .replace("9999.33", "9999.34")
    )
    errors = read(WITH_REPOSITORY_SLOTS[:end] + second + WITH_REPOSITORY_SLOTS[end:])
    assert ("exactly one SubmissionSet", "SubmissionSet02") in {(e.context[-25:], e.location) for e in errors}


def test_a_registry_response_lists_every_error_and_validates() -> None:
    from ihe._ebxml import FAILURE, SUCCESS, registry_response
    from ihe._xsd import schema_errors, xds_schema

    errors = read(remove_classification("41a5887f-8865-4c09-adf7-e362475b143a")(WITH_REPOSITORY_SLOTS))
    response = registry_response(errors)
    assert response.get("status") == FAILURE and schema_errors(xds_schema(), response) == []
    (listed,) = response
    assert [(e.get("errorCode"), e.get("location")) for e in listed] == [
        ("XDSRegistryMetadataError", "Document01")
    ]
    assert listed.get("highestSeverity", "").endswith(":Error")
    warning = RegistryError("XDSExtraMetadataNotSaved", "slot x dropped", "Document01", "Warning")
    ok = registry_response([warning])
    assert ok.get("status") == SUCCESS and ok[0][0].get("severity", "").endswith(":Warning")
    assert registry_response([]).get("status") == SUCCESS and len(registry_response([])) == 0

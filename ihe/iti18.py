"""ITI-18 Registry Stored Query: the AdhocQueryRequest read into a query id and its parameters
(ITI TF-2 §3.18.4.1.2.3; xds.md §2).

A parameter is a ``rim:Slot`` named ``$...``; its value is a quoted string (``'a'``, ``''`` an
escaped quote), a number, or a list ``('a','b')`` split over any number of ``Value`` elements. The
values of one Slot are alternatives (OR); the same Slot repeated is a conjunction (AND), which only
the AND/OR parameters (event codes, confidentiality codes, folder codes) allow. Codes are
``code^^scheme``. The fourteen queries and their parameters are ``QUERIES``.

Refused, with the error code TF-2 §3.18.4.1.3 gives:

* an unknown query id: XDSUnknownStoredQuery;
* a required parameter missing (status values all unknown count as missing):
  XDSStoredQueryMissingParam;
* both parameters of an "exactly one of" pair, several values for a single-valued one, or a
  single-valued one repeated: XDSStoredQueryParamNumber;
* a value that is not a quoted string, number or list, a code that is not ``code^^scheme``, a
  parameter the query does not define, a returnType other than LeafClass or ObjectRef:
  XDSRegistryError.

Lenient where senders are known to deviate, strict in what the registry answers: the query id and
values are trimmed, a single unquoted value is read as it is, and a status named with the wrong
OASIS prefix (``ResponseStatusType:Approved`` in the ITI-Info example) is read by its last word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from ihe._ebxml import (
    FAILURE,
    PARTIAL_SUCCESS,
    RIM,
    RS,
    STATUS_TYPE,
    SUCCESS,
    RegistryError,
    registry_response,
)

__all__ = [
    "QUERIES",
    "QueryDef",
    "QueryError",
    "StoredQuery",
    "object_ref",
    "parse_stored_query",
    "parse_values",
    "query_response",
]

QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
STATUS = STATUS_TYPE


@dataclass
class QueryError(Exception):
    code: str
    context: str
    location: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.context}"


@dataclass(frozen=True)
class QueryDef:
    name: str
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()  # exactly one of these is required
    optional: frozenset[str] = frozenset()
    multi: frozenset[str] = frozenset()  # may hold several values (OR)
    and_or: frozenset[str] = frozenset()  # may also be repeated (AND)


_DE = "$XDSDocumentEntry"
_FIND_DOCUMENTS_OPTIONAL = frozenset(
    f"{_DE}{n}"
    for n in (
        "ClassCode", "TypeCode", "PracticeSettingCode", "CreationTimeFrom", "CreationTimeTo",
        "ServiceStartTimeFrom", "ServiceStartTimeTo", "ServiceStopTimeFrom", "ServiceStopTimeTo",
        "HealthcareFacilityTypeCode", "EventCodeList", "ConfidentialityCode", "AuthorPerson",
        "FormatCode", "Type",
    )
)  # fmt: skip
_DE_MULTI = frozenset(
    f"{_DE}{n}"
    for n in (
        "Status", "ClassCode", "TypeCode", "PracticeSettingCode", "HealthcareFacilityTypeCode",
        "EventCodeList", "ConfidentialityCode", "AuthorPerson", "FormatCode", "Type", "EntryUUID",
        "UniqueId", "ReferenceIdList",
    )
)  # fmt: skip
_AND_OR = frozenset({f"{_DE}EventCodeList", f"{_DE}ConfidentialityCode", "$XDSFolderCodeList"})
_CONTENTS = frozenset({f"{_DE}FormatCode", f"{_DE}ConfidentialityCode", "$homeCommunityId", f"{_DE}Type"})
_MULTI = _DE_MULTI | {
    "$XDSSubmissionSetStatus",
    "$XDSSubmissionSetSourceId",
    "$XDSSubmissionSetContentType",
    "$XDSFolderStatus",
    "$XDSFolderCodeList",
    "$XDSFolderEntryUUID",
    "$XDSFolderUniqueId",
    "$uuid",
    "$AssociationTypes",
}
_HOME = frozenset({"$homeCommunityId"})

QUERIES: dict[str, QueryDef] = {
    "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d": QueryDef(
        "FindDocuments", (f"{_DE}PatientId", f"{_DE}Status"), optional=_FIND_DOCUMENTS_OPTIONAL
    ),
    "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9": QueryDef(
        "FindSubmissionSets",
        ("$XDSSubmissionSetPatientId", "$XDSSubmissionSetStatus"),
        optional=frozenset(
            {
                "$XDSSubmissionSetSourceId",
                "$XDSSubmissionSetSubmissionTimeFrom",
                "$XDSSubmissionSetSubmissionTimeTo",
                "$XDSSubmissionSetAuthorPerson",
                "$XDSSubmissionSetContentType",
            }
        ),
    ),
    "urn:uuid:958f3006-baad-4929-a4de-ff1114824431": QueryDef(
        "FindFolders",
        ("$XDSFolderPatientId", "$XDSFolderStatus"),
        optional=frozenset(
            {"$XDSFolderLastUpdateTimeFrom", "$XDSFolderLastUpdateTimeTo", "$XDSFolderCodeList"}
        ),
    ),
    "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3": QueryDef(
        "GetAll",
        ("$patientId", f"{_DE}Status", "$XDSSubmissionSetStatus", "$XDSFolderStatus"),
        optional=frozenset({f"{_DE}FormatCode", f"{_DE}ConfidentialityCode", f"{_DE}Type"}),
    ),
    "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4": QueryDef(
        "GetDocuments", one_of=(f"{_DE}EntryUUID", f"{_DE}UniqueId"), optional=_HOME
    ),
    "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4": QueryDef(
        "GetFolders", one_of=("$XDSFolderEntryUUID", "$XDSFolderUniqueId"), optional=_HOME
    ),
    "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155": QueryDef("GetAssociations", ("$uuid",), optional=_HOME),
    "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a": QueryDef(
        "GetDocumentsAndAssociations", one_of=(f"{_DE}EntryUUID", f"{_DE}UniqueId"), optional=_HOME
    ),
    "urn:uuid:51224314-5390-4169-9b91-b1980040715a": QueryDef(
        "GetSubmissionSets", ("$uuid",), optional=_HOME
    ),
    "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83": QueryDef(
        "GetSubmissionSetAndContents",
        one_of=("$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId"),
        optional=_CONTENTS,
    ),
    "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7": QueryDef(
        "GetFolderAndContents", one_of=("$XDSFolderEntryUUID", "$XDSFolderUniqueId"), optional=_CONTENTS
    ),
    "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578": QueryDef(
        "GetFoldersForDocument", one_of=(f"{_DE}EntryUUID", f"{_DE}UniqueId"), optional=_HOME
    ),
    "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6": QueryDef(
        "GetRelatedDocuments",
        ("$AssociationTypes",),
        one_of=(f"{_DE}EntryUUID", f"{_DE}UniqueId"),
        optional=_HOME | {f"{_DE}Type"},
    ),
    "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492": QueryDef(
        "FindDocumentsByReferenceId",
        (f"{_DE}PatientId", f"{_DE}ReferenceIdList", f"{_DE}Status"),
        optional=_FIND_DOCUMENTS_OPTIONAL,
    ),
}
# every query's multi-valued parameters, from the one list above
QUERIES = {
    qid: QueryDef(
        q.name,
        q.required,
        q.one_of,
        q.optional,
        frozenset(p for p in (*q.required, *q.one_of, *q.optional) if p in _MULTI),
        _AND_OR,
    )
    for qid, q in QUERIES.items()
}
_CODE_PARAMS = re.compile(r"Code(List)?$|ContentType$")
_STATUS_PARAMS = ("Status",)


@dataclass
class StoredQuery:
    id: str
    name: str
    return_type: str  # LeafClass | ObjectRef
    # parameter -> one list of alternatives (OR) per Slot given; several Slots (AND) for AND/OR ones
    params: dict[str, list[list[str]]] = field(default_factory=dict)

    def values(self, name: str) -> list[str]:
        """The alternatives of a parameter given once (empty when absent)."""
        slots = self.params.get(name) or [[]]
        return slots[0]

    def value(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None


_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|([-+]?\d+(?:\.\d+)?))\s*")


def parse_values(text: str, *, parameter: str) -> list[str]:
    """``'a'``, ``('a','b')``, ``42``, ``(1,2)``: the values; QueryError (XDSRegistryError) otherwise.
    A list may be split over several Value elements (``('a',`` then ``'b')``): each piece is read
    without its own parentheses and edge commas. A lone value without quotes is taken as it is
    (senders forget them)."""
    text = text.strip().replace("\u2018", "'").replace("\u2019", "'")  # quotes a word processor curled
    inner = text.removeprefix("(").removesuffix(")").strip().strip(",")
    values: list[str] = []
    pos = 0
    while pos < len(inner):
        m = _TOKEN.match(inner, pos)
        if m is None:
            if not values and "'" not in inner and "," not in inner and "(" not in text:
                return [inner.strip()]  # one unquoted value
            raise QueryError(
                "XDSRegistryError",
                f"{parameter}: {text!r} is not a quoted value or a list of them",
                parameter,
            )
        values.append(m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2))
        pos = m.end()
        if pos < len(inner):
            if inner[pos] != ",":
                raise QueryError(
                    "XDSRegistryError",
                    f"{parameter}: values in {text!r} must be separated by commas",
                    parameter,
                )
            pos += 1
    return values


def parse_stored_query(request: etree._Element) -> StoredQuery:
    """The query of an AdhocQueryRequest, or QueryError with its XDS error code."""
    option = request.find(f"{{{QUERY}}}ResponseOption")
    return_type = option.get("returnType", "ObjectRef") if option is not None else "ObjectRef"
    if return_type not in ("LeafClass", "ObjectRef"):
        raise QueryError("XDSRegistryError", f"returnType {return_type} is not LeafClass or ObjectRef")
    adhoc = request.find(f"{{{RIM}}}AdhocQuery")
    if adhoc is None:
        raise QueryError("XDSRegistryError", "the request has no rim:AdhocQuery")
    query_id = adhoc.get("id", "").strip()
    definition = QUERIES.get(query_id)
    if definition is None:
        raise QueryError(
            "XDSUnknownStoredQuery", f"stored query {query_id or '(no id)'} is not known", query_id
        )
    query = StoredQuery(query_id, definition.name, return_type)
    known = set(definition.required) | set(definition.one_of) | definition.optional
    for slot in adhoc.findall(f"{{{RIM}}}Slot"):
        name = slot.get("name", "").strip()
        if name not in known:
            raise QueryError(
                "XDSRegistryError", f"{definition.name} has no parameter {name or '(unnamed)'}", name
            )
        values = [
            v
            for value in slot.iterfind(f"{{{RIM}}}ValueList/{{{RIM}}}Value")
            for v in parse_values(value.text or "", parameter=name)
        ]
        if name.endswith(_STATUS_PARAMS):
            values = [
                STATUS + v.rsplit(":", 1)[-1]
                for v in values
                if v.rsplit(":", 1)[-1] in ("Approved", "Deprecated", "Submitted")
            ]
        if _CODE_PARAMS.search(name) and not name.endswith("TimeFrom"):
            for v in values:
                code, _, scheme = v.partition("^^")
                if not code or not scheme or "^" in scheme:
                    raise QueryError("XDSRegistryError", f"{name}: {v!r} is not code^^scheme", name)
        if name in query.params and name not in definition.and_or:
            raise QueryError("XDSStoredQueryParamNumber", f"{name} is given more than once", name)
        if len(values) > 1 and name not in definition.multi:
            raise QueryError("XDSStoredQueryParamNumber", f"{name} takes one value, not {len(values)}", name)
        if values:
            query.params.setdefault(name, []).append(values)
    for name in definition.required:
        if name not in query.params:
            raise QueryError("XDSStoredQueryMissingParam", f"{definition.name} needs {name}", name)
    if definition.one_of:
        given = [n for n in definition.one_of if n in query.params]
        if not given:
            raise QueryError(
                "XDSStoredQueryMissingParam",
                f"{definition.name} needs {' or '.join(definition.one_of)}",
                definition.one_of[0],
            )
        if len(given) > 1:
            raise QueryError(
                "XDSStoredQueryParamNumber",
                f"{definition.name} takes {' or '.join(definition.one_of)}, not both",
                given[1],
            )
    return query


def query_response(
    objects: list[etree._Element],
    errors: list[RegistryError] | None = None,
    *,
    partial: bool = False,
) -> etree._Element:
    """query:AdhocQueryResponse: the objects found (LeafClass elements or rim:ObjectRef) and the
    errors; status Failure when an error is fatal and nothing is answered, PartialSuccess when some
    results came with errors (TF-2 §3.18.4.1.2.3.6.1)."""
    errors = errors or []
    failed = any(e.severity == "Error" for e in errors)
    status = (PARTIAL_SUCCESS if partial else FAILURE) if failed else SUCCESS
    response = etree.Element(
        f"{{{QUERY}}}AdhocQueryResponse", nsmap={"query": QUERY, "rim": RIM, "rs": RS}, status=status
    )
    if errors:
        listed = registry_response(errors).find(f"{{{RS}}}RegistryErrorList")
        assert listed is not None
        response.append(listed)
    object_list = etree.SubElement(response, f"{{{RIM}}}RegistryObjectList")
    for item in objects:
        object_list.append(item)
    return response


def object_ref(entry_uuid: str) -> etree._Element:
    return etree.Element(f"{{{RIM}}}ObjectRef", id=entry_uuid)

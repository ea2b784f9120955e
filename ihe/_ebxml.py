"""XDS.b metadata in ebRIM 3.0: a SubmitObjectsRequest read into DocumentEntries, a SubmissionSet,
Folders and Associations, with every error of the metadata checklist that the message alone can
show (ITI TF-3 §4.1-4.3, Table 4.2.4.1-2; xds.md §3-§4).

``read_submission`` never stops at the first problem: it returns what it could read and the list of
``RegistryError`` (error code, context, location = the object's id), as the RegistryResponse lists
them. What needs the registry (a known patient, uniqueIds already registered, association targets
outside the message, deprecated targets) is the registry's to check; what it found here is enough
to refuse the whole submission (all-or-nothing).

Checked here, in the checklist's order: exactly one SubmissionSet; ids (``urn:uuid:`` in lower-case
8-4-4-4-12 form, or a symbolic id the registry replaces); DocumentEntry, Folder and Association
patient ids equal to the SubmissionSet's (XDSPatientIdDoesNotMatch); the required attributes of
each object (XDSRegistryMetadataError naming the attribute); single-valued slots given once; the
format of OIDs, uniqueIds, times (DTM), hash (SHA-1 hex, upper case accepted), size, languageCode,
mimeType and CX patient ids; authors with a person, an institution or a telecom; uniqueIds
repeated inside the message (XDSRegistryDuplicateUniqueIdInMessage); each DocumentEntry a member
of the SubmissionSet (HasMember with SubmissionSetStatus), association ends in the message or in
the registry (left to it: ``Association.external_ends``); ``urn:ihe:`` slot names other than
referenceIdList refused (XDSRegistryError).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

__all__ = [
    "PATIENT_CX",
    "REFERENCE_IDS",
    "STATUS_TYPE",
    "Association",
    "Code",
    "DocumentEntry",
    "Folder",
    "RegistryError",
    "Submission",
    "SubmissionSet",
    "put_slot",
    "read_submission",
    "registry_response",
    "set_slot",
]

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
_R = f"{{{RIM}}}"

STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ON_DEMAND = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_NODE = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
# classification schemes of a DocumentEntry: attribute -> scheme UUID
DE_CODES = {
    "classCode": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
    "confidentialityCode": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
    "eventCodeList": "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4",
    "formatCode": "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
    "healthcareFacilityTypeCode": "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
    "practiceSettingCode": "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
    "typeCode": "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
}
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
FOLDER_CODES = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
FOLDER_PATIENT_ID = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
FOLDER_UNIQUE_ID = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"

HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
_IHE_ASSOCIATIONS = ("RPLC", "XFRM", "APND", "XFRM_RPLC", "signs")
ASSOCIATION_TYPES = {HAS_MEMBER} | {f"urn:ihe:iti:2007:AssociationType:{t}" for t in _IHE_ASSOCIATIONS}

METADATA_ERROR = "XDSRegistryMetadataError"
_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_DTM = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2})?)?)?)?)?$")
_HASH = re.compile(r"^[0-9a-fA-F]{40}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")
# a patient id: CX with components 1 and 4 only, the authority an ISO OID: ID^^^&OID&ISO
PATIENT_CX = re.compile(r"^(?P<id>[^^&]{1,100})\^\^\^&(?P<oid>[0-2](\.(0|[1-9][0-9]*))+)&ISO$")
_SINGLE_SLOTS = frozenset(
    {"creationTime", "hash", "size", "languageCode", "repositoryUniqueId", "serviceStartTime",
     "serviceStopTime", "sourcePatientId", "legalAuthenticator", "URI", "submissionTime"}
)  # fmt: skip
REFERENCE_IDS = "urn:ihe:iti:xds:2013:referenceIdList"
STATUS_TYPE = "urn:oasis:names:tc:ebxml-regrep:StatusType:"  # + Approved | Deprecated | Submitted


@dataclass(frozen=True)
class RegistryError:
    """One rs:RegistryError: errorCode, codeContext (what is wrong), location (the object's id)."""

    code: str
    context: str
    location: str = ""
    severity: str = "Error"  # or Warning


@dataclass(frozen=True)
class Code:
    code: str
    scheme: str
    display: str = ""


@dataclass
class Author:
    person: str = ""
    institutions: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecoms: list[str] = field(default_factory=list)


@dataclass
class DocumentEntry:
    id: str  # entryUUID, or the symbolic id the submission gave it
    element: etree._Element  # the ExtrinsicObject as sent (stored for LeafClass answers)
    unique_id: str = ""
    patient_id: str = ""
    object_type: str = STABLE
    mime_type: str = ""
    title: str = ""
    slots: dict[str, list[str]] = field(default_factory=dict)
    codes: dict[str, list[Code]] = field(default_factory=dict)  # DE_CODES attribute -> codes
    authors: list[Author] = field(default_factory=list)

    def slot(self, name: str) -> str:
        values = self.slots.get(name) or [""]
        return values[0]


@dataclass
class SubmissionSet:
    id: str
    element: etree._Element
    unique_id: str = ""
    patient_id: str = ""
    source_id: str = ""
    submission_time: str = ""
    content_type: Code | None = None
    authors: list[Author] = field(default_factory=list)


@dataclass
class Folder:
    id: str
    element: etree._Element
    unique_id: str = ""
    patient_id: str = ""
    title: str = ""
    codes: list[Code] = field(default_factory=list)


@dataclass
class Association:
    id: str
    element: etree._Element
    type: str  # the full URN (the short "HasMember" of older senders is read as the URN)
    source: str
    target: str
    slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Submission:
    submission_set: SubmissionSet | None = None
    documents: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)

    def ids(self) -> set[str]:
        out = {d.id for d in self.documents} | {f.id for f in self.folders}
        return out | ({self.submission_set.id} if self.submission_set else set())

    def external_ends(self) -> set[str]:
        """Association ends not in the message: the registry must know them (or the submission fails)."""
        return {e for a in self.associations for e in (a.source, a.target)} - self.ids()


def put_slot(element: etree._Element, name: str, value: str) -> None:
    """Give a RegistryObject's slot ``name`` the one value ``value`` (added where Slots go if absent)."""
    slot = next((s for s in element.iterfind(f"{_R}Slot") if s.get("name") == name), None)
    if slot is None:
        slot = etree.Element(f"{_R}Slot", name=name)
        anchor = next((i for i, c in enumerate(element) if c.tag != f"{_R}Slot"), len(element))
        element.insert(anchor, slot)  # rim: Slots come first in a RegistryObject
    for child in list(slot):
        slot.remove(child)
    etree.SubElement(etree.SubElement(slot, f"{_R}ValueList"), f"{_R}Value").text = value


def set_slot(entry: DocumentEntry, name: str, value: str) -> None:
    """Give a DocumentEntry's slot one value, in its element (as it will be stored) and its slots."""
    put_slot(entry.element, name, value)
    entry.slots[name] = [value]


# -- reading ----------------------------------------------------------------------------------------
def _slots(element: etree._Element, errors: list[RegistryError], where: str) -> dict[str, list[str]]:
    slots: dict[str, list[str]] = {}
    for slot in element.findall(f"{_R}Slot"):
        name = slot.get("name", "")
        if name in slots:
            errors.append(RegistryError(METADATA_ERROR, f"slot {name} is given twice", where))
        values = [(v.text or "").strip() for v in slot.iterfind(f"{_R}ValueList/{_R}Value")]
        slots[name] = values
        if name in _SINGLE_SLOTS and len(values) != 1:
            errors.append(
                RegistryError(METADATA_ERROR, f"slot {name} must have one value, not {len(values)}", where)
            )
        if name.startswith("urn:ihe:") and name != REFERENCE_IDS:
            errors.append(RegistryError("XDSRegistryError", f"slot name {name} is reserved to IHE", where))
    return slots


def _name(element: etree._Element) -> str:
    found = element.find(f"{_R}Name/{_R}LocalizedString")
    return found.get("value", "") if found is not None else ""


def _code(classification: etree._Element, errors: list[RegistryError], where: str) -> Code | None:
    code = classification.get("nodeRepresentation", "")
    schemes = _slots(classification, errors, where).get("codingScheme") or []
    if not code or len(schemes) != 1 or not schemes[0]:
        errors.append(
            RegistryError(METADATA_ERROR, "a code needs a nodeRepresentation and one codingScheme", where)
        )
        return None
    return Code(code, schemes[0], _name(classification))


def _author(classification: etree._Element, errors: list[RegistryError], where: str) -> Author:
    slots = _slots(classification, errors, where)
    author = Author(
        person=(slots.get("authorPerson") or [""])[0],
        institutions=slots.get("authorInstitution", []),
        roles=slots.get("authorRole", []),
        specialties=slots.get("authorSpecialty", []),
        telecoms=slots.get("authorTelecommunication", []),
    )
    if not (author.person or author.institutions or author.telecoms):
        errors.append(
            RegistryError(
                METADATA_ERROR,
                "an author needs an authorPerson, an authorInstitution or an authorTelecommunication",
                where,
            )
        )
    return author


def _external_ids(element: etree._Element) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ext in element.findall(f"{_R}ExternalIdentifier"):
        out.setdefault(ext.get("identificationScheme", ""), []).append(ext.get("value", "").strip())
    return out


def _one(ids: dict[str, list[str]], scheme: str, what: str, errors: list[RegistryError], where: str) -> str:
    values = ids.get(scheme, [])
    if len(values) != 1 or not values[0]:
        errors.append(
            RegistryError(METADATA_ERROR, f"{what} is {'missing' if not values else 'given twice'}", where)
        )
        return values[0] if values else ""
    return values[0]


def _check_id(object_id: str, errors: list[RegistryError]) -> None:
    if object_id.startswith("urn:uuid:") and not _UUID.match(object_id):
        errors.append(
            RegistryError(
                METADATA_ERROR, f"id {object_id} is not a lower-case urn:uuid: 8-4-4-4-12", object_id
            )
        )
    elif not object_id:
        errors.append(RegistryError(METADATA_ERROR, "an object has no id", ""))


def _document(element: etree._Element, errors: list[RegistryError]) -> DocumentEntry:
    entry = DocumentEntry(element.get("id", ""), element)
    where = entry.id
    _check_id(entry.id, errors)
    entry.object_type = element.get("objectType", "")
    entry.mime_type = element.get("mimeType", "")
    entry.title = _name(element)
    entry.slots = _slots(element, errors, where)
    by_scheme = {scheme: name for name, scheme in DE_CODES.items()}
    for c in element.findall(f"{_R}Classification"):
        scheme = c.get("classificationScheme", "")
        if scheme == DE_AUTHOR:
            entry.authors.append(_author(c, errors, where))
        elif scheme in by_scheme:
            code = _code(c, errors, where)
            if code is not None:
                entry.codes.setdefault(by_scheme[scheme], []).append(code)
    ids = _external_ids(element)
    entry.patient_id = _one(ids, DE_PATIENT_ID, "XDSDocumentEntry.patientId", errors, where)
    entry.unique_id = _one(ids, DE_UNIQUE_ID, "XDSDocumentEntry.uniqueId", errors, where)
    return entry


def _package(element: etree._Element, errors: list[RegistryError]) -> tuple[str, SubmissionSet | Folder]:
    object_id = element.get("id", "")
    _check_id(object_id, errors)
    ids = _external_ids(element)
    if SS_UNIQUE_ID in ids or SS_SOURCE_ID in ids or SS_PATIENT_ID in ids:
        ss = SubmissionSet(object_id, element)
        slots = _slots(element, errors, object_id)
        ss.submission_time = (slots.get("submissionTime") or [""])[0]
        for c in element.findall(f"{_R}Classification"):
            scheme = c.get("classificationScheme", "")
            if scheme == SS_AUTHOR:
                ss.authors.append(_author(c, errors, object_id))
            elif scheme == SS_CONTENT_TYPE:
                ss.content_type = _code(c, errors, object_id)
        ss.unique_id = _one(ids, SS_UNIQUE_ID, "XDSSubmissionSet.uniqueId", errors, object_id)
        ss.patient_id = _one(ids, SS_PATIENT_ID, "XDSSubmissionSet.patientId", errors, object_id)
        ss.source_id = _one(ids, SS_SOURCE_ID, "XDSSubmissionSet.sourceId", errors, object_id)
        return "ss", ss
    folder = Folder(object_id, element, title=_name(element))
    _slots(element, errors, object_id)
    for c in element.findall(f"{_R}Classification"):
        if c.get("classificationScheme", "") == FOLDER_CODES:
            code = _code(c, errors, object_id)
            if code is not None:
                folder.codes.append(code)
    folder.unique_id = _one(ids, FOLDER_UNIQUE_ID, "XDSFolder.uniqueId", errors, object_id)
    folder.patient_id = _one(ids, FOLDER_PATIENT_ID, "XDSFolder.patientId", errors, object_id)
    return "folder", folder


def _association(element: etree._Element, errors: list[RegistryError]) -> Association:
    kind = element.get("associationType", "")
    if kind == "HasMember":  # the short form of the ITI-Info examples: accepted, stored as the URN
        kind = HAS_MEMBER
    association = Association(
        element.get("id", ""), element, kind, element.get("sourceObject", ""), element.get("targetObject", "")
    )
    _check_id(association.id, errors)
    association.slots = _slots(element, errors, association.id)
    if kind not in ASSOCIATION_TYPES:
        errors.append(
            RegistryError(METADATA_ERROR, f"association type {kind or '(none)'} is unknown", association.id)
        )
    return association


def read_submission(
    request: etree._Element, *, registry: bool = True
) -> tuple[Submission, list[RegistryError]]:
    """A SubmitObjectsRequest (or the ProvideAndRegisterDocumentSetRequest around one) read and
    checked. ``registry``: ITI-42 (hash, size and repositoryUniqueId required); False for the
    repository's ITI-41, which computes them."""
    errors: list[RegistryError] = []
    submit = (
        request
        if request.tag == f"{{{LCM}}}SubmitObjectsRequest"
        else request.find(f"{{{LCM}}}SubmitObjectsRequest")
    )
    if submit is None:
        return Submission(), [RegistryError(METADATA_ERROR, "no lcm:SubmitObjectsRequest in the request")]
    objects = submit.find(f"{_R}RegistryObjectList")
    submission = Submission()
    packages: list[tuple[str, SubmissionSet | Folder]] = []
    nodes: dict[str, str] = {}  # RegistryPackage id -> classification node (SS or Folder)
    for element in objects if objects is not None else []:
        tag = element.tag
        if tag == f"{_R}ExtrinsicObject":
            submission.documents.append(_document(element, errors))
        elif tag == f"{_R}RegistryPackage":
            packages.append(_package(element, errors))
        elif tag == f"{_R}Association":
            submission.associations.append(_association(element, errors))
        elif tag == f"{_R}Classification":
            nodes[element.get("classifiedObject", "")] = element.get("classificationNode", "")
    for kind, package in packages:
        # the classification node decides, where the sender gave one
        node = nodes.get(package.id)
        if (isinstance(package, SubmissionSet) and node == FOLDER_NODE) or (
            kind == "folder" and node == SUBMISSION_SET_NODE
        ):
            errors.append(
                RegistryError(
                    METADATA_ERROR, "its classification node and its identifiers disagree", package.id
                )
            )
        if isinstance(package, SubmissionSet):
            if submission.submission_set is not None:
                errors.append(
                    RegistryError(METADATA_ERROR, "a submission has exactly one SubmissionSet", package.id)
                )
                continue
            submission.submission_set = package
        else:
            assert isinstance(package, Folder)
            submission.folders.append(package)
    if submission.submission_set is None:
        errors.append(RegistryError(METADATA_ERROR, "the submission has no SubmissionSet"))
    _check(submission, errors, registry=registry)
    return submission, errors


# -- checks across objects --------------------------------------------------------------------------
def _check(submission: Submission, errors: list[RegistryError], *, registry: bool) -> None:
    ss = submission.submission_set
    if ss is not None:
        _check_submission_set(ss, errors)
    for entry in submission.documents:
        _check_document(entry, errors, registry=registry)
    for folder in submission.folders:
        if not folder.title:
            errors.append(RegistryError(METADATA_ERROR, "XDSFolder.title is missing", folder.id))
        if not folder.codes:
            errors.append(RegistryError(METADATA_ERROR, "XDSFolder.codeList is missing", folder.id))
        _check_oid(folder.unique_id, "XDSFolder.uniqueId", folder.id, errors)
    patient = ss.patient_id if ss is not None else ""
    objects: list[DocumentEntry | Folder] = [*submission.documents, *submission.folders]
    for obj in objects:
        if patient and obj.patient_id and obj.patient_id != patient:
            errors.append(
                RegistryError(
                    "XDSPatientIdDoesNotMatch",
                    f"patient id {obj.patient_id} is not the SubmissionSet's {patient}",
                    obj.id,
                )
            )
    seen: dict[str, str] = {}
    for obj_id, unique in [(o.id, o.unique_id) for o in objects] + (
        [(ss.id, ss.unique_id)] if ss is not None else []
    ):
        if unique and unique in seen:
            errors.append(
                RegistryError(
                    "XDSRegistryDuplicateUniqueIdInMessage",
                    f"uniqueId {unique} is also {seen[unique]}'s",
                    obj_id,
                )
            )
        seen.setdefault(unique, obj_id)
    members = {
        a.target
        for a in submission.associations
        if a.type == HAS_MEMBER and ss is not None and a.source == ss.id
    }
    for entry in submission.documents:
        if ss is not None and entry.id not in members:
            errors.append(
                RegistryError(
                    METADATA_ERROR,
                    "the DocumentEntry is not a member (HasMember) of the SubmissionSet",
                    entry.id,
                )
            )
    for a in submission.associations:
        if (
            a.type == HAS_MEMBER
            and ss is not None
            and a.source == ss.id
            and a.target in {d.id for d in submission.documents}
        ):
            status = a.slots.get("SubmissionSetStatus", [])
            if status not in (["Original"], ["Reference"]):
                errors.append(
                    RegistryError(
                        METADATA_ERROR,
                        "a SubmissionSet's HasMember needs one SubmissionSetStatus (Original or Reference)",
                        a.id,
                    )
                )
        if not a.source or not a.target:
            errors.append(
                RegistryError(METADATA_ERROR, "an association needs a sourceObject and a targetObject", a.id)
            )


def _check_submission_set(ss: SubmissionSet, errors: list[RegistryError]) -> None:
    where = ss.id
    if not ss.submission_time:
        errors.append(RegistryError(METADATA_ERROR, "XDSSubmissionSet.submissionTime is missing", where))
    elif not _DTM.match(ss.submission_time):
        errors.append(
            RegistryError(METADATA_ERROR, f"submissionTime {ss.submission_time!r} is not a DTM", where)
        )
    if ss.content_type is None:
        errors.append(RegistryError(METADATA_ERROR, "XDSSubmissionSet.contentTypeCode is missing", where))
    _check_oid(ss.unique_id, "XDSSubmissionSet.uniqueId", where, errors)
    # sourceId is an OID in TF-3, but the ITI-Info example itself sends "3670984664": only its
    # length is held against it (an allow-list of sources is the repository's policy)
    if len(ss.source_id) > 64:
        errors.append(
            RegistryError(METADATA_ERROR, "XDSSubmissionSet.sourceId is longer than 64 characters", where)
        )
    _check_patient(ss.patient_id, "XDSSubmissionSet.patientId", where, errors)


def _check_document(entry: DocumentEntry, errors: list[RegistryError], *, registry: bool) -> None:
    where = entry.id
    if entry.object_type not in (STABLE, ON_DEMAND):
        errors.append(
            RegistryError(
                METADATA_ERROR,
                f"objectType {entry.object_type or '(none)'} is not a DocumentEntry type",
                where,
            )
        )
    if not _MIME.match(entry.mime_type):
        errors.append(
            RegistryError(METADATA_ERROR, f"mimeType {entry.mime_type!r} is not type/subtype", where)
        )
    for name in (
        "classCode",
        "confidentialityCode",
        "formatCode",
        "healthcareFacilityTypeCode",
        "practiceSettingCode",
        "typeCode",
    ):
        if not entry.codes.get(name):
            errors.append(RegistryError(METADATA_ERROR, f"XDSDocumentEntry.{name} is missing", where))
    for name in ("classCode", "formatCode", "healthcareFacilityTypeCode", "practiceSettingCode", "typeCode"):
        if len(entry.codes.get(name, [])) > 1:
            errors.append(
                RegistryError(METADATA_ERROR, f"XDSDocumentEntry.{name} is given more than once", where)
            )
    required = ["creationTime", "languageCode", "sourcePatientId"]
    if registry:
        required += ["hash", "size", "repositoryUniqueId"]
    for name in required:
        if not entry.slot(name):
            errors.append(RegistryError(METADATA_ERROR, f"XDSDocumentEntry.{name} is missing", where))
    for name in ("creationTime", "serviceStartTime", "serviceStopTime"):
        value = entry.slot(name)
        if value and not _DTM.match(value):
            errors.append(
                RegistryError(
                    METADATA_ERROR, f"{name} {value!r} is not a DTM (YYYY[MM[DD[hh[mm[ss]]]]])", where
                )
            )
    start, stop = entry.slot("serviceStartTime"), entry.slot("serviceStopTime")
    if start and stop and _DTM.match(start) and _DTM.match(stop) and start > stop:
        errors.append(RegistryError(METADATA_ERROR, "serviceStartTime is after serviceStopTime", where))
    if entry.slot("hash") and not _HASH.match(entry.slot("hash")):
        errors.append(
            RegistryError(
                METADATA_ERROR, f"hash {entry.slot('hash')!r} is not 40 hexadecimal digits (SHA-1)", where
            )
        )
    if entry.slot("size") and not entry.slot("size").isdigit():
        errors.append(
            RegistryError(METADATA_ERROR, f"size {entry.slot('size')!r} is not a number of bytes", where)
        )
    if entry.slot("languageCode") and not _LANGUAGE.match(entry.slot("languageCode")):
        errors.append(
            RegistryError(
                METADATA_ERROR, f"languageCode {entry.slot('languageCode')!r} is not RFC 3066", where
            )
        )
    if entry.slot("repositoryUniqueId"):
        _check_oid(entry.slot("repositoryUniqueId"), "repositoryUniqueId", where, errors)
    _check_oid(entry.unique_id, "XDSDocumentEntry.uniqueId", where, errors, oid_only=False)
    _check_patient(entry.patient_id, "XDSDocumentEntry.patientId", where, errors)


def _check_oid(
    value: str, what: str, where: str, errors: list[RegistryError], *, oid_only: bool = True
) -> None:
    if not value:
        return  # reported as missing where it was read
    if len(value) > (64 if oid_only else 128):
        errors.append(
            RegistryError(
                METADATA_ERROR, f"{what} is longer than {64 if oid_only else 128} characters", where
            )
        )
    elif oid_only and not _OID.match(value):
        errors.append(RegistryError(METADATA_ERROR, f"{what} {value!r} is not an OID", where))
    elif not oid_only and not (_OID.match(value) or re.match(r"^[0-2](\.\d+)+\^[^^]{1,16}$", value)):
        errors.append(
            RegistryError(METADATA_ERROR, f"{what} {value!r} is not an OID (or OID^extension)", where)
        )


def _check_patient(value: str, what: str, where: str, errors: list[RegistryError]) -> None:
    if value and not PATIENT_CX.match(value):
        errors.append(RegistryError(METADATA_ERROR, f"{what} {value!r} is not ID^^^&OID&ISO", where))


# -- answering --------------------------------------------------------------------------------------
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"  # IHE's, not OASIS's
_SEVERITY = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:"


def registry_response(errors: list[RegistryError], *, partial: bool = False) -> etree._Element:
    """rs:RegistryResponse: Failure when any error has severity Error (PartialSuccess when
    ``partial``, as ITI-43 answers when some documents were found), else Success with the warnings."""
    failed = any(e.severity == "Error" for e in errors)
    status = (PARTIAL_SUCCESS if partial else FAILURE) if failed else SUCCESS
    response = etree.Element(f"{{{RS}}}RegistryResponse", nsmap={"rs": RS}, status=status)
    if errors:
        listed = etree.SubElement(
            response,
            f"{{{RS}}}RegistryErrorList",
            highestSeverity=_SEVERITY + ("Error" if failed else "Warning"),
        )
        for e in errors:
            item = etree.SubElement(
                listed,
                f"{{{RS}}}RegistryError",
                errorCode=e.code,
                codeContext=e.context,
                severity=_SEVERITY + e.severity,
            )
            if e.location:
                item.set("location", e.location)
    return response

"""``hip-service:``: the platform's answer to a ``HIPMessageServer`` call (china-hie.md §2-§3).

The channel stores the SOAP request as it arrived; this destination reads its ``action`` and
``message``, finds the service the action names (``hip.actions``), and answers with an
``MCCI_IN000002UV01`` acknowledgement, AA or AE with the reasons. It is asked within the commit that
stores the message (``inline = "store"``), so an AA is never sent for an upload that is not durable.

**DocumentRegister** (both message generations, ``payloads``): the CDA document is decoded and
validated (``profiles.cda``: schemas, rules, codes, the ID card); a rejected document is answered AE
with its first errors (rule, line, message) and kept with its whole report; an accepted one is
registered in the XDS.b registry and repository under the patient's platform id (its ID-card number
in ``2.16.156.10011.1.3``, which the EMPI must know), with the DocumentEntry the ``cda-xds-metadata``
mapping derives from its header. Its uniqueId is the 文档流水号 made an OID (``2.25.`` and a hash of
it), so the same document uploaded twice is registered once. A patient the EMPI does not know is
first registered from the document (``cda-patient`` mapping) when the hospital names its patient id's
root (``cda.institutions[].patient_id_roots``), as a feed from the uploading system; patient and
document are registered in one savepoint, both or neither. Every upload, accepted or not, is a
row of ``cda_uploads`` (what the upload statistics count) and an ATNA import record.

**PatientInfoRegister**, **PatientInfoUpdate** and **PatientInfoMerge** (``PRPA_IN201311UV02``,
``PRPA_IN201314UV02``, ``PRPA_IN201304UV02``): the message is mapped to the platform's AdtEvent
(``v3-patient-register``, ``v3-patient-merge``: an A40) and fed to the EMPI as an ITI-8
feed would be, from the V3 sender (``empi.domains[].sources``: application = the sender device id,
facility = the hospital's 组织机构代码), the hospital's patient id in the domain whose
``institution`` that code is; in the message's transaction, with its ITI-8 audit records, and the
ITI-10 notifications it causes. Each, stored or refused, is a row of ``cda_upload_records`` (the
upload statistics' records).

**PatientInfoQuery** (``PRPA_IN201305UV02``): the EMPI searched by the PDQ Supplier
(``patient_query``), answered ``PRPA_IN201306UV02`` with an ITI-21 audit record.

Any other service the platform does not provide is answered AE naming it; an action no table
names is answered AE too. Nothing here raises: every problem is an answer the hospital can read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from sqlalchemy import Connection

from engine import audit
from engine.connectors.base import Destination, InlineMode, Options, Outbound, SendResult
from engine.delivery import send_in_writer
from engine.errors import MessageError
from engine.hl7v2.peek import Header
from engine.message import Message
from engine.services import Services
from engine.store.db import savepoint, utcnow
from engine.store.writer import insert_rows
from ihe import atna
from ihe._soap import SoapFault
from ihe._xsd import XSD_DIR
from ihe.iti41 import DocumentMetadata, provide_request
from profiles.canonical import AdtEvent, Coded, DocumentEntry, Identifier
from profiles.cda.config import CdaConfig
from profiles.cda.report import Report
from profiles.cda.schema import records, uploads
from profiles.cda.setup import validator_for
from profiles.empi.actor import EmpiActor
from profiles.empi.domains import V3_PATIENT_ID
from profiles.hip.config import HipConfig
from profiles.hip.patient_query import query_response, read_patient_query
from profiles.hip.payloads import DocumentUpload, PayloadError, read_document_upload
from profiles.hip.service import codec_for
from profiles.hip.v3 import Wrapper, acknowledgement, read_wrapper
from profiles.pix.manager import PreparedFeed
from profiles.xds.actor import XdsActor
from profiles.xds.package import Package
from profiles.xds.repository import Provided

__all__ = ["HipServiceDestination"]

log = logging.getLogger(__name__)

_PARSER = etree.XMLParser(
    resolve_entities=False, load_dtd=False, no_network=True, dtd_validation=False, huge_tree=True
)
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_SHOWN = 5  # errors named in an AE; the stored report has all of them
_SERVICE_SCHEMAS = XSD_DIR / "china-hip" / "services"
_METADATA = "cda-xds-metadata"
_DOCUMENT_PATIENT = "cda-patient"
_REGISTERED = "the patient was registered in the master patient index"
_UNKNOWN = "the patient is not known to the master patient index"


class _Undone(Exception):
    """Rolls back the savepoint of an upload whose document was refused after its patient was fed."""


# service -> the message it takes, the mapping to AdtEvent, the ITI-8 trigger the EMPI applies
_PATIENT_FEEDS = {
    "PatientInfoRegister": ("PRPA_IN201311UV02", "v3-patient-register", "A04"),
    "PatientInfoUpdate": ("PRPA_IN201314UV02", "v3-patient-register", "A08"),
    "PatientInfoMerge": ("PRPA_IN201304UV02", "v3-patient-merge", "A40"),
}


class HipServiceOptions(Options):
    pass


@dataclass
class _Prepared:
    """A call read, checked and (for an accepted document) stored in the content store, off the
    event loop; what the writer does with it is ``send_in``."""

    wrapper: Wrapper | None
    service: str | None
    details: list[str] = field(default_factory=list)  # warnings that go with the answer
    refusal: str | None = None  # AE: why
    upload: DocumentUpload | None = None
    report: Report | None = None
    institution: tuple[str, str] = ("", "")  # the document's custodian: org code, name
    entry: DocumentEntry | None = None
    provided: Provided | None = None
    answer: str | None = None  # PatientInfoQuery: the PRPA_IN201306UV02 (instead of an MCCI)
    found: list[str] = field(default_factory=list)  # the patients a query returned (its audit record)
    query: str = ""  # the query as asked (its audit record)
    feed: PreparedFeed | None = None  # PatientInfoRegister / PatientInfoUpdate: the EMPI's feed
    # DocumentRegister of a hospital with patient_id_roots: its patient's registration, applied
    # only if the EMPI does not know them (or why it could not be prepared)
    registration: tuple[PreparedFeed, Header] | str | None = None
    header: Header | None = None  # the feed as the EMPI sees it (the V3 sender as its source)


def _oid_of(document_id: str) -> str:
    """A 文档流水号 as an XDS uniqueId: itself when it is an OID, else ``2.25.`` and 128 bits of its hash."""
    if _OID.fullmatch(document_id) and len(document_id) <= 64:
        return document_id
    digest = hashlib.sha256(f"2.16.156.10011.1.1|{document_id}".encode()).digest()[:16]
    return f"2.25.{int.from_bytes(digest, 'big')}"


def _code(c: Coded | None, default: str) -> str:
    return f"{c.code}^^{c.system or ''}^^{c.display or ''}" if c is not None else default


def _schema_errors(service: str, root: etree._Element) -> list[str]:
    path = _SERVICE_SCHEMAS / f"{service}.xsd"
    if not path.is_file():
        return []
    schema = _service_schema(path)
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message.replace('{urn:hl7-org:v3}', '')}" for e in list(schema.error_log)[:3]]


_LOCAL = threading.local()  # a compiled schema keeps its last errors on itself: one per thread


def _service_schema(path: Path) -> etree.XMLSchema:
    schemas: dict[Path, etree.XMLSchema] = _LOCAL.__dict__.setdefault("schemas", {})
    found = schemas.get(path)
    if found is None:
        found = schemas[path] = etree.XMLSchema(etree.parse(str(path), etree.XMLParser(no_network=True)))
    return found


class HipServiceDestination(Destination):
    scheme = "hip-service"
    Options = HipServiceOptions
    answers_sender = True
    inline = "store"
    _xds: XdsActor | None = None
    _empi: EmpiActor | None = None
    _services: Services | None = None

    def attach(self, services: Services) -> None:
        self._xds = XdsActor.of(services)
        self._empi = EmpiActor.of(services)
        self._services = services

    @property
    def empi(self) -> EmpiActor:
        if self._empi is None:
            raise RuntimeError("the hip-service destination was not attached to the engine's services")
        return self._empi

    @property
    def config(self) -> HipConfig:
        return self.app.section("hip", HipConfig)

    @property
    def xds(self) -> XdsActor:
        if self._xds is None:
            raise RuntimeError("the hip-service destination was not attached to the engine's services")
        return self._xds

    @property
    def us(self) -> str:
        """Our participant id in audit records: the engine's application|facility."""
        return f"{self.app.engine.name}|{self.app.engine.facility}"

    def inline_mode(self, msg: Message) -> InlineMode:
        return "store"

    # -- off the event loop: read, check, validate, store the document's bytes ----------------------
    async def prepare_inline(self, out: Outbound) -> _Prepared:
        return await self.xds.off_loop(self.prepare_in, out)

    def prepare_in(self, out: Outbound) -> _Prepared:
        try:
            call = codec_for(out.raw).decode(out.raw)
        except SoapFault as fault:  # the source refuses these; a reprocessed record may still be one
            return _Prepared(None, None, refusal=f"not a HIPMessageServer call: {fault.reason}")
        service = self.config.service_of(call.action)
        try:
            root = etree.fromstring(call.message.encode("utf-8"), _PARSER)
        except etree.XMLSyntaxError as exc:
            return _Prepared(None, service, refusal=f"message is not well-formed XML: {exc.msg}")
        info = root.getroottree().docinfo
        if info.doctype or info.internalDTD is not None:
            return _Prepared(
                None, service, refusal="message: a document type declaration (DTD) is not allowed"
            )
        wrapper = read_wrapper(root)
        if service is None:
            return _Prepared(
                wrapper,
                None,
                refusal=f"action {call.action!r} names no service of this platform (see hip.actions)",
            )
        prepared = _Prepared(wrapper, service)
        if wrapper.interaction and wrapper.interaction != wrapper.root:
            prepared.details.append(
                f"warning: interactionId {wrapper.interaction} is not the message's root {wrapper.root}"
            )
        if self.config.message_schema != "off":
            problems = _schema_errors(service, root)
            if problems and self.config.message_schema == "error":
                prepared.refusal = f"{service} message breaks its schema: " + "; ".join(problems)
                return prepared
            prepared.details += [f"warning: {service} schema: {p}" for p in problems]
        if service == "DocumentRegister":
            self._document(out, root, prepared)
        elif service in _PATIENT_FEEDS:
            self._patient(call.message.encode("utf-8"), service, prepared)
        elif service == "PatientInfoQuery":
            self._query(root, prepared)
        else:
            prepared.refusal = f"service {service} ({call.action}) is not provided by this platform"
        return prepared

    def _patient(self, message: bytes, service: str, prepared: _Prepared) -> None:
        """个人信息注册 / 更新 / 合并: the V3 message mapped to the platform's AdtEvent and checked by the
        EMPI as an ITI-8 feed from the V3 sender (``empi.domains[].sources``) of the hospital whose
        组织机构代码 is its patient ids' namespace (``empi.domains[].institution``)."""
        expected, mapping, trigger = _PATIENT_FEEDS[service]
        if prepared.wrapper is not None and prepared.wrapper.root != expected:
            prepared.refusal = f"{service} takes {expected}, not {prepared.wrapper.root}"
            return
        wrapper = prepared.wrapper
        sender = wrapper.sender if wrapper else ""
        # a refused feed is audited too: its header is the sender's from the start
        prepared.header = Header(
            "|", "^", "~", "&", sending_application=sender, message_code="ADT", trigger_event=trigger
        )
        try:
            result = self.app.mapping_catalog().get(mapping).run(message)
        except MessageError as exc:
            prepared.refusal = f"patient: {exc.text}"
            return
        event = result.output
        assert isinstance(event, AdtEvent)
        prepared.details += [f"warning: {w}" for w in result.warnings]
        header = prepared.header = Header(
            "|",
            "^",
            "~",
            "&",
            sending_application=event.sending_application or sender,
            sending_facility=event.sending_facility or "",
            message_code="ADT",
            trigger_event=trigger,
            control_id=event.control_id or "",
        )
        try:
            prepared.feed = self.empi.manager.prepare(event, header)
        except MessageError as exc:
            prepared.refusal = f"patient: {exc.text}"

    def _query(self, root: etree._Element, prepared: _Prepared) -> None:
        """个人信息查询: the EMPI searched as the PDQ Supplier searches it; the answer is built here,
        off the event loop; the writer only records it."""
        wrapper = prepared.wrapper
        assert wrapper is not None
        if wrapper.root != "PRPA_IN201305UV02":
            prepared.refusal = f"PatientInfoQuery takes PRPA_IN201305UV02, not {wrapper.root}"
            return
        domains = self.empi.manager.domains.config_domains.values()
        institution = next(
            (
                d.institution
                for d in domains
                if d.institution and any(s.application == wrapper.sender for s in d.sources)
            ),
            None,
        )
        try:
            query = read_patient_query(root, wrapper, institution)
            answer, _ = self.empi.supplier.search(query.pdq)  # no continuation: the rest is counted only
        except MessageError as exc:
            prepared.refusal = f"query: {exc.text}"
            return
        if answer.errors:
            prepared.refusal = "query: " + "; ".join(e.text for e in answer.errors)
            return
        prepared.query = query.pdq.qpd
        prepared.found = [i.cx for p in answer.patients for i in p.identifiers]
        institutions = {d.namespace: d.institution for d in domains if d.institution}
        prepared.answer = query_response(
            wrapper, query, answer, device_id=self.config.device_id, institutions=institutions
        )

    def _document(self, out: Outbound, root: etree._Element, prepared: _Prepared) -> None:
        try:
            upload = prepared.upload = read_document_upload(root)
        except PayloadError as exc:
            prepared.refusal = str(exc)
            return
        validated = validator_for(self.app).validate(upload.document, f"message {out.message_id}")
        report = prepared.report = validated.report
        if validated.root is not None:
            prepared.institution = _custodian(validated.root)
        if upload.document_code and report.document_code and upload.document_code != report.document_code:
            report.add(
                "message.document-code",
                "error",
                f"the message says {upload.document_code}, the document is {report.document_code}",
            )
        prepared.details += [f"warning: {f.rule}: {f.message}" for f in report.warnings]
        if not report.accepted:
            named = "; ".join(
                f"{f.rule}" + (f" (line {f.line})" if f.line else "") + f": {f.message}"
                for f in report.errors[:_SHOWN]
            )
            more = len(report.errors) - _SHOWN
            prepared.refusal = f"document rejected, {len(report.errors)} error(s): {named}" + (
                f"; and {more} more" if more > 0 else ""
            )
            return
        try:
            result = self.app.mapping_catalog().get(_METADATA).run(upload.document)
        except MessageError as exc:
            prepared.refusal = f"document metadata: {exc.text}"
            return
        entry = result.output
        assert isinstance(entry, DocumentEntry)
        prepared.entry = entry
        prepared.registration = self._registration(upload.document, prepared)
        request = provide_request(self._metadata(entry), inline=upload.document)
        provided = prepared.provided = self.xds.repository.provide(request, Package(b""))
        if provided.errors:
            prepared.refusal = "document metadata: " + "; ".join(
                f"{e.code}: {e.context}" for e in provided.errors
            )

    def _registration(self, document: bytes, prepared: _Prepared) -> tuple[PreparedFeed, Header] | str | None:
        """The document's patient as an EMPI feed, from the uploading hospital, when the hospital
        says which of a document's ids is its patient id (``cda.institutions[].patient_id_roots``);
        the feed is applied only if the EMPI does not know the patient. A reason (str) when it cannot
        be prepared: it matters only then."""
        code = prepared.institution[0]
        settings = next((i for i in self.app.section("cda", CdaConfig).institutions if i.code == code), None)
        if settings is None or not settings.patient_id_roots:
            return None
        try:
            event = self.app.mapping_catalog().get(_DOCUMENT_PATIENT).run(document).output
        except MessageError as exc:
            return exc.text
        assert isinstance(event, AdtEvent)
        ids = {i.system: i for i in event.patient.identifiers}
        chosen = next((ids[root] for root in settings.patient_id_roots if root in ids), None)
        if chosen is None:
            return f"the document has no patient id of root {', '.join(settings.patient_id_roots)}"
        # the hospital's patient id, as its V3 messages carry it: the EMPI finds its domain by institution
        event.patient.identifiers = [
            Identifier(value=chosen.value, system=V3_PATIENT_ID, namespace=code, type="PI")
        ]
        sender = prepared.wrapper.sender if prepared.wrapper else ""
        header = Header(
            "|",
            "^",
            "~",
            "&",
            sending_application=sender,
            sending_facility=code,
            message_code="ADT",
            trigger_event="A04",
        )
        try:
            return self.empi.manager.prepare(event, header), header
        except MessageError as exc:
            return exc.text

    def _metadata(self, entry: DocumentEntry) -> DocumentMetadata:
        confidentiality = entry.confidentiality[0] if entry.confidentiality else None
        institution = entry.author_institution
        meta = DocumentMetadata(
            patient_id=f"{entry.patient_id.value}^^^&{entry.patient_id.system}&ISO",
            source_id=self.config.source_id,
            mime_type=entry.mime_type or "text/xml",
            title=entry.title or "",
            unique_id=_oid_of(entry.unique_id),
            creation_time=(
                entry.creation_time.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S") if entry.creation_time else ""
            ),
            language=entry.language or "zh-CN",
            author_institution=(
                f"{institution.name or ''}^^^^^&{institution.system or ''}&ISO^^^^{institution.id or ''}"
                if institution is not None
                else ""
            ),
        )
        meta.class_code = _code(entry.class_code, meta.class_code)
        meta.type_code = _code(entry.type_code, meta.type_code)
        meta.content_type_code = _code(entry.type_code, meta.content_type_code)
        meta.format_code = _code(entry.format_code, meta.format_code)
        meta.confidentiality_code = _code(confidentiality, meta.confidentiality_code)
        return meta

    # -- on the writer, in the transaction that stores the message --------------------------------
    def send_in(self, conn: Connection, out: Outbound, prepared: _Prepared) -> SendResult:
        if prepared.header is not None:
            return self._feed_in(conn, out, prepared)
        if prepared.service in _PATIENT_FEEDS:  # refused before the EMPI saw it (a wrong message)
            self._count_record(conn, out, prepared, prepared.refusal)
        if prepared.service == "PatientInfoQuery":
            return self._answer_query(out, prepared)
        refusal = prepared.refusal
        unique_id = None
        events: list[audit.AuditEvent] = []
        patient = ""
        changed = False
        if refusal is None and prepared.provided is not None:
            # the patient's registration (if needed) and the document's, both or neither
            registration_events: list[audit.AuditEvent] = []
            with contextlib.suppress(_Undone), savepoint(conn):
                fed = False
                if prepared.entry is not None and prepared.registration is not None:
                    refusal, fed, changed = self._register_patient(conn, out, prepared, registration_events)
                if refusal is None:
                    registered = self.xds.repository.register_in(conn, prepared.provided, out.message_id)
                    if registered.errors:
                        refusal = "document not registered: " + "; ".join(
                            _registry_reason(e.code, e.context) for e in registered.errors
                        )
                    elif prepared.provided.submission is not None:
                        unique_id = prepared.provided.submission.documents[0].unique_id
                if refusal is not None and fed:
                    changed = False
                    registration_events.clear()
                    prepared.details = [d for d in prepared.details if d != _REGISTERED]
                    raise _Undone  # the patient's registration goes with the refused document
            events += registration_events
        if prepared.entry is not None:
            patient = f"{prepared.entry.patient_id.value}^^^&{prepared.entry.patient_id.system}&ISO"
        if prepared.upload is not None:
            self._record(conn, out, prepared, refusal, unique_id)
            events.append(
                atna.xds_submission_event(
                    "ITI-41",
                    requestor=out.peer,
                    us=self.us,
                    patient=patient,
                    submission_set=unique_id or "",
                    outcome=audit.Outcome.MINOR_FAILURE if refusal else audit.Outcome.SUCCESS,
                    description=refusal,
                    channel_id=out.channel_id,
                    message_id=out.message_id,
                )
            )
        details = [f"registered as {unique_id}"] if unique_id else []
        return self._acknowledged(out, prepared, refusal, details + prepared.details, events, changed)

    def _acknowledged(
        self,
        out: Outbound,
        prepared: _Prepared,
        refusal: str | None,
        details: list[str],
        events: list[audit.AuditEvent],
        changed: bool,
    ) -> SendResult:
        """The AA (or AE with the refusal first) for a stored message, its audit records, and the
        subscribers' wake-up once committed when it changed the EMPI's persons."""
        ack = acknowledgement(
            prepared.wrapper,
            "AE" if refusal else "AA",
            ([refusal] if refusal else []) + details,
            device_id=self.config.device_id,
        )
        return SendResult(
            sent=out.raw,
            response=ack.encode("utf-8"),
            refused=refusal,
            audit=tuple(events),
            after_commit=self.empi.manager.wake_subscribers if changed and not refusal else None,
        )

    def _register_patient(
        self, conn: Connection, out: Outbound, prepared: _Prepared, events: list[audit.AuditEvent]
    ) -> tuple[str | None, bool, bool]:
        """The uploaded document's patient registered in the EMPI, in this transaction, if the EMPI
        does not know them yet: (a refusal, whether they were fed, whether persons changed)."""
        entry = prepared.entry
        assert entry is not None
        cx = f"{entry.patient_id.value}^^^&{entry.patient_id.system}&ISO"
        if self.xds.patients.person_of(conn, cx) is not None:
            return None, False, False
        if not isinstance(prepared.registration, tuple):
            return f"{_UNKNOWN}, and cannot be registered: {prepared.registration}", False, False
        feed, header = prepared.registration
        try:
            answer = self.empi.manager.feed_in(conn, feed, out.message_id)
        except MessageError as exc:
            events += self._feed_events(out, header, [], exc.text)
            return f"{_UNKNOWN}, and cannot be registered: {exc.text}", False, False
        events += self._feed_events(out, header, answer.identities, None)
        prepared.details.insert(0, _REGISTERED)
        return None, True, bool(answer.changed_persons)

    def _answer_query(self, out: Outbound, prepared: _Prepared) -> SendResult:
        """The query's answer (or AE), and its ITI-21-like audit record: who asked, which patients."""
        wrapper = prepared.wrapper
        header = Header("|", "^", "~", "&", sending_application=wrapper.sender if wrapper else "")
        event = atna.query_event(
            "ITI-21",
            header,
            prepared.query,
            us=self.us,
            patients=prepared.found,
            outcome=audit.Outcome.MINOR_FAILURE if prepared.refusal else audit.Outcome.SUCCESS,
            description=prepared.refusal,
            channel_id=out.channel_id,
            message_id=out.message_id,
        )
        text = prepared.answer
        if text is None or prepared.refusal:
            text = acknowledgement(
                wrapper, "AE", [prepared.refusal or "no answer"], device_id=self.config.device_id
            )
        return SendResult(
            sent=out.raw, response=text.encode("utf-8"), refused=prepared.refusal, audit=(event,)
        )

    def _feed_in(self, conn: Connection, out: Outbound, prepared: _Prepared) -> SendResult:
        """The patient feed in the message's transaction, with its ITI-8 audit records."""
        header = prepared.header
        assert header is not None
        refusal = prepared.refusal
        changed = False
        events: list[audit.AuditEvent] = []
        if refusal is None and prepared.feed is not None:
            try:
                answer = self.empi.manager.feed_in(conn, prepared.feed, out.message_id)
            except MessageError as exc:
                refusal = f"patient: {exc.text}"
            else:
                changed = bool(answer.changed_persons)
                prepared.details = [f"warning: {w}" for w in answer.warnings] + prepared.details
                events += self._feed_events(out, header, answer.identities, None)
        if refusal is not None:
            events += self._feed_events(out, header, [], refusal)
        self._count_record(conn, out, prepared, refusal)
        return self._acknowledged(out, prepared, refusal, prepared.details, events, changed)

    def _count_record(
        self, conn: Connection, out: Outbound, prepared: _Prepared, refusal: str | None
    ) -> None:
        """A data-set record for the upload statistics: who sent which service, stored or refused.
        The institution is the hospital's 组织机构代码 the message names, else the one whose V3
        sender it is (``empi.domains[].sources``)."""
        assert self._services is not None
        header = prepared.header
        institution = header.sending_facility if header is not None else ""
        if not institution:
            sender = prepared.wrapper.sender if prepared.wrapper is not None else ""
            institution = next(
                (
                    d.institution
                    for d in self.empi.manager.domains.config_domains.values()
                    if d.institution and sender and any(s.application == sender for s in d.sources)
                ),
                "",
            )
        row = {
            "id": self._services.ids.next(),
            "message_id": out.message_id,
            "received_at": utcnow(),
            "institution": institution[:64],
            "service": (prepared.service or "")[:64],
            "status": "rejected" if refusal else "accepted",
            "reason": refusal,
        }
        insert_rows(conn, [(records, [row])])

    def _feed_events(
        self, out: Outbound, header: Header, identities: list[tuple[str, str]], refusal: str | None
    ) -> list[audit.AuditEvent]:
        """The ITI-8-like audit records of a patient feed: one per identity it touched, or one
        refused creation naming why."""
        if refusal is not None:
            return [
                atna.feed_event(
                    header,
                    us=self.us,
                    patients=[],
                    action="C",
                    outcome=audit.Outcome.MINOR_FAILURE,
                    description=refusal,
                    channel_id=out.channel_id,
                    message_id=out.message_id,
                )
            ]
        return [
            atna.feed_event(
                header,
                us=self.us,
                patients=[cx],
                action=action,
                channel_id=out.channel_id,
                message_id=out.message_id,
            )
            for cx, action in identities
        ]

    def _record(
        self, conn: Connection, out: Outbound, prepared: _Prepared, refusal: str | None, unique_id: str | None
    ) -> None:
        """The upload's row: what arrived from whom, accepted or not, and why."""
        assert self._services is not None
        report = prepared.report
        document = prepared.upload
        assert document is not None
        institution, name = prepared.institution
        errors = report.errors if report is not None else []
        rules = sorted({f.rule for f in errors}) or ([_refusal_rule(refusal)] if refusal else [])
        summary = report.as_dict() if report is not None else {"accepted": False, "findings": []}
        if refusal and report is not None and report.accepted:
            summary["refused"] = refusal  # accepted by the validator, refused by the registry
        row = {
            "id": self._services.ids.next(),
            "message_id": out.message_id,
            "received_at": utcnow(),
            "institution": institution,
            "institution_name": name,
            "document_code": (report.document_code if report is not None else None)
            or document.document_code[:8],
            "document_id": document.document_id[:64],
            "status": "rejected" if refusal else "accepted",
            "errors": len(errors),
            "warnings": len(report.warnings) if report is not None else 0,
            "rules": ",".join(rules) or None,
            "report": json.dumps(summary, ensure_ascii=False),
            "xds_unique_id": unique_id,
        }
        insert_rows(conn, [(uploads, [row])])

    async def send(self, out: Outbound) -> SendResult:
        """From a queue (``hie messages reprocess``): in the writer's next transaction."""
        assert self._services is not None
        return await send_in_writer(self._services, self, out, await self.prepare_inline(out))


def _registry_reason(code: str, context: str) -> str:
    if code == "XDSUnknownPatientId":
        return (
            f"{code}: the patient is not known to the master patient index ({context}); register them first"
        )
    return f"{code}: {context}"


def _refusal_rule(refusal: str) -> str:
    if refusal.startswith("document not registered"):
        return "xds.registration"
    if refusal.startswith("document metadata"):
        return "xds.metadata"
    return "message.payload"


_CUSTODIAN = "/".join(
    f"{{urn:hl7-org:v3}}{n}" for n in ("custodian", "assignedCustodian", "representedCustodianOrganization")
)


def _custodian(root: etree._Element) -> tuple[str, str]:
    """The uploading hospital: the document's custodian org code and name ("" when it has none)."""
    org = root.find(_CUSTODIAN)
    if org is None:
        return "", ""
    ident = org.find("{urn:hl7-org:v3}id")
    return (
        ((ident.get("extension") or "") if ident is not None else "")[:64],
        (org.findtext("{urn:hl7-org:v3}name") or "").strip()[:200],
    )

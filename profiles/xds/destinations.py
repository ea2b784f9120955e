"""The XDS.b registry and repository as destinations: ``xds-registry:`` and ``xds-repository:``.

Each answers the SOAP request its channel's ``soap://`` source stored (``profiles.xds.package``),
and its answer is the response the sender gets (``ack: after_delivery``, ``ack_from`` it):

=================== ====================================== ===================== ==========
destination         action                                 transaction           inline
=================== ====================================== ===================== ==========
``xds-registry:``   urn:ihe:iti:2007:RegisterDocumentSet-b ITI-42 register       store
``xds-registry:``   urn:ihe:iti:2007:RegistryStoredQuery   ITI-18 stored query   read
``xds-repository:`` ...:ProvideAndRegisterDocumentSet-b    ITI-41 store+register store
``xds-repository:`` urn:ihe:iti:2007:RetrieveDocumentSet   ITI-43 retrieve       read
=================== ====================================== ===================== ==========

A registration runs in the transaction that stores its message (``Destination.inline``): the
message, the registry's and the repository's rows, the ATNA record and the delivery's status
commit together, so a Success is never sent for a submission that is not durable. A query or a
retrieval is answered first, then stored with its ATNA record in one commit.

An action the endpoint does not serve is a Sender fault with the WS-Addressing subcode
``ActionNotSupported``; a body that is not the action's request is a Sender fault; metadata
errors are RegistryErrors in a Failure response, as the spec notes list them. Every answer other
than Success is also recorded on the delivery as errored, with its reason, for auditors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from sqlalchemy import Connection

from engine import audit
from engine.connectors.base import Destination, InlineMode, Options, Outbound, SendResult
from engine.delivery import send_in_writer
from engine.message import Message
from engine.services import Services
from ihe import atna
from ihe._ebxml import LCM, RIM, RegistryError, Submission, read_submission, registry_response
from ihe._mtom import join_related
from ihe._soap import ANONYMOUS, WSA, SoapFault, SoapRequest, build_envelope, parse_envelope
from ihe._xsd import schema_errors, xds_schema
from ihe.iti18 import QUERY, QueryError, parse_stored_query, query_response
from ihe.iti43 import XDSB, Retrieved, parse_retrieve, retrieve_response
from profiles.xds.actor import XdsActor
from profiles.xds.package import entity, fault_entity, open_package, recorded_related, soap_entity
from profiles.xds.queries import run_query
from profiles.xds.repository import Provided

__all__ = ["XdsRegistryDestination", "XdsRepositoryDestination"]

_ITI = "urn:ihe:iti:2007:"
REGISTER = f"{_ITI}RegisterDocumentSet-b"
STORED_QUERY = f"{_ITI}RegistryStoredQuery"
PROVIDE = f"{_ITI}ProvideAndRegisterDocumentSet-b"
RETRIEVE = f"{_ITI}RetrieveDocumentSet"
_READS = frozenset({"RegistryStoredQuery", "RetrieveDocumentSet"})  # the actions' last words
_BODY = {
    REGISTER: f"{{{LCM}}}SubmitObjectsRequest",
    STORED_QUERY: f"{{{QUERY}}}AdhocQueryRequest",
    PROVIDE: f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest",
    RETRIEVE: f"{{{XDSB}}}RetrieveDocumentSetRequest",
}


class XdsOptions(Options):
    pass


@dataclass
class _Request:
    soap: SoapRequest
    requestor: str


@dataclass
class _Submit(_Request):
    """A registration read and checked off the event loop, to be applied on the writer."""

    transaction: str
    submission: Submission | None = None
    provided: Provided | None = None
    errors: list[RegistryError] = dataclasses.field(default_factory=list)


class _XdsDestination(Destination):
    Options = XdsOptions
    answers_sender = True
    inline = "store"
    actions: dict[str, str] = {}  # action -> transaction
    _actor: XdsActor | None = None
    _services: Services | None = None

    def attach(self, services: Services) -> None:
        self._actor = XdsActor.of(services)
        self._services = services

    @property
    def actor(self) -> XdsActor:
        if self._actor is None:
            raise RuntimeError("the XDS destination was not attached to the engine's services")
        return self._actor

    @property
    def us(self) -> str:
        return f"{self.app.engine.name}|{self.app.engine.facility}"

    def inline_mode(self, msg: Message) -> InlineMode:
        code = msg.header.message_code if msg.header is not None else ""
        return "read" if code in _READS else "store"

    # -- reading the stored request ---------------------------------------------------------------
    def _open(self, out: Outbound) -> tuple[_Request, etree._Element, Any]:
        """The envelope, its body (checked against the action), and the package's parts."""
        package = open_package(out.raw)
        soap = parse_envelope(package.envelope)
        if soap.action not in self.actions:
            raise SoapFault(
                "Sender",
                f"this endpoint does not serve action {soap.action}; it serves {', '.join(self.actions)}",
                subcode=f"{{{WSA}}}ActionNotSupported",
            )
        expected = _BODY[soap.action]
        if soap.body.tag != expected:
            raise SoapFault("Sender", f"{soap.action} carries {expected}, not {soap.body.tag}")
        reply = soap.reply_to if soap.reply_to and soap.reply_to != ANONYMOUS else ""
        return _Request(soap, reply or out.peer), soap.body, package

    # -- answers ----------------------------------------------------------------------------------
    def _fault(self, out: Outbound, fault: SoapFault, relates_to: str | None = None) -> SendResult:
        return SendResult(
            sent=out.raw,
            response=fault_entity(fault, relates_to),
            refused=f"SOAP fault {fault.code}: {fault.reason}",
        )

    def _answer(
        self,
        out: Outbound,
        req: _Request,
        body: etree._Element,
        errors: list[RegistryError],
        *,
        mtom: bool = False,
        audited: tuple[audit.AuditEvent, ...] = (),
        writes: Callable[[Connection], None] | None = None,
    ) -> SendResult:
        response = soap_entity(
            body, action=req.soap.action + "Response", relates_to=req.soap.message_id, mtom=mtom
        )
        return SendResult(
            sent=out.raw, response=response, refused=_refusal(errors), audit=audited, writes=writes
        )

    # -- registrations (ITI-41, ITI-42) ---------------------------------------------------------
    async def prepare_inline(self, out: Outbound) -> _Submit | SendResult:
        return await self.actor.off_loop(self.prepare_in, out)

    def prepare_in(self, out: Outbound) -> _Submit | SendResult:
        try:
            req, body, package = self._open(out)
            return self._submit(req, body, package)
        except SoapFault as fault:
            return self._fault(out, fault)

    def _submit(self, req: _Request, body: etree._Element, package: Any) -> _Submit:
        raise NotImplementedError

    def send_in(self, conn: Connection, out: Outbound, prepared: _Submit | SendResult) -> SendResult:
        if isinstance(prepared, SendResult):
            return prepared
        errors = self._register_in(conn, prepared, out.message_id)
        ss = prepared.submission.submission_set if prepared.submission is not None else None
        event = atna.xds_submission_event(
            prepared.transaction,
            requestor=prepared.requestor,
            us=self.us,
            patient=ss.patient_id if ss is not None else "",
            submission_set=ss.unique_id if ss is not None else "",
            outcome=audit.Outcome.MINOR_FAILURE if _refusal(errors) else audit.Outcome.SUCCESS,
            description=_refusal(errors),
            channel_id=out.channel_id,
            message_id=out.message_id,
        )
        return self._answer(
            out,
            prepared,
            registry_response(errors),
            errors,
            mtom=prepared.transaction == "ITI-41",
            audited=(event,),
        )

    def _register_in(self, conn: Connection, prepared: _Submit, message_id: int) -> list[RegistryError]:
        raise NotImplementedError

    async def send(self, out: Outbound) -> SendResult:
        """From a queue (``hie messages reprocess``): a read is answered as it would be at once; a
        registration runs in the writer's next transaction, its ATNA record with it."""
        try:
            req, _, _ = self._open(out)
        except SoapFault as fault:
            return self._fault(out, fault)
        if req.soap.action in (STORED_QUERY, RETRIEVE):
            return await self._read(out)
        assert self._services is not None
        return await send_in_writer(self._services, self, out, await self.prepare_inline(out))

    async def _read(self, out: Outbound) -> SendResult:
        raise NotImplementedError


class XdsRegistryDestination(_XdsDestination):
    """ITI-42 Register Document Set-b and ITI-18 Registry Stored Query."""

    scheme = "xds-registry"
    actions = {REGISTER: "ITI-42", STORED_QUERY: "ITI-18"}

    def _submit(self, req: _Request, body: etree._Element, package: Any) -> _Submit:
        prepared = _Submit(req.soap, req.requestor, "ITI-42")
        schema = schema_errors(xds_schema(), body)
        if schema:
            prepared.errors = [RegistryError("XDSRegistryMetadataError", f"schema: {e}") for e in schema]
            return prepared
        prepared.submission, prepared.errors = read_submission(body, registry=True)
        return prepared

    def _register_in(self, conn: Connection, prepared: _Submit, message_id: int) -> list[RegistryError]:
        if prepared.errors or prepared.submission is None:
            return prepared.errors
        return self.actor.registry.register(conn, prepared.submission, message_id).errors

    async def _read(self, out: Outbound) -> SendResult:
        return await self.actor.read(self._query, out)

    def _query(self, out: Outbound) -> SendResult:
        try:
            req, body, _ = self._open(out)
        except SoapFault as fault:
            return self._fault(out, fault)
        if req.soap.action != STORED_QUERY:
            return self._fault(
                out, SoapFault("Sender", f"{req.soap.action} is not a query"), req.soap.message_id
            )
        objects: list[etree._Element] = []
        errors: list[RegistryError] = []
        patients: list[str] = []
        query_id = ""
        schema = schema_errors(xds_schema(), body)
        try:
            if schema:
                raise QueryError("XDSRegistryError", f"schema: {schema[0]}")
            query = parse_stored_query(body)
            query_id = query.id
            services = self._services
            assert services is not None
            with services.reads.connect() as conn:
                answer = run_query(conn, query, self.actor)
            objects, errors, patients = answer.objects, answer.errors, answer.patients
        except QueryError as exc:
            errors = [RegistryError(exc.code, exc.context, exc.location)]
            adhoc = body.find(f"{{{RIM}}}AdhocQuery")
            query_id = adhoc.get("id", "") if adhoc is not None else ""
        refused = _refusal(errors)
        event = atna.xds_query_event(
            requestor=req.requestor,
            us=self.us,
            query_id=query_id,
            request=etree.tostring(body),
            patients=patients,
            outcome=audit.Outcome.MINOR_FAILURE if refused else audit.Outcome.SUCCESS,
            description=refused,
            channel_id=out.channel_id,
            message_id=out.message_id,
        )
        return self._answer(out, req, query_response(objects, errors), errors, audited=(event,))


class XdsRepositoryDestination(_XdsDestination):
    """ITI-41 Provide and Register Document Set-b and ITI-43 Retrieve Document Set."""

    scheme = "xds-repository"
    actions = {PROVIDE: "ITI-41", RETRIEVE: "ITI-43"}

    def _submit(self, req: _Request, body: etree._Element, package: Any) -> _Submit:
        prepared = _Submit(req.soap, req.requestor, "ITI-41")
        prepared.provided = self.actor.repository.provide(body, package)
        prepared.submission = prepared.provided.submission
        prepared.errors = list(prepared.provided.errors)
        return prepared

    def _register_in(self, conn: Connection, prepared: _Submit, message_id: int) -> list[RegistryError]:
        assert prepared.provided is not None
        return self.actor.repository.register_in(conn, prepared.provided, message_id).errors

    async def _read(self, out: Outbound) -> SendResult:
        return await self.actor.read(self._retrieve, out)

    def _retrieve(self, out: Outbound) -> SendResult:
        try:
            req, body, _ = self._open(out)
        except SoapFault as fault:
            return self._fault(out, fault)
        if req.soap.action != RETRIEVE:
            return self._fault(
                out, SoapFault("Sender", f"{req.soap.action} is not a retrieval"), req.soap.message_id
            )
        schema = schema_errors(xds_schema(), body)
        if schema:
            errors = [RegistryError("XDSRepositoryError", f"schema: {e}") for e in schema]
            return self._retrieved(out, req, [], errors)
        requests = parse_retrieve(body)
        services = self._services
        assert services is not None
        with services.reads.connect() as conn:
            found, errors = self.actor.repository.retrieve(conn, requests)
        return self._retrieved(out, req, found, errors)

    def _retrieved(
        self, out: Outbound, req: _Request, found: list[Any], errors: list[RegistryError]
    ) -> SendResult:
        items = [Retrieved(d.request, d.mime_type, f"document{n}@hie") for n, d in enumerate(found, 1)]
        envelope = build_envelope(
            retrieve_response(items, errors),
            action=req.soap.action + "Response",
            relates_to=req.soap.message_id,
        )
        parts = [(i.content_id, i.mime_type, d.content) for i, d in zip(items, found, strict=True)]
        content_type, package = join_related(envelope, parts)
        recorded = recorded_related(
            content_type,
            envelope,
            [(i.content_id, i.mime_type, d.blob) for i, d in zip(items, found, strict=True)],
        )
        refused = _refusal(errors)
        event = atna.xds_retrieve_event(
            requestor=req.requestor,
            us=self.us,
            documents=[(d.request.document_unique_id, d.request.repository_unique_id) for d in found],
            outcome=(audit.Outcome.MINOR_FAILURE if found else audit.Outcome.SERIOUS_FAILURE)
            if refused
            else audit.Outcome.SUCCESS,
            description=refused,
            channel_id=out.channel_id,
            message_id=out.message_id,
        )
        return SendResult(
            sent=out.raw,
            response=entity(package, content_type),
            refused=refused,
            audit=(event,),
            recorded=recorded,
        )


def _refusal(errors: list[RegistryError]) -> str | None:
    """The reason recorded on the delivery when the answer is not a Success (errors, not warnings)."""
    fatal = [e for e in errors if e.severity == "Error"]
    if not fatal:
        return None
    first = fatal[0]
    more = f" (+{len(fatal) - 1} more)" if len(fatal) > 1 else ""
    return f"{first.code}: {first.context}{more}"

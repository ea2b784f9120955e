"""ITI-21 Patient Demographics Query (HL7 v2.5): QBP^Q22 in, RSP^K22 out; QCN^J01 cancels.

ITI TF-2 §3.21. QPD-3 repeats ``@<segment>.<field>[.<component>[.<subcomponent>]]^<value>``
(``@PID.5.1.1^ZHANG~@PID.8^F``); QPD-8 names the domains whose identifiers come back (component 4
only); RCP-2 ``<n>^RD`` asks for increments of n; a continuation repeats the query with a new
MSH-10 and ``DSC|<pointer>|I`` (§3.21.4.2.2.7). The response is MSH, MSA, [ERR], QAK (with the
hit counts QAK-4/5/6), QPD (echoed), one PID and QRI per patient, and DSC when more remain. QCN^J01 (QID-1
= the query tag, QID-2 = the query name) is answered ACK^J01 (§3.21.4.3).

What this module refuses, each with ERR-2 at the offending place (pix-pdq.md §5):

* QPD-1 other than ``IHE PDQ Query`` (or ``Q22^Find Candidates^HL7``): AE 103, ``QPD^1^1``;
* a parameter that is not ``@SEG.n[.c[.s]]^value``: AE 102, ``QPD^1^3^<rep>``;
* ``@PID.3.1`` without ``@PID.3.4``: AE 101 (TF: not allowed);
* a value (a name, say) made only of wildcards: AE 102; no parameter at all: AE 101 ``QPD^1^3``;
* RCP-2 that is not a positive count of ``RD``: AE 102 ``RCP^1^2``; DSC-2 other than ``I``:
  AE 102 ``DSC^1^2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from engine.errors import MessageError
from engine.hl7v2.ack import build_response, err_segment, escape, msa
from ihe._hl7v2 import Hd, Request, domains_returned, one_err, query_parameters
from ihe.iti9 import QualifiedId

__all__ = [
    "PdqAnswer",
    "PdqParameter",
    "PdqPatient",
    "PdqQuery",
    "build_ack_j01",
    "build_rsp_k22",
    "parse_qbp_q22",
    "parse_qcn_j01",
]

QUERY_NAME = "IHE PDQ Query"
_ALIASES = {QUERY_NAME, "Q22"}  # Q22^Find Candidates^HL7: what the OpenHIE CR tests send
_PARAMETER = re.compile(
    r"^@(?P<seg>[A-Z][A-Z0-9]{2})\.(?P<field>\d{1,3})(?:\.(?P<comp>\d{1,2}))?(?:\.(?P<sub>\d{1,2}))?$"
)
MAX_VALUE = 200  # longest parameter value accepted
MAX_COUNT = 500  # largest increment (RCP-2) served in one response


@dataclass(frozen=True, slots=True)
class PdqParameter:
    repetition: int  # of QPD-3, for ERR-2 QPD^1^3^<repetition>
    segment: str
    field: int
    component: int | None
    subcomponent: int | None
    value: str

    @property
    def name(self) -> str:
        parts = [f"@{self.segment}.{self.field}"]
        if self.component is not None:
            parts.append(str(self.component))
        if self.subcomponent is not None:
            parts.append(str(self.subcomponent))
        return ".".join(parts)


@dataclass(frozen=True)
class PdqQuery:
    tag: str
    name: str  # QPD-1, as sent (QAK-3 echoes it)
    parameters: list[PdqParameter]
    domains: list[tuple[int, Hd]]  # QPD-8: (repetition, authority); empty = every domain
    count: int | None  # RCP-2
    pointer: str | None  # DSC-1 of a continuation
    qpd: str  # the QPD segment as received (echoed)
    requester: str  # MSH-3^MSH-4 (a continuation pointer is bound to it)

    @property
    def fingerprint(self) -> str:
        """What a continuation must repeat: the parameters and the domains, in order."""
        params = "~".join(f"{p.name}={p.value}" for p in self.parameters)
        domains = "~".join(f"{h.namespace}&{h.universal_id}" for _, h in self.domains)
        return f"{params}|{domains}"


@dataclass(frozen=True)
class PdqPatient:
    identifiers: list[QualifiedId]
    family: str = ""
    given: str = ""
    birth_date: str = ""  # YYYYMMDD
    sex: str = ""  # HL7 table 0001
    street: str = ""
    city: str = ""
    province: str = ""
    postal_code: str = ""
    country: str = ""
    phone: str = ""
    national_id: str = ""
    mother_family: str = ""  # PID-6, the mother's maiden name
    mother_given: str = ""
    account: QualifiedId | None = None  # PID-18


@dataclass
class PdqAnswer:
    patients: list[PdqPatient] = field(default_factory=list)
    errors: list[MessageError] = field(default_factory=list)
    total: int = 0  # QAK-4
    remaining: int = 0  # QAK-6
    pointer: str | None = None  # DSC-1 when more remain


def parse_qbp_q22(req: Request) -> PdqQuery:
    """The query, or MessageError (AE/AR) with the ERR location of what is malformed."""
    qpd, tag = query_parameters(req, "Q22", "ITI-21", _ALIASES)
    parameters = _parameters(req, qpd[3] if len(qpd) > 3 else "")
    domains = domains_returned(req, qpd, 8)
    return PdqQuery(
        tag=tag,
        name=qpd[1] if len(qpd) > 1 else "",
        parameters=parameters,
        domains=domains,
        count=_count(req),
        pointer=_pointer(req),
        qpd=req.segment_text("QPD") or "QPD",
        requester=f"{req.header.sending_application}^{req.header.sending_facility}",
    )


def _parameters(req: Request, text: str) -> list[PdqParameter]:
    out: list[PdqParameter] = []
    for i, rep in enumerate(req.repetitions(text), 1):
        if not rep:
            continue
        comps = req.components(rep)
        m = _PARAMETER.match(comps[0])
        where = f"QPD^1^3^{i}"
        if m is None:
            raise MessageError(
                f"QPD-3 repetition {i}: {comps[0]!r} is not a field name like @PID.5.1.1",
                hl7_code="102",
                location=where,
            )
        value = req.leaf(comps[1]) if len(comps) > 1 else ""
        if not value:
            raise MessageError(
                f"QPD-3 repetition {i}: {comps[0]} has no value", hl7_code="101", location=where
            )
        if len(value) > MAX_VALUE:
            raise MessageError(
                f"QPD-3 repetition {i}: the value is {len(value)} characters, more than {MAX_VALUE}",
                hl7_code="102",
                location=where,
            )
        out.append(
            PdqParameter(
                i,
                m["seg"],
                int(m["field"]),
                int(m["comp"]) if m["comp"] else None,
                int(m["sub"]) if m["sub"] else None,
                value,
            )
        )
    if not out:
        raise MessageError("QPD-3 names no query parameter", hl7_code="101", location="QPD^1^3")
    cx1 = [p for p in out if p.segment == "PID" and p.field == 3 and p.component in (None, 1)]
    cx4 = [p for p in out if p.segment == "PID" and p.field == 3 and p.component == 4]
    if cx1 and not cx4:
        raise MessageError(
            "@PID.3.1 needs @PID.3.4 (the assigning authority) beside it (ITI TF-2 §3.21.4.1.2.3)",
            hl7_code="101",
            location=f"QPD^1^3^{cx1[0].repetition}",
        )
    for p in out:
        if not p.value.replace("*", "").strip():
            what = "a name" if p.segment == "PID" and p.field in (5, 6) else "a value"
            raise MessageError(
                f"QPD-3 repetition {p.repetition}: {what} made only of wildcards matches everyone",
                hl7_code="102",
                location=f"QPD^1^3^{p.repetition}",
            )
    return out


def _count(req: Request) -> int | None:
    rcp = req.segment("RCP")
    if rcp is None or len(rcp) <= 2 or not rcp[2]:
        return None
    comps = req.components(rcp[2])
    unit = comps[1] if len(comps) > 1 else "RD"
    if not comps[0].isdigit() or int(comps[0]) < 1 or unit != "RD":
        raise MessageError(
            f"RCP-2 {rcp[2]!r} is not a count of records (<n>^RD)", hl7_code="102", location="RCP^1^2"
        )
    return min(int(comps[0]), MAX_COUNT)


def _pointer(req: Request) -> str | None:
    dsc = req.segment("DSC")
    if dsc is None or len(dsc) <= 1 or not dsc[1]:
        return None
    if len(dsc) > 2 and dsc[2] and dsc[2] != "I":
        raise MessageError(
            f"DSC-2 must be I (incremental), not {dsc[2]!r}", hl7_code="102", location="DSC^1^2"
        )
    return req.leaf(dsc[1])


def parse_qcn_j01(req: Request) -> tuple[str, str]:
    """(query tag, query name) of a cancel: QID-1 and QID-2."""
    qid = req.segment("QID")
    if qid is None or len(qid) < 2 or not qid[1]:
        raise MessageError("QCN^J01 without QID-1 (the query tag)", hl7_code="101", location="QID^1^1")
    return req.leaf(qid[1]), (qid[2] if len(qid) > 2 else "")


def build_rsp_k22(
    req: Request, query: PdqQuery | None, answer: PdqAnswer, *, application: str, facility: str
) -> str:
    """RSP^K22^RSP_K21 for the answer (or for a query that could not be read: ``answer.errors``)."""
    h = req.header
    fs, cs, rs = h.field_sep, h.component_sep, h.repetition_sep
    v25 = replace(h, version="2.5")
    if answer.errors:
        code, status = "AE", "AE"
    elif answer.patients:
        code, status = "AA", "OK"
    else:
        code, status = "AA", "NF"
    body = [msa(v25, code)]
    if answer.errors:
        body.append(err_segment(v25, one_err(answer.errors, rs), severity="E"))
    tag = escape(query.tag, h) if query is not None else ""
    qak = ["QAK", tag, status]
    if query is not None and status != "AE":
        qak += [query.name, str(answer.total), str(len(answer.patients)), str(answer.remaining)]
    body.append(fs.join(qak))
    body.append(query.qpd if query is not None else (req.segment_text("QPD") or "QPD"))
    for n, patient in enumerate(answer.patients, 1):
        body.append(_pid(n, patient, req))
        # QRI closes each patient's group: optional for IHE, required by HL7 v2.5's RSP_K21.
        # QRI-1 (candidate confidence) 1: every patient returned meets every parameter exactly.
        body.append(fs.join(["QRI", "1"]))
    if answer.pointer:
        body.append(fs.join(["DSC", answer.pointer, "I"]))
    # application (MSH-3) is the receiving application the consumer named in MSH-5 (§3.21.4.2.2.1)
    return build_response(
        h,
        f"RSP{cs}K22{cs}RSP_K21",
        body,
        application=h.receiving_application or application,
        facility=facility,
        version="2.5",
    )


def _pid(n: int, p: PdqPatient, req: Request) -> str:
    h = req.header
    fs, cs, rs, ss = h.field_sep, h.component_sep, h.repetition_sep, h.subcomponent_sep

    def e(text: str) -> str:
        return escape(text, h)

    def cx(i: QualifiedId) -> str:
        authority = ss.join([e(i.namespace), e(i.oid), "ISO" if i.oid else ""]).rstrip(ss)
        return f"{e(i.value)}{cs}{cs}{cs}{authority}"

    def xpn(family: str, given: str) -> str:
        return f"{e(family)}{cs}{e(given)}".rstrip(cs)

    parts = [e(p.street), "", e(p.city), e(p.province), e(p.postal_code), e(p.country)]
    phone = cs.join(["", "PRN", "PH", "", "", "", "", "", "", "", "", e(p.phone)]) if p.phone else ""
    fields = [""] * 20
    fields[0], fields[1], fields[3] = "PID", str(n), rs.join(cx(i) for i in p.identifiers)
    fields[5], fields[6] = xpn(p.family, p.given), xpn(p.mother_family, p.mother_given)
    fields[7], fields[8], fields[11], fields[13] = p.birth_date, p.sex, cs.join(parts).rstrip(cs), phone
    fields[18] = cx(p.account) if p.account is not None else ""
    fields[19] = e(p.national_id)  # PID-19: the ID-card number, as Chinese feeds carry it
    return fs.join(fields).rstrip(fs)


def build_ack_j01(
    req: Request, code: str, error: MessageError | None, *, application: str, facility: str
) -> str:
    """ACK^J01 to a cancel (original mode)."""
    h = req.header
    cs = h.component_sep
    body = [msa(replace(h, version="2.5"), code)]
    if error is not None:
        body.append(err_segment(replace(h, version="2.5"), error))
    return build_response(
        h, f"ACK{cs}J01{cs}ACK", body, application=application, facility=facility, version="2.5"
    )

"""ITI-9 PIX Query (HL7 v2.5): QBP^Q23 in, RSP^K23 out.

ITI TF-2 §3.9. The request names one identifier (QPD-3, a CX with its assigning authority) and,
optionally, the domains wanted back (QPD-4, repeating, only CX-4 valued). The response is the
application acknowledgement itself (original mode): MSH, MSA, [ERR], QAK, QPD (echoed), [PID],
where PID carries only PID-3 (every identifier with a fully qualified authority,
``id^^^NS&OID&ISO``) and PID-5 (first repetition empty, second ``^^^^^^S``). The six cases of
§3.9.4.2.2.6, as ``PixAnswer`` says them:

===== ================================================ ===== ===== =======================
case  condition                                        MSA-1 QAK-2 ERR
===== ================================================ ===== ===== =======================
1, 6  identifiers found in the requested domains       AA    OK    -
2     the person is known, nothing in those domains    AA    NF    -
3     the domain is known, the identifier is not       AE    AE    QPD^1^3^1^1, 204
4     the domain of QPD-3 is unknown                   AE    AE    QPD^1^3^1^4, 204
5     a domain of QPD-4 is unknown                     AE    AE    QPD^1^4^<rep> each, 204
===== ================================================ ===== ===== =======================

The queried-for identifier is never echoed in PID-3 (case 1). RSP_K23 allows one ERR segment, so
the unknown domains of case 5 are the repetitions of its ERR-2 (one location per domain).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.errors import MessageError
from engine.hl7v2.ack import build_response, err_segment, escape, msa
from ihe._hl7v2 import Cx, Hd, Request, domains_returned, one_err, query_parameters

__all__ = ["PixAnswer", "PixQuery", "QualifiedId", "build_rsp_k23", "parse_qbp_q23"]

QUERY_NAME = "IHE PIX Query"
MAX_VALUE = 100  # longest identifier accepted (CX-1 is 15 in v2.5; IHE extends it, TF-2 §3.9)


@dataclass(frozen=True)
class PixQuery:
    tag: str  # QPD-2, echoed in QAK-1
    person: Cx  # QPD-3
    domains: list[tuple[int, Hd]]  # QPD-4: (repetition, authority); empty = every domain
    qpd: str  # the QPD segment as received, echoed in the response


@dataclass(frozen=True, slots=True)
class QualifiedId:
    value: str
    namespace: str
    oid: str

    @property
    def cx(self) -> str:
        """As CX with a fully qualified authority, unescaped (audit records): ``id^^^NS&OID&ISO``."""
        return f"{self.value}^^^{self.namespace}&{self.oid}&ISO"


@dataclass
class PixAnswer:
    """What the manager found: identifiers (case 1/6), nothing (case 2), or errors (cases 3-5)."""

    identifiers: list[QualifiedId] = field(default_factory=list)
    errors: list[MessageError] = field(default_factory=list)


def parse_qbp_q23(req: Request) -> PixQuery:
    """The query, or MessageError (AE) with the ERR location of what is malformed."""
    qpd, tag = query_parameters(req, "Q23", "ITI-9", {QUERY_NAME})
    reps = req.repetitions(qpd[3] if len(qpd) > 3 else "")
    if not reps or not reps[0]:
        raise MessageError("QPD-3 (the identifier queried) is empty", hl7_code="101", location="QPD^1^3")
    person = req.cx(reps[0])
    if not person.value:
        raise MessageError("QPD-3.1 (the identifier) is empty", hl7_code="101", location="QPD^1^3^1^1")
    if len(person.value) > MAX_VALUE:
        raise MessageError(
            f"QPD-3.1 is {len(person.value)} characters long, more than {MAX_VALUE}",
            hl7_code="102",
            location="QPD^1^3^1^1",
        )
    if person.authority.empty:
        raise MessageError(
            "QPD-3.4 (assigning authority) is empty: PIX needs the domain of the identifier",
            hl7_code="101",
            location="QPD^1^3^1^4",
        )
    domains = domains_returned(req, qpd, 4)
    return PixQuery(tag, person, domains, req.segment_text("QPD") or "QPD")


def build_rsp_k23(
    req: Request, query: PixQuery | None, answer: PixAnswer, *, application: str, facility: str
) -> str:
    """RSP^K23^RSP_K23 for the answer (or for a query that could not be read: ``answer.errors``)."""
    h = req.header
    fs, cs, rs, ss = h.field_sep, h.component_sep, h.repetition_sep, h.subcomponent_sep
    if answer.errors:
        code, status = "AE", "AE"
    elif answer.identifiers:
        code, status = "AA", "OK"
    else:
        code, status = "AA", "NF"
    v25 = replace(h, version="2.5")  # the RSP is v2.5 whatever version the query said
    body = [msa(v25, code)]
    if answer.errors:
        body.append(err_segment(v25, one_err(answer.errors, rs), severity="E"))
    tag = escape(query.tag, h) if query is not None else ""
    body.append(fs.join(["QAK", tag, status]))
    body.append(query.qpd if query is not None else (req.segment_text("QPD") or "QPD"))
    if status == "OK":
        pid3 = rs.join(
            f"{escape(i.value, h)}{cs}{cs}{cs}{escape(i.namespace, h)}{ss}{escape(i.oid, h)}{ss}ISO"
            for i in answer.identifiers
        )
        # PID-5 is required in the segment but carries no name: an empty first repetition and
        # name type code S (pseudonym) in the second (TF-2 §3.9.4.2.2.6)
        pid5 = f"{rs}{cs * 6}S"
        body.append(fs.join(["PID", "", "", pid3, "", pid5]))
    return build_response(
        h, f"RSP{cs}K23{cs}RSP_K23", body, application=application, facility=facility, version="2.5"
    )

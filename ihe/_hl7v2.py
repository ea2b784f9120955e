"""HL7 v2 pieces shared by the IHE transactions: reading a segment's fields, CX and HD.

ITI TF-2 Appendix C and C.2.3 (acknowledgements), HL7 v2.5 §2.A (data types CX, HD). Values are
unescaped when read and escaped when written (``engine.hl7v2.ack.escape``); the request's own
separators are used both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import MessageError
from engine.hl7v2.peek import Header, peek
from engine.mapping.errors import ValueRejected
from engine.mapping.hl7reader import Hl7Reader

__all__ = ["Cx", "Hd", "Request", "domains_returned", "one_err", "query_parameters"]


@dataclass(frozen=True, slots=True)
class Hd:
    """HD: namespace id, universal id, universal id type (``HOSP_A&1.2.156.1&ISO``)."""

    namespace: str = ""
    universal_id: str = ""
    universal_id_type: str = ""

    @property
    def empty(self) -> bool:
        return not (self.namespace or self.universal_id)


@dataclass(frozen=True, slots=True)
class Cx:
    """CX: id, assigning authority (CX-4) and identifier type (CX-5)."""

    value: str
    authority: Hd
    type_code: str = ""


class Request:
    """A received message, split lazily: its header, and fields by segment and number."""

    def __init__(self, text: str) -> None:
        try:
            self.reader = Hl7Reader(text)
        except ValueRejected as exc:
            raise MessageError(exc.message, hl7_code="100", reject=True) from None
        self.header: Header = peek(text)
        self.text = text

    def segment(self, name: str, occurrence: int = 0) -> list[str] | None:
        """The fields of the ``occurrence``-th (0-based) segment named ``name``; [n] is field n."""
        found = self.reader.positions(name)
        if len(found) <= occurrence:
            return None
        return self.reader.fields(found[occurrence])

    def segment_text(self, name: str) -> str | None:
        found = self.reader.positions(name)
        return self.reader.segments[found[0]] if found else None

    def field(self, name: str, number: int, occurrence: int = 0) -> str:
        fields = self.segment(name, occurrence)
        if fields is None or len(fields) <= number:
            return ""
        return fields[number]

    def repetitions(self, text: str) -> list[str]:
        return text.split(self.reader.repetition_sep) if text else []

    def components(self, text: str) -> list[str]:
        return text.split(self.reader.component_sep)

    def leaf(self, text: str) -> str:
        """A leaf value, its escape sequences decoded."""
        return self.reader.unescape(text) if self.reader.escape in text else text

    def hd(self, text: str) -> Hd:
        """HD written inside a component (its parts are subcomponents), as in CX-4."""
        parts = [self.leaf(p) for p in text.split(self.reader.subcomponent_sep)]
        parts += [""] * (3 - len(parts))
        return Hd(parts[0], parts[1], parts[2])

    def cx(self, text: str) -> Cx:
        comps = self.components(text)
        comps += [""] * (5 - len(comps))
        return Cx(self.leaf(comps[0]), self.hd(comps[3]), self.leaf(comps[4]))


def query_parameters(req: Request, trigger: str, transaction: str, names: set[str]) -> tuple[list[str], str]:
    """The QPD fields of a QBP query (HL7 v2.5 §5.5.4) and its tag (QPD-2), after checking them.

    MessageError: another message (AR, 200/201 at ``MSH^1^9``), no QPD (AE 100), a QPD-1 not in
    ``names`` (AE 103 at ``QPD^1^1``), no query tag (AE 101 at ``QPD^1^2``).
    """
    h = req.header
    if h.message_code != "QBP" or h.trigger_event != trigger:
        raise MessageError(
            f"{transaction} takes QBP^{trigger}, not {h.message_type or 'an empty MSH-9'}",
            hl7_code="200" if h.message_code != "QBP" else "201",
            location="MSH^1^9",
            reject=True,
        )
    qpd = req.segment("QPD")
    if qpd is None:
        raise MessageError(f"QBP^{trigger} without a QPD segment", hl7_code="100", location="QPD")
    name = req.components(qpd[1] if len(qpd) > 1 else "")[0]
    if name not in names:
        wanted = " or ".join(repr(n) for n in sorted(names))
        raise MessageError(f"QPD-1 must be {wanted}, not {name!r}", hl7_code="103", location="QPD^1^1")
    tag = req.leaf(qpd[2]) if len(qpd) > 2 else ""
    if not tag:
        raise MessageError("QPD-2 (query tag) is empty", hl7_code="101", location="QPD^1^2")
    return qpd, tag


def domains_returned(req: Request, qpd: list[str], number: int) -> list[tuple[int, Hd]]:
    """What-domains-returned (QPD-4 of ITI-9, QPD-8 of ITI-21): (repetition, CX-4) each, CX-4 required."""
    domains: list[tuple[int, Hd]] = []
    for i, rep in enumerate(req.repetitions(qpd[number] if len(qpd) > number else ""), 1):
        comps = req.components(rep)
        authority = req.hd(comps[3]) if len(comps) > 3 else Hd()
        if authority.empty:
            raise MessageError(
                f"QPD-{number} repetition {i} names no assigning authority (CX-4)",
                hl7_code="102",
                location=f"QPD^1^{number}^{i}",
            )
        domains.append((i, authority))
    return domains


def one_err(errors: list[MessageError], rs: str) -> MessageError:
    """Several errors as the one ERR that RSP_K23 and RSP_K21 allow (HL7 v2.5): the locations are
    the repetitions of ERR-2 (one unknown domain each: ``QPD^1^4^<rep>``), the texts joined in ERR-8."""
    if len(errors) == 1:
        return errors[0]
    return MessageError(
        "; ".join(e.text for e in errors),
        hl7_code=errors[0].hl7_code,
        location=rs.join(e.location for e in errors),
    )

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

__all__ = ["Cx", "Hd", "Request", "parse_request"]


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


def parse_request(text: str) -> Request:
    """The request, or MessageError (AR, 100) when it is not HL7 v2."""
    return Request(text)

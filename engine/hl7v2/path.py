"""Field paths ``SEG.field.component.subcomponent`` (1-based, the notation of PDQ's QPD-3).

``PID.3.1`` is the first component of the first repetition of PID-3; ``PID.3[2].1`` picks the second
repetition; ``OBX[2].5`` the second OBX segment. This is the one place where our notation is
translated to python-hl7's API (whose ``msg["PID.5.2"]`` would mean *repetition* 2).
Issue "Declarative YAML mappings" extends this with iteration and selection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldPath"]

_PATH = re.compile(
    r"^(?P<seg>[A-Z][A-Z0-9]{2})(?:\[(?P<occ>[1-9][0-9]*)\])?"
    r"\.(?P<field>[1-9][0-9]*)(?:\[(?P<rep>[1-9][0-9]*)\])?"
    r"(?:\.(?P<comp>[1-9][0-9]*)(?:\.(?P<sub>[1-9][0-9]*))?)?$"
)


@dataclass(frozen=True, slots=True)
class FieldPath:
    segment: str
    occurrence: int
    field: int
    repetition: int
    component: int
    subcomponent: int
    text: str

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        m = _PATH.match(text.strip())
        if m is None:
            raise ValueError(
                f"bad field path {text!r}: expected SEG.field[.component[.subcomponent]], "
                "e.g. PID.3.1 or MSH.9.2"
            )
        return cls(
            segment=m["seg"],
            occurrence=int(m["occ"] or 1),
            field=int(m["field"]),
            repetition=int(m["rep"] or 1),
            component=int(m["comp"] or 0),
            subcomponent=int(m["sub"] or 0),
            text=text,
        )

    def get(self, parsed: Any) -> str:
        """The value in a python-hl7 message, '' when absent. A whole field when no component is given."""
        try:
            segs = parsed.segments(self.segment)
        except KeyError:
            return ""
        if len(segs) < self.occurrence:
            return ""
        if self.component == 0:
            seg = segs[self.occurrence - 1]
            # MSH-1 is the separator; python-hl7 keeps it at index 1, so MSH-n is seg[n] as for others
            if len(seg) <= self.field:
                return ""
            text = str(seg[self.field])
            reps = text.split(_repetition_separator(parsed))
            return reps[self.repetition - 1] if len(reps) >= self.repetition else ""
        return str(
            parsed.extract_field(
                self.segment,
                self.occurrence,
                self.field,
                self.repetition,
                self.component,
                self.subcomponent or 1,
            )
        )


def _repetition_separator(parsed: Any) -> str:
    try:
        return str(parsed.segment("MSH")[2])[1]
    except (KeyError, IndexError):
        return "~"

"""A lazy HL7 v2 reader: the message is split only as far as the mapping's paths reach.

Why not python-hl7: ``hl7.parse`` builds the whole tree (about 820 µs for a 1 KB ADT^A01), and a
mapping reads a few dozen values; the mapping layer must run at ≥3,000 messages/s including parsing.
Here the text is split into segments once, segments are indexed by name, and a segment is split into
fields the first time a path touches it (cached); repetitions, components and subcomponents are split
from the one field a path reads. python-hl7 stays the reference the tests compare against.

The reader is also the root *scope* of the path language (``hl7path``); ``SegmentScope`` (one segment
and its group, opened by ``each: OBR[*]``) and ``RepetitionScope`` (one repetition of a field, opened
by ``each: PID.3[*]``) are the other two.

Rules followed (HL7 v2.5 Chapter 2):
* segments end with a carriage return; ``\\n`` and ``\\r\\n`` are tolerated because files (the
  samples under tests/data/hl7 among them) and some senders use them. MSH-1 is the field separator
  itself and MSH-2 the encoding characters (component, repetition, escape, subcomponent), so
  separators are read from the message, never assumed.
* §2.7: escape sequences are decoded in leaf values only (a value that still holds separators of a
  lower level is returned as sent, so that data separators stay distinguishable from structure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from engine.mapping.errors import ValueRejected

__all__ = ["Hl7Reader", "RepetitionScope", "Scope", "SegmentScope", "Separators", "unescape"]


class Separators(NamedTuple):
    """The five delimiters of a message (MSH-1 and MSH-2; HL7 v2 Chapter 2, message delimiters)."""

    field: str
    component: str
    repetition: str
    escape: str
    subcomponent: str


DEFAULT_SEPARATORS = Separators("|", "^", "~", "\\", "&")

# §2.7, formatted text (FT): line breaks become "\n"; indentation and fill hints carry no data.
_FORMATTING = {".br": "\n", ".sp": "\n", ".ce": "\n", ".fi": "", ".nf": "", ".in": "", ".ti": "", ".sk": " "}


def unescape(text: str, seps: Separators) -> str:
    """Decode the escape sequences of one leaf value (HL7 v2.5 §2.7).

    ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` give back the delimiters; ``\\Xhh..\\`` hexadecimal bytes,
    read as UTF-8 when they form UTF-8, else as Latin-1 (the message is already decoded from
    its MSH-18 charset, so multi-byte hex data is almost always UTF-8); ``\\.br\\`` and ``\\.sp\\``
    a line break (formatted text); highlighting ``\\H\\ \\N\\`` and character-set switches
    ``\\C..\\ \\M..\\`` (meaningless once the text is decoded) are dropped. An unknown or
    unterminated sequence is kept as sent: no data is lost.
    """
    esc = seps.escape
    parts = text.split(esc)
    out = [parts[0]]
    n = len(parts)
    i = 1
    while i < n:
        if i + 1 >= n:  # an escape character without its closing one: literal
            out.append(esc + parts[i])
            break
        out.append(_sequence(parts[i], seps))
        out.append(parts[i + 1])
        i += 2
    return "".join(out)


def _sequence(seq: str, seps: Separators) -> str:
    if len(seq) == 1:
        found = {
            "F": seps.field,
            "S": seps.component,
            "T": seps.subcomponent,
            "R": seps.repetition,
            "E": seps.escape,
            "H": "",
            "N": "",
        }.get(seq)
        if found is not None:
            return found
    elif not seq:
        return ""
    head = seq[0]
    if head == "X":
        try:
            raw = bytes.fromhex(seq[1:])
        except ValueError:
            return seps.escape + seq + seps.escape
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if head in "CM" and len(seq) > 1:
        return ""
    if head == ".":
        code, count = seq[:3], seq[3:].strip()
        fmt = _FORMATTING.get(code)
        if fmt is not None:
            if fmt and count.isdigit():
                return fmt * max(int(count), 1)
            return fmt
    return seps.escape + seq + seps.escape


class Hl7Reader:
    """One HL7 v2 message, read lazily. Also the root scope of paths (``hl7path.CompiledPath``)."""

    __slots__ = (
        "_fields",
        "by_name",
        "component_sep",
        "escape",
        "field_sep",
        "repetition_sep",
        "segments",
        "separators",
        "subcomponent_sep",
    )

    def __init__(self, text: str) -> None:
        if "\n" in text:
            text = text.replace("\r\n", "\r").replace("\n", "\r")
        segments = [s for s in text.strip().split("\r") if s]
        if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 4:
            found = segments[0][:3] if segments else ""
            raise ValueRejected(
                f"not an HL7 v2 message: the first segment must be MSH, not {found!r}", found, hl7_code="100"
            )
        msh = segments[0]
        fs = msh[3]
        end = msh.find(fs, 4)
        enc = msh[4:] if end < 0 else msh[4:end]
        # Chapter 2, message delimiters: MSH-2 gives component, repetition, escape, subcomponent in
        # that order (v2.7 adds a fifth, the truncation character, which needs no decoding).
        # Missing ones take the defaults, as python-hl7 does.
        d = DEFAULT_SEPARATORS
        seps = Separators(
            fs,
            enc[0] if len(enc) > 0 else d.component,
            enc[1] if len(enc) > 1 else d.repetition,
            enc[2] if len(enc) > 2 else d.escape,
            enc[3] if len(enc) > 3 else d.subcomponent,
        )
        if fs.isalnum() or fs.isspace() or len(set(seps)) != 5:
            raise ValueRejected(f"MSH-1/MSH-2 do not give five distinct separators: {msh[3:8]!r}", msh[3:8])
        self.segments = segments
        self.separators = seps
        self.field_sep, self.component_sep, self.repetition_sep, self.escape, self.subcomponent_sep = seps
        self._fields: list[list[str] | None] = [None] * len(segments)
        index: dict[str, list[int]] = {}
        for i, seg in enumerate(segments):
            name = seg[:3]
            found_list = index.get(name)
            if found_list is None:
                index[name] = [i]
            else:
                found_list.append(i)
        self.by_name = index  # segment name -> indices into ``segments``, in message order

    # -- reading ---------------------------------------------------------------------------------
    def positions(self, name: str) -> Sequence[int]:
        """Indices (into ``segments``) of every segment named ``name``, in message order."""
        return self.by_name.get(name, ())

    def name(self, i: int) -> str:
        return self.segments[i][:3]

    def fields(self, i: int) -> list[str]:
        """Fields of segment ``i``, split once: ``fields(i)[n]`` is field n (MSH-1 is the separator)."""
        found = self._fields[i]
        if found is None:
            found = self.segments[i].split(self.field_sep)
            if found[0] == "MSH":
                # MSH-1 *is* the field separator (MSH segment definition): put it back so that
                # MSH-n is fields[n] like in every other segment.
                found.insert(1, self.field_sep)
            self._fields[i] = found
        return found

    def unescape(self, text: str) -> str:
        """``text`` with its escape sequences decoded (only call when it holds the escape character)."""
        return unescape(text, self.separators)

    def __repr__(self) -> str:
        return f"Hl7Reader({len(self.segments)} segments: {' '.join(s[:3] for s in self.segments)})"


class SegmentScope:
    """One segment found by an iterating path (``each: OBR[*]``) and its group.

    The group is the segments after it up to the next segment of the same name (or the end of the
    enclosing scope): inside ``each: OBR[*]``, ``OBX[*]`` means the OBX segments of *this* order.
    """

    __slots__ = ("hi", "index", "lo", "parent", "reader")

    def __init__(self, reader: Hl7Reader, index: int, hi: int, parent: Hl7Reader | SegmentScope) -> None:
        self.reader = reader
        self.index = index
        self.lo = index + 1
        self.hi = hi
        self.parent = parent

    @property
    def name(self) -> str:
        return self.reader.segments[self.index][:3]

    @property
    def text(self) -> str:
        return self.reader.segments[self.index]

    def __repr__(self) -> str:
        return f"SegmentScope({self.text[:40]!r}, group of {self.hi - self.lo} segments)"


class RepetitionScope:
    """One repetition of a field found by an iterating path (``each: PID.3[*]``).

    ``text`` is the repetition as sent (escape sequences not decoded). Relative paths (``.1``,
    ``.4.2``) read inside it; other paths read from ``parent``: the segment scope holding the field
    when the segment was iterated too (``OBX[*].5[*]``), else the scope the path was evaluated in.
    """

    __slots__ = ("field", "index", "parent", "reader", "repetition", "text")

    def __init__(
        self,
        reader: Hl7Reader,
        text: str,
        parent: Hl7Reader | SegmentScope,
        index: int,
        field: int,
        repetition: int,
    ) -> None:
        self.reader = reader
        self.text = text
        self.parent = parent
        self.index = index  # the segment holding it
        self.field = field
        self.repetition = repetition

    def __repr__(self) -> str:
        name = self.reader.segments[self.index][:3]
        return f"RepetitionScope({name}-{self.field}[{self.repetition}] {self.text!r})"


Scope = Hl7Reader | SegmentScope | RepetitionScope
"""Where a path is evaluated: the message, one segment (and its group), or one field repetition."""

"""The HL7 v2 path language of mappings: grammar, load-time checks, and compiled readers.

A path names a value the way HL7 v2.5 Chapter 2 numbers them and PDQ's QPD-3 writes them
(``SEG.field.component.subcomponent``, 1-based, ARCHITECTURE.md "Conventions")::

    PID.3           field 3 (its first repetition, as sent, with its component separators)
    PID.3.4.2       component 4, subcomponent 2            MSH.9.2   the trigger event
    OBX[2].5        the second OBX                          OBX[*].5  every OBX (iterates)
    PID.3[2].1      the second repetition                   PID.3[*]  every repetition (iterates)
    PID.3[type=NI].1                     the first repetition whose component ``type`` (CX-5) is NI
    PID.3[5=NI]  PID.3[4.1=HOSP_A]  PID.3[authority.universal_id=2.16.156.10011.1.3]
    OBX[3.1=8302-2].5                    the first OBX whose OBX-3.1 is 8302-2
    .5  .3[*].1  .                       relative, inside ``each: OBR[*]`` (a segment scope)
    .1  .4.2  .                          relative, inside ``each: PID.3[*]`` (a repetition scope)
    /PID.3.1                             from the message root, whatever the scope

Why a compiler: a mapping evaluates its paths on every message, so each path is parsed and checked
once at load time (``parse``: syntax, v2.5 field numbers, component names from ``hl7types``) and
turned into closures (``compile_path``) that do only string splitting per message, on the lazy
``Hl7Reader``. Unlike python-hl7's ``msg["PID.5.2"]`` (which means *repetition* 2), a path never
skips a level: ``PID.5.2`` is component 2.

Values: a leaf (a subcomponent, or a component or repetition without lower separators) is returned
with its escape sequences decoded; a composite value is returned as sent, so that its separators stay
distinguishable from escaped data. Absent and empty values (a composite of separators only, ``^^^``,
is empty) are ``None`` (``first``) or skipped (``values``). HL7's explicit null ``""`` is returned as
the two characters ``""``.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from engine.mapping import hl7types
from engine.mapping.errors import DefinitionError
from engine.mapping.hl7reader import Hl7Reader, RepetitionScope, Scope, SegmentScope

__all__ = ["EVERY", "CompiledPath", "Hl7Path", "Index", "ScopeKind", "Select", "compile_path", "parse"]


class ScopeKind(enum.Enum):
    """What a path is evaluated in: the message, one segment (``each: OBR[*]``), one field repetition."""

    MESSAGE = "message"
    SEGMENT = "segment"
    REPETITION = "repetition"


EVERY: Literal["*"] = "*"


@dataclass(frozen=True, slots=True)
class Select:
    """``[name=value]``: the first item (segment or repetition) whose value at ``key`` equals ``value``.

    ``key`` holds positions below the selected level: (component[, subcomponent]) for a repetition,
    (field[, component[, subcomponent]]) for a segment. ``text`` is what was written between brackets.
    """

    key: tuple[int, ...]
    value: str
    text: str


Index = int | Literal["*"] | Select | None
"""An occurrence or repetition index: a 1-based position, every one, a selection, or None (not
written: the first one)."""


@dataclass(frozen=True, slots=True)
class Hl7Path:
    """A parsed path. ``anchor`` is MESSAGE for an absolute path, else the scope a relative path reads in.

    ``segment`` and ``field`` are known for absolute paths, and for relative ones when ``parse`` was
    given the path that opened the scope (``''`` / 0 otherwise). ``field`` 0: the path stops at the
    segment; ``component``/``subcomponent`` 0: not given. ``datatype`` is the v2.5 data type of what the
    path reads, when known (``"CX"`` for PID.3, ``"HD"`` for PID.3.4, ``"ST"`` for PID.3.1).
    """

    text: str
    anchor: ScopeKind
    root: bool
    segment: str
    segment_index: Index
    field: int
    repetition: Index
    component: int
    subcomponent: int
    datatype: str | None
    iterates: bool
    stars: int  # how many [*] (the builder takes one index for each)

    @property
    def relative(self) -> bool:
        return self.anchor is not ScopeKind.MESSAGE

    @property
    def scope_kind(self) -> ScopeKind:
        """The scope ``each:`` opens with this path: SEGMENT (``OBR[*]``), REPETITION (``PID.3[*]``), or
        MESSAGE when the path ends below a repetition and so cannot open a scope."""
        if self.anchor is ScopeKind.REPETITION:
            return ScopeKind.REPETITION if self.component == 0 else ScopeKind.MESSAGE
        if self.field == 0:
            return ScopeKind.SEGMENT
        return ScopeKind.REPETITION if self.component == 0 else ScopeKind.MESSAGE


# --------------------------------------------------------------------------------------------------
# grammar

_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_UPPER_DIGIT = _UPPER | frozenset("0123456789")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_SEPARATORS = ("field separator", "encoding characters")


class _Parser:
    def __init__(self, text: str, scope: ScopeArg) -> None:
        self.text = text
        self.pos = 0
        kind, segment, field = _scope_context(scope)
        self.kind = kind
        self.ctx_segment = segment
        self.ctx_field = field

    # -- errors ------------------------------------------------------------------------------------
    def fail(self, expected: str, at: int | None = None, why: str = "") -> DefinitionError:
        at = self.pos if at is None else at
        before = self.text[:at]
        where = f"after {before!r}" if before else "at the start"
        why = f": {why}" if why else ""
        return DefinitionError(f"bad path {self.text!r}: expected {expected} {where} (column {at + 1}){why}")

    def error(self, reason: str) -> DefinitionError:
        return DefinitionError(f"bad path {self.text!r}: {reason}")

    # -- scanning ----------------------------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def number(self, what: str) -> int:
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos].isdigit() and text[self.pos].isascii():
            self.pos += 1
        digits = text[start : self.pos]
        if not digits:
            raise self.fail(f"a {what} number", start)
        if digits[0] == "0":
            raise self.error(
                f"{what} numbers start at 1 and have no leading zero, not {digits!r} (column {start + 1})"
            )
        return int(digits)

    def end_or(self, expected: str) -> None:
        if self.pos < len(self.text):
            found = self.text[self.pos]
            raise DefinitionError(
                f"bad path {self.text!r}: unexpected {found!r} after {self.text[: self.pos]!r}, "
                f"expected {expected} (column {self.pos + 1})"
            )

    # -- the path ----------------------------------------------------------------------------------
    def parse(self) -> Hl7Path:
        text = self.text
        if not text:
            raise DefinitionError("empty path: expected SEG.field[.component[.subcomponent]], e.g. PID.3.1")
        root = False
        if text[0] == "/":
            root = True
            self.pos = 1
            if self.peek() in ("/", "."):
                raise self.fail("a segment name (e.g. PID)", why="'/' starts a path from the message root")
        if self.peek() == ".":
            return self.relative()
        return self.absolute(root)

    def absolute(self, root: bool) -> Hl7Path:
        start = self.pos
        name = self.text[start : start + 3]
        if len(name) < 3 or name[0] not in _UPPER or not all(c in _UPPER_DIGIT for c in name[1:]):
            raise self.fail("a segment name (a capital letter, then 2 capitals or digits, e.g. PID)")
        self.pos += 3
        seg_index = self.index_opt("segment", name, 0)
        if self.peek() in _UPPER_DIGIT:
            raise self.fail("'.' or '['", why="segment names have 3 characters")
        if not self.peek():
            return self.build(root, ScopeKind.MESSAGE, name, seg_index, 0, None, 0, 0)
        if self.peek() != ".":
            raise self.fail("'.' then a field number, or '['")
        self.pos += 1
        return self.field_part(root, ScopeKind.MESSAGE, name, seg_index)

    def relative(self) -> Hl7Path:
        if self.kind is ScopeKind.MESSAGE:
            raise self.error(
                "a relative path (starting with '.') reads inside an each: scope (OBR[*] or PID.3[*]); "
                "here write SEG.field, e.g. PID.5.1"
            )
        self.pos += 1
        if not self.peek():  # "." is the scope itself
            return self.build(
                False,
                self.kind,
                self.ctx_segment,
                None,
                0 if self.kind is ScopeKind.SEGMENT else self.ctx_field,
                None,
                0,
                0,
            )
        if self.kind is ScopeKind.SEGMENT:
            return self.field_part(False, ScopeKind.SEGMENT, self.ctx_segment, None)
        # repetition scope: .component[.subcomponent]
        component = self.number("component")
        subcomponent = 0
        if self.peek() == "[":
            raise self.error(
                f"components do not repeat: no [...] after a component (column {self.pos + 1}); "
                "inside each: on a field repetition, write .component[.subcomponent]"
            )
        if self.peek() == ".":
            self.pos += 1
            subcomponent = self.number("subcomponent")
        self.end_or("the end of the path (inside each: on a field repetition: .component[.subcomponent])")
        return self.build(
            False, ScopeKind.REPETITION, self.ctx_segment, None, self.ctx_field, None, component, subcomponent
        )

    def field_part(self, root: bool, anchor: ScopeKind, segment: str, seg_index: Index) -> Hl7Path:
        field_at = self.pos
        field = self.number("field")
        count = hl7types.field_count(segment) if segment else None
        if count is not None and field > count:
            raise self.error(f"{segment} has {count} fields in HL7 v2.5, not {field} (column {field_at + 1})")
        repetition = self.index_opt("repetition", segment, field)
        component = subcomponent = 0
        if self.peek() == ".":
            self.pos += 1
            component = self.number("component")
            if self.peek() == "[":
                raise self.error(
                    f"components do not repeat: no [...] after a component (column {self.pos + 1})"
                )
            if self.peek() == ".":
                self.pos += 1
                subcomponent = self.number("subcomponent")
                if self.peek() == "[":
                    raise self.error(f"subcomponents do not repeat: no [...] here (column {self.pos + 1})")
                if self.peek() == ".":
                    raise self.fail("the end of the path", why="subcomponents are the deepest level")
        self.end_or("'.', '[' or the end of the path")
        if segment == "MSH" and field <= 2 and (repetition is not None or component):
            raise self.error(
                f"MSH-{field} holds the {_SEPARATORS[field - 1]}: it has no repetitions or components"
            )
        return self.build(root, anchor, segment, seg_index, field, repetition, component, subcomponent)

    def index_opt(self, level: str, segment: str, field: int) -> Index:
        if self.peek() != "[":
            return None
        open_at = self.pos
        self.pos += 1
        text = self.text
        close = text.find("]", self.pos)
        eq = text.find("=", self.pos)
        if 0 <= eq < (close if close >= 0 else len(text)):
            return self.select(level, segment, field, eq)
        if close < 0:
            raise self.error(f"'[' at column {open_at + 1} is not closed by ']'")
        inner = text[self.pos : close]
        if inner == "*":
            self.pos = close + 1
            return EVERY
        if not inner:
            raise self.fail(f"a {level} number, * or name=value")
        if not (inner.isdigit() and inner.isascii()):
            raise self.fail(f"a {level} number (1, 2...), * or name=value")
        n = int(inner)
        if n == 0 or inner[0] == "0":
            raise self.error(
                f"{level} numbers start at 1 and have no leading zero, not [{inner}] (column {self.pos + 1})"
            )
        self.pos = close + 1
        return n

    def select(self, level: str, segment: str, field: int, eq: int) -> Select:
        key_at = self.pos
        key_text = self.text[key_at:eq]
        if not key_text:
            raise self.fail("a component name or number before '='", why="write [name=value]")
        self.pos = eq + 1
        text = self.text
        if self.peek() == '"':
            end = text.find('"', self.pos + 1)
            if end < 0:
                raise self.error(f"the quoted value at column {self.pos + 1} is not closed by '\"'")
            value = text[self.pos + 1 : end]
            self.pos = end + 1
            if self.peek() != "]":
                raise self.fail("']' after the quoted value")
        else:
            end = text.find("]", self.pos)
            if end < 0:
                raise self.error(f"'[' at column {key_at} is not closed by ']'")
            value = text[self.pos : end]
            self.pos = end
        if not value:
            raise self.fail("a value", why="a selection matches a value that is present")
        self.pos += 1  # the ']'
        key = self.select_key(level, segment, field, key_text, key_at)
        return Select(key, value, text[key_at - 1 : self.pos])

    def select_key(self, level: str, segment: str, field: int, key_text: str, at: int) -> tuple[int, ...]:
        parts = key_text.split(".")
        positions: list[int] = []
        datatype: str | None
        if level == "segment":
            if len(parts) > 3:
                raise self.error(
                    f"a segment is selected by field[.component[.subcomponent]], not {key_text!r}"
                )
            head = parts.pop(0)
            if not (head.isdigit() and head.isascii()) or head[0] == "0":
                raise self.error(
                    f"a segment is selected by a field number (e.g. OBX[3.1=8302-2]), not {head!r} "
                    f"(column {at + 1})"
                )
            field = int(head)
            count = hl7types.field_count(segment) if segment else None
            if count is not None and field > count:
                raise self.error(f"{segment} has {count} fields in HL7 v2.5, not {field} (column {at + 1})")
            positions.append(field)
        elif len(parts) > 2:
            raise self.error(f"a repetition is selected by component[.subcomponent], not {key_text!r}")
        datatype = _field_type(segment, field)
        where = f"{segment}-{field}" if segment else "this field"
        for depth, part in enumerate(parts):
            what = "component" if depth == 0 else "subcomponent"
            if part.isdigit() and part.isascii():
                if part[0] == "0":
                    raise self.error(f"{what} numbers start at 1, not {part!r} in [{key_text}=...]")
                n = int(part)
            elif part and part[0] in _NAME_START and all(c in _NAME_CHARS for c in part):
                n = self.named(part, datatype, where, what)
            else:
                raise self.error(f"expected a {what} number or name in [{key_text}=...], not {part!r}")
            positions.append(n)
            datatype = hl7types.component_type(datatype, n) if datatype else None
            where = f"component {part} of {where}"
        return tuple(positions)

    def named(self, name: str, datatype: str | None, where: str, what: str) -> int:
        if datatype is None:
            raise self.error(
                f"the {what} name {name!r} needs the data type of {where}, which HL7 v2.5 does not give "
                "here (a Z-segment, a segment outside the table, or a relative path without its scope): "
                "select by number, e.g. [5=NI]"
            )
        if datatype == "varies":
            raise self.error(
                f"{where} has no fixed data type (varies): select by {what} number, not {name!r}"
            )
        names = hl7types.component_names(datatype)
        if not names:
            raise self.error(f"{where} is {datatype}, which has no {what}s: no {name!r} in it")
        n = hl7types.component_index(datatype, name)
        if n is None:
            near = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise self.error(f"unknown {what} {name!r} of {datatype} ({where}){hint}: {', '.join(names)}")
        return n

    def build(
        self,
        root: bool,
        anchor: ScopeKind,
        segment: str,
        seg_index: Index,
        field: int,
        repetition: Index,
        component: int,
        subcomponent: int,
    ) -> Hl7Path:
        datatype = _field_type(segment, field)
        if component and datatype:
            datatype = hl7types.component_type(datatype, component)
            if subcomponent and datatype:
                datatype = hl7types.component_type(datatype, subcomponent)
        stars = (seg_index == EVERY) + (repetition == EVERY)
        return Hl7Path(
            self.text,
            anchor,
            root,
            segment,
            seg_index,
            field,
            repetition,
            component,
            subcomponent,
            datatype,
            stars > 0,
            stars,
        )


def _field_type(segment: str, field: int) -> str | None:
    return hl7types.field_type(segment, field) if segment and field else None


def _scope_context(scope: ScopeArg) -> tuple[ScopeKind, str, int]:
    if isinstance(scope, ScopeKind):
        return scope, "", 0
    path = scope.path if isinstance(scope, CompiledPath) else scope
    kind = path.scope_kind
    if kind is ScopeKind.MESSAGE:
        raise DefinitionError(
            f"{path.text} cannot open a scope: each: ends at a segment (OBR[*]) or a field "
            "repetition (PID.3[*])"
        )
    return kind, path.segment, path.field if kind is ScopeKind.REPETITION else 0


def parse(text: str, scope: ScopeArg = ScopeKind.MESSAGE) -> Hl7Path:
    """Parse and check ``text`` for use in ``scope`` (raises ``DefinitionError`` naming path and column).

    ``scope`` is the kind of scope the path is evaluated in, or better the path that opened it (the
    ``each:`` path, parsed or compiled): then a relative path knows its segment and field, so that it
    can select by component name (``.3[type=NI].1`` inside ``each: PID[*]``) and is checked against
    the v2.5 field count.
    """
    return _Parser(text.strip(), scope).parse()


# --------------------------------------------------------------------------------------------------
# evaluation

_Holder = Hl7Reader | SegmentScope  # where a repetition scope's non-relative paths read


def _base(scope: Scope) -> _Holder:
    return scope.parent if isinstance(scope, RepetitionScope) else scope


def _lookup(base: _Holder, name: str) -> tuple[Hl7Reader, Sequence[int], int, SegmentScope | None]:
    """Segments named ``name`` seen from ``base``: (reader, their indices, end of the range, own scope).

    From a segment scope, a segment of the same name as the scope (or as an enclosing one) *is* that
    scope's segment; any other name is looked up in the innermost group only.
    """
    if isinstance(base, Hl7Reader):
        return base, base.by_name.get(name, ()), len(base.segments), None
    reader = base.reader
    s: _Holder = base
    while isinstance(s, SegmentScope):
        if reader.segments[s.index][:3] == name:
            return reader, (s.index,), s.hi, s
        s = s.parent
    lo, hi = base.lo, base.hi
    return reader, [i for i in reader.by_name.get(name, ()) if lo <= i < hi], hi, None


def _part(text: str, sep: str, n: int) -> str:
    """Item ``n`` (1-based) of ``text`` split on ``sep``; '' when there are fewer."""
    if n == 1:
        k = text.find(sep)
        return text if k < 0 else text[:k]
    parts = text.split(sep)
    return parts[n - 1] if n <= len(parts) else ""


def _value(reader: Hl7Reader, text: str, component: int, subcomponent: int) -> str | None:
    """The value at ``.component.subcomponent`` (0: not given) of one repetition; decoded if a leaf."""
    if component:
        text = _part(text, reader.component_sep, component)
        if subcomponent:
            text = _part(text, reader.subcomponent_sep, subcomponent)
        elif reader.subcomponent_sep in text:  # a composite: as sent; only separators is empty
            return text if text.strip(reader.subcomponent_sep) else None
    elif reader.component_sep in text or reader.subcomponent_sep in text:
        return text if text.strip(reader.component_sep + reader.subcomponent_sep) else None
    if not text:
        return None
    return reader.unescape(text) if reader.escape in text else text


def _is_separator_field(reader: Hl7Reader, i: int, field: int) -> bool:
    return field <= 2 and reader.segments[i][:3] == "MSH"


def _repetition_test(select: Select) -> Callable[[Hl7Reader, str], bool]:
    """Does one repetition (its text) hold ``select.value`` at ``select.key``?"""
    component, subcomponent = (*select.key, 0)[:2]
    value = select.value

    def test(reader: Hl7Reader, text: str) -> bool:
        return _value(reader, text, component, subcomponent) == value

    return test


def _segment_test(select: Select) -> Callable[[Hl7Reader, int], bool]:
    """Does segment ``i`` hold ``select.value`` at ``select.key`` (its first repetition)?"""
    field, component, subcomponent = (*select.key, 0, 0)[:3]
    value = select.value

    def test(reader: Hl7Reader, i: int) -> bool:
        fields = reader.fields(i)
        if field >= len(fields):
            return False
        if _is_separator_field(reader, i, field):
            return fields[field] == value
        first = _part(fields[field], reader.repetition_sep, 1)
        return _value(reader, first, component, subcomponent) == value

    return test


class CompiledPath:
    """A path compiled once at load time; ``first``/``values``/``count``/``scopes`` run per message.

    ``first(scope)``: the value, or None when absent or empty (for an iterating path: the first value).
    ``values(scope)``: every value of an iterating path, absent and empty ones skipped.
    ``count(scope)``: how many segments x repetitions the path finds when its unindexed levels are
    iterated (a selection counts its matches): for rules that expect one value.
    ``scopes(scope)``: the scopes an ``each:`` on this path iterates (of kind ``scope_kind``).
    They are attributes holding closures, so that ``path.first`` costs no method binding.
    """

    __slots__ = ("count", "first", "iterates", "path", "scope_kind", "scopes", "text", "values")

    def __init__(self, path: Hl7Path) -> None:
        self.path = path
        self.text = path.text
        self.iterates = path.iterates
        self.scope_kind = path.scope_kind
        plan = _Plan(path)
        self.first: Callable[[Scope], str | None] = plan.first_function()
        self.values: Callable[[Scope], list[str]] = plan.values
        self.count: Callable[[Scope], int] = plan.count
        self.scopes: Callable[[Scope], list[Scope]] = plan.scopes

    def __repr__(self) -> str:
        return f"CompiledPath({self.text!r})"


ScopeArg = ScopeKind | Hl7Path | CompiledPath
"""What ``parse`` and ``compile_path`` take as scope: its kind, or the path that opened it."""


def compile_path(text: str, scope: ScopeArg = ScopeKind.MESSAGE) -> CompiledPath:
    """Parse, check and compile ``text`` (see ``parse``); raises ``DefinitionError``."""
    return CompiledPath(parse(text, scope))


class _Plan:
    """How one path is evaluated, level by level: segments, repetitions, then the value."""

    def __init__(self, path: Hl7Path) -> None:
        self.path = path
        seg_index, rep_index = path.segment_index, path.repetition
        self.segment_test = _segment_test(seg_index) if isinstance(seg_index, Select) else None
        self.repetition_test = _repetition_test(rep_index) if isinstance(rep_index, Select) else None
        # MSH-1/MSH-2 are taken whole (the segment may be unknown for a relative path: checked per segment)
        self.maybe_separators = path.segment in ("MSH", "") and 0 < path.field <= 2

    # -- segments ---------------------------------------------------------------------------------
    def segments(
        self, scope: Scope, index: Index, make_scopes: bool, all_matches: bool
    ) -> list[tuple[Hl7Reader, int, _Holder]]:
        """(reader, segment index, holder) of each segment the path reads. ``holder`` is what the
        repetition scopes of that segment read non-relative paths from; with ``make_scopes`` it is
        the segment's own ``SegmentScope`` (its group reaches the next segment of the same name)."""
        path = self.path
        if path.anchor is ScopeKind.SEGMENT:
            if not isinstance(scope, SegmentScope):
                raise TypeError(f"{path.text} is relative to a segment: evaluate it inside each: SEG[*]")
            return [(scope.reader, scope.index, scope)]
        base = _base(scope)
        if path.root and isinstance(base, SegmentScope):
            base = base.reader
        reader, positions, hi, own = _lookup(base, path.segment)
        if own is not None:
            if (
                index is None
                or index == 1
                or index == EVERY
                or (self.segment_test is not None and self.segment_test(reader, own.index))
            ):
                return [(reader, own.index, own)]
            return []
        chosen: list[int]  # indices into ``positions``
        if not positions:
            return []
        if index is None or index == 1:
            chosen = [0]
        elif index == EVERY:
            chosen = list(range(len(positions)))
        elif isinstance(index, int):
            chosen = [index - 1] if index <= len(positions) else []
        else:
            test = self.segment_test
            assert test is not None
            chosen = [k for k, i in enumerate(positions) if test(reader, i)]
            if not all_matches:
                chosen = chosen[:1]
        if not make_scopes:
            return [(reader, positions[k], base) for k in chosen]
        last = len(positions) - 1
        out: list[tuple[Hl7Reader, int, _Holder]] = []
        for k in chosen:
            i = positions[k]
            out.append((reader, i, SegmentScope(reader, i, positions[k + 1] if k < last else hi, base)))
        return out

    # -- repetitions ------------------------------------------------------------------------------
    def repetitions(
        self, reader: Hl7Reader, i: int, index: Index, all_matches: bool
    ) -> list[tuple[int, str]]:
        """(number, text) of each repetition of the path's field in segment ``i``; empty ones skipped."""
        field = self.path.field
        fields = reader.fields(i)
        if field >= len(fields):
            return []
        text = fields[field]
        if not text:
            return []
        if self.maybe_separators and _is_separator_field(reader, i, field):
            return [(1, text)]
        blank = reader.component_sep + reader.subcomponent_sep  # a repetition of these only is empty
        if index is None or index == 1:
            first = _part(text, reader.repetition_sep, 1)
            return [(1, first)] if first.strip(blank) else []
        reps = text.split(reader.repetition_sep)
        if isinstance(index, int):
            return [(index, reps[index - 1])] if index <= len(reps) and reps[index - 1].strip(blank) else []
        if index == EVERY:
            return [(n, r) for n, r in enumerate(reps, 1) if r.strip(blank)]
        test = self.repetition_test
        assert test is not None
        found = [(n, r) for n, r in enumerate(reps, 1) if r and test(reader, r)]
        return found if all_matches else found[:1]

    # -- values -----------------------------------------------------------------------------------
    def iterate(self, scope: Scope) -> Iterator[str]:
        path = self.path
        component, subcomponent, field = path.component, path.subcomponent, path.field
        if path.anchor is ScopeKind.REPETITION:
            if not isinstance(scope, RepetitionScope):
                raise TypeError(f"{path.text} is relative to a field repetition: use it in each: SEG.n[*]")
            v = _value(scope.reader, scope.text, component, subcomponent)
            if v:
                yield v
            return
        for reader, i, _ in self.segments(scope, path.segment_index, False, False):
            if field == 0:
                yield reader.segments[i]
                continue
            separators = self.maybe_separators and _is_separator_field(reader, i, field)
            for _, text in self.repetitions(reader, i, path.repetition, False):
                v = text if separators else _value(reader, text, component, subcomponent)
                if v:
                    yield v

    def values(self, scope: Scope) -> list[str]:
        return list(self.iterate(scope))

    def first_function(self) -> Callable[[Scope], str | None]:
        path = self.path
        seg_index, rep_index = path.segment_index, path.repetition
        component, subcomponent = path.component, path.subcomponent
        iterate = self.iterate
        if path.anchor is ScopeKind.REPETITION:

            def first_in_repetition(scope: Scope) -> str | None:  # ".1" inside each: PID.3[*]
                if isinstance(scope, RepetitionScope):
                    return _value(scope.reader, scope.text, component, subcomponent)
                return next(iterate(scope), None)  # raises the TypeError

            return first_in_repetition
        plain = not (path.iterates or self.maybe_separators or isinstance(rep_index, Select))
        if path.anchor is ScopeKind.SEGMENT and path.field and plain:
            rel_field = path.field
            rel_rep = rep_index if isinstance(rep_index, int) else 1

            def first_in_segment(scope: Scope) -> str | None:  # ".4.1" inside each: OBR[*]
                if not isinstance(scope, SegmentScope):
                    return next(iterate(scope), None)  # raises the TypeError
                reader = scope.reader
                fields = reader.fields(scope.index)
                if rel_field >= len(fields) or not fields[rel_field]:
                    return None
                text = _part(fields[rel_field], reader.repetition_sep, rel_rep)
                return _value(reader, text, component, subcomponent)

            return first_in_segment
        if (
            path.iterates
            or path.anchor is not ScopeKind.MESSAGE
            or path.field == 0
            or self.maybe_separators
            or isinstance(seg_index, Select)
        ):

            def first_general(scope: Scope) -> str | None:
                return next(iterate(scope), None)

            return first_general
        # The common case, plain string operations only: SEG[n].field[n or selection].component.subcomponent
        name, field, root = path.segment, path.field, path.root
        occurrence = seg_index if isinstance(seg_index, int) else 1
        repetition = rep_index if isinstance(rep_index, int) else 1
        segments = self.segments
        test = self.repetition_test

        def first(scope: Scope) -> str | None:
            if isinstance(scope, Hl7Reader) or root:
                reader = scope if isinstance(scope, Hl7Reader) else scope.reader
                positions = reader.by_name.get(name)
                if positions is None or len(positions) < occurrence:
                    return None
                i = positions[occurrence - 1]
            else:
                found = segments(scope, occurrence, False, False)
                if not found:
                    return None
                reader, i, _ = found[0]
            fields = reader.fields(i)
            if field >= len(fields):
                return None
            text = fields[field]
            if not text:
                return None
            if test is not None:  # PID.3[type=NI].1: the first repetition that matches
                for rep in text.split(reader.repetition_sep):
                    if rep and test(reader, rep):
                        return _value(reader, rep, component, subcomponent)
                return None
            return _value(reader, _part(text, reader.repetition_sep, repetition), component, subcomponent)

        return first

    # -- count and scopes -------------------------------------------------------------------------
    def count(self, scope: Scope) -> int:
        path = self.path
        if path.anchor is ScopeKind.REPETITION:
            return 1 if next(self.iterate(scope), None) is not None else 0
        seg_index = EVERY if path.segment_index is None else path.segment_index
        found = self.segments(scope, seg_index, False, True)
        if path.field == 0:
            return len(found)
        rep_index = EVERY if path.repetition is None else path.repetition
        return sum(len(self.repetitions(reader, i, rep_index, True)) for reader, i, _ in found)

    def scopes(self, scope: Scope) -> list[Scope]:
        path = self.path
        kind = path.scope_kind
        if kind is ScopeKind.MESSAGE:
            raise TypeError(f"{path.text} ends below a field repetition: it cannot open a scope")
        if path.anchor is ScopeKind.REPETITION:  # "." inside a repetition scope
            return [scope] if isinstance(scope, RepetitionScope) and scope.text else []
        if kind is ScopeKind.SEGMENT:
            if path.anchor is ScopeKind.SEGMENT:  # "." inside a segment scope
                return [scope]
            return [holder for _, _, holder in self.segments(scope, path.segment_index, True, False)]
        make = path.segment_index == EVERY
        out: list[Scope] = []
        for reader, i, holder in self.segments(scope, path.segment_index, make, False):
            for n, text in self.repetitions(reader, i, path.repetition, False):
                out.append(RepetitionScope(reader, text, holder, i, path.field, n))
        return out

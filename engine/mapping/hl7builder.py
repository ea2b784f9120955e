"""Building an HL7 v2 message value by value, with the same paths mappings read with.

Why a builder of our own: a mapping writes a few dozen values at paths (``PID.3[*].1``,
``PID.3[type=NI].1``, ``MSH.9.2``) in rule order, not segment order; python-hl7 can only assign into
segments that already exist, and hl7apy validates every assignment against its model (far too slow
per message). Here each segment is a nested list (fields → repetitions → components →
subcomponents) grown on demand; values are escaped once when set (HL7 v2.5 §2.7, special
characters) and the text is rendered once at the end: MSH first, then the order the caller gives,
trailing empty fields, repetitions, components and subcomponents trimmed (Chapter 2's encoding
rules let a sender omit trailing delimiters, and receivers such as hl7apy's strict validation
expect it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from engine.mapping.errors import DefinitionError
from engine.mapping.hl7path import EVERY, CompiledPath, Hl7Path, ScopeKind, Select, parse

__all__ = ["Hl7Builder", "check_target"]

# Nested lists, grown on demand; None stands for an empty part never written (cheap padding).
_Component = list[str]  # subcomponents
_Repetition = list[_Component | None]
_Field = list[_Repetition | None]
_Segment = list[_Field | None]  # index f-1 is field f
_T = TypeVar("_T")


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> Hl7Path:
    return parse(text, ScopeKind.MESSAGE)


def check_target(path: Hl7Path | CompiledPath | str) -> Hl7Path:
    """``path`` parsed, if a builder can write at it; else ``DefinitionError`` (call it at load time).

    A target is absolute and reaches a field; MSH-1 and MSH-2 are the separators, set by the builder.
    """
    p = _as_path(path)
    if p.relative:
        raise DefinitionError(
            f"cannot write at {p.text}: a target path is absolute (SEG.field...), the builder has no scope"
        )
    if p.field == 0:
        raise DefinitionError(f"cannot write at {p.text}: a target names a field (e.g. {p.segment}.1)")
    if p.segment == "MSH" and p.field <= 2:
        raise DefinitionError(
            f"cannot write at {p.text}: MSH-1 and MSH-2 are the separators, given to "
            "the builder (field_sep, encoding)"
        )
    return p


def _as_path(path: Hl7Path | CompiledPath | str) -> Hl7Path:
    if isinstance(path, Hl7Path):
        return path
    if isinstance(path, CompiledPath):
        return path.path
    return _parsed(path.strip())


_Writer = Callable[["Hl7Builder", str, Sequence[int]], None]
_WRITERS: dict[int, tuple[Hl7Path, _Writer]] = {}  # id(path) -> (path, writer); the path is kept alive


def _writer(p: Hl7Path) -> _Writer:
    """The writer of one target path, checked and compiled on first use, then cached."""
    entry = _WRITERS.get(id(p))
    if entry is not None and entry[0] is p:
        return entry[1]
    check_target(p)
    write = _compile_writer(p)
    if len(_WRITERS) >= 4096:  # paths are made at load time; this only bounds misuse
        _WRITERS.clear()
    _WRITERS[id(p)] = (p, write)
    return write


def _compile_writer(p: Hl7Path) -> _Writer:
    name, f, c, s, stars, text = p.segment, p.field, p.component, p.subcomponent, p.stars, p.text
    seg_at, rep_at = p.segment_index, p.repetition
    if not isinstance(seg_at, Select) and not isinstance(rep_at, Select) and not stars:
        sn = seg_at if isinstance(seg_at, int) else 1
        rn = rep_at if isinstance(rep_at, int) else 1

        def write_plain(b: Hl7Builder, value: str, index: Sequence[int]) -> None:
            # SEG[n].f[n].c.s: list navigation only, the common case
            occurrences = b._segments.get(name)
            if occurrences is None:
                occurrences = b._segments[name] = []
            while len(occurrences) < sn:
                occurrences.append([])
            _put(_nth(_nth(occurrences[sn - 1], f), rn), c, s, value)

        return write_plain
    rep_star = 1 if seg_at == EVERY else 0

    def write(b: Hl7Builder, value: str, index: Sequence[int]) -> None:
        if len(index) < stars:
            raise ValueError(f"{text} has {stars} [*]: it needs as many indexes, not {tuple(index)}")
        occurrences = b._occurrences(name)
        if isinstance(seg_at, Select):
            seg = b._select_segment(occurrences, seg_at)
        else:
            n = _star(index, 0) if seg_at == EVERY else seg_at or 1
            while len(occurrences) < n:
                occurrences.append([])
            seg = occurrences[n - 1]
        field = _nth(seg, f)
        if isinstance(rep_at, Select):
            rep = b._select_repetition(field, rep_at)
        else:
            rep = _nth(field, _star(index, rep_star) if rep_at == EVERY else rep_at or 1)
        _put(rep, c, s, value)

    return write


@functools.lru_cache(maxsize=32)
def _separators(field_sep: str, encoding: str) -> tuple[str, dict[int, str], re.Pattern[str]]:
    """Checked separators, the escape table and a search for what needs escaping (built once per set)."""
    seps = field_sep + encoding[:4]
    if (
        len(field_sep) != 1
        or len(encoding) not in (4, 5)
        or len(set(seps)) != 5
        or any(c.isalnum() or c.isspace() for c in seps)
    ):
        raise DefinitionError(
            f"separators {field_sep!r} and {encoding!r}: HL7 v2 (Chapter 2, message delimiters) wants one "
            "field separator and four encoding characters (component, repetition, escape, subcomponent), "
            "all distinct"
        )
    fs, cs, rs, esc, ss = seps[0], seps[1], seps[2], seps[3], seps[4]
    # HL7 v2.5 §2.7: delimiters in data are sent as escape sequences; CR/LF would end the segment, so
    # they go as hexadecimal data (\Xhh\), which the reader turns back into the characters.
    table = str.maketrans(
        {
            esc: f"{esc}E{esc}",
            fs: f"{esc}F{esc}",
            cs: f"{esc}S{esc}",
            rs: f"{esc}R{esc}",
            ss: f"{esc}T{esc}",
            "\r": f"{esc}X0D{esc}",
            "\n": f"{esc}X0A{esc}",
        }
    )
    special = re.compile("[" + re.escape(seps) + "\r\n]")
    return seps, table, special


class Hl7Builder:
    """An HL7 v2 message under construction; ``set`` values, then ``to_text``."""

    __slots__ = ("_encoding", "_escapes", "_order", "_segments", "_seps", "_special")

    def __init__(
        self, *, segment_order: Sequence[str] = (), field_sep: str = "|", encoding: str = "^~\\&"
    ) -> None:
        self._seps, self._escapes, self._special = _separators(field_sep, encoding)
        self._encoding = encoding
        self._order = segment_order
        self._segments: dict[str, list[_Segment]] = {"MSH": [[]]}

    # -- writing ------------------------------------------------------------------------------------
    def set(self, path: Hl7Path | CompiledPath | str, value: str, index: Sequence[int] = ()) -> None:
        """Write ``value`` (escaped here) at ``path``; ``index`` gives the occurrence of each ``[*]``.

        Missing segments, repetitions and components on the way are created empty. A selection
        (``PID.3[type=NI].1``) writes into the first repetition (or segment) that matches, or adds one
        that does. Raises ``DefinitionError`` for a path no builder can write (``check_target``) and
        ``ValueError`` when ``index`` has fewer positions than the path has ``[*]``.
        """
        p = path if isinstance(path, Hl7Path) else _as_path(path)
        entry = _WRITERS.get(id(p))
        write = entry[1] if entry is not None and entry[0] is p else _writer(p)
        if self._special.search(value) is not None:
            value = value.translate(self._escapes)
        write(self, value, index)

    def _escape(self, value: str) -> str:
        return value.translate(self._escapes) if self._special.search(value) is not None else value

    def _occurrences(self, name: str) -> list[_Segment]:
        found = self._segments.get(name)
        if found is None:
            found = self._segments[name] = []
        return found

    def _select_segment(self, occurrences: list[_Segment], select: Select) -> _Segment:
        # OBX[3.1=8302-2]: the first OBX whose OBX-3.1 is 8302-2, else a new OBX holding it
        value = self._escape(select.value)
        field, component, subcomponent = (*select.key, 0, 0)[:3]
        ss = self._seps[4]
        for seg in occurrences:
            found = seg[field - 1] if len(seg) >= field else None
            if found and _text(found[0], component, subcomponent, ss) == value:
                return seg
        new: _Segment = []
        occurrences.append(new)
        _put(_nth(_nth(new, field), 1), component, subcomponent, value)
        return new

    def _select_repetition(self, field: _Field, select: Select) -> _Repetition:
        # PID.3[type=NI]: the first repetition whose CX-5 is NI, else a new repetition holding it
        value = self._escape(select.value)
        component, subcomponent = (*select.key, 0)[:2]
        ss = self._seps[4]
        for rep in field:
            if rep is not None and _text(rep, component, subcomponent, ss) == value:
                return rep
        new: _Repetition = []
        field.append(new)
        _put(new, component, subcomponent, value)
        return new

    # -- rendering ----------------------------------------------------------------------------------
    def to_text(self) -> str:
        """The message: segments joined by carriage returns (no trailing one), MSH first."""
        seps = self._seps
        fs, cs, rs, ss = seps[0], seps[1], seps[2], seps[4]
        segments = self._segments
        names = ["MSH", *(n for n in dict.fromkeys(self._order) if n != "MSH" and n in segments)]
        placed = set(names)
        names += [n for n in segments if n not in placed]
        lines: list[str] = []
        for name in names:
            for seg in segments[name]:
                # Values are escaped, so none ends with a raw delimiter: rstrip trims exactly the
                # trailing empty subcomponents, components, repetitions and fields.
                fields = [_render(f, rs, cs, ss) if f else "" for f in seg]
                if name == "MSH":  # MSH-1 and MSH-2 are written from the separators
                    fields[:2] = [self._encoding]
                lines.append(fs.join([name, *fields]).rstrip(fs))
        return "\r".join(lines)

    def __repr__(self) -> str:
        return f"Hl7Builder({self.to_text()!r})"


def _star(index: Sequence[int], k: int) -> int:
    """The occurrence given for the k-th [*]."""
    n = index[k]
    if n < 1:
        raise ValueError(f"indexes for [*] are 1-based, not {n}")
    return n


def _nth(items: list[list[_T] | None], n: int) -> list[_T]:
    """Item ``n`` (1-based) of ``items``, padding with empty parts up to it."""
    missing = n - len(items)
    if missing > 0:
        items.extend([None] * missing)
    item = items[n - 1]
    if item is None:
        item = items[n - 1] = []
    return item


def _put(repetition: _Repetition, component: int, subcomponent: int, value: str) -> None:
    """Write an already escaped value into a repetition, at a component (0: the whole repetition)."""
    if component == 0:
        repetition[:] = [[value]]
        return
    comp = _nth(repetition, component)
    if subcomponent == 0:
        comp[:] = [value]
        return
    missing = subcomponent - len(comp)
    if missing > 0:
        comp.extend([""] * missing)
    comp[subcomponent - 1] = value


def _text(rep: _Repetition | None, component: int, subcomponent: int, ss: str) -> str:
    """The (escaped) text at ``.component[.subcomponent]`` of a repetition, as a selection compares it."""
    if rep is None or component > len(rep):
        return ""
    comp = rep[component - 1]
    if comp is None:
        return ""
    if subcomponent == 0:
        return ss.join(comp).rstrip(ss)
    return comp[subcomponent - 1] if subcomponent <= len(comp) else ""


def _render(field: _Field, rs: str, cs: str, ss: str) -> str:
    if len(field) == 1:
        rep = field[0]
        if rep is not None and len(rep) == 1:
            comp = rep[0]
            if comp is not None and len(comp) == 1:  # the usual field: one plain value
                return comp[0]
    reps = []
    for rep in field:
        if rep is None:
            reps.append("")
            continue
        comps = ["" if c is None else c[0] if len(c) == 1 else ss.join(c).rstrip(ss) for c in rep]
        reps.append(cs.join(comps).rstrip(cs))
    return rs.join(reps).rstrip(rs)

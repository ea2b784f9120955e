"""Code tables: the platform's value sets, and maps from each source's codes to them.

Every hospital codes sex, marital status or patient class its own way (china-hie.md §10: GB/T 2261.1
digits in PID-8 at one, HL7 table 0001 letters at another); the platform speaks the national value
sets. A *value set* lists the codes of one code system (with its OID); a *map* translates codes of a
source system to a target system, with IPF's ``else`` default and an ``unmapped`` policy. One YAML
file per table in ``mappings/code_tables/``, named after its kebab-case id::

    kind: map
    source: {system: local}                  # an OID, a URI or "local"; or {value_set: <id>}
    target: {value_set: gb-t-2261-1-sex}     # or {system: <OID>}
    case_sensitive: false                    # default true
    map: {"1": "1", "2": "2", M: "1", F: "2"}   # many keys may share a target code
    else: "9"                                # optional: any other code
    unmapped: error                          # without else: error (default) | warn | pass

Codes are read as the text written: ``01`` stays ``"01"`` and ``no`` stays ``"no"`` (YAML 1.1 would
make them 1 and False), so quoting is optional. ``~`` as a target code (or ``else``) means "no value":
the target field stays empty. Code tables do not read environment variables (``${X}`` is reported).

Everything is checked when the folder is loaded (``hie check``, start-up) and reported with file
and line; at run time ``CodeTable.lookup`` is one dict lookup returning a prepared ``CodeOutcome``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.errors import ConfigProblem
from engine.mapping.errors import DefinitionError, ValueRejected
from engine.yamlloc import Located, load_yaml

__all__ = ["UNMAPPED_POLICIES", "CodeOutcome", "CodeTable", "CodeTables"]

UNMAPPED_POLICIES = ("error", "warn", "pass")

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# An ISO OID (ITU-T X.660: first arc 0-2, no leading zeros), a URI with a scheme, or "local".
_SYSTEM = re.compile(r"^(?:local|[0-2](?:\.(?:0|[1-9][0-9]*))+|[A-Za-z][A-Za-z0-9+.-]*:\S+)$")
_COMMON = ("id", "kind", "name", "description")
_FIELDS = {
    "value_set": (*_COMMON, "system", "codes", "case_sensitive", "unmapped"),
    "map": (*_COMMON, "source", "target", "case_sensitive", "map", "else", "unmapped"),
}
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


@dataclass(frozen=True, slots=True)
class CodeOutcome:
    """The result of one lookup: the target code (None: leave the field empty), its display name
    and code system, and a warning for the message when the table passed an unmapped code."""

    code: str | None
    display: str | None
    system: str | None
    warning: str | None = None


class CodeTable:
    """One loaded value set or map. Build them with ``CodeTables.load``."""

    __slots__ = (
        "_else",
        "_fold",
        "_index",
        "_pass_system",
        "_rejection",
        "case_sensitive",
        "description",
        "displays",
        "entries",
        "file",
        "id",
        "kind",
        "source_system",
        "target_codes",
        "target_system",
        "unmapped",
    )

    def __init__(
        self,
        *,
        id: str,
        kind: str,
        source_system: str | None,
        target_system: str | None,
        entries: Mapping[str, str | None],
        displays: Mapping[str, str | None],
        target_codes: frozenset[str] | None,
        case_sensitive: bool = True,
        unmapped: str = "error",
        else_code: tuple[str | None] | None = None,
        description: str | None = None,
        file: str = "",
    ) -> None:
        self.id = id
        self.kind = kind  # "value_set" or "map"
        self.source_system = source_system  # None for a value set: it has no source
        self.target_system = target_system  # a value set's own system
        self.unmapped = unmapped
        self.case_sensitive = case_sensitive
        self.description = description
        self.file = file
        self.entries: Mapping[str, str | None] = MappingProxyType(dict(entries))  # source -> target
        self.displays: Mapping[str, str | None] = MappingProxyType(dict(displays))  # target -> name
        self.target_codes = target_codes  # None when the target is a bare system without a value set
        self._fold = not case_sensitive
        index: dict[str, CodeOutcome] = {}
        for source, target in entries.items():
            outcome = self._outcome(target)
            index[source] = outcome
            if self._fold:
                index.setdefault(source.casefold(), outcome)
        self._index = index
        self._else = None if else_code is None else self._outcome(else_code[0])
        # An unmapped code passed through belongs to the source system, when that is a real one.
        self._pass_system = source_system if source_system != "local" else None
        if kind == "value_set":
            self._rejection = f"is not in value set {id} ({target_system})"
        else:
            self._rejection = f"is not mapped by table {id} (source {source_system} → {target_system})"

    def _outcome(self, code: str | None) -> CodeOutcome:
        if code is None:
            return CodeOutcome(None, None, None)
        return CodeOutcome(code, self.displays.get(code), self.target_system)

    def lookup(self, value: str) -> CodeOutcome:
        """Translate (a map) or validate (a value set) one code.

        Surrounding spaces never matter (fixed-width ``CHAR`` columns of front-end processor views
        pad codes); with ``case_sensitive: false`` neither does case. An unknown code takes ``else``,
        or follows ``unmapped``: ``error`` raises ``ValueRejected`` with HL7 error code 103 (table
        value not found, HL7 v2.5 table 0357), ``warn`` and ``pass`` return the value unchanged.
        """
        hit = self._index.get(value)
        if hit is not None:
            return hit
        key = value.strip()
        if self._fold:
            key = key.casefold()
        hit = self._index.get(key)
        if hit is not None:
            return hit
        if self._else is not None:
            return self._else
        if self.unmapped == "error":
            raise ValueRejected(f"code {value!r} {self._rejection}", value, hl7_code="103")
        if self.unmapped == "pass":
            return CodeOutcome(value, None, self._pass_system)
        warning = f"code {value!r} {self._rejection}; passed on as is"
        return CodeOutcome(value, None, self._pass_system, warning)

    def display(self, code: str) -> str | None:
        """The display name of a target code, from the target value set (None when unknown)."""
        return self.displays.get(code)

    def __repr__(self) -> str:
        return f"<CodeTable {self.id} {self.kind} {self.source_system} -> {self.target_system}>"


class CodeTables:
    """Every table of a ``code_tables`` folder, by id."""

    def __init__(self, tables: Mapping[str, CodeTable] | None = None) -> None:
        self._tables = dict(tables or {})
        self.ids: list[str] = sorted(self._tables)

    @classmethod
    def load(cls, folder: Path) -> tuple[CodeTables, list[ConfigProblem]]:
        """Load every ``*.yaml``/``*.yml`` file of ``folder``; every problem of every file, with its line.

        A file with problems is left out (a mapping using it then reports an unknown table). A
        missing folder is no problem: there are simply no tables.
        """
        problems: list[ConfigProblem] = []
        if not folder.is_dir():
            return cls(), problems
        docs: dict[str, Located] = {}
        broken: set[str] = set()
        for file in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            table_id, name = file.stem, str(file)
            loc = load_yaml(file, {}, strings=True)
            if table_id in docs or table_id in broken:
                problems.append(ConfigProblem(name, None, "", f"a second file for code table {table_id!r}"))
                continue
            if not _ID.match(table_id):
                message = f"file names are kebab-case ids, not {table_id!r}"
                loc.problems.append(ConfigProblem(name, None, "", message))
            elif not loc.problems and not isinstance(loc.data, dict):
                loc.problems.append(ConfigProblem(name, 1, "", "a code table is a YAML mapping (kind: ...)"))
            if loc.problems:
                problems += loc.problems
                broken.add(table_id)
            else:
                docs[table_id] = loc
        tables: dict[str, CodeTable] = {}
        # Value sets first: maps check their codes against them.
        order = sorted(docs, key=lambda t: (docs[t].data.get("kind") != "value_set", t))
        for table_id in order:
            loc = docs[table_id]
            errors = _Found()
            table = _build(table_id, loc, tables, broken, errors)
            problems += [loc.problem(e.where, e.message) for e in errors]
            if table is None or errors:
                broken.add(table_id)
            else:
                tables[table_id] = table
        return cls(tables), problems

    def get(self, table_id: str) -> CodeTable:
        """The table with this id; KeyError when there is none (or it failed to load)."""
        return self._tables[table_id]

    def __contains__(self, table_id: object) -> bool:
        return table_id in self._tables

    def __iter__(self) -> Iterator[CodeTable]:
        return iter(self._tables[t] for t in self.ids)

    def __len__(self) -> int:
        return len(self._tables)


# -- loading ---------------------------------------------------------------------------------------


class _Found(list[DefinitionError]):
    """The problems of one file: all of them are reported, not only the first."""

    def add(self, message: str, *where: str | int) -> None:
        self.append(DefinitionError(message, where))


def _build(
    table_id: str, loc: Located, tables: Mapping[str, CodeTable], broken: set[str], errors: _Found
) -> CodeTable | None:
    data: dict[str, Any] = loc.data
    kind = data.get("kind")
    if kind not in _FIELDS:
        errors.add(f"kind must be value_set or map, not {kind!r}", "kind")
        return None
    for key in data:
        if key not in _FIELDS[kind]:
            errors.add(f"unknown field; a {kind} has {', '.join(_FIELDS[kind])}", key)
    declared = data.get("id")
    if declared is not None and declared != table_id:
        errors.add(f"id {declared!r} differs from the file name {table_id!r}", "id")
    description = _text(data, "description", errors) or _text(data, "name", errors)
    case_sensitive = _bool(data, "case_sensitive", True, errors)
    unmapped = data.get("unmapped", "error")
    if unmapped not in UNMAPPED_POLICIES:
        errors.add(f"unmapped must be error, warn or pass, not {unmapped!r}", "unmapped")
        unmapped = "error"
    common: dict[str, Any] = dict(
        id=table_id,
        kind=kind,
        case_sensitive=case_sensitive,
        unmapped=unmapped,
        description=description,
        file=loc.file,
    )
    if kind == "value_set":
        system = _system(data.get("system"), ("system",), errors)
        codes = _codes(data, "codes", not case_sensitive, errors)
        if not data.get("codes"):
            errors.add("a value set lists its codes: codes: {code: display name}", "codes")
        if any(display is not None and not isinstance(display, str) for display in codes.values()):
            return None
        return CodeTable(
            source_system=None,
            target_system=system,
            entries={c: c for c in codes},
            displays=codes,
            target_codes=frozenset(codes),
            **common,
        )
    source = _side(data, "source", tables, broken, errors)
    target = _side(data, "target", tables, broken, errors)
    entries = _codes(data, "map", not case_sensitive, errors)
    has_else, else_code = "else" in data, data.get("else")
    if not data.get("map") and not has_else:
        errors.add("the map is empty: map: {source code: target code}", "map")
    if has_else and "unmapped" in data:
        errors.add("else already maps every other code: unmapped cannot apply", "unmapped")
    if else_code is not None and not isinstance(else_code, str):
        errors.add("else is one code", "else")
    if source is not None and source[1] is not None:
        _check_sources(entries, source[1], not case_sensitive, errors)
    if target is not None and target[1] is not None:
        for code, to in entries.items():
            _check_target(to, target[1], ("map", code), errors)
        _check_target(else_code, target[1], ("else",), errors)
    if source is None or target is None or errors:
        return None
    value_set = target[1]
    return CodeTable(
        source_system=source[0],
        target_system=target[0],
        entries=entries,
        displays=value_set.displays if value_set is not None else {},
        target_codes=value_set.target_codes if value_set is not None else None,
        else_code=(else_code,) if has_else else None,
        **common,
    )


def _text(data: Mapping[str, Any], key: str, errors: _Found) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        errors.add(f"{key} is text", key)
        return None
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool, errors: _Found) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.lower() in _BOOLS:
        return _BOOLS[value.lower()]
    errors.add(f"{key} is true or false, not {value!r}", key)
    return default


def _system(value: Any, where: tuple[str, ...], errors: _Found) -> str | None:
    if not isinstance(value, str) or not _SYSTEM.match(value):
        shown = "missing" if value is None else repr(value)
        errors.add(f"system is an OID (2.16.156...), a URI or 'local', not {shown}", *where)
        return None
    return value


def _codes(data: Mapping[str, Any], key: str, fold: bool, errors: _Found) -> dict[str, Any]:
    """``codes:`` or ``map:``, as written (the YAML loader keeps every key as its text)."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(f"{key} is a mapping of code: value lines", key)
        return {}
    out: dict[str, Any] = {}
    folded: dict[str, str] = {}
    for code, item in value.items():
        if code[:1] in ("[", "{"):  # a flow sequence or mapping written as a key
            errors.add("a key is one code: for many codes to one, write one line per code", key, code)
        elif not code or code != code.strip():
            errors.add(f"code {code!r} is empty or has spaces around it", key, code)
        elif isinstance(item, list | dict):
            errors.add(f"the value of {code!r} is one text, not a list or mapping", key, code)
        elif fold and folded.setdefault(code.casefold(), code) != code:  # YAML caught exact duplicates
            first = folded[code.casefold()]
            errors.add(f"{first!r} and {code!r} are one code when case_sensitive is false", key, code)
        else:
            out[code] = item
    return out


def _check_sources(entries: Mapping[str, Any], value_set: CodeTable, fold: bool, errors: _Found) -> None:
    """With ``source: {value_set: ...}`` every key must be one of its codes (a typo would never match)."""
    known = {c.casefold() for c in value_set.displays} if fold else value_set.displays
    for code in entries:
        if (code.casefold() if fold else code) not in known:
            errors.add(f"code {code!r} is not in the source value set {_named(value_set)}", "map", code)


def _check_target(code: Any, value_set: CodeTable, where: tuple[str, ...], errors: _Found) -> None:
    if not isinstance(code, str) or code in value_set.displays:
        return
    near = [c for c in value_set.displays if c.casefold() == code.strip().casefold()]
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    errors.add(f"{code!r} is not a code of the target value set {_named(value_set)}{hint}", *where)


def _named(value_set: CodeTable) -> str:
    return f"{value_set.id} ({value_set.target_system})"


def _side(
    data: Mapping[str, Any], key: str, tables: Mapping[str, CodeTable], broken: set[str], errors: _Found
) -> tuple[str | None, CodeTable | None] | None:
    """``source:`` or ``target:`` -> (its system, its value set if any); None when it is wrong."""
    side = data.get(key)
    if not isinstance(side, dict) or not ({"system", "value_set"} & set(side)):
        errors.add(f"{key} is {{system: <OID>}} or {{value_set: <id>}}", key)
        return None
    for field in side:
        if field not in ("system", "value_set", "name"):
            errors.add(f"unknown field; {key} has system, value_set, name", key, field)
    value_set: CodeTable | None = None
    if "value_set" in side:
        vs_id = side["value_set"]
        found = tables.get(vs_id) if isinstance(vs_id, str) else None
        if found is not None and found.kind == "value_set":
            value_set = found
        elif found is not None:
            errors.add(f"{vs_id!r} is a map, not a value set", key, "value_set")
        elif vs_id in broken:
            errors.add(f"value set {vs_id!r} has problems of its own", key, "value_set")
        else:
            known = ", ".join(sorted(t for t, table in tables.items() if table.kind == "value_set"))
            errors.add(f"value set {vs_id!r} does not exist; known: {known or 'none'}", key, "value_set")
        if value_set is None:
            return None
    if "system" not in side and value_set is not None:
        return value_set.target_system, value_set
    system = _system(side["system"], (key, "system"), errors)
    if system is None:
        return None
    if value_set is not None and system != value_set.target_system:
        errors.add(f"system {system} differs from the system of value set {_named(value_set)}", key, "system")
        return None
    return system, value_set

"""Dotted-key paths into JSON documents and into the platform's pydantic models, read in place.

Why not JSONPath or JMESPath: a mapping needs a handful of steps, the same on a parsed JSON dict and
on a pydantic model (read by attribute, never converted: a model dump per message would cost more
than the whole mapping), with the conventions of the HL7 paths so that one mapping language reads
the same whatever the input. The syntax:

* ``patient.birth_date``: keys, separated by dots; dashes and other characters are allowed in a key
  (``x-hospital-id``), and a key with dots or spaces is quoted: ``extensions."org.example.mrn"``;
* ``patient.identifiers[1].value``: a position, **1-based** like the HL7 paths (``PID.3[2]``):
  ``[1]`` is the first item, ``[0]`` is an error;
* ``patient.identifiers[*].value``: every item; such a path *iterates* (``each:``);
* ``patient.identifiers[type=NI].value``: the first item whose key equals the text; the key may
  be dotted (``[type.code=NI]``) and the text quoted (``[name="a]b"]``). Numbers, true/false and
  enumerations compare by their text (``[active=true]``, ``[seq=2]``);
* ``.value``, ``.``: relative to the scope of an ``each:`` (the item being iterated); a path that
  does not start with a dot always reads from the document root, even inside an ``each:``.

A list is never entered implicitly: ``patient.identifiers.value`` finds nothing (the model input
reports it at load time); a single value where a list was expected counts as a list of one, since
senders collapse one-item arrays. A key on a text, number or list finds nothing. Missing keys,
``null`` and ``""`` are absent: ``first`` gives None, ``values`` skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from engine.mapping.errors import DefinitionError

__all__ = ["JsonPath", "Scope", "compile_path"]


class Scope:
    """One item of an ``each:``: the item (for relative paths) and the document root (for the others)."""

    __slots__ = ("node", "root")

    def __init__(self, node: Any, root: Any) -> None:
        self.node = node
        self.root = root

    def __repr__(self) -> str:
        return f"Scope({self.node!r})"


_Reader = Callable[[Any, str], Any]
_READERS: dict[type, _Reader] = {}  # per class of node: how to read a key from it


def _read_mapping(node: Any, key: str) -> Any:
    return node.get(key)


def _read_nothing(node: Any, key: str) -> Any:
    return None  # text, numbers, lists: no keys


def _read_attribute(node: Any, key: str) -> Any:
    # a JSON key like FHIR's "_birthDate" is never a private Python attribute
    return None if key.startswith("_") else getattr(node, key, None)


def _reader(cls: type) -> _Reader:
    if issubclass(cls, Mapping):
        return _read_mapping
    if issubclass(cls, (str, bytes, int, float, list, tuple)):
        return _read_nothing
    if issubclass(cls, BaseModel):
        # Fields by name and by alias (the JSON name), as the load-time type check accepts them;
        # methods and private attributes are not data.
        names = {name: name for name in cls.model_fields}
        names.update({f.alias: name for name, f in cls.model_fields.items() if f.alias})
        names.update({name: name for name in cls.model_computed_fields})

        def read_model(node: Any, key: str) -> Any:
            name = names.get(key)
            return None if name is None else getattr(node, name, None)

        return read_model
    return _read_attribute


def _key(key: str) -> Callable[[Any], Any]:
    def get(node: Any) -> Any:
        cls = node.__class__
        if cls is dict:
            return node.get(key)
        read = _READERS.get(cls)
        if read is None:
            read = _READERS[cls] = _reader(cls)
        return read(node, key)

    return get


def _index(position: int) -> Callable[[Any], Any]:
    i = position - 1

    def get(node: Any) -> Any:
        if node.__class__ is list or isinstance(node, (list, tuple)):
            return node[i] if i < len(node) else None
        return node if i == 0 else None  # a single value is a list of one

    return get


def _every(node: Any) -> list[Any]:
    if node.__class__ is list or isinstance(node, (list, tuple)):
        return [item for item in node if item is not None]
    return [] if node is None else [node]


def _same(value: Any, text: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return ("true" if value else "false") == text
    if isinstance(value, str):  # also a str enumeration
        return value == text
    return str(getattr(value, "value", value)) == text  # numbers, other enumerations


def _select(keys: list[str], text: str) -> Callable[[Any], Any]:
    getters = [_key(k) for k in keys]

    def get(node: Any) -> Any:
        items = node if node.__class__ is list or isinstance(node, (list, tuple)) else (node,)
        for item in items:
            value = item
            for g in getters:
                if value is None:
                    break
                value = g(value)
            if _same(value, text):
                return item
        return None

    return get


_Step = tuple[Callable[[Any], Any], bool]  # (function, does it yield a list of nodes)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value)


class JsonPath:
    """One compiled dotted path; see the module docstring for the syntax."""

    __slots__ = ("_relative", "_singles", "_steps", "iterates", "text")

    def __init__(self, text: str, relative: bool, steps: list[_Step]) -> None:
        self.text = text
        self._relative = relative
        self._steps = tuple(steps)
        self.iterates = any(multi for _, multi in steps)
        self._singles = tuple(fn for fn, _ in steps) if not self.iterates else ()

    def _start(self, scope: Any) -> Any:
        if scope.__class__ is Scope:
            return scope.node if self._relative else scope.root
        return scope

    def _matches(self, scope: Any) -> list[Any]:
        """Every node the path reaches (None dropped, "" kept), in document order."""
        start = self._start(scope)
        if start is None:
            return []
        nodes = [start]
        for fn, multi in self._steps:
            found: list[Any] = []
            if multi:
                for node in nodes:
                    found.extend(fn(node))
            else:
                for node in nodes:
                    value = fn(node)
                    if value is not None:
                        found.append(value)
            if not found:
                return found
            nodes = found
        return [n for n in nodes if n is not None]

    def first(self, scope: Any) -> Any:
        if self.iterates:
            matches = self._matches(scope)
            node = matches[0] if matches else None
        else:
            node = self._start(scope)
            for fn in self._singles:
                if node is None:
                    return None
                node = fn(node)
        return None if _empty(node) else node

    def values(self, scope: Any) -> list[Any]:
        if not self.iterates:
            value = self.first(scope)
            return [] if value is None else [value]
        return [v for v in self._matches(scope) if not _empty(v)]

    def count(self, scope: Any) -> int:
        return len(self.values(scope))

    def scopes(self, scope: Any) -> list[Any]:
        root = scope.root if scope.__class__ is Scope else scope
        return [Scope(node, root) for node in self._matches(scope) if not _empty(node)]

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"


_STOP = '.[]="'


class _Parser:
    """A hand-written scanner, so that every error names its column (1-based)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def fail(self, reason: str, at: int | None = None) -> DefinitionError:
        column = (self.i if at is None else at) + 1
        return DefinitionError(f"bad path {self.text!r} at column {column}: {reason}")

    def name(self) -> str:
        text, i = self.text, self.i
        if i < len(text) and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise self.fail('a quoted key needs its closing "')
            if end == i + 1:
                raise self.fail('an empty quoted key ""')
            self.i = end + 1
            return text[i + 1 : end]
        j = i
        while j < len(text) and text[j] not in _STOP and not text[j].isspace():
            j += 1
        if j == i:
            found = repr(text[i]) if i < len(text) else "the end"
            raise self.fail(f'expected a key, found {found} (quote a key with spaces or dots: "a.b")')
        self.i = j
        return text[i:j]

    def selector(self) -> _Step:
        """After '[': ``*``, a 1-based position, or ``key=text``; consumes the ']'."""
        text = self.text
        start = self.i
        close = text.find("]", start)
        if close < 0:
            raise self.fail("[ needs its closing ]", at=start - 1)
        inner = text[start:close]
        if inner == "*":
            self.i = close + 1
            return _every, True
        if inner.isdigit():
            position = int(inner)
            if position == 0:
                raise self.fail("positions are 1-based, as in the HL7 paths: the first item is [1]")
            self.i = close + 1
            return _index(position), False
        if inner.lstrip("-").isdigit():
            raise self.fail("positions count from 1, from the start: no negative positions")
        keys = [self.name()]
        while self.i < len(text) and text[self.i] == ".":
            self.i += 1
            keys.append(self.name())
        if self.i >= len(text) or text[self.i] != "=":
            raise self.fail("expected *, a position (1, 2...) or key=text inside [...]")
        self.i += 1
        if self.i < len(text) and text[self.i] == '"':
            end = text.find('"', self.i + 1)
            if end < 0:
                raise self.fail('a quoted text needs its closing "')
            value = text[self.i + 1 : end]
            self.i = end + 1
        else:
            end = text.find("]", self.i)
            if end < 0:
                raise self.fail("[ needs its closing ]", at=start - 1)
            value = text[self.i : end]
            if not value:
                raise self.fail("key= needs a text to compare with")
            self.i = end
        if self.i >= len(text) or text[self.i] != "]":
            raise self.fail("expected ] after the text")
        self.i += 1
        return _select(keys, value), False

    def parse(self) -> tuple[bool, list[_Step]]:
        text = self.text
        if not text:
            raise self.fail("an empty path")
        relative = text.startswith(".")
        self.i = 1 if relative else 0
        steps: list[_Step] = []
        if text == ".":
            return True, steps
        need_name = not text.startswith("[", self.i)
        while self.i < len(text) or need_name:
            if need_name:
                steps.append((_key(self.name()), False))
                need_name = False
                continue
            c = text[self.i]
            if c == ".":
                self.i += 1
                need_name = True
            elif c == "[":
                self.i += 1
                steps.append(self.selector())
            else:
                raise self.fail(f"unexpected {c!r}: expected '.', '[' or the end of the path")
        return relative, steps


def compile_path(text: str) -> JsonPath:
    """Compile a dotted path once; ``DefinitionError`` naming the column of a syntax error."""
    relative, steps = _Parser(text).parse()
    return JsonPath(text, relative, steps)

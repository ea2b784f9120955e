"""What a mapping reads: HL7 v2, XML, JSON or a platform model, behind one small interface.

The compiler asks an input for a compiled path (``compile``), the type of value a path yields
(``type_of``, for load-time checks), and the scope that ``each:`` opens for nested rules
(``scope_of``). At run time ``root`` turns the message content into the top scope. ``within`` for
a group of rules is a prefix joined to their relative paths when the mapping loads (``join``,
``Within``): the compiled paths are the same as if each rule spelt out the whole path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from engine.mapping import hl7path, jsonpath, xmlpath
from engine.mapping.errors import DefinitionError, ValueRejected
from engine.mapping.hl7reader import Hl7Reader
from engine.mapping.types import describe, list_item, model_field_type, unwrap

__all__ = ["Input", "PathLike", "Within", "input_for"]


class PathLike(Protocol):
    text: str
    iterates: bool

    def first(self, scope: Any) -> Any: ...
    def values(self, scope: Any) -> list[Any]: ...
    def count(self, scope: Any) -> int: ...
    def scopes(self, scope: Any) -> list[Any]: ...


class Input(Protocol):
    kind: str
    top: Any  # the scope description of the document root

    def compile(self, text: str, scope: Any) -> PathLike: ...
    def type_of(self, text: str, scope: Any) -> Any: ...
    def scope_of(self, path: PathLike, text: str, scope: Any) -> Any: ...
    def root(self, data: Any) -> Any: ...
    def location(self, text: str) -> str: ...
    def join(self, prefix: str, text: str) -> str: ...


_HL7_LOC = re.compile(
    r"^/?(?P<seg>[A-Z][A-Z0-9]{2})(?:\[(?P<occ>\d+)\])?(?:\[[^\]]*\])?\.(?P<field>\d+)"
    r"(?:\[(?P<rep>\d+)\])?(?:\[[^\]]*\])?(?:\.(?P<comp>\d+)(?:\.(?P<sub>\d+))?)?$"
)


class Hl7Input:
    """HL7 v2 text, read lazily (``hl7reader``); every value is text."""

    kind = "hl7v2"
    top = hl7path.ScopeKind.MESSAGE

    def compile(self, text: str, scope: Any) -> PathLike:
        return hl7path.compile_path(text, scope)

    def type_of(self, text: str, scope: Any) -> Any:
        return str

    def scope_of(self, path: PathLike, text: str, scope: Any) -> Any:
        kind = getattr(path, "scope_kind", None)
        if kind is None or kind is hl7path.ScopeKind.MESSAGE:
            raise DefinitionError(
                f"each: {text} must end at a segment (OBR[*]) or a field repetition (PID.3[*])"
            )
        # the opening path itself: relative paths inside then know their segment and field, so
        # they select by component name and are checked against the v2.5 field count
        return path

    def root(self, data: Any) -> Any:
        if isinstance(data, Hl7Reader):
            return data
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        return Hl7Reader(str(data))

    def join(self, prefix: str, text: str) -> str:
        raise DefinitionError(
            "within: is for XML and JSON input; HL7 v2 paths are short already "
            "(use each: for a segment or a repetition)"
        )

    def location(self, text: str) -> str:
        """ERR-2 (segment^sequence^field^repetition^component^subcomponent) of an absolute path."""
        m = _HL7_LOC.match(text)
        if m is None:
            return ""
        parts = [m["seg"], m["occ"] or "1", m["field"]]
        if m["comp"]:
            parts += [m["rep"] or "1", m["comp"]]
            if m["sub"]:
                parts.append(m["sub"])
        return "^".join(parts)


class XmlInput:
    """XML (HL7 V3, CDA), parsed safely; XPath with the mapping's namespace prefixes."""

    kind = "xml"
    top = None

    def __init__(self, namespaces: Mapping[str, str]) -> None:
        self.namespaces = dict(namespaces)

    def compile(self, text: str, scope: Any) -> PathLike:
        return xmlpath.compile_path(text, self.namespaces)

    def type_of(self, text: str, scope: Any) -> Any:
        return str

    def scope_of(self, path: PathLike, text: str, scope: Any) -> Any:
        return None

    def root(self, data: Any) -> Any:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, bytes):
            return xmlpath.parse_xml(data)
        return data

    def location(self, text: str) -> str:
        return ""

    def join(self, prefix: str, text: str) -> str:
        # an absolute path (/..., //...) keeps reading from the document root
        if text.startswith("/"):
            return text
        if "|" in text:
            raise DefinitionError(f"{text}: a union (|) inside within: must be written in full, from /")
        return f"{prefix.rstrip('/')}/{text}"


class JsonInput:
    """JSON text or a dict; or a platform model (``model:AdtEvent``), read by attribute without copying."""

    def __init__(self, model: type[BaseModel] | None = None) -> None:
        self.model = model
        self.kind = f"model:{model.__name__}" if model is not None else "json"
        self.top: Any = model

    def compile(self, text: str, scope: Any) -> PathLike:
        path: PathLike = jsonpath.compile_path(text)
        if self.model is not None:
            self.type_of(text, scope)  # an unknown field is a load-time error
        return path

    def type_of(self, text: str, scope: Any) -> Any:
        if self.model is None:
            return object
        return _walk(scope if text.startswith(".") else self.model, text)

    def scope_of(self, path: PathLike, text: str, scope: Any) -> Any:
        if self.model is None:
            return None
        t = self.type_of(text, scope)
        return t

    def root(self, data: Any) -> Any:
        if self.model is not None:
            if isinstance(data, self.model):
                return data
            try:
                if isinstance(data, (str, bytes)):
                    return self.model.model_validate_json(data)
                return self.model.model_validate(data)
            except ValidationError as exc:
                raise ValueRejected(f"the input is not a valid {self.model.__name__}: {exc}") from None
        if isinstance(data, (str, bytes)):
            try:
                return json.loads(data)
            except ValueError as exc:
                raise ValueRejected(f"the input is not JSON: {exc}") from None
        return data

    def location(self, text: str) -> str:
        return ""

    def join(self, prefix: str, text: str) -> str:
        # inside each:, ".x" is relative to the item; within: ".contact" keeps it so
        return f"{prefix.rstrip('.')}.{text.removeprefix('.')}"


class Within:
    """An input seen from a ``within:`` path: every relative path is joined to the prefix first."""

    def __init__(self, inner: Input, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix
        self.kind = inner.kind
        self.top = inner.top

    def compile(self, text: str, scope: Any) -> PathLike:
        return self.inner.compile(self.join(self.prefix, text), scope)

    def type_of(self, text: str, scope: Any) -> Any:
        return self.inner.type_of(self.join(self.prefix, text), scope)

    def scope_of(self, path: PathLike, text: str, scope: Any) -> Any:
        return self.inner.scope_of(path, self.join(self.prefix, text), scope)

    def root(self, data: Any) -> Any:
        return self.inner.root(data)

    def location(self, text: str) -> str:
        return self.inner.location(self.join(self.prefix, text)) if text else ""

    def join(self, prefix: str, text: str) -> str:
        return self.inner.join(prefix, text)


_KEY = re.compile(r'"(?P<q>[^"]*)"|(?P<k>[^.\[\]"]+)|\[(?P<i>[^\]]*)\]|(?P<dot>\.)')


def _walk(start: Any, text: str) -> Any:
    """The type at a dotted path of a model (``patient.identifiers[*].value``)."""
    t = start
    walked = ""
    for m in _KEY.finditer(text):
        if m["dot"]:
            continue
        if m["i"] is not None:
            item = list_item(t)
            if item is None:
                raise DefinitionError(
                    f"{walked or 'the input'} is {describe(t)}, not a list: no [{m['i']}] here"
                )
            t = item
            walked += f"[{m['i']}]"
            continue
        name = m["q"] if m["q"] is not None else m["k"]
        model = unwrap(t)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise DefinitionError(f"{walked or 'the input'} is {describe(t)}: it has no field {name!r}")
        try:
            t = model_field_type(model, name)
        except KeyError:
            known = ", ".join(model.model_fields)
            raise DefinitionError(f"{model.__name__} has no field {name!r}; its fields: {known}") from None
        walked = f"{walked}.{name}" if walked else name
    # a list field read without [*] reads its first item's value? No: it is the list itself.
    return t


def input_for(kind: str, namespaces: Mapping[str, str], models: Mapping[str, type[BaseModel]]) -> Input:
    if kind == "hl7v2":
        return Hl7Input()
    if kind == "xml":
        return XmlInput(namespaces)
    if kind == "json":
        return JsonInput()
    if kind.startswith("model:"):
        name = kind.removeprefix("model:")
        if name not in models:
            raise DefinitionError(f"unknown model {name!r}; known: {', '.join(sorted(models))}")
        return JsonInput(models[name])
    raise DefinitionError(f"unknown input {kind!r}: hl7v2, xml, json or model:<Name>")

"""What a mapping writes: a platform model, an HL7 v2 message, a FHIR R4 resource, or plain JSON.

``resolve`` checks a rule's ``to`` path when the mapping is loaded (the field exists, and what type
it takes) and returns a ``Target`` whose closures write at run time. Models, FHIR resources and JSON
are built as nested dicts and validated once at the end (``finish``); HL7 v2 is built segment by
segment with ``Hl7Builder``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from engine.mapping import fhirtarget, hl7path
from engine.mapping.errors import DefinitionError, ValueRejected
from engine.mapping.hl7builder import Hl7Builder, check_target
from engine.mapping.types import describe, list_item, model_field_type, unwrap

__all__ = ["Out", "Output", "Target", "output_for"]


@dataclass(slots=True)
class Out:
    """Where the rules of one scope write: a dict (models, FHIR, JSON) or the HL7 builder."""

    node: Any
    index: tuple[int, ...] = ()
    counters: dict[tuple[str, tuple[int, ...]], int] = field(default_factory=dict)


@dataclass(slots=True)
class Target:
    text: str  # the full path, for messages
    type: Any  # what the leaf takes (the item type for a list target)
    is_list: bool
    set: Callable[[Out, Any], None]
    get: Callable[[Out], Any]
    item: Callable[[Out], tuple[Out, Callable[[], None]]]  # open one list item, and commit it
    parent_type: Any = None  # for nested rules: the scope they resolve in


class Output(Protocol):
    kind: str
    top: Any

    def resolve(self, text: str, scope: Any, parent_text: str) -> Target: ...
    def new(self) -> Out: ...
    def finish(self, out: Out, warnings: list[str]) -> Any: ...
    def render(self, result: Any) -> tuple[str, str]: ...


_DOTTED = re.compile(r'"(?P<q>[^"]*)"|(?P<k>[^.\[\]"]+)|(?P<star>\[\*\])|(?P<dot>\.)|(?P<bad>.)')


def _keys(text: str) -> tuple[list[str], bool]:
    """``patient.identifiers[*]`` -> (['patient', 'identifiers'], True)."""
    keys: list[str] = []
    is_list = False
    for m in _DOTTED.finditer(text.removeprefix(".")):
        if m["dot"]:
            continue
        if m["bad"] is not None:
            raise DefinitionError(
                f"bad output path {text!r}: unexpected {m['bad']!r} (write a.b.c or a.b[*])"
            )
        if is_list:
            raise DefinitionError(f"bad output path {text!r}: [*] ends a path (nested rules write inside it)")
        if m["star"]:
            if not keys:
                raise DefinitionError(f"bad output path {text!r}: [*] needs a field before it")
            is_list = True
            continue
        keys.append(m["q"] if m["q"] is not None else m["k"])
    if not keys:
        raise DefinitionError(f"empty output path {text!r}")
    return keys, is_list


def _dict_target(text: str, keys: list[str], is_list: bool, leaf: Any) -> Target:
    *walk, last = keys

    def container(out: Out) -> dict[str, Any]:
        node: dict[str, Any] = out.node
        for k in walk:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            node = nxt
        return node

    def set_(out: Out, value: Any) -> None:
        container(out)[last] = value

    def append(out: Out, value: Any) -> None:  # a list of plain values: FHIR's given[*], line[*]
        node = container(out)
        lst = node.get(last)
        if lst is None:
            lst = node[last] = []
        lst.append(value)

    def get(out: Out) -> Any:
        node: Any = out.node
        for k in keys:
            if not isinstance(node, dict):
                return None
            node = node.get(k)
        return node

    def item(out: Out) -> tuple[Out, Callable[[], None]]:
        child: dict[str, Any] = {}

        def commit() -> None:
            if child:
                parent = container(out)
                lst = parent.get(last)
                if lst is None:
                    lst = parent[last] = []
                lst.append(child)

        return Out(child), commit

    return Target(text, leaf, is_list, append if is_list else set_, get, item)


class ModelOutput:
    """A pydantic model of the platform (``model:AdtEvent``); plain JSON when ``model`` is None."""

    def __init__(self, model: type[BaseModel] | None) -> None:
        self.model = model
        self.kind = f"model:{model.__name__}" if model is not None else "json"
        self.top: Any = model

    def resolve(self, text: str, scope: Any, parent_text: str) -> Target:
        keys, is_list = _keys(text)
        full = f"{parent_text}.{text.removeprefix('.')}" if parent_text else text
        leaf: Any = object
        if self.model is not None:
            t: Any = scope
            for i, k in enumerate(keys):
                model = unwrap(t)
                if not (isinstance(model, type) and issubclass(model, BaseModel)):
                    where = ".".join(keys[:i]) or "the output"
                    raise DefinitionError(f"{where} is {describe(t)}: it has no field {k!r}")
                try:
                    t = model_field_type(model, k)
                except KeyError:
                    raise DefinitionError(_no_field(model, k)) from None
            if is_list:
                item = list_item(t)
                if item is None:
                    raise DefinitionError(f"{full} is {describe(t)}, not a list: drop the [*]")
                t = item
            elif list_item(t) is not None:
                raise DefinitionError(f"{full} is a list: write {full}[*] with nested rules for its items")
            leaf = t
        target = _dict_target(full, keys, is_list, leaf)
        target.parent_type = leaf
        return target

    def new(self) -> Out:
        return Out({})

    def finish(self, out: Out, warnings: list[str]) -> Any:
        data: dict[str, Any] = out.node
        if self.model is None:
            return data
        if warnings and "warnings" in self.model.model_fields:
            data["warnings"] = [*data.get("warnings", ()), *warnings]
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            raise ValueRejected(_validation_text(self.model.__name__, exc)) from None

    def render(self, result: Any) -> tuple[str, str]:
        if isinstance(result, BaseModel):
            return result.model_dump_json(exclude_none=True, exclude_defaults=True), "json"
        return json.dumps(result, ensure_ascii=False, default=str), "json"


class FhirOutput:
    """A FHIR R4 resource (``fhir:Patient``) built with fhir.resources."""

    def __init__(self, resource: str) -> None:
        fhirtarget.resource_class(resource)  # an unknown resource is a load-time error
        self.resource = resource
        self.kind = f"fhir:{resource}"
        self.top: Any = None

    def resolve(self, text: str, scope: Any, parent_text: str) -> Target:
        keys, is_list = _keys(text)
        full = f"{parent_text}.{text.removeprefix('.')}" if parent_text else text
        leaf = fhirtarget.check_target(self.resource, full)
        return _dict_target(full, keys, is_list, leaf)

    def new(self) -> Out:
        return Out({"resourceType": self.resource})

    def finish(self, out: Out, warnings: list[str]) -> Any:
        return fhirtarget.build(self.resource, out.node)

    def render(self, result: Any) -> tuple[str, str]:
        return str(result.model_dump_json(exclude_none=True)), "json"


class Hl7Output:
    """An HL7 v2 message (the platform's v2.5 profile, or a vendor's dialect), built by path."""

    kind = "hl7v2"
    top = hl7path.ScopeKind.MESSAGE

    def __init__(self, segment_order: list[str]) -> None:
        self.segment_order = segment_order

    def resolve(self, text: str, scope: Any, parent_text: str) -> Target:
        if parent_text and not text.startswith("."):
            raise DefinitionError(
                f"inside {parent_text}[*] a target is relative and starts with '.', not {text!r}"
            )
        is_list = text.endswith("[*]")
        full = parent_text + text if parent_text else text
        if is_list:
            hl7path.parse(full[:-3] + "[1]")  # syntax and v2.5 field numbers
            counter_key = full

            def item(out: Out) -> tuple[Out, Callable[[], None]]:
                key = (counter_key, out.index)
                n = out.counters.get(key, 0) + 1
                out.counters[key] = n
                return Out(out.node, (*out.index, n), out.counters), _nothing

            def no_set(out: Out, value: Any) -> None:
                raise AssertionError("a list target is written by its nested rules")

            return Target(full, str, True, no_set, lambda out: None, item, parent_type=None)
        path = check_target(full)  # syntax, v2.5 field numbers, and nothing a builder cannot write

        def set_(out: Out, value: Any) -> None:
            out.node.set(path, value, out.index)

        def get(out: Out) -> Any:
            return None

        def no_item(out: Out) -> tuple[Out, Callable[[], None]]:
            raise AssertionError(f"{full} is not a list")

        return Target(full, str, False, set_, get, no_item)

    def new(self) -> Out:
        return Out(Hl7Builder(segment_order=self.segment_order))

    def finish(self, out: Out, warnings: list[str]) -> Any:
        return out.node.to_text()

    def render(self, result: Any) -> tuple[str, str]:
        return str(result), "hl7v2"


def _nothing() -> None:
    return None


def _no_field(model: type[BaseModel], name: str) -> str:
    import difflib

    near = difflib.get_close_matches(name, list(model.model_fields), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"{model.__name__} has no field {name!r}{hint}; its fields: {', '.join(model.model_fields)}"


def _validation_text(name: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}")
    return f"the result is not a valid {name}: " + "; ".join(parts)


def output_for(kind: str, segment_order: list[str], models: dict[str, type[BaseModel]]) -> Output:
    if kind == "hl7v2":
        return Hl7Output(segment_order)
    if kind == "json":
        return ModelOutput(None)
    if kind.startswith("model:"):
        name = kind.removeprefix("model:")
        if name not in models:
            raise DefinitionError(f"unknown model {name!r}; known: {', '.join(sorted(models))}")
        return ModelOutput(models[name])
    if kind.startswith("fhir:"):
        return FhirOutput(kind.removeprefix("fhir:"))
    raise DefinitionError(f"unknown output {kind!r}: model:<Name>, hl7v2, fhir:<Resource> or json")

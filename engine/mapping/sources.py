"""Where a rule's value comes from, compiled once: input paths, concatenations, transforms, constants.

Each function checks what it can when the mapping loads (path syntax, paths that select several
values where one is needed, functions and their arguments, the type each step takes and gives,
constants against the target's type) and returns closures for the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from engine.mapping import functions
from engine.mapping.codetables import CodeTable
from engine.mapping.errors import DefinitionError
from engine.mapping.inputs import Input, PathLike
from engine.mapping.outputs import Target
from engine.mapping.spec import Literal_, Rule
from engine.mapping.types import accepts, describe, is_coded

__all__ = ["compile_concat", "compile_count", "compile_source", "compile_transforms", "fixed_value"]

Where = tuple[str | int, ...]


def compile_source(inp: Input, rule: Rule, scope: Any) -> tuple[Callable[[Any], Any] | None, Any, str]:
    if rule.value is not None:
        return None, type(rule.value), ""
    if rule.concat is not None:
        return compile_concat(inp, rule, scope)
    if rule.from_ is None:
        return None, object, ""
    texts = [rule.from_] if isinstance(rule.from_, str) else list(rule.from_)
    if not texts:
        raise DefinitionError("from: an empty list", ("from",))
    paths: list[PathLike] = []
    produced: Any = None
    for i, text in enumerate(texts):
        where: Where = ("from",) if isinstance(rule.from_, str) else ("from", i)
        try:
            path = inp.compile(text, scope)
            t = inp.type_of(text, scope)
        except DefinitionError as exc:
            raise DefinitionError(exc.message, where) from None
        if path.iterates:
            raise DefinitionError(f"{text} selects several values: use it in each:, or pick one ([1])", where)
        if produced is not None and t is not produced and not accepts(produced, t):
            raise DefinitionError(
                f"{text} gives {describe(t)}, the paths before it {describe(produced)}", where
            )
        produced = t if produced is None else produced
        paths.append(path)
    if len(paths) == 1:
        return paths[0].first, produced, texts[0]
    firsts = [p.first for p in paths]

    def first_of(scope: Any) -> Any:
        for f in firsts:
            v = f(scope)
            if v is not None and v != "":
                return v
        return None

    return first_of, produced, " or ".join(texts)


def compile_concat(inp: Input, rule: Rule, scope: Any) -> tuple[Callable[[Any], Any], Any, str]:
    assert rule.concat is not None
    pieces: list[Callable[[Any], Any] | str] = []
    for i, item in enumerate(rule.concat):
        if isinstance(item, Literal_):
            pieces.append(item.value)
            continue
        try:
            path = inp.compile(item, scope)
        except DefinitionError as exc:
            raise DefinitionError(exc.message, ("concat", i)) from None
        if not accepts(str, inp.type_of(item, scope)):
            raise DefinitionError(
                f"concat joins text; {item} is {describe(inp.type_of(item, scope))}", ("concat", i)
            )
        pieces.append(path.first)
    sep = rule.separator

    def joined(scope: Any) -> str | None:
        parts = []
        has_value = False
        for p in pieces:
            if isinstance(p, str):
                parts.append(p)
                continue
            v = p(scope)
            if v:
                parts.append(v)
                has_value = True
        return sep.join(x for x in parts if x) if has_value else None

    texts = [x.value if isinstance(x, Literal_) else x for x in rule.concat]
    return joined, str, "concat(" + ", ".join(texts) + ")"


def compile_count(inp: Input, rule: Rule, scope: Any) -> Callable[[Any], int] | None:
    if not isinstance(rule.from_, str):
        raise DefinitionError("one: true checks a single from: path", ("one",))
    return inp.compile(rule.from_, scope).count


def compile_transforms(rule: Rule, produced: Any) -> tuple[list[Callable[[Any], Any]], Any]:
    steps: list[Callable[[Any], Any]] = []
    for i, step in enumerate(rule.steps()):
        where: Where = ("transform", i) if isinstance(rule.transform, list) else ("transform",)
        if isinstance(step, str):
            fname, arg = step, None
        elif isinstance(step, dict) and len(step) == 1:
            ((fname, arg),) = step.items()
        else:
            raise DefinitionError("a transform is a function name or {name: argument}", where)
        try:
            spec = functions.lookup(fname)
            bound = spec.bind(arg)
        except DefinitionError as exc:
            raise DefinitionError(exc.message, where) from None
        if not any(accepts(a, produced) for a in spec.accepts):
            takes = " or ".join(describe(a) for a in spec.accepts)
            raise DefinitionError(f"{fname} takes {takes}, but the value here is {describe(produced)}", where)
        steps.append(bound)
        produced = spec.returns
    return steps, produced


def fixed_value(value: Any, target: Target, table: CodeTable | None, key: str) -> Any:
    """A constant written as is: validated against the target type now, not per message."""
    if is_coded(target.type):
        if isinstance(value, dict):
            try:
                TypeAdapter(target.type).validate_python(value)
            except ValidationError as exc:
                raise DefinitionError(f"not a valid coded value: {exc.errors()[0]['msg']}", (key,)) from None
            return value
        code = str(value)
        system = table.target_system if table is not None else None
        display = table.display(code) if table is not None else None
        if table is not None and table.target_codes is not None and code not in table.target_codes:
            raise DefinitionError(f"{key} {code!r} is not a code of {table.target_system}", (key,))
        return {k: v for k, v in (("code", code), ("system", system), ("display", display)) if v is not None}
    if target.type is object:
        return value
    try:
        return TypeAdapter(target.type).validate_python(value)
    except ValidationError as exc:
        why = exc.errors()[0]["msg"]
        raise DefinitionError(
            f"{key} {value!r} does not fit {target.text} ({describe(target.type)}): {why}", (key,)
        ) from None

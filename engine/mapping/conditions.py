"""``when:`` conditions of mapping rules, compiled once into tests on an input scope.

A condition tests the first value of an input path (``equals``, ``not_equals``, ``in``, ``not_in``,
``present``, ``matches``); ``all``, ``any`` and ``not`` combine conditions. Values compare as text,
so ``equals: "2"`` holds for an HL7 ``2`` and a JSON ``2`` alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from engine.mapping.errors import DefinitionError
from engine.mapping.inputs import PathLike
from engine.mapping.spec import Condition

__all__ = ["Test", "compile_condition"]

Where = tuple[str | int, ...]
Test = Callable[[Any], bool]


def compile_condition(cond: Condition, compile_path: Callable[[str], PathLike], where: Where = ()) -> Test:
    tests: list[Test] = []
    if cond.path is not None:
        try:
            first = compile_path(cond.path).first
        except DefinitionError as exc:
            raise DefinitionError(exc.message, (*where, "path")) from None
        tests.append(_value_test(cond, first, where))
    if cond.all is not None:
        subs = [compile_condition(c, compile_path, (*where, "all", i)) for i, c in enumerate(cond.all)]
        tests.append(lambda s: all(t(s) for t in subs))
    if cond.any is not None:
        alts = [compile_condition(c, compile_path, (*where, "any", i)) for i, c in enumerate(cond.any)]
        tests.append(lambda s: any(t(s) for t in alts))
    if cond.not_ is not None:
        negated = compile_condition(cond.not_, compile_path, (*where, "not"))
        tests.append(lambda s: not negated(s))
    if len(tests) == 1:
        return tests[0]
    return lambda s: all(t(s) for t in tests)


def _value_test(cond: Condition, first: Callable[[Any], Any], where: Where) -> Test:
    checks: list[Callable[[Any], bool]] = []
    if cond.present is not None:
        want = cond.present
        checks.append(lambda v: (v is not None and v != "") == want)
    if cond.equals is not None:
        eq = cond.equals
        checks.append(lambda v: v is not None and str(v) == eq)
    if cond.not_equals is not None:
        ne = cond.not_equals
        checks.append(lambda v: v is None or str(v) != ne)
    if cond.in_ is not None:
        allowed = frozenset(cond.in_)
        checks.append(lambda v: v is not None and str(v) in allowed)
    if cond.not_in is not None:
        banned = frozenset(cond.not_in)
        checks.append(lambda v: v is None or str(v) not in banned)
    if cond.matches is not None:
        try:
            rx = re.compile(cond.matches)
        except re.error as exc:
            raise DefinitionError(f"bad regular expression: {exc}", (*where, "matches")) from None
        checks.append(lambda v: v is not None and rx.fullmatch(str(v)) is not None)

    def test(scope: Any) -> bool:
        v = first(scope)
        return all(c(v) for c in checks)

    return test

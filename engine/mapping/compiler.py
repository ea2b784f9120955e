"""Compile a mapping file into closures, once, so that running it per message is plain function calls.

Everything that can be wrong with a mapping is found here, not on a message: path syntax, unknown
functions and their arguments, unknown code tables, output fields that do not exist, and types that
do not fit (text into a date field, a date into an HL7 field without formatting, a code into a
coded field without a table). Problems are collected with their place in the YAML document
(``DefinitionError.where``) so ``hie check`` lists them all, with file and line.

At run time a value flows: input path -> transforms -> code table -> target. A missing value is
``None`` and skips its rule (unless ``required`` or ``default``); a rejected value raises
``MappingError`` naming the mapping, the rule, the path and the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from engine.mapping import functions, gb11643
from engine.mapping.codetables import CodeTable, CodeTables
from engine.mapping.errors import DefinitionError, MappingError, ValueRejected
from engine.mapping.inputs import Input, PathLike, input_for
from engine.mapping.outputs import Out, Output, Target, output_for
from engine.mapping.spec import Check, Condition, Literal_, MappingSpec, Rule
from engine.mapping.types import accepts, describe, is_coded

__all__ = ["CompiledMapping", "MappingResult", "compile_mapping"]

Where = tuple[str | int, ...]
_HL7_NULL = '""'


@dataclass(slots=True)
class MappingResult:
    output: Any  # a model instance, HL7 v2 text, a FHIR resource or a dict
    warnings: list[str]


@dataclass(slots=True)
class _Run:
    """State of one run: the output being built and what was said about it."""

    warnings: list[str]


_Apply = Callable[[Any, Out, _Run], None]
_Test = Callable[[Any], bool]


@dataclass
class CompiledMapping:
    id: str
    description: str
    input: Input
    output: Output
    rules: list[_Apply]
    checks: list[Callable[[Out, _Run], None]] = field(default_factory=list)

    def run(self, data: Any) -> MappingResult:
        """Map one document. Raises MappingError (with mapping, rule, path and value) on bad input."""
        try:
            scope = self.input.root(data)
        except ValueRejected as exc:
            raise MappingError(
                self.id, "input", self.input.kind, None, exc.message, hl7_code=exc.hl7_code
            ) from None
        out = self.output.new()
        run = _Run([])
        for rule in self.rules:
            rule(scope, out, run)
        for check in self.checks:
            check(out, run)
        try:
            result = self.output.finish(out, run.warnings)
        except ValueRejected as exc:
            raise MappingError(self.id, "output", self.output.kind, None, exc.message) from None
        return MappingResult(result, run.warnings)

    def render(self, result: MappingResult) -> tuple[str, str]:
        """The output as stored content, and its content type (``json`` or ``hl7v2``)."""
        return self.output.render(result.output)


class _Problems:
    def __init__(self) -> None:
        self.items: list[DefinitionError] = []

    def add(self, where: Where, exc: DefinitionError | ValueError) -> None:
        if isinstance(exc, DefinitionError):
            self.items.append(DefinitionError(exc.message, (*where, *exc.where)))
        else:
            self.items.append(DefinitionError(str(exc), where))


def compile_mapping(
    mapping_id: str,
    spec: MappingSpec,
    tables: CodeTables,
    models: Mapping[str, type[BaseModel]],
    line_of: Callable[[Where], int | None] | None = None,
) -> tuple[CompiledMapping | None, list[DefinitionError]]:
    """Compile; returns the mapping (None if anything is wrong) and every problem found."""
    problems = _Problems()
    try:
        inp = input_for(spec.input, spec.namespaces, models)
    except DefinitionError as exc:
        problems.add(("input",), exc)
    try:
        outp = output_for(spec.output, spec.segment_order, dict(models))
    except DefinitionError as exc:
        problems.add(("output",), exc)
    if problems.items:
        return None, problems.items
    c = _Compiler(mapping_id, inp, outp, tables, problems, line_of or (lambda where: None))
    rules = c.rules(spec.rules, ("rules",), inp.top, outp.top, "")
    checks = [c.check(chk, ("checks", i)) for i, chk in enumerate(spec.checks)]
    if problems.items:
        return None, problems.items
    return (
        CompiledMapping(mapping_id, spec.description, inp, outp, rules, [x for x in checks if x is not None]),
        [],
    )


class _Compiler:
    def __init__(
        self,
        mapping_id: str,
        inp: Input,
        outp: Output,
        tables: CodeTables,
        problems: _Problems,
        line_of: Callable[[Where], int | None],
    ) -> None:
        self.id = mapping_id
        self.line_of = line_of
        self.sources: dict[str, str] = {}  # target -> the input path of the rule that writes it first
        self.inp = inp
        self.outp = outp
        self.tables = tables
        self.problems = problems
        self.top_targets: dict[str, Target] = {}

    # -- rules ------------------------------------------------------------------------------------
    def rules(
        self, rules: Sequence[Rule], where: Where, in_scope: Any, out_scope: Any, parent: str
    ) -> list[_Apply]:
        out: list[_Apply] = []
        for i, rule in enumerate(rules):
            try:
                compiled = self.rule(rule, (*where, i), in_scope, out_scope, parent)
            except DefinitionError as exc:
                self.problems.add((*where, i), exc)
                continue
            if compiled is not None:
                out.append(compiled)
        return out

    def rule(self, rule: Rule, where: Where, in_scope: Any, out_scope: Any, parent: str) -> _Apply | None:
        assert rule.to is not None
        try:
            target = self.outp.resolve(rule.to, out_scope, parent)
        except DefinitionError as exc:
            raise DefinitionError(exc.message, ("to",)) from None
        if not parent:
            self.top_targets[target.text] = target
        line = self.line_of(where)
        name = f"{rule.name} (line {line})" if line else rule.name
        if rule.rules is not None:
            return self.group(rule, target, name, in_scope, where)
        when = self.condition(rule.when, in_scope, ("when",)) if rule.when is not None else None
        if target.is_list and (self.outp.kind == "hl7v2" or _is_model(target.type)):
            raise DefinitionError(f"{target.text} is a list: give it nested rules for each item", ("to",))
        return self.value_rule(rule, target, name, when, in_scope)

    def group(self, rule: Rule, target: Target, name: str, in_scope: Any, where: Where) -> _Apply:
        if not target.is_list:
            raise DefinitionError(f"nested rules write the items of a list: write {rule.to}[*]", ("to",))
        each: PathLike | None = None
        item_scope = in_scope
        if rule.each is not None:
            try:
                each = self.inp.compile(rule.each, in_scope)
                item_scope = self.inp.scope_of(each, rule.each, in_scope)
            except DefinitionError as exc:
                raise DefinitionError(exc.message, ("each",)) from None
            if not each.iterates:
                raise DefinitionError(f"each: {rule.each} selects one value; iterate with [*]", ("each",))
        # with each:, the condition is tested on every item (relative paths read the item)
        when = self.condition(rule.when, item_scope, ("when",)) if rule.when is not None else None
        assert rule.rules is not None
        children = self.rules(rule.rules, (*where, "rules"), item_scope, target.parent_type, target.text)
        open_item = target.item
        required = rule.required
        mapping_id = self.id
        each_text = rule.each or ""

        def run_children(scope: Any, out: Out, run: _Run) -> bool:
            child, commit = open_item(out)
            for apply in children:
                apply(scope, child, run)
            commit()
            return True

        if each is None:
            when_text = rule.when.path if rule.when is not None and rule.when.path else ""

            def apply_one(scope: Any, out: Out, run: _Run) -> None:
                if when is None or when(scope):
                    run_children(scope, out, run)
                elif required:
                    raise MappingError(
                        mapping_id,
                        name,
                        when_text or target.text,
                        None,
                        "required, but absent",
                        hl7_code="101",
                        location=self.inp.location(when_text),
                    )

            return apply_one

        scopes = each.scopes

        def apply_each(scope: Any, out: Out, run: _Run) -> None:
            items = scopes(scope)
            written = 0
            for item in items:
                if when is None or when(item):
                    run_children(item, out, run)
                    written += 1
            if required and not written:
                raise MappingError(
                    mapping_id,
                    name,
                    each_text,
                    None,
                    "required, but absent",
                    hl7_code="101",
                    location=self.inp.location(each_text),
                )

        return apply_each

    def value_rule(self, rule: Rule, target: Target, name: str, when: _Test | None, in_scope: Any) -> _Apply:
        get, produced, source_text = self.source(rule, in_scope)
        if source_text:
            self.sources.setdefault(target.text, source_text)
        steps, produced = self.transforms(rule, produced)
        if steps and source_text:
            names = ", ".join(x if isinstance(x, str) else next(iter(x)) for x in rule.steps())
            source_text_shown = f"{source_text} after {names}"
        else:
            source_text_shown = source_text
        table: CodeTable | None = None
        coded_target = is_coded(target.type)
        if rule.table is not None:
            if rule.table not in self.tables:
                known = ", ".join(self.tables.ids) or "none"
                raise DefinitionError(f"unknown code table {rule.table!r}; known: {known}", ("table",))
            table = self.tables.get(rule.table)
            if not (accepts(str, produced) or is_coded(produced)):
                raise DefinitionError(
                    f"table {rule.table} looks up text, but the value here is {describe(produced)}",
                    ("table",),
                )
            produced = target.type if coded_target else str
        elif coded_target and not is_coded(produced) and rule.value is None:
            raise DefinitionError(
                f"{target.text} is a coded value: map it through a code table (table: ...) "
                f"or write its parts ({target.text}.code, {target.text}.system)",
                ("to",),
            )
        if not accepts(target.type, produced) and not (coded_target and rule.value is not None):
            hint = _hint(target.type, produced)
            raise DefinitionError(
                f"{target.text} takes {describe(target.type)}, but {source_text_shown or 'this rule'} gives "
                f"{describe(produced)}{hint}",
                ("to",),
            )
        default = self.default(rule, target, table) if rule.default is not None else None
        constant = self.constant(rule, target, table) if rule.value is not None else None
        mapping_id, required, one, if_unset = self.id, rule.required, rule.one, rule.if_unset
        location = self.inp.location(source_text) if source_text else ""
        set_, get_target = target.set, target.get
        count = self.count_of(rule, in_scope) if one else None
        lookup = _lookup(table, coded_target) if table is not None else None

        def apply(scope: Any, out: Out, run: _Run) -> None:
            if when is not None and not when(scope):
                return
            if if_unset and get_target(out) is not None:
                return
            if constant is not None:
                set_(out, constant)
                return
            if count is not None:
                n = count(scope)
                if n > 1:
                    raise MappingError(
                        mapping_id,
                        name,
                        source_text,
                        None,
                        f"repeats {n} times where one value was expected",
                        hl7_code="102",
                        location=location,
                    )
            value = get(scope) if get is not None else None
            if value == _HL7_NULL:  # HL7's explicit null: the canonical model has no "delete", so no value
                value = None
            if value is not None and value != "":
                try:
                    for step in steps:
                        value = step(value)
                        if value is None:
                            break
                    if value is not None and lookup is not None:
                        value = lookup(value, run)
                except ValueRejected as exc:
                    raise MappingError(
                        mapping_id,
                        name,
                        source_text,
                        exc.value if exc.value is not None else value,
                        exc.message,
                        hl7_code=exc.hl7_code,
                        location=location,
                    ) from None
            if value is None or value == "":
                if default is not None:
                    set_(out, default)
                elif required:
                    raise MappingError(
                        mapping_id,
                        name,
                        source_text,
                        None,
                        "required, but absent",
                        hl7_code="101",
                        location=location,
                    )
                return
            set_(out, value)

        return apply

    # -- sources ------------------------------------------------------------------------------------
    def source(self, rule: Rule, scope: Any) -> tuple[Callable[[Any], Any] | None, Any, str]:
        if rule.value is not None:
            return None, type(rule.value), ""
        if rule.concat is not None:
            return self.concat(rule, scope)
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
                path = self.inp.compile(text, scope)
                t = self.inp.type_of(text, scope)
            except DefinitionError as exc:
                raise DefinitionError(exc.message, where) from None
            if path.iterates:
                raise DefinitionError(
                    f"{text} selects several values: use it in each:, or pick one ([1])", where
                )
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

    def concat(self, rule: Rule, scope: Any) -> tuple[Callable[[Any], Any], Any, str]:
        assert rule.concat is not None
        pieces: list[Callable[[Any], Any] | str] = []
        for i, item in enumerate(rule.concat):
            if isinstance(item, Literal_):
                pieces.append(item.value)
                continue
            try:
                path = self.inp.compile(item, scope)
            except DefinitionError as exc:
                raise DefinitionError(exc.message, ("concat", i)) from None
            if not accepts(str, self.inp.type_of(item, scope)):
                raise DefinitionError(
                    f"concat joins text; {item} is {describe(self.inp.type_of(item, scope))}", ("concat", i)
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

    def count_of(self, rule: Rule, scope: Any) -> Callable[[Any], int] | None:
        if not isinstance(rule.from_, str):
            raise DefinitionError("one: true checks a single from: path", ("one",))
        return self.inp.compile(rule.from_, scope).count

    # -- transforms, defaults, tables -------------------------------------------------------------
    def transforms(self, rule: Rule, produced: Any) -> tuple[list[Callable[[Any], Any]], Any]:
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
                raise DefinitionError(
                    f"{fname} takes {takes}, but the value here is {describe(produced)}", where
                )
            steps.append(bound)
            produced = spec.returns
        return steps, produced

    def default(self, rule: Rule, target: Target, table: CodeTable | None) -> Any:
        return self._fixed(rule.default, target, table, "default")

    def constant(self, rule: Rule, target: Target, table: CodeTable | None) -> Any:
        return self._fixed(rule.value, target, table, "value")

    def _fixed(self, value: Any, target: Target, table: CodeTable | None, key: str) -> Any:
        """A constant written as is: validated against the target type now, not per message."""
        if is_coded(target.type):
            if isinstance(value, dict):
                try:
                    TypeAdapter(target.type).validate_python(value)
                except ValidationError as exc:
                    raise DefinitionError(
                        f"not a valid coded value: {exc.errors()[0]['msg']}", (key,)
                    ) from None
                return value
            code = str(value)
            system = table.target_system if table is not None else None
            display = table.display(code) if table is not None else None
            if table is not None and table.target_codes is not None and code not in table.target_codes:
                raise DefinitionError(f"{key} {code!r} is not a code of {table.target_system}", (key,))
            return {
                k: v for k, v in (("code", code), ("system", system), ("display", display)) if v is not None
            }
        if target.type is object:
            return value
        try:
            return TypeAdapter(target.type).validate_python(value)
        except ValidationError as exc:
            why = exc.errors()[0]["msg"]
            raise DefinitionError(
                f"{key} {value!r} does not fit {target.text} ({describe(target.type)}): {why}", (key,)
            ) from None

    # -- conditions ---------------------------------------------------------------------------------
    def condition(self, cond: Condition, scope: Any, where: Where) -> _Test:
        tests: list[_Test] = []
        if cond.path is not None:
            try:
                first = self.inp.compile(cond.path, scope).first
            except DefinitionError as exc:
                raise DefinitionError(exc.message, (*where, "path")) from None
            tests.append(_value_test(cond, first, where))
        if cond.all is not None:
            subs = [self.condition(c, scope, (*where, "all", i)) for i, c in enumerate(cond.all)]
            tests.append(lambda s: all(t(s) for t in subs))
        if cond.any is not None:
            alts = [self.condition(c, scope, (*where, "any", i)) for i, c in enumerate(cond.any)]
            tests.append(lambda s: any(t(s) for t in alts))
        if cond.not_ is not None:
            negated = self.condition(cond.not_, scope, (*where, "not"))
            tests.append(lambda s: not negated(s))
        if len(tests) == 1:
            return tests[0]
        return lambda s: all(t(s) for t in tests)

    # -- checks ---------------------------------------------------------------------------------------
    def check(self, chk: Check, where: Where) -> Callable[[Out, _Run], None] | None:
        getters: dict[str, Callable[[Out], Any]] = {}
        for key in ("id_card", "birth_date", "sex"):
            text = getattr(chk, key)
            if text is None:
                continue
            target = self.top_targets.get(text) or self._coded_part(text)
            if target is None:
                self.problems.add((*where, key), DefinitionError(f"no rule writes {text}"))
                return None
            getters[key] = target.get
        line = self.line_of(where)
        name = chk.id or (f"id_card check (line {line})" if line else "id_card check")
        mapping_id, severity = self.id, chk.severity
        id_text = chk.id_card
        birth_source = self.sources.get(chk.birth_date or "", chk.birth_date or "the birth date")
        sex_source = self.sources.get(chk.sex or "", chk.sex or "the sex")

        def run_check(out: Out, run: _Run) -> None:
            number = getters["id_card"](out)
            if not number:
                return
            birth = getters["birth_date"](out) if "birth_date" in getters else None
            sex = getters["sex"](out) if "sex" in getters else None
            if isinstance(sex, dict):
                sex = sex.get("code")
            disagreements = gb11643.check_id_card(
                str(number), birth, sex, birth_date_source=birth_source, sex_source=sex_source
            )
            if not disagreements:
                return
            text = "; ".join(disagreements)
            if severity == "error":
                raise MappingError(mapping_id, name, id_text, number, text, hl7_code="207")
            run.warnings.append(f"{name}: {text}")

        return run_check

    def _coded_part(self, text: str) -> Target | None:
        base = text.rsplit(".", 1)[0]
        return self.top_targets.get(base) if text.endswith(".code") else None


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _value_test(cond: Condition, first: Callable[[Any], Any], where: Where) -> _Test:
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


def _lookup(table: CodeTable, coded: bool) -> Callable[[Any, _Run], Any]:
    """A code table on the hot path: one dict lookup, a warning when the table says to pass with one."""
    lookup = table.lookup

    def run(value: Any, run: _Run) -> Any:
        code = value.code if hasattr(value, "code") else str(value)
        outcome = lookup(code)
        if outcome.warning:
            run.warnings.append(outcome.warning)
        if outcome.code is None:
            return None
        if not coded:
            return outcome.code
        item = {"code": outcome.code}
        if outcome.system:
            item["system"] = outcome.system
        if outcome.display:
            item["display"] = outcome.display
        return item

    return run


def _hint(target: Any, produced: Any) -> str:
    import datetime as dt

    if target is dt.date and produced is str:
        return ": add transform hl7_date (or iso_date)"
    if target is dt.datetime and produced is str:
        return ": add transform hl7_datetime (or iso_datetime)"
    if target is dt.date and produced is dt.datetime:
        return ": use hl7_date to keep only the date"
    if target is dt.datetime and produced is dt.date:
        return ": use hl7_datetime to keep the time"
    if target is str and produced in (dt.date, dt.datetime):
        return ": add transform to_hl7_date / to_hl7_datetime or format_date"
    if target is str and is_coded(produced):
        return ": read its .code, or map it through a table"
    return ""

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from engine.mapping.checks import OutputCheck, id_card_check
from engine.mapping.codetables import CodeTable, CodeTables
from engine.mapping.conditions import Test, compile_condition
from engine.mapping.errors import DefinitionError, MappingError, ValueRejected
from engine.mapping.inputs import Input, PathLike, Within, input_for
from engine.mapping.outputs import Out, Output, Target, output_for
from engine.mapping.sources import compile_count, compile_source, compile_transforms, fixed_value
from engine.mapping.spec import Check, Condition, MappingSpec, Rule
from engine.mapping.types import accepts, describe, is_coded
from engine.mapping.values import table_lookup, type_hint

__all__ = ["CompiledMapping", "MappingResult", "compile_mapping"]

Where = tuple[str | int, ...]
_HL7_NULL = '""'


@dataclass(slots=True)
class MappingResult:
    output: Any  # a model instance, HL7 v2 text, a FHIR resource or a dict
    warnings: list[str]


@dataclass(slots=True)
class _Run:
    """State of one run shared by its rules: the warnings to record with the message."""

    warnings: list[str]


_Apply = Callable[[Any, Out, _Run], None]


@dataclass
class CompiledMapping:
    id: str
    description: str
    input: Input
    output: Output
    rules: list[_Apply]
    checks: list[OutputCheck] = field(default_factory=list)

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
            check(out, run.warnings)
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
        self.inp = inp  # seen through the enclosing within: prefixes, if any
        self.base_inp = inp
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

    def condition(self, cond: Condition, scope: Any, where: Where) -> Test:
        return compile_condition(cond, lambda text: self.inp.compile(text, scope), where)

    def rule(self, rule: Rule, where: Where, in_scope: Any, out_scope: Any, parent: str) -> _Apply | None:
        line = self.line_of(where)
        if rule.within is not None:
            return self.within(rule, where, in_scope, out_scope, parent)
        assert rule.to is not None
        try:
            target = self.outp.resolve(rule.to, out_scope, parent)
        except DefinitionError as exc:
            raise DefinitionError(exc.message, ("to",)) from None
        if not parent:
            self.top_targets[target.text] = target
        label = rule.id or _nested_name(parent, rule.to)
        name = f"{label} (line {line})" if line else label
        if rule.rules is not None:
            return self.group(rule, target, name, in_scope, where)
        when = self.condition(rule.when, in_scope, ("when",)) if rule.when is not None else None
        if target.is_list and (self.outp.kind == "hl7v2" or _is_model(target.type)):
            raise DefinitionError(f"{target.text} is a list: give it nested rules for each item", ("to",))
        return self.value_rule(rule, target, name, when, in_scope)

    def within(self, rule: Rule, where: Where, in_scope: Any, out_scope: Any, parent: str) -> _Apply:
        """Nested rules whose relative paths start at ``within`` (a prefix; nothing is iterated)."""
        assert rule.within is not None and rule.rules is not None
        try:
            self.inp.join(rule.within, "x")  # HL7 v2 input refuses within:
            self.inp.compile(rule.within, in_scope)
        except DefinitionError as exc:
            raise DefinitionError(exc.message, ("within",)) from None
        outer = self.inp
        self.inp = Within(outer, rule.within)
        try:
            when = self.condition(rule.when, in_scope, ("when",)) if rule.when is not None else None
            children = self.rules(rule.rules, (*where, "rules"), in_scope, out_scope, parent)
        finally:
            self.inp = outer

        def apply_within(scope: Any, out: Out, run: _Run) -> None:
            if when is None or when(scope):
                for apply in children:
                    apply(scope, out, run)

        return apply_within

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
        assert rule.rules is not None
        outer = self.inp
        if each is not None:
            # relative paths inside each: read the item, not the enclosing within: prefix
            self.inp = self.base_inp
        try:
            # with each:, the condition is tested on every item (relative paths read the item)
            when = self.condition(rule.when, item_scope, ("when",)) if rule.when is not None else None
            children = self.rules(rule.rules, (*where, "rules"), item_scope, target.parent_type, target.text)
        finally:
            self.inp = outer
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
            when_location = self.inp.location(when_text)

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
                        location=when_location,
                    )

            return apply_one

        scopes = each.scopes
        each_location = self.inp.location(each_text)

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
                    location=each_location,
                )

        return apply_each

    def value_rule(self, rule: Rule, target: Target, name: str, when: Test | None, in_scope: Any) -> _Apply:
        get, produced, source_text = compile_source(self.inp, rule, in_scope)
        if source_text:
            self.sources.setdefault(target.text, source_text)
        steps, produced = compile_transforms(rule, produced)
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
            hint = type_hint(target.type, produced)
            raise DefinitionError(
                f"{target.text} takes {describe(target.type)}, but {source_text_shown or 'this rule'} gives "
                f"{describe(produced)}{hint}",
                ("to",),
            )
        default = fixed_value(rule.default, target, table, "default") if rule.default is not None else None
        constant = fixed_value(rule.value, target, table, "value") if rule.value is not None else None
        mapping_id, required, one, if_unset = self.id, rule.required, rule.one, rule.if_unset
        location = self.inp.location(source_text) if source_text else ""
        set_, get_target = target.set, target.get
        count = compile_count(self.inp, rule, in_scope) if one else None
        lookup = table_lookup(table, coded_target) if table is not None else None

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
                        value = lookup(value, run.warnings)
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

    # -- checks -------------------------------------------------------------------------------------
    def check(self, chk: Check, where: Where) -> OutputCheck | None:
        getters: dict[str, Callable[[Any], Any]] = {}
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
        return id_card_check(
            self.id,
            chk.id or (f"id_card check (line {line})" if line else "id_card check"),
            number=getters["id_card"],
            number_path=chk.id_card,
            birth_date=getters.get("birth_date"),
            birth_source=self.sources.get(chk.birth_date or "", chk.birth_date or "the birth date"),
            sex=getters.get("sex"),
            sex_source=self.sources.get(chk.sex or "", chk.sex or "the sex"),
            severity=chk.severity,
        )

    def _coded_part(self, text: str) -> Target | None:
        base = text.rsplit(".", 1)[0]
        return self.top_targets.get(base) if text.endswith(".code") else None


def _nested_name(parent: str, to: str) -> str:
    """A nested rule named by its whole target: ``patient.identifiers[*].value``, ``PID.3[*].1``."""
    if not parent:
        return to
    return f"{parent}{to}" if to.startswith(".") else f"{parent}.{to}"


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)

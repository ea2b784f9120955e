"""The shape of a mapping file (``mappings/<id>.yaml``), validated with pydantic before it is compiled.

A mapping reads one input document and writes one output::

    description: Hospital A (东华 HIS), HL7 v2.4 ADT in GBK -> platform AdtEvent
    input: hl7v2                  # hl7v2 | xml | json | model:<Name>
    output: model:AdtEvent        # model:<Name> | hl7v2 | fhir:<Resource> | json
    rules:
      - to: patient.birth_date
        from: PID.7
        transform: hl7_date
        required: true

Each rule takes a value from the input (``from`` a path, or the first non-empty of several paths;
``value`` a constant; ``concat`` several paths and literals), passes it through ``transform``
functions and a code ``table``, and writes it to the ``to`` path of the output. ``each`` repeats a
group of nested ``rules`` once per repetition or segment (``PID.3[*]``, ``OBR[*]``), and writes one
item of an output list per iteration. ``within`` names an input path that the relative paths of its
nested rules start from (``within: hl7:controlActProcess/.../hl7:patient`` in a V3 message), so a
deep XML document is mapped without repeating the same long path in every rule. ``when`` keeps a
rule (or an item) only when a condition on the input holds. The mapping language is documented
with examples in the README.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Check", "Condition", "Literal_", "MappingSpec", "Rule"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Condition(_Strict):
    """``when:``: a test on the input, relative to the rule's scope. Several tests in one condition all
    have to hold; ``any``/``all``/``not`` combine conditions."""

    path: str | None = Field(None, description="input path whose first value is tested")
    equals: str | None = None
    not_equals: str | None = None
    in_: list[str] | None = Field(None, alias="in")
    not_in: list[str] | None = None
    present: bool | None = Field(None, description="true: the path has a value; false: it has none")
    matches: str | None = Field(None, description="regular expression the whole value must match")
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(None, alias="not")

    @model_validator(mode="after")
    def _some_test(self) -> Condition:
        tests = (self.equals, self.not_equals, self.in_, self.not_in, self.present, self.matches)
        if self.path is not None and all(t is None for t in tests):
            raise ValueError(
                "a condition on a path needs a test: equals, not_equals, in, not_in, present or matches"
            )
        if self.path is None and any(t is not None for t in tests):
            raise ValueError("this test needs a path")
        if self.path is None and self.all is None and self.any is None and self.not_ is None:
            raise ValueError("an empty condition")
        return self


class Literal_(_Strict):
    """A literal piece of a ``concat``: ``{value: "-"}``."""

    value: str


class Rule(_Strict):
    id: str | None = Field(None, description="a name for error messages; the target path by default")
    to: str | None = Field(None, description="output path (relative to the enclosing item inside `rules`)")
    from_: str | list[str] | None = Field(
        None, alias="from", description="input path, or several: the first that has a value"
    )
    value: Any = Field(None, description="a constant instead of an input path")
    concat: list[str | Literal_] | None = Field(None, description="input paths and {value: ...} literals")
    separator: str = Field("", description="between the non-empty pieces of concat")
    each: str | None = Field(None, description="iterating input path: the nested rules run once per match")
    within: str | None = Field(
        None, description="input path that the nested rules' relative paths start from (XML, JSON)"
    )
    rules: list[Rule] | None = Field(None, description="nested rules, writing one item of the `to` list")
    transform: str | dict[str, Any] | list[str | dict[str, Any]] | None = Field(
        None, description="a function, {function: argument}, or a list of them applied in turn"
    )
    table: str | None = Field(None, description="code table id in mappings/code_tables/")
    default: Any = Field(None, description="output value when the input has none")
    required: bool = Field(False, description="a missing value makes the message an error")
    one: bool = Field(False, description="the input path must not repeat (one value expected)")
    when: Condition | None = None
    if_unset: bool = Field(False, description="only write when an earlier rule has not written this target")

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        sources = [
            name
            for name, v in (("from", self.from_), ("value", self.value), ("concat", self.concat))
            if v is not None
        ]
        if len(sources) > 1:
            raise ValueError(f"a rule takes one source, not {' and '.join(sources)}")
        if self.within is not None:
            if self.rules is None:
                raise ValueError("within needs nested rules")
            given = [k for k, v in (("to", self.to), ("each", self.each)) if v is not None]
            if given:
                raise ValueError(
                    f"within only narrows where the nested rules read; it takes no {given[0]} "
                    "(put each on a nested rule)"
                )
            if self.required or self.one or self.if_unset:
                raise ValueError("required, one and if_unset belong on the nested rules")
        if self.rules is not None:
            if sources:
                raise ValueError(f"a rule with nested rules has no {sources[0]} of its own")
            if self.transform is not None or self.table is not None or self.default is not None:
                raise ValueError("transform, table and default belong on the nested rules")
            if not self.rules:
                raise ValueError("nested rules are empty")
        else:
            if self.each is not None:
                raise ValueError("each needs nested rules")
            if not sources and self.default is None:
                raise ValueError("a rule needs a source: from, value or concat (or a default)")
        if self.to is None and self.within is None:
            raise ValueError("a rule needs a target: to")
        if self.required and self.default is not None:
            raise ValueError("required and default contradict each other")
        return self

    @property
    def name(self) -> str:
        return self.id or self.to or (f"within {self.within}" if self.within else "?")

    def steps(self) -> list[str | dict[str, Any]]:
        if self.transform is None:
            return []
        return list(self.transform) if isinstance(self.transform, list) else [self.transform]


class Check(_Strict):
    """A check run on the output once every rule has run (``checks:``)."""

    kind: Literal["id_card"] = Field(description="id_card: the ID number agrees with birth date and sex")
    id: str | None = None
    id_card: str = Field(description="output path of the GB 11643 number")
    birth_date: str | None = Field(None, description="output path of the birth date")
    sex: str | None = Field(None, description="output path of the sex (GB/T 2261.1 code, or a coded value)")
    severity: Literal["warning", "error"] = "warning"


class MappingSpec(_Strict):
    id: str | None = Field(None, description="must equal the file name when given")
    description: str = ""
    input: str = Field(description="hl7v2, xml, json or model:<Name>")
    output: str = Field(description="model:<Name>, hl7v2, fhir:<Resource> or json")
    namespaces: dict[str, str] = Field(default_factory=dict, description="XPath prefixes (xml input)")
    segment_order: list[str] = Field(default_factory=list, description="segment order (hl7v2 output)")
    rules: list[Rule]
    checks: list[Check] = Field(default_factory=list)

"""Rule semantics that the data cases do not isolate: ``within:`` prefixes, and nested rule names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.mapping.codetables import CodeTables
from engine.mapping.compiler import CompiledMapping, compile_mapping
from engine.mapping.errors import MappingError
from engine.mapping.spec import MappingSpec
from profiles.canonical import MODELS

TABLES, _ = CodeTables.load(Path(__file__).resolve().parents[3] / "mappings" / "code_tables")

DOC = b"""<?xml version="1.0"?>
<msg xmlns="urn:hl7-org:v3">
  <id extension="M-1"/>
  <wrap><patient>
    <id><item root="2.16.156.10011.2.5.1.4" extension="P-7"/></id>
    <person>
      <name><item><part value="Zhang San"/></item></name>
      <telecom><item value="tel:13800000001"/><item value="tel:02500000002"/></telecom>
    </person>
  </patient></wrap>
</msg>
"""


def compile_yaml(text: str) -> tuple[CompiledMapping | None, list[str]]:
    spec = MappingSpec.model_validate(yaml.safe_load(text))
    compiled, errors = compile_mapping("t", spec, TABLES, MODELS)
    return compiled, [f"{e.where}: {e.message}" for e in errors]


def run(text: str, data: Any = DOC) -> dict[str, Any]:
    compiled, errors = compile_yaml(text)
    assert compiled is not None, errors
    out = compiled.run(data).output
    if isinstance(out, dict):
        return out
    dumped: dict[str, Any] = out.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    return dumped


XML_HEAD = """input: xml
output: model:AdtEvent
namespaces: {v3: "urn:hl7-org:v3"}
rules:
  - {to: event, value: A28}
  - {to: control_id, from: "v3:id/@extension"}
"""


def test_within_reads_relative_paths_from_its_prefix() -> None:
    out = run(
        XML_HEAD
        + """
  - within: "v3:wrap/v3:patient"
    rules:
      - to: patient.identifiers[*]
        rules:
          - {to: value, from: "v3:id/v3:item/@extension"}
          - {to: system, from: "v3:id/v3:item/@root"}
      - within: "v3:person"           # nested: v3:wrap/v3:patient/v3:person
        rules:
          - {to: patient.name.text, from: "v3:name/v3:item/v3:part/@value"}
          - {to: sending_application, from: "/v3:msg/v3:id/@extension"}   # absolute: from the root
"""
    )
    assert out["control_id"] == "M-1"
    assert out["patient"]["identifiers"] == [{"value": "P-7", "system": "2.16.156.10011.2.5.1.4"}]
    assert out["patient"]["name"] == {"text": "Zhang San"}
    assert out["sending_application"] == "M-1"


def test_each_inside_within_reads_each_item_not_the_prefix() -> None:
    out = run(
        XML_HEAD
        + """
  - within: "v3:wrap/v3:patient/v3:person"
    rules:
      - to: patient.telecoms[*]
        each: "v3:telecom/v3:item[*]"
        rules:
          - {to: value, from: "@value", transform: {regex_replace: {pattern: "^tel:", replacement: ""}}}
"""
    )
    assert [t["value"] for t in out["patient"]["telecoms"]] == ["13800000001", "02500000002"]


def test_a_within_whose_condition_fails_writes_nothing() -> None:
    out = run(
        XML_HEAD
        + """
  - {to: patient.sex, value: "1", table: gb-t-2261-1-sex}
  - within: "v3:wrap/v3:patient"
    when: {path: "v3:id/v3:item/@extension", present: false}   # it is present
    rules:
      - {to: patient.name.text, from: "v3:person/v3:name/v3:item/v3:part/@value"}
"""
    )
    assert out["patient"]["sex"]["code"] == "1"
    assert "name" not in out["patient"]


def test_within_over_json_joins_dotted_keys() -> None:
    out = run(
        """input: json
output: json
rules:
  - within: person
    rules:
      - {to: name, from: name.family}
      - to: phones[*]
        each: "phones[*]"
        rules:
          - {to: number, from: ".value"}
""",
        '{"person": {"name": {"family": "Li"}, "phones": [{"value": "1"}, {"value": "2"}]}}',
    )
    assert out == {"name": "Li", "phones": [{"number": "1"}, {"number": "2"}]}


def test_a_nested_rule_error_names_the_whole_target() -> None:
    compiled, errors = compile_yaml(
        XML_HEAD
        + """
  - within: "v3:wrap/v3:patient"
    rules:
      - to: patient.identifiers[*]
        rules:
          - {to: value, from: "v3:id/v3:item/@extension"}
          - {to: namespace, from: "v3:providerOrganization/v3:id/v3:item/@extension", required: true}
"""
    )
    assert compiled is not None, errors
    with pytest.raises(MappingError) as caught:
        compiled.run(DOC)
    assert "rule patient.identifiers[*].namespace" in caught.value.text
    assert "v3:providerOrganization/v3:id/v3:item/@extension: required, but absent" in caught.value.text


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            '  - within: "v3:a"\n    to: patient.name.text\n    rules: [{to: event, value: A01}]\n',
            "takes no to",
        ),
        ('  - within: "v3:a"\n', "within needs nested rules"),
        ('  - within: "v3:a["\n    rules: [{to: event, value: A01}]\n', "within"),
    ],
    ids=["with-to", "no-rules", "bad-path"],
)
def test_a_wrong_within_is_a_load_time_error(rules: str, expected: str) -> None:
    try:
        compiled, errors = compile_yaml(XML_HEAD + rules)
    except ValueError as exc:  # the spec's own shape check (pydantic)
        assert expected in str(exc)
        return
    assert compiled is None
    assert any(expected in e for e in errors), errors


def test_within_is_refused_for_hl7_input() -> None:
    compiled, errors = compile_yaml(
        """input: hl7v2
output: model:AdtEvent
rules:
  - within: PID
    rules: [{to: control_id, from: MSH.10}]
"""
    )
    assert compiled is None
    assert any("within: is for XML and JSON input" in e for e in errors), errors

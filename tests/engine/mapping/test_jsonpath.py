"""Dotted-key input paths on JSON documents and on pydantic models (synthetic patients only)."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from pydantic import BaseModel, Field

from engine.mapping.errors import DefinitionError
from engine.mapping.jsonpath import Scope, compile_path

# Made-up patient; the ID number has a valid GB 11643 check digit.
DOC: dict[str, Any] = json.loads(
    """{
  "patient": {
    "name": "赵建国",
    "x-hospital-id": "HB-7788",
    "org.example.mrn": "M-42",
    "active": true,
    "identifiers": [
      {"type": "MR", "value": "HB-7788", "seq": 1},
      {"type": "NI", "value": "440304199207183516", "seq": 2},
      {"type": "PN", "value": "", "seq": 3},
      {"type": "XX", "seq": 4}
    ],
    "contact": {"name": "赵丽", "phones": ["13800000001", "13800000002"]}
  }
}"""
)


class IdType(enum.Enum):
    MR = "MR"
    NI = "NI"


class Coded(BaseModel):
    code: str
    system: str


class Identifier(BaseModel):
    type: IdType
    kind: Coded | None = None
    value: str | None = None


class Patient(BaseModel):
    name: str
    birth_date: str | None = Field(None, alias="birthDate")
    identifiers: list[Identifier] = []


class Event(BaseModel):
    patient: Patient


EVENT = Event(
    patient=Patient(
        name="钱芳",
        birthDate="1985-03-12",
        identifiers=[
            Identifier(type=IdType.MR, kind=Coded(code="MR", system="local"), value="A-1"),
            Identifier(type=IdType.NI, kind=Coded(code="NI", system="gb11643"), value="110105198503120426"),
        ],
    )
)


def first(path: str, scope: Any = DOC) -> Any:
    return compile_path(path).first(scope)


def test_dotted_keys_dashes_and_quoted_keys() -> None:
    assert first("patient.name") == "赵建国"
    assert first("patient.x-hospital-id") == "HB-7788"
    assert first('patient."org.example.mrn"') == "M-42"
    assert first("patient.contact.name") == "赵丽"
    assert first("patient.nothing") is None
    assert first("nothing.at.all") is None


def test_positions_are_one_based() -> None:
    assert first("patient.identifiers[1].value") == "HB-7788"
    assert first("patient.identifiers[2].value") == "440304199207183516"
    assert first("patient.identifiers[9].value") is None
    assert first("patient.contact.phones[2]") == "13800000002"


def test_position_zero_is_refused_with_its_column() -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_path("patient.identifiers[0].value")
    assert "column 21" in caught.value.message
    assert "[1]" in caught.value.message


def test_selection_takes_the_first_item_whose_key_equals_the_text() -> None:
    assert first("patient.identifiers[type=NI].value") == "440304199207183516"
    assert first("patient.identifiers[type=ZZ].value") is None
    assert first("patient.identifiers[seq=2].type") == "NI"  # numbers compare by their text
    assert first('patient.identifiers[type="MR"].value') == "HB-7788"


def test_star_iterates_and_absent_or_empty_values_are_skipped() -> None:
    path = compile_path("patient.identifiers[*].value")
    assert path.iterates
    assert path.values(DOC) == ["HB-7788", "440304199207183516"]
    assert path.count(DOC) == 2
    assert path.first(DOC) == "HB-7788"
    assert not compile_path("patient.identifiers[1].value").iterates


def test_empty_text_is_absent() -> None:
    path = compile_path("patient.identifiers[3].value")
    assert path.first(DOC) is None
    assert path.values(DOC) == []
    assert path.count(DOC) == 0


def test_a_list_is_not_entered_without_a_position() -> None:
    assert first("patient.identifiers.value") is None


def test_a_single_object_where_a_list_is_expected_counts_as_one_item() -> None:
    doc = {"patient": {"identifiers": {"type": "NI", "value": "440304199207183516"}}}
    assert first("patient.identifiers[1].value", doc) == "440304199207183516"
    assert first("patient.identifiers[type=NI].value", doc) == "440304199207183516"
    assert compile_path("patient.identifiers[*].value").values(doc) == ["440304199207183516"]
    assert first("patient.identifiers[2].value", doc) is None


def test_keys_on_text_find_nothing() -> None:
    assert first("patient.name.upper") is None
    assert first("patient.name.__class__") is None


def test_each_scope_reads_relative_and_absolute_paths() -> None:
    items = compile_path("patient.identifiers[*]").scopes(DOC)
    assert len(items) == 4
    value, kind, name = compile_path(".value"), compile_path(".type"), compile_path("patient.name")
    assert [(kind.first(s), value.first(s)) for s in items] == [
        ("MR", "HB-7788"),
        ("NI", "440304199207183516"),
        ("PN", None),
        ("XX", None),
    ]
    assert name.first(items[3]) == "赵建国"  # absolute: from the document root
    assert compile_path(".").first(items[0]) is DOC["patient"]["identifiers"][0]


def test_nested_scopes_keep_the_document_root() -> None:
    (contact,) = compile_path("patient.contact").scopes(DOC)
    phones = compile_path(".phones[*]").scopes(contact)
    assert [compile_path(".").first(p) for p in phones] == ["13800000001", "13800000002"]
    assert all(isinstance(p, Scope) for p in phones)
    assert compile_path("patient.x-hospital-id").first(phones[1]) == "HB-7788"


def test_models_are_read_by_attribute_without_conversion() -> None:
    first_id = compile_path("patient.identifiers[1]").first(EVENT)
    assert first_id is EVENT.patient.identifiers[0]
    assert first("patient.identifiers[type=NI].value", EVENT) == "110105198503120426"  # enum by value
    assert first("patient.identifiers[kind.code=NI].kind.system", EVENT) == "gb11643"
    assert compile_path("patient.identifiers[*].value").values(EVENT) == ["A-1", "110105198503120426"]


def test_model_fields_by_name_or_alias_but_never_methods() -> None:
    assert first("patient.birth_date", EVENT) == "1985-03-12"
    assert first("patient.birthDate", EVENT) == "1985-03-12"
    assert first("patient.model_dump", EVENT) is None
    assert first("patient._private", EVENT) is None


def test_booleans_compare_as_json_writes_them() -> None:
    doc = {"contacts": [{"active": False, "name": "甲"}, {"active": True, "name": "乙"}]}
    assert first("contacts[active=true].name", doc) == "乙"
    assert first("contacts[active=false].name", doc) == "甲"
    assert first("patient.active") is True


def test_a_top_level_array() -> None:
    doc = [{"id": "a"}, {"id": "b"}]
    assert first("[2].id", doc) == "b"
    assert compile_path("[*].id").values(doc) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        ("", 1, "empty"),
        ("patient..name", 9, "expected a key"),
        ("patient.", 9, "expected a key"),
        ("patient name", 8, "unexpected ' '"),
        ("patient.identifiers[*", 20, "closing ]"),
        ("patient.identifiers[x]", 22, "expected *"),
        ("patient.identifiers[-1]", 21, "negative"),
        ("patient.identifiers[type=]", 26, "needs a text"),
        ('patient."name', 9, "closing"),
        ("patient]", 8, "unexpected ']'"),
    ],
)
def test_syntax_errors_name_the_column(text: str, column: int, reason: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_path(text)
    assert f"column {column}" in caught.value.message
    assert reason in caught.value.message

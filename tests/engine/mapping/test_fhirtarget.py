"""FHIR R4 output: resource names, target paths checked at load time, resources validated at run time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from engine.mapping.errors import DefinitionError, ValueRejected
from engine.mapping.fhirtarget import FHIR_VERSION, build, check_target, resource_class


def test_resources_come_from_the_r4_compatible_package() -> None:
    patient = resource_class("Patient")
    assert patient.__name__ == "Patient"
    assert patient.__module__.startswith("fhir.resources.R4B.")
    assert FHIR_VERSION == "4.3.0"


def test_unknown_resource_suggests_close_names() -> None:
    with pytest.raises(DefinitionError, match=r"did you mean Patient\?"):
        resource_class("patient")
    with pytest.raises(DefinitionError, match="did you mean Observation"):
        resource_class("Observaton")


def test_a_data_type_is_not_a_resource() -> None:
    with pytest.raises(DefinitionError, match="data type, not a resource"):
        resource_class("HumanName")


def test_resources_added_by_r4b_are_refused() -> None:
    with pytest.raises(DefinitionError, match="does not exist in R4"):
        resource_class("SubscriptionTopic")


@pytest.mark.parametrize(
    ("resource", "path", "leaf"),
    [
        ("Patient", "gender", str),
        ("Patient", "birthDate", dt.date),
        ("Patient", "active", bool),
        ("Patient", "name[*].family", str),
        ("Patient", "name[*].given[*]", str),
        ("Patient", "identifier[*].system", str),
        ("Patient", "identifier[*].type.coding[*].code", str),
        ("Patient", "address[*].line[*]", str),
        ("Patient", "address[*].line", list[str]),
        ("Patient", "deceasedDateTime", dt.datetime),
        ("Encounter", "class.code", str),
        ("Observation", "valueQuantity.value", Decimal),
    ],
)
def test_target_paths_give_their_leaf_type(resource: str, path: str, leaf: object) -> None:
    assert check_target(resource, path) == leaf


def test_a_list_target_gives_the_item_model() -> None:
    human_name = check_target("Patient", "name[*]")
    assert human_name.__name__ == "HumanName"
    assert "family" in human_name.model_fields


def test_misspelt_field_suggests_the_right_one() -> None:
    with pytest.raises(DefinitionError) as caught:
        check_target("Patient", "birthdate")
    assert caught.value.message == "Patient has no field 'birthdate' (did you mean 'birthDate'?)"


def test_misspelt_nested_field_names_where_it_is() -> None:
    with pytest.raises(DefinitionError) as caught:
        check_target("Patient", "name[*].famly")
    assert caught.value.message == "Patient.name[*] (HumanName) has no field 'famly' (did you mean 'family'?)"


def test_a_list_must_be_iterated_and_a_single_element_must_not() -> None:
    with pytest.raises(DefinitionError, match=r"Patient.name is a list: write name\[\*\]"):
        check_target("Patient", "name.family")
    with pytest.raises(DefinitionError, match=r"Patient.gender is not a list: drop the \[\*\]"):
        check_target("Patient", "gender[*]")


def test_a_primitive_has_no_fields() -> None:
    with pytest.raises(DefinitionError, match="primitive"):
        check_target("Patient", "gender.code")


def test_positions_are_not_target_syntax() -> None:
    with pytest.raises(DefinitionError, match="not a field name"):
        check_target("Patient", "name[1].family")


def test_build_validates_what_the_rules_wrote() -> None:
    patient = build(
        "Patient",
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": "110105198503120426"}],
            "name": [{"family": "李", "given": ["晓梅"]}],
            "gender": "female",
            "birthDate": "1985-03-12",
        },
    )
    assert patient.birthDate == dt.date(1985, 3, 12)  # type: ignore[attr-defined]
    assert patient.model_dump(mode="json", exclude_none=True)["name"] == [{"family": "李", "given": ["晓梅"]}]


def test_build_adds_the_resource_type() -> None:
    assert build("Patient", {"gender": "male"}).model_dump(exclude_none=True)["resourceType"] == "Patient"


def test_build_names_the_bad_fields_one_based() -> None:
    with pytest.raises(ValueRejected) as caught:
        build("Patient", {"birthDate": "1985-13-12", "name": [{"family": "李"}, {"family": 7}]})
    message = caught.value.message
    assert "birthDate" in message
    assert "name[2].family" in message
    assert caught.value.value == "1985-13-12"
    assert caught.value.hl7_code == "102"


def test_build_reports_a_missing_required_element_as_such() -> None:
    with pytest.raises(ValueRejected) as caught:
        build("Encounter", {"status": "finished"})
    assert "class" in caught.value.message
    assert caught.value.hl7_code == "101"

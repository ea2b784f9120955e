"""The platform's canonical models: what a mapping may write, and what survives a JSON round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from profiles.canonical import (
    MODELS,
    Address,
    AdtEvent,
    Coded,
    ContactPoint,
    DocumentEntry,
    Encounter,
    HumanName,
    Identifier,
    Patient,
    Practitioner,
    RelatedPerson,
)

CST = dt.timezone(dt.timedelta(hours=8))
SEX_TABLE = Path(__file__).parents[2] / "mappings" / "code_tables" / "gb-t-2261-1-sex.yaml"
_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _with_check(first17: str) -> str:
    """A synthetic ID-card number: 17 digits and their GB 11643 (ISO 7064 MOD 11-2) check character."""
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, _W, strict=True)) % 11]


def _admission() -> AdtEvent:
    return AdtEvent(
        event="A01",
        message_type="ADT^A01",
        control_id="MSG-0001",
        sent_at=dt.datetime(2026, 11, 20, 10, 0, 5, tzinfo=CST),
        sending_application="HIS",
        sending_facility="HOSP_A",
        facility_oid="1.2.156.112604.1",
        patient=Patient(
            identifiers=[
                Identifier(value="A100234", system="1.2.156.112604.1.1", namespace="HOSP_A", type="PI"),
            ],
            national_id=_with_check("32010219850412003"),
            id_document_type=Coded(code="01", system="2.16.156.10011.2.3.1.1", display="居民身份证"),
            name=HumanName(text="诸葛秀英", family="诸葛", given="秀英", use="L"),
            sex=Coded(code="2", system="2.16.156.10011.2.3.3.4", display="女性"),
            birth_date=dt.date(1985, 4, 12),
            ethnicity=Coded(code="01", system="2.16.156.10011.2.3.3.3", display="汉族"),
            addresses=[
                Address(
                    province="江苏省", city="南京市", street="玄武大道88号", region_code="320102", use="H"
                ),
            ],
            telecoms=[ContactPoint(value="13900000000", system="phone", use="mobile")],
            contacts=[
                RelatedPerson(name=HumanName(text="诸葛明"), relationship=Coded(code="11", display="夫")),
            ],
        ),
        encounter=Encounter(
            visit_number="V0001",
            inpatient_number="Z0001",
            patient_class=Coded(code="3", system="2.16.156.10011.2.3.1.271", display="住院"),
            ward="心内科病区",
            bed="12",
            attending_doctor=Practitioner(id="D123", name="王建国"),
            admit_time=dt.datetime(2026, 11, 20, 9, 30, tzinfo=CST),
            diagnoses=[Coded(code="I10", system="2.16.156.10011.2.3.3.11", display="高血压")],
        ),
        warnings=["birth date differs from the ID card"],
    )


def test_an_adt_event_survives_a_json_round_trip() -> None:
    event = _admission()
    text = event.model_dump_json()
    assert "诸葛秀英" in text  # names stay readable, not \u-escaped
    again = AdtEvent.model_validate_json(text)
    assert again == event
    assert again.encounter is not None
    assert again.encounter.admit_time == dt.datetime(2026, 11, 20, 1, 30, tzinfo=dt.UTC)
    assert again.patient.birth_date == dt.date(1985, 4, 12)


def test_a_document_entry_survives_a_json_round_trip() -> None:
    entry = DocumentEntry(
        unique_id="2.16.156.10011.1.1.20261120.1",
        patient_id=Identifier(value="P0001", system="1.2.156.999.1"),
        type_code=Coded(code="C0001", system="2.16.156.10011.2.4", display="病历概要"),
        confidentiality=[Coded(code="N", system="2.16.840.1.113883.5.25")],
        creation_time=dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC),
        mime_type="text/xml",
        hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
        size=0,
        language="zh-CN",
    )
    assert DocumentEntry.model_validate_json(entry.model_dump_json()) == entry


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"event": "A01", "patient": {}, "hospital": "x"}, ("hospital",)),
        ({"event": "A01", "patient": {"nickname": "小诸"}}, ("patient", "nickname")),
        ({"event": "A01", "patient": {"sex": {"code": "1", "label": "男"}}}, ("patient", "sex", "label")),
        ({"event": "A01", "patient": {}, "encounter": {"bed_no": "3"}}, ("encounter", "bed_no")),
    ],
)
def test_a_misspelt_field_is_rejected_not_dropped(data: dict[str, object], where: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        AdtEvent.model_validate(data)
    (error,) = info.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == where


@pytest.mark.parametrize(
    ("model", "data", "missing"),
    [
        (AdtEvent, {"patient": {}}, "event"),
        (AdtEvent, {"event": "A01"}, "patient"),
        (Coded, {"system": "2.16.156.10011.2.3.3.4"}, "code"),
        (Identifier, {"system": "2.16.156.10011.1.3"}, "value"),
        (ContactPoint, {"system": "phone"}, "value"),
        (DocumentEntry, {"patient_id": {"value": "P1"}}, "unique_id"),
        (DocumentEntry, {"unique_id": "1.2.3"}, "patient_id"),
    ],
)
def test_required_fields(model: type[BaseModel], data: dict[str, object], missing: str) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [("missing", (missing,))]


def test_everything_else_is_optional() -> None:
    event = AdtEvent(event="A08", patient=Patient())
    assert event.patient.identifiers == [] and event.patient.name is None and event.encounter is None
    assert Patient().addresses == [] and Patient().contacts == []  # defaults are not shared
    Patient().addresses.append(Address(city="南京市"))
    assert Patient().addresses == []


@pytest.mark.parametrize(
    "number",
    [
        "320102850412003",  # a legacy 15-digit number: the mapping's id_card transform upgrades it
        "32010419880915105x",  # lower case x: normalised by the transform, never stored like this
        "32010219850412003 ",
        "ID000000000000001",
    ],
)
def test_national_id_must_be_normalised(number: str) -> None:
    with pytest.raises(ValidationError):
        Patient(national_id=number)


def test_national_id_with_x_check_character() -> None:
    number = _with_check("32010419880915105")
    assert number.endswith("X")
    assert Patient(national_id=number).national_id == number


@pytest.mark.parametrize(
    ("field", "value"),
    [("system", "telephone"), ("system", "PH"), ("use", "PRN"), ("use", "cell")],
)
def test_telecom_codes_are_fhirs(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        ContactPoint.model_validate({"value": "02583000001", field: value})


def test_region_code_is_six_digits() -> None:
    assert Address(region_code="320102").region_code == "320102"
    with pytest.raises(ValidationError):
        Address(region_code="3201")


def test_sex_is_documented_as_gb_t_2261_1_with_1_male_and_2_female() -> None:
    # A known public codebase has GenderEnum.Female=1, Male=2: inverted against GB/T 2261.1-2003.
    doc = Patient.model_fields["sex"].description or ""
    assert "2.16.156.10011.2.3.3.4" in doc
    assert "1 男性 (male)" in doc and "2 女性 (female)" in doc
    assert "1 女性" not in doc and "2 男性" not in doc
    # ... and the documentation agrees with the shipped value set
    codes = yaml.safe_load(SEX_TABLE.read_text(encoding="utf-8"))["codes"]
    assert codes["1"] == "男性" and codes["2"] == "女性"
    assert f"0 {codes['0']}" in doc and f"9 {codes['9']}" in doc


def test_models_lists_every_model_the_mappings_name() -> None:
    for name in ("AdtEvent", "Patient", "Encounter", "DocumentEntry", "Identifier", "Coded"):
        assert MODELS[name].__name__ == name
    assert MODELS["AdtEvent"] is AdtEvent


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_forbids_extras_and_documents_every_field(name: str) -> None:
    model = MODELS[name]
    assert model.model_config.get("extra") == "forbid"
    assert model.__doc__
    undocumented = [f for f, info in model.model_fields.items() if not info.description]
    assert undocumented == []

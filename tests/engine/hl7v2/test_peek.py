"""The header peek reads what the store indexes, and tells non-HL7 from HL7."""

from __future__ import annotations

import hl7
import pytest

from engine.errors import FramingError, MessageError
from engine.hl7v2.path import FieldPath
from engine.hl7v2.peek import peek, require_control_id
from tests.conftest import hl7_message, sample


def test_header_fields_and_identifiers() -> None:
    h = peek(sample("adt_a01_utf8.hl7").decode())
    assert (h.sending_application, h.sending_facility, h.receiving_facility) == ("HIS", "HOSP_A", "CITY_HIE")
    assert (h.message_type, h.message_structure, h.control_id, h.version) == (
        "ADT^A01",
        "ADT_A01",
        "MSG-A-0001",
        "2.5",
    )
    assert h.charset == "UNICODE UTF-8"
    assert [(i.value, i.authority, i.id_type, i.field) for i in h.identifiers] == [
        ("100001", "HOSP_A", "PI", "PID-3"),
        ("320102198503120012", "NIC", "NI", "PID-3"),
    ]


def test_v231_ids_in_pid2_and_pid4_and_merge_segment() -> None:
    text = (
        "MSH|^~\\&|OLDHIS|HOSP_B|HIE|CITY|20261122||ADT^A40|X9|P|2.3.1\r"
        "PID|1|A77^^^HOSP_B|||Li^Si\rMRG|B88^^^HOSP_B\r"
    )
    h = peek(text)
    assert [(i.value, i.field) for i in h.identifiers] == [("A77", "PID-2"), ("B88", "MRG-1")]


def test_lf_terminated_segments_are_accepted() -> None:
    assert peek(hl7_message("C7").replace("\r", "\n")).identifiers[0].value == "100001"


@pytest.mark.parametrize("text", ["hello", "PID|1||x", "MSH", "MSHA^~\\&|x"])
def test_not_hl7(text: str) -> None:
    with pytest.raises(FramingError):
        peek(text)


def test_missing_control_id_is_required_field_error() -> None:
    with pytest.raises(MessageError) as info:
        require_control_id(peek(hl7_message("")))
    assert (info.value.hl7_code, info.value.location, info.value.reject) == ("101", "MSH^1^10", True)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("MSH.9", "ADT^A01^ADT_A01"),
        ("MSH.9.2", "A01"),
        ("MSH.10", "MSG-A-0001"),
        ("PID.3[2].1", "320102198503120012"),
        ("PID.3.4.2", "1.2.156.112604.1.1"),
        ("PID.5.1", "王"),
        ("PID.8", "M"),
        ("ZPV.1", ""),
        ("PID.3[3]", ""),
        ("PID.3", "100001^^^HOSP_A&1.2.156.112604.1.1&ISO^PI"),
    ],
)
def test_paths_are_one_based_component_notation(path: str, value: str) -> None:
    parsed = hl7.parse(sample("adt_a01_utf8.hl7").decode())
    assert FieldPath.parse(path).get(parsed) == value


@pytest.mark.parametrize("bad", ["PID", "PID-3", "pid.3", "PID.0", "PID.3.x", "PID.3[0]"])
def test_bad_paths_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="bad field path"):
        FieldPath.parse(bad)

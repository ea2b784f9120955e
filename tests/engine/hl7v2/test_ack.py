"""Our ACKs say what happened in HL7's own terms, and conform to the HL7 v2 structure."""

from __future__ import annotations

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from engine.errors import MessageError
from engine.hl7v2.ack import build_ack, parse_ack
from engine.hl7v2.peek import peek
from tests.conftest import by_segment, hl7_message


def test_aa_swaps_sender_and_receiver_and_echoes_control_id() -> None:
    ack = by_segment(build_ack(peek(hl7_message("C-42")), "AA", application="HIE", facility="CITY_HIE"))
    msh, msa = ack["MSH"], ack["MSA"]
    assert msh[2:6] == ["HIE", "CITY_HIE", "HIS", "HOSP_A"]
    assert msh[8] == "ACK^A01^ACK" and msh[11] == "2.5" and msh[17] == "UNICODE UTF-8"
    assert msa[1:3] == ["AA", "C-42"]
    assert "ERR" not in ack


def test_ae_carries_err_with_location_code_and_escaped_text() -> None:
    err = MessageError("PID-8 value 'X|Y' not in table", hl7_code="103", location="PID^1^8")
    ack = by_segment(build_ack(peek(hl7_message("C-43")), "AE", err))
    assert ack["MSA"][1:3] == ["AE", "C-43"]
    e = ack["ERR"]
    assert e[2] == "PID^1^8" and e[3] == "103^Table value not found^HL70357" and e[4] == "E"
    assert e[8] == "PID-8 value 'X\\F\\Y' not in table"


def test_v231_sender_gets_err1_and_msa3() -> None:
    text = "MSH|^~\\&|OLD|H|HIE|C|20261122||ADT^A01|OLD1|P|2.3.1\rPID|1||1\r"
    err = MessageError("MSH-10 missing", hl7_code="101", location="MSH^1^10")
    ack = by_segment(build_ack(peek(text), "AR", err))
    assert ack["MSA"] == ["MSA", "AR", "OLD1", "MSH-10 missing"]
    assert ack["ERR"] == ["ERR", "MSH^1^10^101&Required field missing&HL70357"]


def test_nak_for_bytes_that_were_not_hl7() -> None:
    ack = parse_ack(build_ack(None, "AR", MessageError("not HL7", hl7_code="100")))
    assert (ack.code, ack.control_id, ack.text) == ("AR", "", "not HL7")


@pytest.mark.parametrize("code", ["AA", "AE", "AR"])
def test_our_acks_pass_hl7apy_strict_validation(code: str) -> None:
    error = None if code == "AA" else MessageError("bad value", hl7_code="103", location="PID^1^8")
    text = build_ack(peek(hl7_message("C-44", charset="")), code, error, application="HIE", facility="CITY")
    parse_message(text, validation_level=VALIDATION_LEVEL.STRICT)  # raises on any structure error


def test_parse_ack_reads_msa_and_error_text() -> None:
    ack = parse_ack(
        "MSH|^~\\&|X|Y|HIE|C|20261122||ACK|A1|P|2.5\rMSA|AE|C-9\rERR||PID^1^3|204|E||||unknown patient\r"
    )
    assert (ack.code, ack.control_id, ack.text) == ("AE", "C-9", "unknown patient")
    with pytest.raises(MessageError):
        parse_ack("MSH|^~\\&|X|Y|HIE|C|20261122||ACK|A1|P|2.5\r")

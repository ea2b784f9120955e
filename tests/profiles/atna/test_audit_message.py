"""Audit messages from other systems, in the DICOM schema and in RFC 3881: the fields the repository
keeps, the patients they name, and the messages it refuses with the reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from profiles.atna.audit_message import AuditMessageError, read_audit_message
from tests.conftest import DATA

QUERY = (DATA / "atna" / "query-110112.xml").read_bytes()
RFC3881 = (DATA / "atna" / "rfc3881-export.xml").read_bytes()


def test_a_dicom_query_record_is_read() -> None:
    a = read_audit_message(QUERY)
    assert a.event_id == "110112^Query^DCM"
    assert a.event_type == "ITI-21^Patient Demographics Query^IHE Transactions"
    assert (a.action, a.outcome, a.outcome_description) == ("E", 0, None)
    assert a.event_time == datetime(2026, 12, 5, 1, 30, 0, 123456, tzinfo=UTC)
    assert (a.source_id, a.enterprise_site) == ("HOSP_B_EMR", "HOSP_B")
    assert a.user_id == "EMR_B|HOSP_B"  # the first requestor
    assert a.patient_ids == ["B200017^^^&1.2.156.112605.1.1&ISO"]
    assert a.participants[1] == {"user_id": "dr.zhao", "requestor": True, "user_name": "赵医生"}
    assert a.participants[2]["role"] == "110152"
    query = a.objects[1]
    assert (query["type"], query["role"], query["id_type"]) == (2, 24, "ITI-21")
    assert query["query"].startswith("UUJQ") and query["detail"] == {"MSH-10": "UTAwMDE="}
    row = a.row(7, channel_id="arr", message_id=9)
    assert row["patient_ids"] == "B200017^^^&1.2.156.112605.1.1&ISO"
    assert (row["channel_id"], row["message_id"], row["source_id"]) == ("arr", 9, "HOSP_B_EMR")


def test_an_rfc3881_record_is_read_too() -> None:
    a = read_audit_message(RFC3881)
    assert a.event_id == "110106^Export^DCM"
    assert (a.action, a.outcome, a.outcome_description) == ("R", 4, "partially delivered")
    assert a.patient_ids == ["C77", "C78"]
    assert a.participants == [{"user_id": "LIS_C", "requestor": True, "role": "110153"}]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no MSG"),
        (b"<AuditMessage>", "not well-formed"),
        (b"<ClinicalDocument/>", "a ClinicalDocument element, not an AuditMessage"),
        (b"<AuditMessage/>", "has no EventIdentification"),
        (QUERY.replace(b' AuditSourceID="HOSP_B_EMR"', b""), "no AuditSourceID"),
        (
            QUERY.replace(b' EventOutcomeIndicator="0"', b' EventOutcomeIndicator="ok"'),
            "EventOutcomeIndicator",
        ),
        (QUERY.replace(b"2026-12-05T09:30:00.1234567+08:00", b"yesterday"), "not an xs:dateTime"),
        (RFC3881.replace(b'UserID="LIS_C" ', b""), "has no UserID"),
        (RFC3881.replace(b'code="110106" ', b""), "EventID has no code"),
    ],
)
def test_what_is_not_an_audit_message_is_named(data: bytes, reason: str) -> None:
    with pytest.raises(AuditMessageError, match=reason):
        read_audit_message(data)


def test_entities_are_not_expanded_and_dtds_are_refused() -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><AuditMessage>&x;</AuditMessage>'
    with pytest.raises(AuditMessageError, match="document type declaration"):
        read_audit_message(evil)

"""Command sets: what pynetdicom sends is read, and our responses are what pydicom reads as a
C-STORE-RSP / C-ECHO-RSP (PS3.7 E.1: Implicit VR Little Endian, group length first)."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pynetdicom.dsutils import encode

from profiles.dicom import dimse

CT = "1.2.840.10008.5.1.4.1.1.2"
SOP = "1.2.826.0.1.3680043.8.498.1234567"


def read(raw: bytes) -> Dataset:
    return read_dataset(BytesIO(raw), is_implicit_VR=True, is_little_endian=True)


def store_request() -> bytes:
    command = Dataset()
    command.AffectedSOPClassUID = CT
    command.CommandField = 0x0001
    command.MessageID = 7
    command.Priority = 0
    command.CommandDataSetType = 0x0000
    command.AffectedSOPInstanceUID = SOP
    command.MoveOriginatorApplicationEntityTitle = "HOSP_B_PACS"
    body = encode(command, True, True)
    assert body is not None
    group = Dataset()
    group.CommandGroupLength = len(body)
    head = encode(group, True, True)
    assert head is not None
    return head + body


def test_a_store_request_is_read() -> None:
    command = dimse.decode(store_request())
    assert command == dimse.Command(
        field=dimse.C_STORE_RQ,
        message_id=7,
        has_dataset=True,
        sop_class_uid=CT,
        sop_instance_uid=SOP,
        move_originator="HOSP_B_PACS",
    )


def test_the_store_response_names_its_request_status_and_reason() -> None:
    request = dimse.decode(store_request())
    raw = dimse.store_rsp(request, 0xC000, "the dataset has no Study Instance UID (0020,000D)")
    rsp = read(raw)
    assert rsp.CommandGroupLength == len(raw) - 12  # the group length element itself is 12 bytes
    assert rsp.CommandField == 0x8001 and rsp.MessageIDBeingRespondedTo == 7
    assert rsp.CommandDataSetType == 0x0101 and rsp.Status == 0xC000
    assert rsp.ErrorComment == "the dataset has no Study Instance UID (0020,000D)"
    assert (rsp.AffectedSOPClassUID, rsp.AffectedSOPInstanceUID) == (CT, SOP)
    assert "ErrorComment" not in read(dimse.store_rsp(request, 0x0000))


def test_the_echo_response() -> None:
    request = dimse.Command(
        field=dimse.C_ECHO_RQ, message_id=3, has_dataset=False, sop_class_uid="1.2.840.10008.1.1"
    )
    rsp = read(dimse.echo_rsp(request))
    assert (rsp.CommandField, rsp.MessageIDBeingRespondedTo, rsp.Status) == (0x8030, 3, 0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\x00\x00\x01\x04\x00", "inside an element's header"),
        (b"\x08\x00\x16\x00\x04\x00\x00\x001.2.", "group 0008"),
        (b"\x00\x00\x10\x01\x02\x00\x00\x00\x01\x00", "no Command Field"),
        (b"\x00\x00\x00\x01\x08\x00\x00\x00\x01\x00", "longer than the command set"),
        (b"\x00\x00\x00\x01\x01\x00\x00\x00\x01", "2-byte unsigned short"),
    ],
)
def test_a_command_set_that_cannot_be_read(raw: bytes, message: str) -> None:
    with pytest.raises(dimse.CommandError, match=message):
        dimse.decode(raw)

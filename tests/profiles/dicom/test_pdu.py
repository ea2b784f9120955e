"""The receiver's PDU codec against pynetdicom's own, a second implementation of PS3.8: requests
pynetdicom encodes are read right, and what we answer pynetdicom reads back as we meant it."""

from __future__ import annotations

import struct

import pytest
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, A_RELEASE_RP, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import build_context

from profiles.dicom import pdu

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


def request_bytes(*, roles: bool = False, max_length: int = 16384) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = pdu.APPLICATION_CONTEXT
    primitive.calling_ae_title = "HOSP_A_PACS"
    primitive.called_ae_title = "HIE_PACS"
    contexts = [build_context(CT, [EXPLICIT, IMPLICIT]), build_context("1.2.840.10008.1.1")]
    for n, context in enumerate(contexts):
        context.context_id = 2 * n + 1
    primitive.presentation_context_definition_list = contexts
    info: list[object] = []
    length = MaximumLengthNotification()
    length.maximum_length_received = max_length
    info.append(length)
    uid = ImplementationClassUIDNotification()
    uid.implementation_class_uid = "1.2.826.0.1.3680043.9.9999"
    info.append(uid)
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = "HIS_PACS_1"
    info.append(version)
    if roles:
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = CT
        role.scu_role, role.scp_role = False, True
        info.append(role)
    primitive.user_information = info
    encoded = A_ASSOCIATE_RQ()
    encoded.from_primitive(primitive)
    return bytes(encoded.encode())


def test_a_request_is_read_with_its_contexts_and_user_information() -> None:
    raw = request_bytes(roles=True, max_length=32768)
    assert raw[0] == pdu.ASSOCIATE_RQ
    request = pdu.decode_associate_rq(raw[6:])
    assert (request.called_ae, request.calling_ae) == ("HIE_PACS", "HOSP_A_PACS")
    assert request.application_context == pdu.APPLICATION_CONTEXT
    assert [(c.id, c.abstract_syntax, c.transfer_syntaxes) for c in request.contexts] == [
        (1, CT, (EXPLICIT, IMPLICIT)),
        (3, "1.2.840.10008.1.1", (IMPLICIT, EXPLICIT, "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2")),
    ]
    assert request.max_length == 32768
    assert request.implementation_class_uid == "1.2.826.0.1.3680043.9.9999"
    assert request.implementation_version == "HIS_PACS_1"
    assert request.roles == {CT: (False, True)}


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (20, "shorter than its fixed fields"),
        (-3, "longer than what holds it"),
    ],
)
def test_a_request_cut_short_is_a_pdu_error(cut: int, message: str) -> None:
    raw = request_bytes()[6:]
    with pytest.raises(pdu.PduError, match=message):
        pdu.decode_associate_rq(raw[:cut])


def test_a_request_without_contexts_is_a_pdu_error() -> None:
    raw = bytearray(request_bytes()[6:])
    context = pdu.APPLICATION_CONTEXT.encode()
    body = bytes(raw[:68]) + bytes((0x10, 0, 0, len(context))) + context
    with pytest.raises(pdu.PduError, match="no presentation context"):
        pdu.decode_associate_rq(body)


def test_the_acceptance_reads_back_in_pynetdicom() -> None:
    request = pdu.decode_associate_rq(request_bytes()[6:])
    raw = pdu.associate_ac(
        request,
        [(1, pdu.ACCEPTED, EXPLICIT), (3, pdu.ABSTRACT_SYNTAX_NOT_SUPPORTED, IMPLICIT)],
        max_length=0,
        implementation_class_uid="1.2.826.0.1.3680043.9.3811.2.0.2",
        implementation_version="HIE_1",
    )
    decoded = A_ASSOCIATE_AC()
    decoded.decode(raw)
    assert decoded.called_ae_title == "HIE_PACS" and decoded.calling_ae_title == "HOSP_A_PACS"
    assert decoded.application_context_name == pdu.APPLICATION_CONTEXT
    results = [(c.context_id, c.result, c.transfer_syntax) for c in decoded.presentation_context]
    assert results == [(1, 0, EXPLICIT), (3, 3, IMPLICIT)]
    primitive = decoded.to_primitive()
    items = {type(i).__name__: i for i in primitive.user_information}
    assert items["MaximumLengthNotification"].maximum_length_received == 0
    uid = items["ImplementationClassUIDNotification"].implementation_class_uid
    assert uid == "1.2.826.0.1.3680043.9.3811.2.0.2"
    assert items["ImplementationVersionNameNotification"].implementation_version_name == "HIE_1"


def test_rejection_release_abort_and_data_read_back_in_pynetdicom() -> None:
    rejected = A_ASSOCIATE_RJ()
    rejected.decode(pdu.associate_rj(pdu.REJECTED_TRANSIENT, pdu.SERVICE_PROVIDER_PRESENTATION, 2))
    assert (rejected.result, rejected.source, rejected.reason_diagnostic) == (2, 3, 2)
    released = A_RELEASE_RP()
    released.decode(pdu.release_rp())
    assert released.pdu_type == 0x06
    aborted = A_ABORT_RQ()
    aborted.decode(pdu.abort(pdu.ABORT_PROVIDER, pdu.INVALID_PARAMETER))
    assert (aborted.source, aborted.reason_diagnostic) == (2, 6)
    raw = pdu.p_data(5, True, [b"abcd", b"ef"])
    first_length = struct.unpack(">I", raw[2:6])[0]
    first, second = P_DATA_TF(), P_DATA_TF()
    first.decode(raw[: 6 + first_length])
    second.decode(raw[6 + first_length :])
    assert first.presentation_data_value_items[0].data == b"\x01abcd"  # command, not last
    assert second.presentation_data_value_items[0].data == b"\x03ef"  # command, last
    assert first.presentation_data_value_items[0].presentation_context_id == 5

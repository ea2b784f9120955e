"""What ``hie hip upload`` sends is what the assessment's schema asks for: the document-register
message of every sample document validates against ``services/DocumentRegister.xsd``; and the
acknowledgement names the request it answers."""

from __future__ import annotations

import pytest
from lxml import etree

from ihe._xsd import XSD_DIR
from profiles.hip.messages import document_register
from profiles.hip.v3 import acknowledgement, read_wrapper
from tests.profiles.hip.conftest import CDA_DIR, V3

SCHEMA = etree.XMLSchema(etree.parse(str(XSD_DIR / "china-hip" / "services" / "DocumentRegister.xsd")))


@pytest.mark.parametrize("code", sorted(p.stem for p in CDA_DIR.glob("C*.xml")))
def test_the_register_message_of_each_sample_is_schema_valid(code: str) -> None:
    data = (CDA_DIR / f"{code}.xml").read_bytes()
    header = etree.fromstring(data)
    message = document_register(data, code=code, title=header.findtext(f"{{{V3}}}title") or "", header=header)
    root = etree.fromstring(message.encode("utf-8"))
    assert SCHEMA.validate(root), [e.message for e in SCHEMA.error_log]
    # the document's own patient (the 身份证 of its recordTarget): the sample patient, or his wife
    # in the labour and delivery records
    card = header.find(f".//{{{V3}}}recordTarget//{{{V3}}}id[@root='2.16.156.10011.1.3']")
    assert card is not None and card.get("extension") in ("320102198503120311", "320102198503120426")
    person = root.find(f".//{{{V3}}}patientPerson/{{{V3}}}id/{{{V3}}}item")
    assert person is not None and person.get("extension") == card.get("extension")


def test_the_acknowledgement_answers_its_request() -> None:
    request = read_wrapper(
        etree.fromstring(document_register(b"<x/>", code="C0053", title="出院小结").encode())
    )
    ack = etree.fromstring(acknowledgement(request, "AE", ["why", "warning: also"], device_id="PLATFORM"))
    target = ack.find(f"{{{V3}}}acknowledgement/{{{V3}}}targetMessage/{{{V3}}}id")
    assert target is not None and target.get("extension") == request.message_id
    assert ack.find(f"{{{V3}}}acknowledgement").get("typeCode") == "AE"  # type: ignore[union-attr]
    assert [t.text for t in ack.iter(f"{{{V3}}}text")] == ["why", "warning: also"]
    receiver = ack.find(f"{{{V3}}}receiver/{{{V3}}}device/{{{V3}}}id/{{{V3}}}item")
    assert receiver is not None and receiver.get("extension") == "HIS-0001"

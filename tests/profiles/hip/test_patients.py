"""个人信息注册 and 更新 (PatientInfoRegister, PatientInfoUpdate) through HIPMessageServer, over real
HTTP on SQLite and PostgreSQL: a hospital's V3 registration reaches the EMPI as a feed from its V3
sender, in the domain whose ``institution`` is its 组织机构代码, and is linked to the person of the
same ID-card number; what the EMPI refuses is answered AE with its reason and audited."""

from __future__ import annotations

import json

from lxml import etree
from sqlalchemy import select

from engine.store.schema import audit_events
from profiles.cda.schema import records as upload_records
from profiles.empi.schema import persons, records
from tests.engine.connectors.mllp_peers import rows
from tests.profiles.conftest import NID_A, ROOT
from tests.profiles.hip.conftest import V3, Hip, ack_of, result_of

A28 = (ROOT / "tests" / "data" / "mappings" / "v3-patient-register" / "a28-full.xml").read_text("utf-8")
HOSPITAL_A = "12320100MB1234567X"  # hospital-a's institution in config.yaml


def registration(
    *, org: str = HOSPITAL_A, sender: str = "HOSP-A-EMR", root: str = "PRPA_IN201311UV02"
) -> str:
    """The sample registration of 欧阳明轩 (local id D0012345), as hospital A's EMR sends it."""
    text = A28.replace("12320100MB0A12345K", org).replace("HIS_HOSP_D", sender)
    return text.replace("PRPA_IN201311UV02", root).split("?>", 1)[1]


def hospital_records(hip: Hip) -> list[tuple[str, str, str | None]]:
    with hip.rt.services.db.connect() as conn:
        return [
            (r.domain, r.value, r.national_id)
            for r in conn.execute(
                select(records.c.domain, records.c.value, persons.c.national_id)
                .join(persons, persons.c.id == records.c.person_id)
                .order_by(records.c.value)
            )
        ]


def counted(hip: Hip) -> list[tuple[str, str, str]]:
    """The upload statistics' records: institution, service, status."""
    with hip.rt.services.db.connect() as conn:
        r = upload_records
        found = conn.execute(select(r.c.institution, r.c.service, r.c.status).order_by(r.c.received_at))
        return [(x.institution, x.service, x.status) for x in found]


async def test_a_registration_joins_the_person_of_its_id_card_number(hip: Hip) -> None:
    answer = await hip.call("S0001", registration())
    code, details = ack_of(result_of(answer.content))
    assert code == "AA", details
    # the feed of the fixture (A10001 over ITI-8) and this one (D0012345 over HIP): one person
    assert hospital_records(hip) == [("hospital-a", "A10001", NID_A), ("hospital-a", "D0012345", NID_A)]
    feeds = [
        e
        for e in rows(hip.rt, audit_events, audit_events.c.channel_id == "hip")
        if e["event_type"].startswith("ITI-8")
    ]
    assert feeds and all(e["outcome"] == 0 for e in feeds)
    assert any("D0012345" in json.dumps(json.loads(e["objects"]), ensure_ascii=False) for e in feeds)
    # an update of the same patient, under its WS/T 846 name
    update = await hip.call("PatientInfoUpdate", registration(root="PRPA_IN201314UV02"))
    assert ack_of(result_of(update.content))[0] == "AA"
    assert len(hospital_records(hip)) == 2
    # both count as records hospital A uploaded (the upload statistics' 入库记录)
    assert counted(hip) == [
        (HOSPITAL_A, "PatientInfoRegister", "accepted"),
        (HOSPITAL_A, "PatientInfoUpdate", "accepted"),
    ]


async def test_what_the_empi_refuses_is_answered_ae(hip: Hip) -> None:
    cases = [
        (registration(org="12320100MB9999999Z"), "unknown assigning authority"),  # no domain has it
        (registration(sender="SOME-OTHER-SYSTEM"), "is not the identity source of domain hospital-a"),
        (registration().replace("320102198503120311", "320102198503120312"), "check character"),
    ]
    for message, reason in cases:
        code, details = ack_of(result_of((await hip.call("S0001", message)).content))
        assert code == "AE" and reason in details[0], details
    wrong = await hip.call("PatientInfoUpdate", registration())  # an update that is a registration
    code, details = ack_of(result_of(wrong.content))
    assert code == "AE" and "PatientInfoUpdate takes PRPA_IN201314UV02, not PRPA_IN201311UV02" in details[0]
    assert hospital_records(hip) == [("hospital-a", "A10001", NID_A)]
    refused = [
        e
        for e in rows(hip.rt, audit_events, audit_events.c.channel_id == "hip")
        if e["event_type"].startswith("ITI-8")
    ]
    assert len(refused) == 3 and all(
        e["outcome"] == 4 for e in refused
    )  # the wrong root never reached the EMPI
    # each refusal is a refused record; the wrong sender's is counted for the institution it named
    assert [status for _, _, status in counted(hip)] == ["rejected"] * 4
    assert counted(hip)[1][0] == HOSPITAL_A


MERGE = (
    (ROOT / "tests" / "data" / "mappings" / "v3-patient-merge" / "a40.xml")
    .read_text("utf-8")
    .split("?>", 1)[1]
)


async def test_a_merge_moves_the_duplicate_record_to_the_surviving_one(hip: Hip) -> None:
    assert ack_of(result_of((await hip.call("S0001", registration())).content))[0] == "AA"
    # the same patient registered again by mistake, under D0099999 and without the ID card
    duplicate = registration().replace("D0012345", "D0099999").replace("320102198503120311", "")
    assert ack_of(result_of((await hip.call("S0001", duplicate)).content))[0] == "AA"
    code, details = ack_of(result_of((await hip.call("S0003", MERGE)).content))
    assert code == "AA", details
    with hip.rt.services.db.connect() as conn:
        status = dict(
            conn.execute(
                select(records.c.value, records.c.status).where(records.c.domain == "hospital-a")
            ).all()
        )
    assert status["D0012345"] == "active" and status["D0099999"] != "active"
    # a merge of a record the EMPI does not know is refused
    unknown = MERGE.replace("D0099999", "D0000000")
    code, details = ack_of(result_of((await hip.call("PatientInfoMerge", unknown)).content))
    assert code == "AE" and "D0000000" in details[0]


PL04 = ROOT.parent / "shared" / "corpus" / "china-hip" / "evaluation"


def assessment_query(*, card: str = "", local: str = "", name: str = "", sex: str = "") -> str:
    """The assessment's EMR-PL-04 个人信息查询 template (T01), its parameters filled, sent by hospital A."""
    text = (PL04 / "EMR-PL-04-个人信息查询服务-T01.xml").read_text("utf-8")
    text = text.replace('extension="a137148b-e300-42bd-aa13-41d47262d1a9"', 'extension="HOSP-A-EMR"')
    text = text.replace(
        '<id root="2.16.156.10011.2.5.1.4" extension="0020109112"/>',
        f'<id root="2.16.156.10011.2.5.1.4" extension="{local}"/>',
    )
    text = text.replace(
        '<item root="2.16.156.10011.1.3" extension="0020109112"/>',
        f'<item root="2.16.156.10011.1.3" extension="{card}"/>',
    )
    text = text.replace(
        '<value code="" codeSystem="2.16.156.10011.2.3.3.4">',
        f'<value code="{sex}" codeSystem="2.16.156.10011.2.3.3.4">',
    )
    return text.replace('<part value=""/>', f'<part value="{name}"/>')


def subjects(response: bytes) -> tuple[etree._Element, list[etree._Element]]:
    answer = result_of(response)
    assert answer.tag == f"{{{V3}}}PRPA_IN201306UV02", etree.tostring(answer)[:300]
    return answer, answer.findall(
        f".//{{{V3}}}subject/{{{V3}}}registrationEvent/{{{V3}}}subject1/{{{V3}}}patient"
    )


async def test_the_assessment_s_patient_query_finds_the_patient(hip: Hip) -> None:
    response = await hip.call("S0004", assessment_query(card=NID_A))
    answer, found = subjects(response.content)
    assert answer.find(f"{{{V3}}}acknowledgement").get("typeCode") == "AA"  # type: ignore[union-attr]
    (patient,) = found
    person = patient.find(f"{{{V3}}}patientPerson")
    assert person is not None
    assert person.find(f"{{{V3}}}id/{{{V3}}}item").get("extension") == NID_A  # type: ignore[union-attr]
    assert person.find(f"{{{V3}}}name/{{{V3}}}item/{{{V3}}}part").get("value") == "欧阳明轩"  # type: ignore[union-attr]
    assert person.find(f"{{{V3}}}administrativeGenderCode").get("code") == "1"  # type: ignore[union-attr]
    assert person.find(f"{{{V3}}}birthTime").get("value") == "19850312"  # type: ignore[union-attr]
    local = patient.find(f"{{{V3}}}id/{{{V3}}}item")
    assert local is not None and (local.get("extension"), local.get("assigningAuthorityName")) == (
        "A10001",
        HOSPITAL_A,
    )
    ack = answer.find(f".//{{{V3}}}queryAck")
    assert ack is not None and ack.find(f"{{{V3}}}queryResponseCode").get("code") == "OK"  # type: ignore[union-attr]
    assert ack.find(f"{{{V3}}}queryId").get("extension") == "22a0f9e0-4454-11dc-a6be-3603d6866807"  # type: ignore[union-attr]
    # by the hospital's own id, by name and sex; nobody for another number (the F01 case)
    # hospital A's id fed over ITI-8: the same domain as its V3 patient ids
    assert len(subjects((await hip.call("S0004", assessment_query(local="A10001"))).content)[1]) == 1
    assert ack_of(result_of((await hip.call("S0001", registration())).content))[0] == "AA"
    assert len(subjects((await hip.call("S0004", assessment_query(local="D0012345"))).content)[1]) == 1
    assert (
        len(subjects((await hip.call("S0004", assessment_query(name="欧阳明轩", sex="1"))).content)[1]) == 1
    )
    nobody, none = subjects((await hip.call("S0004", assessment_query(card="11010519491231002X"))).content)
    assert none == [] and nobody.find(f".//{{{V3}}}queryResponseCode").get("code") == "NF"  # type: ignore[union-attr]
    audited = [
        e
        for e in rows(hip.rt, audit_events, audit_events.c.channel_id == "hip")
        if e["event_type"].startswith("ITI-21")
    ]
    assert len(audited) == 5 and NID_A in audited[0]["patient_ids"]


async def test_an_empty_query_is_answered_ae(hip: Hip) -> None:
    code, details = ack_of(result_of((await hip.call("S0004", assessment_query())).content))
    assert code == "AE" and "no parameter with a value" in details[0]

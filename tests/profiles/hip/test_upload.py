"""Hospitals uploading WS/T 500 documents through HIPMessageServer, over real HTTP (SQLite and
PostgreSQL): zeep against the published WSDL, both message generations, eleven document types,
every bad input the issue lists answered AE (or a SOAP fault for what is not a call) and recorded."""

from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import select

from engine.cli.main import main
from engine.store.schema import deliveries, messages
from profiles.empi.schema import persons, records
from profiles.xds.schema import documents, repository_documents
from tests.engine.connectors.mllp_peers import rows
from tests.profiles.cda.test_validator import BREAKING, edit
from tests.profiles.conftest import NID_A
from tests.profiles.hip.conftest import CDA_DIR, V3, Hip, ack_of, call_envelope, register_message, result_of

C0053 = (CDA_DIR / "C0053.xml").read_bytes()


def registered(hip: Hip) -> list[dict[str, object]]:
    with hip.rt.services.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(documents))]


async def test_zeep_uploads_a_discharge_summary_which_is_registered_in_xds(hip: Hip) -> None:
    # zeep blocks: it runs on a thread while the engine serves on this loop
    client = await asyncio.to_thread(hip.zeep_client)  # the WSDL spyne publishes, from the engine
    answer = await asyncio.to_thread(
        client.service.HIPMessageServer, action="S0014", message=register_message(C0053)
    )
    code, details = ack_of(etree.fromstring(answer.encode("utf-8")))
    assert code == "AA", details
    assert details[0].startswith("registered as 2.25.")
    (entry,) = registered(hip)
    assert entry["patient_id"] == f"{NID_A}^^^&2.16.156.10011.1.3&ISO"
    assert entry["type_code"] == "C0053^^2.16.156.10011.2.4" and entry["status"] == "Approved"
    assert entry["unique_id"] == details[0].removeprefix("registered as ")
    # the repository holds the document byte for byte
    with hip.rt.services.db.connect() as conn:
        (held,) = conn.execute(select(repository_documents)).mappings().all()
    assert held["hash"] == hashlib.sha1(C0053).hexdigest() and held["size"] == len(C0053)
    (upload,) = hip.uploads()
    assert upload["status"] == "accepted" and upload["document_code"] == "C0053"
    assert upload["institution"] == "12320100MB1234567X" and upload["xds_unique_id"] == entry["unique_id"]
    # the same document again: accepted, registered once
    assert (await hip.upload(C0053))[0] == "AA"
    assert len(registered(hip)) == 1 and len(hip.uploads()) == 2


async def test_every_sample_document_type_is_accepted(hip: Hip) -> None:
    codes = sorted(p.stem for p in CDA_DIR.glob("C*.xml"))
    for code in codes:
        ack, details = await hip.upload((CDA_DIR / f"{code}.xml").read_bytes(), code=code)
        assert ack == "AA", (code, details)
    assert {r["type_code"].split("^")[0] for r in registered(hip)} == set(codes)
    assert all(u["status"] == "accepted" for u in hip.uploads())


async def test_a_rejected_document_is_answered_with_its_errors_and_kept_with_its_report(hip: Hip) -> None:
    broken = edit("C0053", BREAKING["header.patient-name"][1])
    ack, details = await hip.upload(broken)
    assert ack == "AE" and "header.patient-name" in details[0] and "line" in details[0]
    assert registered(hip) == []
    (upload,) = hip.uploads()
    assert upload["status"] == "rejected" and upload["rules"] == "header.patient-name"
    assert '"rule": "header.patient-name"' in upload["report"]
    (delivery,) = rows(hip.rt, deliveries, deliveries.c.channel_id == "hip")
    assert delivery["status"] == "errored" and "header.patient-name" in delivery["last_error"]


async def test_the_older_message_generation_and_soap_1_1(hip: Hip) -> None:
    older = (
        "<ProvideAndRegisterDocumentSetRequest><ID extension='20261204-0001'/>"
        "<Document id='DOC-0001'><Content>" + base64.b64encode(C0053).decode() + "</Content></Document>"
        "</ProvideAndRegisterDocumentSetRequest>"
    )
    response = await hip.call("ProvideAndRegisterDocumentSet-b", older, soap11=True)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert b"http://schemas.xmlsoap.org/soap/envelope/" in response.content
    assert ack_of(result_of(response.content))[0] == "AA"


@pytest.mark.parametrize(
    ("action", "message", "reason"),
    [
        ("S9999", register_message(C0053), "action 'S9999' names no service"),
        ("S0015", "<RCMR_IN000031UV01 xmlns='urn:hl7-org:v3'/>", "DocumentRetrieve (S0015) is not provided"),
        ("S0014", "这不是 XML", "message is not well-formed XML"),
        (
            "S0014",
            '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><RCMR_IN000002UV02 xmlns="urn:hl7-org:v3">'
            "&e;</RCMR_IN000002UV02>",
            "(DTD) is not allowed",
        ),
        (
            "S0014",
            register_message(C0053).replace('originalText value="', 'originalText value="%%'),
            "not base64",
        ),
        ("S0014", register_message(b"%PDF-1.7 not a CDA"), "xml.not-well-formed"),
        ("S0014", register_message(C0053.replace(b'code="C0053"', b'code="C0099"')), "document.code"),
        ("S0014", register_message(C0053, code="C0049"), "message.document-code"),
        (
            "S0014",  # a patient the EMPI does not know, from a system that may not register them
            register_message(C0053.replace(NID_A.encode(), b"11010519491231002X"), sender="SOME-SYSTEM"),
            "not known to the master patient index, and cannot be registered",
        ),
        ("S0014", "<PRPA_IN201311UV02 xmlns='urn:hl7-org:v3'/>", "is RCMR_IN000002UV02"),
    ],
    ids=[
        "unknown-action",
        "service-not-provided",
        "not-xml",
        "xxe",
        "wrong-base64",
        "not-a-cda",
        "unknown-document-type",
        "code-disagrees",
        "unknown-patient",
        "wrong-message",
    ],
)
async def test_bad_input_is_answered_ae_with_the_reason_and_recorded(
    hip: Hip, action: str, message: str, reason: str
) -> None:
    response = await hip.call(action, message)
    assert response.status_code == 200, response.text
    mcci = result_of(response.content)
    code, details = ack_of(mcci)
    assert code == "AE" and reason in details[0], details
    assert mcci.find(f"{{{V3}}}interactionId").get("extension") == "MCCI_IN000002UV01"  # type: ignore[union-attr]
    (delivery,) = rows(hip.rt, deliveries, deliveries.c.channel_id == "hip")
    assert delivery["status"] == "errored" and reason in (delivery["last_error"] or "")
    assert registered(hip) == []
    # the listener goes on
    assert (await hip.upload(C0053))[0] == "AA"


async def test_a_50_mb_document_is_answered_ae(hip: Hip, store_url: str) -> None:
    if not store_url.startswith("sqlite"):
        pytest.skip("the store plays no part; once is enough")
    huge = C0053.replace(
        b"</ClinicalDocument>", b"<!--" + b"x" * (50 * 1024 * 1024) + b"--></ClinicalDocument>"
    )
    ack, details = await hip.upload(huge)
    assert ack == "AE" and "xml.too-large" in details[0] and "limit of 20,971,520" in details[0]
    (upload,) = hip.uploads()
    assert upload["status"] == "rejected" and upload["rules"] == "xml.too-large"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'<!DOCTYPE x [<!ENTITY e "e">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>',
            "DTD",
        ),
        (b"not xml at all", "not well-formed"),
        (
            b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><Other/></s:Body></s:Envelope>',
            "not a HIPMessageServer request",
        ),
    ],
    ids=["dtd", "not-xml", "other-operation"],
)
async def test_what_is_not_a_call_is_a_soap_fault_and_an_errored_record(
    hip: Hip, body: bytes, reason: str
) -> None:
    response = await hip.client.post(hip.url, content=body, headers={"Content-Type": "application/soap+xml"})
    assert (
        response.status_code == 400 and b"Fault" in response.content and reason.encode() in response.content
    )
    (record,) = rows(hip.rt, messages, messages.c.channel_id == "hip")
    assert record["status"] == "errored" and reason in record["error"]
    assert (await hip.upload(C0053))[0] == "AA"


async def test_soap_1_1_and_the_wsdl(hip: Hip) -> None:
    wsdl = await hip.client.get(f"{hip.url}?wsdl")
    assert wsdl.status_code == 200 and b'name="HIPMessageServer"' in wsdl.content
    assert hip.url.encode() in wsdl.content  # its address is where the client reached it
    response = await hip.call("DocumentRegister", register_message(C0053), soap11=True)
    assert ack_of(result_of(response.content))[0] == "AA"
    assert call_envelope("x", "<y/>").startswith(b"<s:Envelope")


async def test_uploads_are_counted_in_the_monthly_report(hip: Hip, tmp_path: Path) -> None:
    assert (await hip.upload(C0053))[0] == "AA"
    assert (await hip.upload(edit("C0053", BREAKING["document.template-id"][1])))[0] == "AE"
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    out = tmp_path / "uploads.csv"
    args = ["report", "uploads", "--month", month, "--csv", str(out), "--config", str(hip.config)]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8-sig") as handle:
        (row,) = [r for r in csv.DictReader(handle) if r["机构代码 institution"] == "12320100MB1234567X"]
    assert row["完整率 completeness"] == "33%"  # of C0002, C0049, C0053 (config.yaml), only C0053
    counts = [row[h] for h in ("收到文档 received", "通过 accepted", "拒收 rejected", "上传天数 upload days")]
    assert counts == ["2", "1", "1", "1"]
    assert (row["门诊人次 outpatient"], row["出院人次 discharges"]) == ("0", "1")
    assert row["主要拒收原因 top rejection reasons"] == "document.template-id 1"


async def test_hie_hip_upload_and_call(hip: Hip, tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(edit("C0053", BREAKING["header.patient-name"][1]))
    files = [str(CDA_DIR / "C0053.xml"), str(CDA_DIR / "C0007.xml"), str(broken)]
    args = ["hip", "upload", *files, "--sender", "HOSP-A-EMR", "--config", str(hip.config)]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 1, result.output
    assert result.output.count(": AA") == 2 and "broken.xml: AE" in result.output
    assert "header.patient-name" in result.output and "registered as 2.25." in result.output
    assert "schema" not in result.output  # what hie hip sends meets the assessment's schema
    args = ["hip", "upload", str(CDA_DIR / "C0053.xml"), "--config", str(hip.config)]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)  # the default sender
    assert result.exit_code == 0 and "schema" not in result.output, result.output
    message = tmp_path / "query.xml"
    message.write_text("<PRPA_IN201305UV02 xmlns='urn:hl7-org:v3'/>", "utf-8")
    args = ["hip", "call", "S9999", str(message), "--config", str(hip.config)]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 1 and "AE" in result.output and "S9999" in result.output


LIN = "320508199007210240"  # 林秀英, 1990-07-21, female: not known to the EMPI


def of_another_patient(document: bytes = C0053) -> bytes:
    """The sample for 林秀英, whom the EMPI does not know yet."""
    return (
        document.replace(NID_A.encode(), LIN.encode())
        .replace("欧阳明轩".encode(), "林秀英".encode())
        .replace(
            b'code="1" codeSystem="2.16.156.10011.2.3.3.4"', b'code="2" codeSystem="2.16.156.10011.2.3.3.4"'
        )
        .replace("男性".encode(), "女性".encode())
        .replace(b'birthTime value="19850312"', b'birthTime value="19900721"')
    )


async def test_an_unknown_patient_is_registered_from_their_document(hip: Hip) -> None:
    code, details = await hip.upload(of_another_patient())
    assert code == "AA", details
    assert "the patient was registered in the master patient index" in details
    with hip.rt.services.db.connect() as conn:
        fed = conn.execute(
            select(records.c.domain, records.c.value, persons.c.national_id)
            .join(persons, persons.c.id == records.c.person_id)
            .where(persons.c.national_id == LIN)
        ).all()
    # hospital A's 健康档案号 (the first of its patient_id_roots the document carries) in its domain
    assert [tuple(r) for r in fed] == [("hospital-a", "320102000000123456", LIN)]
    (entry,) = [e for e in registered(hip) if e["patient_id"].startswith(LIN)]
    assert entry["status"] == "Approved"
    # the next document of the same patient needs no registration
    again = await hip.upload(
        of_another_patient((CDA_DIR / "C0049.xml").read_bytes()), code="C0049", title="出院记录"
    )
    assert again[0] == "AA" and "the patient was registered in the master patient index" not in again[1]


async def test_a_patient_registered_for_a_refused_document_is_not_kept(hip: Hip) -> None:
    assert (await hip.upload(C0053))[0] == "AA"
    # another patient's document under the 文档流水号 already registered: XDSNonIdenticalHash
    code, details = await hip.upload(of_another_patient())
    assert code == "AE" and "XDSNonIdenticalHash" in details[0], details
    with hip.rt.services.db.connect() as conn:
        assert conn.execute(select(persons.c.id).where(persons.c.national_id == LIN)).all() == []

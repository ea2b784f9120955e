"""The console's documents section over real HTTP against a running engine (SQLite and PostgreSQL):
documents put in through the real ITI-41 Provide and Register (and one ITI-42 Register of a document
held elsewhere), a replacement that deprecates its original, then a patient's documents found through
the EMPI by any of the person's ids, one entry with its associations, a document's text, the audit
records of each view, and the refusals."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import select

from engine.config import load_config
from engine.console import accounts
from engine.runtime import Runtime
from engine.store.schema import audit_events
from ihe._ebxml import (
    FOLDER_CODES,
    FOLDER_NODE,
    FOLDER_PATIENT_ID,
    FOLDER_UNIQUE_ID,
    HAS_MEMBER,
    LCM,
    RIM,
    put_slot,
)
from ihe._soap import build_envelope
from ihe.iti41 import DocumentMetadata, provide_request
from profiles.xds import console as xds_console
from profiles.xds.config import XdsConfig
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import hl7_send
from tests.profiles.conftest import NID_A, NID_B, A, B, deploy

ITI = "urn:ihe:iti:2007:"
SOAP = "application/soap+xml; charset=UTF-8"
ROLES = ("admin", "integrator", "auditor", "viewer")
A_OID, B_OID, NATIONAL_OID = "1.2.156.112604.1.1", "1.2.156.112605.1.1", "2.16.156.10011.1.3"
SOURCE_ID = "1.2.156.112604.1.1.99"  # hospital A's document source (made up)
ELSEWHERE = "1.2.156.112699.9.9"  # another repository's uniqueId
LOINC = "2.16.840.1.113883.6.1"
SUCCESS = b"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"


def cx(value: str, oid: str) -> str:
    return f"{value}^^^&{oid}&ISO"


def cda(title: str, *, encoding: str = "UTF-8") -> bytes:
    """A small CDA document (its title and a section), in ``encoding`` as its declaration says."""
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">\n'
        f"  <title>{title}</title>\n"
        "  <component><structuredBody><component><section>\n"
        "    <text>患者一般情况良好。&lt;script&gt;alert(1)&lt;/script&gt;</text>\n"
        "  </section></component></structuredBody></component>\n"
        "</ClinicalDocument>\n"
    ).encode(encoding)


def feed(local_id: str, national_id: str, name: str, born: str, *, hospital: str = "A") -> bytes:
    """ITI-8 A04 from hospital A's (or B's) HIS: a patient with its local id and national ID."""
    app, authority = ("HIS_A", A) if hospital == "A" else ("HIS_B", B)
    return (
        f"MSH|^~\\&|{app}|HOSP_{hospital}|PIX|CITY_HIE|20261203090000||ADT^A04^ADT_A01|F-{local_id}|P|2.5"
        f"|||||CHN|UNICODE UTF-8\rEVN|A04|20261203090000\r"
        f"PID|1||{local_id}^^^{authority}^PI~{national_id}^^^&{NATIONAL_OID}&ISO^NI||{name}||{born}|M\rPV1|1|O\r"
    ).encode()


def provide_body(
    meta: DocumentMetadata, content: bytes, *, service: tuple[str, str] | None = None
) -> etree._Element:
    body = provide_request(meta, inline=content)
    entry = body.find(f".//{{{RIM}}}ExtrinsicObject")
    assert entry is not None
    if service is not None:
        put_slot(entry, "serviceStartTime", service[0])
        put_slot(entry, "serviceStopTime", service[1])
    return body


def provide_envelope(meta: DocumentMetadata, content: bytes, **kw: Any) -> bytes:
    """ITI-41 Provide and Register Document Set-b, plain SOAP 1.2 with the document inline (base64)."""
    return build_envelope(
        provide_body(meta, content, **kw), action=f"{ITI}ProvideAndRegisterDocumentSet-b", relates_to=None
    )


def register_envelope(
    meta: DocumentMetadata, content: bytes, *, folder: tuple[str, str] | None = None
) -> bytes:
    """ITI-42 Register Document Set-b of a document another repository holds."""
    body = provide_body(meta, content)
    entry = body.find(f".//{{{RIM}}}ExtrinsicObject")
    assert entry is not None
    put_slot(entry, "hash", hashlib.sha1(content).hexdigest())
    put_slot(entry, "size", str(len(content)))
    put_slot(entry, "repositoryUniqueId", ELSEWHERE)
    submit = body.find(f"{{{LCM}}}SubmitObjectsRequest")
    assert submit is not None
    if folder is not None:
        add_folder(submit, meta.patient_id, *folder)
    return build_envelope(submit, action=f"{ITI}RegisterDocumentSet-b", relates_to=None)


def add_folder(submit: etree._Element, patient: str, title: str, unique_id: str) -> None:
    """A Folder in the submission holding its document (HasMember from the SubmissionSet and to it)."""
    objects = submit.find(f"{{{RIM}}}RegistryObjectList")
    assert objects is not None
    r = f"{{{RIM}}}"
    folder = etree.SubElement(objects, f"{r}RegistryPackage", id="Folder01")
    etree.SubElement(etree.SubElement(folder, f"{r}Name"), f"{r}LocalizedString", value=title)
    code = etree.SubElement(
        folder, f"{r}Classification", id="FolderCode01", classificationScheme=FOLDER_CODES,
        classifiedObject="Folder01", nodeRepresentation="11506-3",
    )  # fmt: skip
    put_slot(code, "codingScheme", LOINC)
    for n, (scheme, value) in enumerate(((FOLDER_UNIQUE_ID, unique_id), (FOLDER_PATIENT_ID, patient))):
        etree.SubElement(
            folder, f"{r}ExternalIdentifier", id=f"FolderId0{n}", registryObject="Folder01",
            identificationScheme=scheme, value=value,
        )  # fmt: skip
    etree.SubElement(
        objects,
        f"{r}Classification",
        id="Folder01Class",
        classifiedObject="Folder01",
        classificationNode=FOLDER_NODE,
    )
    for n, (source, target) in enumerate((("SubmissionSet01", "Folder01"), ("Folder01", "Document01"))):
        etree.SubElement(
            objects, f"{r}Association", id=f"FolderMember0{n}", associationType=HAS_MEMBER,
            sourceObject=source, targetObject=target,
        )  # fmt: skip


def meta(patient: str, title: str, created: str, **kw: Any) -> DocumentMetadata:
    return DocumentMetadata(
        patient_id=patient,
        source_id=SOURCE_ID,
        title=title,
        creation_time=created,
        author_person="^王^建国^^^^^^&1.2.156.112604.1.1.2&ISO",
        author_institution="某市第一人民医院^^^^^&1.2.156.112604.1&ISO^^^^12320100MB1234567X",
        **kw,
    )


DISCHARGE = f"18842-5^^{LOINC}^^出院小结"
OUTPATIENT = f"11506-3^^{LOINC}^^门(急)诊病历"
LAB = f"11502-2^^{LOINC}^^检验报告"


@dataclass
class Console:
    rt: Runtime
    base: str
    repository: str
    registry: str
    tokens: dict[str, str]
    unique_id: str  # the repository here
    uids: dict[str, str]  # name -> document uniqueId

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30)

    def audit(self, event_code: str, user: str) -> list[dict[str, Any]]:
        with self.rt.services.db.connect() as conn:
            found = conn.execute(
                select(audit_events)
                .where(audit_events.c.event_id.like(event_code + "^%"), audit_events.c.user_id == user)
                .order_by(audit_events.c.id)
            ).all()
        return [dict(r._mapping) for r in found]


async def submit(client: httpx.AsyncClient, url: str, envelope: bytes) -> None:
    answer = await client.post(url, content=envelope, headers={"Content-Type": SOAP})
    assert answer.status_code == 200 and SUCCESS in answer.content, answer.text


PATIENT_A = cx("A1001", A_OID)  # 欧阳明轩 at hospital A; also known by NID_A


async def entry_uuid_of(c: httpx.AsyncClient, unique_id: str) -> str:
    found = (await c.get("/api/v1/documents", params={"patient_id": PATIENT_A})).json()["documents"]
    (uuid,) = [d["entry_uuid"] for d in found if d["unique_id"] == unique_id]
    return str(uuid)


@pytest.fixture
async def console(tmp_path: Path, store_url: str) -> AsyncIterator[Console]:
    _, ports = deploy(tmp_path, store_url, ("pix-feed", "xds-registry", "xds-repository"))
    port = free_port()
    (tmp_path / "channels" / "console.yaml").write_text(
        f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n", encoding="utf-8"
    )
    app = load_config(tmp_path / "config.yaml")
    async with running(app) as rt, httpx.AsyncClient(timeout=30) as client:
        assert rt.services is not None
        db, ids = rt.services.db, rt.services.ids
        issued = {}
        for role in ROLES:
            accounts.add_user(db, ids, username=role, password="correct horse battery", role=role, actor="t")
            issued[role] = accounts.issue_token(db, ids, username=role, days=1, actor="t")[1]
        answers = await hl7_send(
            ports["pix-feed"],
            feed("A1001", NID_A, "欧阳^明轩", "19850312"),
            feed("B2002", NID_B, "林^秀英", "19900721", hospital="B"),
        )
        assert all(b"MSA|AA" in a for a in answers)
        repository = f"http://127.0.0.1:{ports['xds-repository']}/xds/repository"
        registry = f"http://127.0.0.1:{ports['xds-registry']}/xds/registry"
        uids = {}
        docs = [
            # name, patient id it is registered under, title, creationTime, class/type, encoding
            ("discharge", PATIENT_A, "出院小结", "20261120083000", DISCHARGE, "GB2312"),
            ("outpatient", cx(NID_A, NATIONAL_OID), "门诊病历", "20261125", OUTPATIENT, "UTF-8"),
            ("lab", PATIENT_A, "血常规检验报告", "20261128101500", LAB, "UTF-8"),
            ("other", cx("B2002", B_OID), "林秀英的出院小结", "20261129", DISCHARGE, "UTF-8"),
        ]
        for name, patient, title, created, code, encoding in docs:
            m = meta(patient, title, created, class_code=code, type_code=code)
            await submit(
                client,
                repository,
                provide_envelope(m, cda(title, encoding=encoding), service=("202611190800", "202611201000")),
            )
            uids[name] = m.unique_id
        c = Console(
            rt, f"http://127.0.0.1:{port}", repository, registry, issued,
            app.section("xds", XdsConfig).repository_unique_id, uids,
        )  # fmt: skip
        # a corrected lab report replaces the first (RPLC): the first is deprecated
        async with c.client("admin") as admin:
            first = await entry_uuid_of(admin, uids["lab"])
        m = meta(
            PATIENT_A, "血常规检验报告(更正)", "20261130090000", class_code=LAB, type_code=LAB, replaces=first
        )
        await submit(client, repository, provide_envelope(m, cda("血常规检验报告(更正)")))
        uids["lab2"] = m.unique_id
        # a radiology report registered here, held by another hospital's repository (ITI-42)
        m = meta(PATIENT_A, "胸部CT报告", "20261101", class_code=LAB, type_code=LAB)
        folder = ("2026年11月住院", "2.25.7719023412")
        await submit(client, registry, register_envelope(m, cda("胸部CT报告"), folder=folder))
        uids["elsewhere"] = m.unique_id
        yield c


async def test_a_patients_documents_are_found_by_any_of_the_persons_ids(console: Console) -> None:
    c, uids = console, console.uids
    async with c.client("integrator") as integrator:
        r = await integrator.get("/api/v1/documents", params={"patient_id": "A1001", "domain": "hospital-a"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["patient"]["patient_id"] == PATIENT_A and body["patient"]["known"] is True
        found = body["documents"]
        # every entry of the person (the national-ID one too), newest first; not the other patient's
        assert [d["unique_id"] for d in found] == [
            uids["lab2"], uids["lab"], uids["outpatient"], uids["discharge"], uids["elsewhere"]
        ]  # fmt: skip
        assert body["next_before"] is None
        by_uid = {d["unique_id"]: d for d in found}
        assert [by_uid[uids[n]]["status"] for n in ("lab2", "lab", "outpatient")] == [
            "Approved", "Deprecated", "Approved"
        ]  # fmt: skip
        assert by_uid[uids["outpatient"]]["patient_id"] == cx(NID_A, NATIONAL_OID)

        d = by_uid[uids["discharge"]]
        content = cda("出院小结", encoding="GB2312")
        assert d["title"] == "出院小结"
        assert d["class_code"] == {"code": "18842-5", "scheme": LOINC, "display": "出院小结"}
        assert d["type_code"]["display"] == "出院小结"
        assert d["format_code"]["code"] == "urn:ihe:iti:xds:2017:mimeTypeSufficient"
        assert d["healthcare_facility_type"]["display"] == "Hospital"
        assert d["confidentiality"] == [
            {"code": "N", "scheme": "2.16.840.1.113883.5.25", "display": "Normal"}
        ]
        assert d["creation_time"] == "2026-11-20T08:30:00Z"
        assert d["service_start_time"] == "2026-11-19T08:00Z"
        assert d["service_stop_time"] == "2026-11-20T10:00Z"
        assert d["author_institution"] == "某市第一人民医院" and d["author_person"] == "王建国"
        assert d["mime_type"] == "text/xml" and d["size"] == len(content)
        assert d["hash"] == hashlib.sha1(content).hexdigest()
        assert d["repository_unique_id"] == c.unique_id and d["held_here"] is True
        assert d["submission_set"]["source_id"] == SOURCE_ID
        assert d["submission_set"]["unique_id"].startswith("2.25.")
        assert re.match(r"^\d{4}-\d{2}-\d{2}T", d["submission_set"]["submission_time"])
        assert d["folders"] == []
        assert by_uid[uids["outpatient"]]["creation_time"] == "2026-11-25"
        elsewhere = by_uid[uids["elsewhere"]]
        assert elsewhere["repository_unique_id"] == ELSEWHERE and elsewhere["held_here"] is False
        assert [(f["title"], f["unique_id"]) for f in elsewhere["folders"]] == [
            ("2026年11月住院", "2.25.7719023412")
        ]

        # the same person by its national ID (the default domain), and by the affinity-domain id
        by_card = (await integrator.get("/api/v1/documents", params={"patient_id": NID_A})).json()
        assert [x["entry_uuid"] for x in by_card["documents"]] == [x["entry_uuid"] for x in found]
        by_cx = (await integrator.get("/api/v1/documents", params={"patient_id": PATIENT_A})).json()
        assert len(by_cx["documents"]) == 5
        by_oid = await integrator.get("/api/v1/documents", params={"patient_id": "A1001", "domain": A_OID})
        assert len(by_oid.json()["documents"]) == 5

        async def uids_of(**query: str) -> list[str]:
            r = await integrator.get("/api/v1/documents", params={"patient_id": PATIENT_A, **query})
            assert r.status_code == 200, r.text
            return [x["unique_id"] for x in r.json()["documents"]]

        assert uids["lab"] not in await uids_of(status="approved")
        assert await uids_of(status="deprecated") == [uids["lab"]]
        assert await uids_of(class_code="18842-5") == [uids["discharge"]]
        assert await uids_of(type_code=f"11506-3^^{LOINC}") == [uids["outpatient"]]
        assert await uids_of(since="2026-11-25", until="2026-11-29") == [uids["lab"], uids["outpatient"]]

        # pages of two: every entry once, in the same order
        pages: list[str] = []
        before = ""
        while True:
            query = {"patient_id": PATIENT_A, "limit": "2", **({"before": before} if before else {})}
            page = (await integrator.get("/api/v1/documents", params=query)).json()
            pages += [x["unique_id"] for x in page["documents"]]
            if page["next_before"] is None:
                break
            before = page["next_before"]
        assert pages == [x["unique_id"] for x in found]

        # the other patient sees only their own
        other = (await integrator.get("/api/v1/documents", params={"patient_id": NID_B})).json()
        assert [x["unique_id"] for x in other["documents"]] == [uids["other"]]
        # an id the EMPI does not know: nothing, and said so
        unknown = (
            await integrator.get("/api/v1/documents", params={"patient_id": "110101199003077777"})
        ).json()
        assert unknown["documents"] == [] and unknown["patient"]["known"] is False

    # each search is audited as a Query naming the patient (and the ids its entries were under)
    queries = c.audit("110112", "integrator")
    assert len(queries) == 14
    first = queries[0]
    assert first["action"] == "E" and first["event_type"] == "documents^hie-console"
    assert PATIENT_A in str(first["patient_ids"]) and cx(NID_A, NATIONAL_OID) in str(first["patient_ids"])
    assert '"network_access_point": "127.0.0.1"' in str(first["participants"])
    assert (
        "domain=hospital-a"
        in base64.b64decode(
            next(o for o in json.loads(first["objects"]) if o["role"] == 24)["query"]
        ).decode()
    )
    assert cx("110101199003077777", NATIONAL_OID) in str(queries[-1]["patient_ids"])


async def test_an_entry_its_associations_and_its_document(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, uids = console, console.uids
    async with c.client("auditor") as auditor:
        lab, lab2, discharge, elsewhere = [
            await entry_uuid_of(auditor, uids[n]) for n in ("lab", "lab2", "discharge", "elsewhere")
        ]
        one = (await auditor.get(f"/api/v1/documents/{lab}")).json()
        assert one["title"] == "血常规检验报告" and one["status"] == "Deprecated"
        assert one["language_code"] == "zh-CN" and one["source_patient_id"] == PATIENT_A
        assert one["object_type"] == "stable" and one["version"] == 1
        # replaced by the corrected report
        (replaced,) = one["associations"]
        assert (replaced["type"], replaced["direction"]) == ("RPLC", "incoming")
        assert replaced["other"] == {
            "entry_uuid": lab2, "unique_id": uids["lab2"], "status": "Approved",
            "title": "血常规检验报告(更正)", "creation_time": "2026-11-30T09:00:00Z",
        }  # fmt: skip
        newer = (await auditor.get(f"/api/v1/documents/{lab2}")).json()
        assert [(x["type"], x["direction"], x["other"]["entry_uuid"]) for x in newer["associations"]] == [
            ("RPLC", "outgoing", lab)
        ]
        # a bare UUID is the same entry
        bare = await auditor.get(f"/api/v1/documents/{lab2.removeprefix('urn:uuid:').upper()}")
        assert bare.json()["entry_uuid"] == lab2

        # the document itself: the CDA's text, read as its GB2312 declaration says
        got = await auditor.get(f"/api/v1/documents/{discharge}/content")
        assert got.status_code == 200, got.text
        shown = got.json()
        original = cda("出院小结", encoding="GB2312")
        assert shown["mime_type"] == "text/xml" and shown["size"] == len(original)
        assert shown["text"] == original.decode("gb2312") and "<title>出院小结</title>" in shown["text"]
        assert shown["encoding"] == "gb18030"
        assert base64.b64decode(shown["base64"]) == original

        # too large for a browser: retrieved with ITI-43 instead, and nothing is shown (or audited)
        monkeypatch.setattr(xds_console, "MAX_SHOWN", len(original) - 1)
        big = await auditor.get(f"/api/v1/documents/{discharge}/content")
        assert big.status_code == 413 and "hie xds get" in big.json()["error"]
        monkeypatch.undo()

        # held by another repository: not here
        away = await auditor.get(f"/api/v1/documents/{elsewhere}/content")
        assert away.status_code == 404 and ELSEWHERE in away.json()["error"]
        missing = "urn:uuid:00000000-0000-4000-8000-000000000000"
        assert (await auditor.get(f"/api/v1/documents/{missing}")).status_code == 404
        assert (await auditor.get(f"/api/v1/documents/{missing}/content")).status_code == 404
        bad = await auditor.get("/api/v1/documents/not-a-uuid")
        assert bad.status_code == 400 and "entry_uuid" in bad.json()["error"]

    reads = c.audit("110110", "auditor")
    assert [r["action"] for r in reads] == ["R", "R", "R"]
    assert PATIENT_A in str(reads[0]["patient_ids"]) and uids["lab"] in str(reads[0]["objects"])
    (export,) = c.audit("110106", "auditor")
    assert export["action"] == "R" and PATIENT_A in str(export["patient_ids"])
    assert uids["discharge"] in str(export["objects"]) and c.unique_id in str(export["objects"])


async def test_who_may_and_bad_requests(console: Console) -> None:
    c = console
    async with c.client("admin") as admin:
        some = await entry_uuid_of(admin, c.uids["discharge"])
        domains = (await admin.get("/api/v1/documents/domains")).json()
        assert {"national-id", "hospital-a", "hospital-b"} <= {d["id"] for d in domains["domains"]}
        assert domains["default"] == "national-id"
        for query, parameter in [
            ({}, "patient_id"),
            ({"patient_id": "A1001", "domain": "no-such-domain"}, "domain"),
            ({"patient_id": PATIENT_A, "domain": "hospital-b"}, "domain"),
            ({"patient_id": "A^1"}, "patient_id"),
            ({"patient_id": "A1001", "status": "submitted"}, "status"),
            ({"patient_id": "A1001", "since": "yesterday-ish"}, "since"),
            ({"patient_id": "A1001", "limit": "0"}, "limit"),
            ({"patient_id": "A1001", "before": "x:1"}, "before"),
        ]:
            r = await admin.get("/api/v1/documents", params=query)
            assert r.status_code == 400 and r.json()["error"].startswith(f"{parameter}:"), (query, r.text)
    paths = [
        "/api/v1/documents?patient_id=A1001&domain=hospital-a",
        "/api/v1/documents/domains",
        f"/api/v1/documents/{some}",
        f"/api/v1/documents/{some}/content",
    ]
    async with c.client() as anonymous, c.client("viewer") as viewer:
        for path in paths:
            assert (await anonymous.get(path)).status_code == 401
            refused = await viewer.get(path)
            assert refused.status_code == 403 and "viewer" not in refused.json()["required_roles"]
    assert c.audit("110112", "viewer") == [] and c.audit("110106", "viewer") == []
    assert len(c.audit("110113", "viewer")) == 4  # each refusal is a Security Alert

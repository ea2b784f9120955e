"""The console's uploads section over real HTTP, on SQLite and PostgreSQL: hospitals of three
institutions upload WS/T 500 documents through HIPMessageServer (the sample ``hip`` channel), and
the statistics, the reports list and each report show what was sent, as ``hie report uploads`` and
the validator recorded it; viewers see the statistics only; the report reads are audited."""

from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import select, update

from engine.cli.main import main
from engine.config import load_config
from engine.console import accounts
from engine.store.schema import audit_events, messages
from profiles.cda.schema import uploads
from profiles.cda.stats import rollup_day
from tests.conftest import running
from tests.engine.connectors.mllp_peers import hl7_send
from tests.profiles.cda.test_validator import BREAKING, sample
from tests.profiles.conftest import NID_A, ROOT, deploy
from tests.profiles.hip.conftest import Hip

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROLES = ("admin", "integrator", "auditor", "viewer")
A, B, C = "12320100MB1234567X", "12320100MB7654321Y", "12320100MB2468135Z"
NAMES = {A: "某市第一人民医院 (测试)", B: "某市第二人民医院", C: "某区中医院"}
# the sample config's institution A, and two more (B declares two types; C none)
MORE_INSTITUTIONS = (
    f"    - {{code: {B}, name: {NAMES[B]}, declared: [C0002, C0049]}}\n"
    + f"    - {{code: {C}, name: {NAMES[C]}}}\n"
)
V3 = "urn:hl7-org:v3"
NS = {"cda": V3}


def document(code: str, institution: str, broken: str | tuple[str, ...] | None = None) -> bytes:
    """A sample document of ``code`` from ``institution`` (its custodian), with a 文档流水号 of its
    own, broken by the examples of the rule(s) ``broken`` (of that document type) if given."""
    rules = (broken,) if isinstance(broken, str) else broken or ()
    root = etree.fromstring(sample(code))
    for rule in rules:
        assert BREAKING[rule][0] == code, rule
        BREAKING[rule][1](root)
    ident = root.find(f"{{{V3}}}id")
    assert ident is not None
    ident.set("extension", uuid.uuid4().hex)
    (org,) = root.xpath(
        "cda:custodian/cda:assignedCustodian/cda:representedCustodianOrganization", namespaces=NS
    )  # type: ignore[misc]
    org.find(f"{{{V3}}}id").set("extension", institution)
    org.find(f"{{{V3}}}name").text = NAMES[institution]
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# two errors (header.realm-code, header.type-id) and a warning (the ID card says a woman)
SEVERAL = ("header.realm-code", "header.type-id", "idcard.sex")
# what each institution sends: (document type, the rule broken, or None for a valid document)
SENT: dict[str, list[tuple[str, str | tuple[str, ...] | None]]] = {
    A: [("C0053", None), ("C0002", None), ("C0053", "header.patient-name")],
    B: [("C0049", None), ("C0002", "header.realm-code"), ("C0002", SEVERAL)],
    C: [("C0053", "document.template-id")],
}
TITLES = {"C0002": "门(急)诊病历", "C0049": "出院记录", "C0053": "出院小结"}


@dataclass
class Site:
    hip: Hip
    base: str
    tokens: dict[str, str]
    config: Path

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30)

    def audit(self, event_code: str, user: str) -> list[dict[str, Any]]:
        with self.hip.rt.services.db.connect() as conn:
            rows = conn.execute(
                select(audit_events)
                .where(audit_events.c.event_id.like(event_code + "^%"), audit_events.c.user_id == user)
                .order_by(audit_events.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]


@pytest.fixture
async def site(tmp_path: Path, store_url: str) -> AsyncIterator[Site]:
    deploy(tmp_path, store_url, ("pix-feed", "xds-registry", "xds-repository", "hip", "console"))
    config = tmp_path / "config.yaml"
    text = config.read_text("utf-8")
    at = text.index("  timezone: Asia/Shanghai")
    config.write_text(text[:at] + MORE_INSTITUTIONS + text[at:], "utf-8")
    app = load_config(config)
    ports = {}
    for name in ("pix-feed", "xds-registry", "hip", "console"):
        found = re.search(r"127\.0\.0\.1:(\d+)", (tmp_path / "channels" / f"{name}.yaml").read_text("utf-8"))
        assert found is not None
        ports[name] = int(found.group(1))
    async with running(app) as rt, httpx.AsyncClient(timeout=60) as client:
        assert rt.services is not None
        (ack,) = await hl7_send(
            ports["pix-feed"], (ROOT / "tests" / "data" / "empi" / "feed-hospital-a.hl7").read_bytes()
        )
        assert b"MSA|AA" in ack  # 欧阳明轩, the samples' patient, is known to the EMPI
        db, ids = rt.services.db, rt.services.ids
        issued = {}
        for role in ROLES:
            accounts.add_user(db, ids, username=role, password="correct horse battery", role=role, actor="t")
            issued[role] = accounts.issue_token(db, ids, username=role, days=1, actor="test")[1]
        yield Site(Hip(rt, ports, client, tmp_path), f"http://127.0.0.1:{ports['console']}", issued, config)


async def send_all(site: Site) -> None:
    for institution, docs in SENT.items():
        for code, broken in docs:
            sent = document(code, institution, broken)
            ack, details = await site.hip.upload(sent, code=code, title=TITLES[code])
            assert ack == ("AE" if broken else "AA"), (institution, code, broken, details)


def this_month() -> str:
    return dt.datetime.now(SHANGHAI).strftime("%Y-%m")


async def test_the_statistics_are_the_monthly_report_with_charts_series(site: Site, tmp_path: Path) -> None:
    await send_all(site)
    # one of B's accepted uploads was last month's: moved there and that day rolled up, as the
    # nightly job would have done
    today = dt.datetime.now(SHANGHAI).date()
    last = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=15)
    noon = dt.datetime.combine(last, dt.time(12), SHANGHAI).astimezone(dt.UTC)
    db = site.hip.rt.services.db
    with db.begin() as conn:
        moved = conn.execute(
            select(uploads.c.id).where(uploads.c.institution == B, uploads.c.status == "accepted")
        ).scalar_one()
        conn.execute(update(uploads).where(uploads.c.id == moved).values(received_at=noon))
        assert rollup_day(conn, last, SHANGHAI) == 1

    async with site.client("viewer") as c:  # statistics are for every role
        r = await c.get("/api/v1/uploads/stats")
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["month"] == this_month() and stats["timezone"] == "Asia/Shanghai"
    rows = {row["institution"]: row for row in stats["institutions"]}
    assert list(rows) == [A, C, B]  # sorted by code, as hie report uploads lists them
    figures = {k: (v["received"], v["accepted"], v["rejected"]) for k, v in rows.items()}
    assert figures == {A: (3, 2, 1), B: (2, 0, 2), C: (1, 0, 1)}
    a, b, c = rows[A], rows[B], rows[C]
    assert (a["name"], b["name"], c["name"]) == ("某市第一人民医院 (demo)", NAMES[B], NAMES[C])
    # required C0002, C0049, C0053: A has C0002 and C0053 accepted, B (this month) and C nothing
    assert (a["required_uploaded"], a["completeness_text"], a["uploaded_types"]) == (
        2,
        "67%",
        ["C0002", "C0053"],
    )
    assert a["completeness"] == pytest.approx(2 / 3)
    assert (b["completeness_text"], b["declared"], b["declared_uploaded"]) == ("0%", ["C0002", "C0049"], 0)
    assert (a["outpatient"], a["discharges"], a["upload_days"]) == (1, 1, 1)
    assert a["top_reasons"] == [{"rule": "header.patient-name", "documents": 1}]
    assert b["top_reasons_text"] == "header.realm-code 2; header.type-id 1"
    assert c["top_reasons_text"] == "document.template-id 1"
    assert stats["totals"]["received"] == 6 and stats["totals"]["rejected"] == 4
    # the daily series: every day of the month, today's uploads on today
    days = {d["day"]: d for d in stats["days"]}
    assert len(days) >= 28 and all(k.startswith(this_month()) for k in days)
    assert days[today.isoformat()] == {"day": today.isoformat(), "received": 6, "accepted": 2, "rejected": 4}
    assert sum(d["received"] for d in stats["days"]) == 6

    # the same table hie report uploads prints
    out = tmp_path / "uploads.csv"
    args = ["report", "uploads", "--month", this_month(), "--csv", str(out), "--config", str(site.config)]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8-sig") as handle:
        printed = {row["机构代码 institution"]: row for row in csv.DictReader(handle)}
    columns = {
        "received": "收到文档 received",
        "accepted": "通过 accepted",
        "rejected": "拒收 rejected",
        "upload_days": "上传天数 upload days",
        "outpatient": "门诊人次 outpatient",
        "discharges": "出院人次 discharges",
        "required_uploaded": "已上传(应) required uploaded",
        "declared_uploaded": "已上传(申报) declared uploaded",
        "completeness_text": "完整率 completeness",
        "top_reasons_text": "主要拒收原因 top rejection reasons",
    }
    assert set(printed) == set(rows)
    for code, row in rows.items():
        assert {k: str(row[k]) for k in columns} == {k: printed[code][v] for k, v in columns.items()}, code

    # last month: B's accepted discharge record, on the 15th, since/until bounding that month
    async with site.client("viewer") as c:
        before = (await c.get("/api/v1/uploads/stats", params={"month": last.strftime("%Y-%m")})).json()
    (b_then,) = [r for r in before["institutions"] if r["received"]]
    assert (b_then["institution"], b_then["accepted"], b_then["discharges"]) == (B, 1, 1)
    assert [d["day"] for d in before["days"] if d["accepted"]] == [last.isoformat()]
    start = dt.datetime.combine(last.replace(day=1), dt.time(), SHANGHAI)
    assert dt.datetime.fromisoformat(before["since"]) == start


async def test_parameters_refusals_and_missing_reports(site: Site) -> None:
    assert (await site.hip.upload(document("C0053", A)))[0] == "AA"
    async with site.client("admin") as c:
        for path, query, named in [
            ("/api/v1/uploads/stats", {"month": "2026-13"}, "month"),
            ("/api/v1/uploads/stats", {"month": "November"}, "month"),
            ("/api/v1/uploads/reports", {"status": "pending"}, "status"),
            ("/api/v1/uploads/reports", {"document_code": "C99"}, "document_code"),
            ("/api/v1/uploads/reports", {"limit": "0"}, "limit"),
            ("/api/v1/uploads/reports", {"since": "yesterday-ish"}, "since"),
            ("/api/v1/uploads/reports/abc", {}, "id"),
        ]:
            r = await c.get(path, params=query)
            assert r.status_code == 400 and r.json()["error"].startswith(f"{named}:"), (path, query, r.text)
        r = await c.get("/api/v1/uploads/reports/123456789")
        assert r.status_code == 404 and "123456789" in r.json()["error"]
        # a month with nothing uploaded: the configured institutions with zeros
        empty = (await c.get("/api/v1/uploads/stats", params={"month": "2020-02"})).json()
        assert [r["institution"] for r in empty["institutions"]] == [A, C, B]
        assert len(empty["days"]) == 29 and empty["totals"]["received"] == 0
    (upload,) = site.hip.uploads()
    for role in ROLES:
        async with site.client(role) as c:
            stats = await c.get("/api/v1/uploads/stats")
            listed = await c.get("/api/v1/uploads/reports")
            one = await c.get(f"/api/v1/uploads/reports/{upload['id']}")
        assert stats.status_code == 200, role
        wanted = 403 if role == "viewer" else 200
        assert (listed.status_code, one.status_code) == (wanted, wanted), role
        if role == "viewer":
            assert "viewer" not in listed.json()["required_roles"]
    # the viewer's refusals are security alerts; it read nothing
    assert len(site.audit("110113", "viewer")) == 2
    assert site.audit("110112", "viewer") == [] and site.audit("110110", "viewer") == []
    async with site.client() as anonymous:
        assert (await anonymous.get("/api/v1/uploads/stats")).status_code == 401
        assert (await anonymous.get("/api/v1/uploads/reports")).status_code == 401


async def test_the_reports_list_its_filters_and_one_report_audited(site: Site) -> None:
    await send_all(site)
    async with site.client("auditor") as c:
        everything = (await c.get("/api/v1/uploads/reports")).json()
        assert len(everything["uploads"]) == 7 and everything["next_before"] is None
        ids = [u["id"] for u in everything["uploads"]]
        assert ids == sorted(ids, reverse=True)  # newest first
        newest = everything["uploads"][0]
        assert (newest["institution"], newest["institution_name"], newest["status"]) == (
            C,
            NAMES[C],
            "rejected",
        )
        assert (newest["document_code"], newest["document_name"]) == ("C0053", "出院小结")
        assert newest["rules"] == ["document.template-id"] and newest["errors"] >= 1

        async def found(**query: str) -> list[dict[str, Any]]:
            r = await c.get("/api/v1/uploads/reports", params=query)
            assert r.status_code == 200, r.text
            return list(r.json()["uploads"])

        b_rejected = await found(institution=B, status="rejected")
        assert [(u["document_code"], u["rules"], u["warnings"]) for u in b_rejected] == [
            ("C0002", ["header.realm-code", "header.type-id"], 1),
            ("C0002", ["header.realm-code"], 0),
        ]
        assert [u["id"] for u in await found(rule="header.type-id")] == [b_rejected[0]["id"]]
        assert len(await found(rule="header.realm-code")) == 2
        assert [u["institution"] for u in await found(rule="header.patient-name")] == [A]
        assert await found(rule="header") == []  # a whole rule id, not a part of one
        assert {u["institution"] for u in await found(document_code="C0053")} == {A, C}
        accepted = await found(status="accepted")
        assert {(u["institution"], u["document_code"]) for u in accepted} == {
            (A, "C0053"),
            (A, "C0002"),
            (B, "C0049"),
        }
        assert all(u["xds_unique_id"].startswith("2.25.") for u in accepted)
        assert await found(since="1h") != [] and await found(until="1h") == []
        # paging: two at a time, down to the oldest
        seen: list[int] = []
        cursor: Any = None
        while True:
            page = (
                await c.get("/api/v1/uploads/reports", params={"limit": 2, "before": cursor or ""})
            ).json()
            seen += [u["id"] for u in page["uploads"]]
            cursor = page["next_before"]
            if cursor is None:
                break
        assert seen == ids

        # one rejected report: its findings, errors first, and its message
        (rejected,) = await found(institution=A, status="rejected")
        r = await c.get(f"/api/v1/uploads/reports/{rejected['id']}")
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["document_id"] == rejected["document_id"] and report["status"] == "rejected"
        severities = [f["severity"] for f in report["report"]["findings"]]
        assert severities == sorted(severities, key=lambda s: s != "error") and severities[0] == "error"
        (name,) = [f for f in report["report"]["findings"] if f["rule"] == "header.patient-name"]
        assert name["line"] >= 1 and name["message"] and name["xpath"].endswith("/patientRole/patient")
        with site.hip.rt.services.db.connect() as conn:
            channel = conn.execute(
                select(messages.c.channel_id).where(messages.c.id == int(report["message_id"]))
            ).scalar_one()
        assert channel == "hip" and report["patient_id"] is None
        several = (await c.get(f"/api/v1/uploads/reports/{b_rejected[0]['id']}")).json()
        findings = [(f["severity"], f["rule"]) for f in several["report"]["findings"]]
        assert findings[-1] == ("warning", "idcard.sex") and len(findings) == 3  # errors first
        # an accepted one: where it was registered, and for whom
        (discharge,) = [u for u in accepted if u["institution"] == B]
        registered = (await c.get(f"/api/v1/uploads/reports/{discharge['id']}")).json()
        assert registered["patient_id"] == f"{NID_A}^^^&2.16.156.10011.1.3&ISO"
        assert registered["report"]["accepted"] is True and registered["errors"] == 0

    # every search is a 110112 Query with what was asked; each report read a 110110 read
    queries = site.audit("110112", "auditor")
    assert len(queries) == 1 + 10 + 4  # the first list, the filters, the pages
    searches = [json.loads(q["objects"])[0] for q in queries]
    assert {s["id"] for s in searches} == {"/api/v1/uploads/reports"}
    asked = [base64.b64decode(s["query"]).decode() for s in searches]
    assert f"institution={B}&status=rejected" in asked
    assert '"network_access_point": "127.0.0.1"' in str(queries[0]["participants"])
    reads = site.audit("110110", "auditor")
    assert [r["action"] for r in reads] == ["R", "R", "R"]
    assert reads[0]["message_id"] == int(report["message_id"]) and reads[0]["patient_ids"] is None
    assert json.loads(reads[0]["objects"])[0]["id"] == rejected["document_id"]
    assert reads[2]["patient_ids"] == f"{NID_A}^^^&2.16.156.10011.1.3&ISO"


def test_document_sample_edits_keep_the_samples_valid() -> None:
    """The helper's documents differ from the samples only in their id and custodian."""
    from tests.profiles.cda.test_validator import check

    assert check(document("C0049", B)).accepted
    assert {f.rule for f in check(document("C0002", B, "header.realm-code")).errors} == {"header.realm-code"}
    several = check(document("C0002", B, SEVERAL))
    assert [f.rule for f in several.errors] == ["header.realm-code", "header.type-id"]
    assert [f.rule for f in several.warnings] == ["idcard.sex"]

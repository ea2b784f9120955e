"""The console's empi section over real HTTP against a running engine, on SQLite and PostgreSQL: the
review queue fed through the real ITI-8 channel (uncertain matches open reviews), deciding reviews,
a person's page, link, unlink, merge and restore, the search, and who may do what.

Each change must show in the store (the person of each record, the index's history, the review's
status), in what the PIX Manager answers over MLLP, and in the audit trail; each read of patient data
must be in the audit trail before it is answered.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from engine.config import load_config
from engine.console import accounts
from engine.store.schema import audit_events, messages
from profiles.empi.schema import events, notifications, persons, records, reviews
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import rows, until
from tests.profiles.conftest import CHANNELS, NID_A, NID_B, A, B, Pix, deploy, pid3, seg

ROLES = ("admin", "integrator", "auditor", "viewer")
HOSP_B = ("HIS_B", "HOSP_B")


@dataclass
class Console:
    pix: Pix
    base: str
    tokens: dict[str, str]

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=10)

    def table(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        return rows(self.pix.rt, table, *where)

    def person_of(self, domain: str, value: str) -> int:
        (found,) = self.table(records, records.c.domain == domain, records.c.value == value)
        return int(found["person_id"])

    def audits(self, event_code: str, user: str) -> list[dict[str, Any]]:
        return [
            a
            for a in self.table(audit_events, audit_events.c.event_id.like(event_code + "^%"))
            if a["user_id"] == user
        ]

    async def feed_b(self, pid: str, **kw: str) -> None:
        answer = await self.pix.feed(pid, app=HOSP_B[0], fac=HOSP_B[1], **kw)
        assert seg(answer, "MSA")[0][1] == "AA", answer


@asynccontextmanager
async def empi_console(tmp_path: Path, store_url: str) -> AsyncIterator[Console]:
    """The sample EMPI channels (pix-feed, pix-query, pix-notify...) and a console, with a token per
    role (the user named after it)."""
    _, ports = deploy(tmp_path, store_url, CHANNELS)
    port = free_port()
    (tmp_path / "channels" / "console.yaml").write_text(
        f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n", encoding="utf-8"
    )
    app = load_config(tmp_path / "config.yaml")
    async with running(app) as rt:
        assert rt.services is not None
        db, ids = rt.services.db, rt.services.ids
        issued = {}
        for role in ROLES:
            accounts.add_user(db, ids, username=role, password="correct horse battery", role=role, actor="t")
            issued[role] = accounts.issue_token(db, ids, username=role, days=1, actor="t")[1]
        yield Console(Pix(rt, ports, tmp_path), f"http://127.0.0.1:{port}", issued)


async def uncertain_pairs(c: Console) -> None:
    """Three people fed by both hospitals, each time too uncertain to link by itself: three reviews.
    The same name, birth date and sex twice (score 1.0), and a name in Hanzi against pinyin (less)."""
    await c.pix.feed(f"PID|1||A1^^^{A}^PI||张^伟||19700101|M")
    await c.feed_b(f"PID|1||B1^^^{B}^PI||张^伟||19700101|M")
    await c.pix.feed(f"PID|1||A2^^^{A}^PI||王^芳||19880808|F")
    await c.feed_b(f"PID|1||B2^^^{B}^PI||WANG^FANG||19880808|F")
    await c.pix.feed(f"PID|1||A3^^^{A}^PI||李^娜||19800202|F")
    await c.feed_b(f"PID|1||B3^^^{B}^PI||李^娜||19800202|F")


async def test_the_review_queue_is_listed_best_first_and_decided_by_a_steward(
    tmp_path: Path, store_url: str
) -> None:
    async with empi_console(tmp_path, store_url) as c:
        await uncertain_pairs(c)
        async with c.client("auditor") as auditor:
            r = await auditor.get("/api/v1/empi/reviews")
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["open"] == 3 and answer["next"] is None
            queue = answer["reviews"]
            assert [(q["record"]["value"], q["candidates"][0]["value"]) for q in queue] == [
                ("B1", "A1"),
                ("B3", "A3"),
                ("B2", "A2"),
            ]
            assert queue[0]["score"] == 1.0 and queue[2]["score"] < 1.0
            incoming = {k: v for k, v in queue[0]["record"].items() if k not in ("id", "person_id")}
            assert incoming == {
                "domain": "hospital-b",
                "value": "B1",
                "status": "active",
                "name": "张伟",
                "birth_date": "1970-01-01",
                "sex": "1",
                "city": None,
                "national_id": None,
                "phone": None,
            }
            assert queue[2]["record"]["name"] == "WANGFANG" and queue[2]["candidates"][0]["name"] == "王芳"
            assert queue[0]["scores"] == {"name": 1.0, "birth_date": 1.0, "sex": 1.0}
            # an auditor sees, and may not decide
            refused = await auditor.post(f"/api/v1/empi/reviews/{queue[0]['id']}", json={"decision": "link"})
            assert refused.status_code == 403 and "integrator" in refused.json()["required_roles"]
            # paging: one at a time, in the same order
            first = (await auditor.get("/api/v1/empi/reviews", params={"limit": 1})).json()
            second = (
                await auditor.get("/api/v1/empi/reviews", params={"limit": 1, "after": first["next"]})
            ).json()
            assert [first["reviews"][0]["id"], second["reviews"][0]["id"]] == [queue[0]["id"], queue[1]["id"]]
            assert (await auditor.get("/api/v1/empi/reviews", params={"after": "x"})).status_code == 400
        # the auditor's reads are in the audit trail, naming the patients shown
        reads = c.audits("110110", "auditor")
        assert len(reads) == 3 and {r["action"] for r in reads} == {"R"}
        assert f"B1^^^{B}" in reads[0]["patient_ids"]
        assert f"A1^^^{A}" in reads[0]["patient_ids"]
        assert '"network_access_point": "127.0.0.1"' in reads[0]["participants"]
        async with c.client("viewer") as viewer:
            assert (await viewer.get("/api/v1/empi/reviews")).status_code == 403
        async with c.client() as nobody:
            assert (await nobody.get("/api/v1/empi/reviews")).status_code == 401

        assert seg(await c.pix.query(f"A1^^^{A}"), "QAK")[0][2] == "NF"  # not linked yet
        async with c.client("integrator") as steward:
            link = await steward.post(f"/api/v1/empi/reviews/{queue[0]['id']}", json={"decision": "link"})
            assert link.status_code == 200, link.text
            assert link.json()["status"] == "linked"
            again = await steward.post(
                f"/api/v1/empi/reviews/{queue[0]['id']}", json={"decision": "separate"}
            )
            assert again.status_code == 409 and "already linked" in again.json()["error"]
            apart = await steward.post(
                f"/api/v1/empi/reviews/{queue[1]['id']}", json={"decision": "separate"}
            )
            assert apart.status_code == 200 and apart.json()["status"] == "rejected"
            bad = await steward.post(f"/api/v1/empi/reviews/{queue[2]['id']}", json={"decision": "maybe"})
            assert bad.status_code == 400 and bad.json()["error"].startswith("decision:")
            bad = await steward.post(f"/api/v1/empi/reviews/{queue[2]['id']}", content=b"{not json")
            assert bad.status_code == 400 and bad.json()["error"].startswith("body:")
            unknown = await steward.post("/api/v1/empi/reviews/123", json={"decision": "link"})
            assert unknown.status_code == 404 and "no review 123" in unknown.json()["error"]
            left = (await steward.get("/api/v1/empi/reviews")).json()
            assert left["open"] == 1 and [q["record"]["value"] for q in left["reviews"]] == ["B2"]

        # linked: one person, as the PIX Manager answers; separate: still two
        assert c.person_of("hospital-b", "B1") == c.person_of("hospital-a", "A1")
        assert pid3(await c.pix.query(f"A1^^^{A}")) == [f"B1^^^{B}"]
        assert c.person_of("hospital-b", "B3") != c.person_of("hospital-a", "A3")
        status = {r["id"]: (r["status"], r["resolved_by"]) for r in c.table(reviews)}
        assert status[int(queue[0]["id"])] == ("linked", "integrator")
        assert status[int(queue[1]["id"])] == ("rejected", "integrator")
        kinds = [(e["kind"], e["actor"]) for e in c.table(events) if e["actor"] == "integrator"]
        assert ("review-linked", "integrator") in kinds and ("link", "integrator") in kinds
        assert ("review-rejected", "integrator") in kinds
        changes = [a for a in c.audits("110110", "integrator") if a["action"] == "U"]
        assert len(changes) == 2 and f"B1^^^{B}" in changes[0]["patient_ids"]


async def test_a_person_is_shown_linked_unlinked_and_merged(tmp_path: Path, store_url: str) -> None:
    async with empi_console(tmp_path, store_url) as c:
        await c.pix.feed(f"PID|1||A5^^^{A}^PI||赵^敏||19750505|F|||||13800000001")
        await c.feed_b(f"PID|1||B5^^^{B}^PI||陈^静||19660606|F")
        await c.pix.feed(f"PID|1||A6^^^{A}^PI||陈^静||19660606|F")
        await c.feed_b(f"PID|1||B6^^^{B}^PI||刘^洋||19990909|M")
        assert c.person_of("hospital-b", "B5") != c.person_of("hospital-a", "A6")
        async with c.client("integrator") as steward:
            # link: B6 joins A5's person
            r = await steward.post(
                "/api/v1/empi/link",
                json={"domain": "hospital-b", "value": "B6", "to_domain": "hospital-a", "to_value": "A5"},
            )
            assert r.status_code == 200, r.text
            assert c.person_of("hospital-b", "B6") == c.person_of("hospital-a", "A5")
            shown = await steward.get("/api/v1/empi/persons", params={"domain": "hospital-a", "value": "A5"})
            assert shown.status_code == 200, shown.text
            view = shown.json()
            assert [(x["domain"], x["value"], x["name"]) for x in view["records"]] == [
                ("hospital-a", "A5", "赵敏"),
                ("hospital-b", "B6", "刘洋"),
            ]
            assert view["records"][0]["phone"] == "*******0001"  # masked but for the last four
            assert view["history"][0]["kind"] == "link" and view["history"][0]["actor"] == "integrator"
            assert view["history"][0]["record"] == {"domain": "hospital-b", "value": "B6"}
            assert view["history"][0]["detail"] == {"why": "manual link"}
            assert {d["id"] for d in view["domains"]} == {"hospital-a", "hospital-b"}

            # unlink: B6 a person of its own again
            r = await steward.post("/api/v1/empi/unlink", json={"domain": "hospital-b", "value": "B6"})
            assert r.status_code == 200, r.text
            assert (
                int(r.json()["person_id"])
                == c.person_of("hospital-b", "B6")
                != c.person_of("hospital-a", "A5")
            )
            r = await steward.post("/api/v1/empi/unlink", json={"domain": "hospital-b", "value": "B6"})
            assert r.status_code == 409 and "only record" in r.json()["error"]

            # merge: B5's person (B5 and, after linking, B6) into A6's
            await steward.post(
                "/api/v1/empi/link",
                json={"domain": "hospital-b", "value": "B6", "to_domain": "hospital-b", "to_value": "B5"},
            )
            old = c.person_of("hospital-b", "B5")
            survivor = c.person_of("hospital-a", "A6")
            r = await steward.post(
                "/api/v1/empi/merge",
                json={"domain": "hospital-b", "value": "B5", "to_domain": "hospital-a", "to_value": "A6"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["moved"] == [
                {"domain": "hospital-b", "value": "B5"},
                {"domain": "hospital-b", "value": "B6"},
            ]
            assert c.person_of("hospital-b", "B5") == c.person_of("hospital-b", "B6") == survivor
            (gone,) = c.table(persons, persons.c.id == old)
            assert (gone["status"], gone["merged_into"]) == ("merged", survivor)
            assert sorted(pid3(await c.pix.query(f"A6^^^{A}"))) == [f"B5^^^{B}", f"B6^^^{B}"]
            merged = [e for e in c.table(events, events.c.person_id == survivor) if e["kind"] == "merge"]
            assert len(merged) == 1 and merged[0]["other_id"] == old and merged[0]["actor"] == "integrator"
            again = await steward.post(
                "/api/v1/empi/merge",
                json={"domain": "hospital-b", "value": "B5", "to_domain": "hospital-a", "to_value": "A6"},
            )
            assert again.status_code == 409 and "already one person" in again.json()["error"]

            # refusals: unknown record 404, unknown domain and bad bodies 400
            r = await steward.get("/api/v1/empi/persons", params={"domain": "hospital-a", "value": "NOPE"})
            assert r.status_code == 404 and "no active record NOPE" in r.json()["error"]
            r = await steward.get("/api/v1/empi/persons", params={"domain": "hospital-x", "value": "A5"})
            assert r.status_code == 400 and "unknown domain" in r.json()["error"]
            r = await steward.get("/api/v1/empi/persons", params={"domain": "hospital-a"})
            assert r.status_code == 400 and r.json()["error"].startswith("value:")
            r = await steward.post("/api/v1/empi/link", json={"domain": "hospital-a", "value": "A5"})
            assert r.status_code == 400 and r.json()["error"].startswith("to_domain:")
            r = await steward.post(
                "/api/v1/empi/unlink", json={"domain": "hospital-a", "value": "A5", "x": "1"}
            )
            assert r.status_code == 400 and r.json()["error"].startswith("x:")
            r = await steward.post(
                "/api/v1/empi/merge",
                json={"domain": "hospital-a", "value": "NOPE", "to_domain": "hospital-a", "to_value": "A6"},
            )
            assert r.status_code == 404

        # every change: history by the steward, an audit record (U) and the ITI-10 outbox drained into A31s
        changes = [a for a in c.audits("110110", "integrator") if a["action"] == "U"]
        assert len(changes) == 4  # link, unlink, link, merge (the refused ones changed nothing)
        assert f"B5^^^{B}" in changes[-1]["patient_ids"] and f"B6^^^{B}" in changes[-1]["patient_ids"]
        shows = [a for a in c.audits("110110", "integrator") if a["event_type"] == "empi^empi show"]
        assert len(shows) == 1 and f"A5^^^{A}" in shows[0]["patient_ids"]

        def told_merged() -> bool:
            sent = [str(m["raw"], "utf-8") for m in c.table(messages, messages.c.channel_id == "pix-notify")]
            return any(f"A6^^^{A}" in t and f"B5^^^{B}" in t and f"B6^^^{B}" in t for t in sent)

        await until(told_merged)  # an ITI-10 A31 lists the merged person's identifiers together
        await until(lambda: not c.table(notifications))

        async with c.client("auditor") as auditor:
            assert (
                await auditor.get("/api/v1/empi/persons", params={"domain": "hospital-a", "value": "A6"})
            ).status_code == 200
            for path in (
                "/api/v1/empi/link",
                "/api/v1/empi/merge",
                "/api/v1/empi/unlink",
                "/api/v1/empi/restore",
            ):
                r = await auditor.post(path, json={"domain": "hospital-a", "value": "A6"})
                assert r.status_code == 403, path
        async with c.client("viewer") as viewer:
            assert (
                await viewer.get("/api/v1/empi/persons", params={"domain": "hospital-a", "value": "A6"})
            ).status_code == 403


async def test_two_national_ids_are_never_merged(tmp_path: Path, store_url: str) -> None:
    async with empi_console(tmp_path, store_url) as c:
        await c.pix.feed(f"PID|1||A1^^^{A}^PI~{NID_A}^^^&2.16.156.10011.1.3&ISO^NI||欧阳^明轩||19850312|M")
        await c.feed_b(f"PID|1||B1^^^{B}^PI||林^秀英||19900721|F|||||||||||{NID_B}")
        async with c.client("admin") as steward:
            for path in ("/api/v1/empi/merge", "/api/v1/empi/link"):
                r = await steward.post(
                    path,
                    json={"domain": "hospital-b", "value": "B1", "to_domain": "hospital-a", "to_value": "A1"},
                )
                assert r.status_code == 409 and "different valid national IDs" in r.json()["error"]
            shown = (
                await steward.get("/api/v1/empi/persons", params={"domain": "hospital-a", "value": "A1"})
            ).json()
            assert shown["person"]["national_id"] == "**************0311"
        assert c.person_of("hospital-b", "B1") != c.person_of("hospital-a", "A1")


async def test_records_are_found_by_id_national_id_or_name_and_an_a40_is_undone(
    tmp_path: Path, store_url: str
) -> None:
    async with empi_console(tmp_path, store_url) as c:
        await c.pix.feed(f"PID|1||A1^^^{A}^PI~{NID_A}^^^&2.16.156.10011.1.3&ISO^NI||欧阳^明轩||19850312|M")
        await c.feed_b(f"PID|1||B7^^^{B}^PI||OUYANG^MINGHUI||19991111|M")
        await c.feed_b(f"PID|1||B8^^^{B}^PI||林^秀英||19900721|F")
        await c.feed_b(f"PID|1||B9^^^{B}^PI||林^秀英||19900721|F")
        await c.feed_b(f"PID|1||B9^^^{B}^PI||林^秀英", event="A40", mrg=f"B8^^^{B}")
        async with c.client("auditor") as auditor:

            async def found(q: str, **more: Any) -> list[str]:
                r = await auditor.get("/api/v1/empi/records", params={"q": q, **more})
                assert r.status_code == 200, r.text
                return [f"{x['domain']}:{x['value']}" for x in r.json()["records"]]

            assert await found("A1") == ["hospital-a:A1"]
            assert await found("hospital-b:B7") == ["hospital-b:B7"]
            assert await found(NID_A) == ["hospital-a:A1"]
            assert await found("欧阳") == ["hospital-a:A1"]
            assert await found("ouyang m") == ["hospital-b:B7", "hospital-a:A1"]  # pinyin, newest first
            assert await found("林秀") == ["hospital-b:B9", "hospital-b:B8"]
            assert await found("nobody") == []
            page = (await auditor.get("/api/v1/empi/records", params={"q": "ouyang", "limit": 1})).json()
            assert [x["value"] for x in page["records"]] == ["B7"]
            rest = await found("ouyang", limit=1, before=page["next_before"])
            assert rest == ["hospital-a:A1"]
            merged = (await auditor.get("/api/v1/empi/records", params={"q": "B8"})).json()["records"]
            assert merged[0]["status"] == "merged" and merged[0]["national_id"] is None
            assert (await auditor.get("/api/v1/empi/records")).status_code == 400
            r = await auditor.get("/api/v1/empi/records", params={"q": "x", "limit": 0})
            assert r.status_code == 400 and r.json()["error"].startswith("limit:")
            assert (
                await auditor.post("/api/v1/empi/restore", json={"domain": "hospital-b", "value": "B8"})
            ).status_code == 403
        queries = c.audits("110112", "auditor")
        assert len(queries) == 10  # the refused searches (400) read nothing
        first = json.loads(queries[0]["objects"])
        assert base64.b64decode(first[0]["query"]).decode() == "A1" and first[0]["role"] == 24
        assert queries[0]["patient_ids"] == f"A1^^^{A}"
        assert '"network_access_point": "127.0.0.1"' in queries[0]["participants"]

        assert seg(await c.pix.query(f"B8^^^{B}"), "MSA")[0][1] == "AE"  # merged away: unknown
        async with c.client("integrator") as steward:
            r = await steward.post("/api/v1/empi/restore", json={"domain": "hospital-b", "value": "B8"})
            assert r.status_code == 200, r.text
            r = await steward.post("/api/v1/empi/restore", json={"domain": "hospital-b", "value": "B8"})
            assert r.status_code == 409 and "was not merged away" in r.json()["error"]
        assert seg(await c.pix.query(f"B8^^^{B}"), "QAK")[0][2] == "NF"  # known again, a person of its own

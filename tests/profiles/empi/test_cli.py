"""``hie empi``: the review queue and the steward's commands, against an index fed over MLLP.

Each change must show in what the index answers (PIX queries over MLLP), in the history, in the
ITI-10 outbox, and in the audit trail.
"""

from __future__ import annotations

import asyncio
import re

from click.testing import CliRunner, Result
from sqlalchemy import insert, select

from engine.cli.main import main
from engine.store.db import utcnow
from engine.store.schema import audit_events, messages
from profiles.dicom.schema import studies
from profiles.empi.schema import events, notifications, records, reviews
from tests.engine.connectors.mllp_peers import rows, until
from tests.profiles.conftest import NID_A, NID_B, A, B, Pix, pid3, seg


def notify_messages(pix: Pix) -> list[dict[str, object]]:
    notified = [m for m in rows(pix.rt, messages) if m["channel_id"] == "pix-notify"]
    return sorted(notified, key=lambda m: int(str(m["id"])))


async def hie(pix: Pix, *args: str) -> Result:
    # the CLI is synchronous and opens the store itself: run it beside the running engine
    return await asyncio.to_thread(
        CliRunner().invoke, main, ["empi", *args, "--config", str(pix.config)], catch_exceptions=False
    )


async def test_an_uncertain_match_is_reviewed_linked_unlinked_and_linked_again(pix: Pix) -> None:
    # same name, birth date and sex, but nothing else in common: not enough to link by itself
    await pix.feed(f"PID|1||A1^^^{A}^PI||张^伟||19700101|M")
    await pix.feed(f"PID|1||B1^^^{B}^PI||张^伟||19700101|M", app="HIS_B", fac="HOSP_B")
    assert seg(await pix.query(f"A1^^^{A}"), "QAK")[0][2] == "NF"

    listed = await hie(pix, "review")
    assert listed.exit_code == 0, listed.output
    match = re.search(r"review (\d+)\s+score 1\.00\s+hospital-b B1: 张伟, 1970-01-01, sex 1", listed.output)
    assert match, listed.output
    assert "candidate hospital-a A1: 张伟" in listed.output
    review_id = match.group(1)

    done = await hie(pix, "review", review_id, "--link")
    assert done.exit_code == 0 and "linked" in done.output
    assert pid3(await pix.query(f"A1^^^{A}")) == [f"B1^^^{B}"]
    assert (await hie(pix, "review")).output.strip() == "no open reviews"
    again = await hie(pix, "review", review_id, "--reject")
    assert again.exit_code == 1 and "already linked" in again.output
    assert [r["status"] for r in rows(pix.rt, reviews)] == ["linked"]

    shown = await hie(pix, "show", "hospital-a", "A1")
    assert "hospital-a A1 [active]: 张伟" in shown.output and "hospital-b B1 [active]" in shown.output
    assert "review-linked" in shown.output

    notified = len(notify_messages(pix))
    assert (await hie(pix, "unlink", "hospital-b", "B1")).exit_code == 0
    assert seg(await pix.query(f"A1^^^{A}"), "QAK")[0][2] == "NF"
    assert (await hie(pix, "link", "hospital-b", "B1", "--to", "hospital-a", "A1")).exit_code == 0
    assert pid3(await pix.query(f"A1^^^{A}")) == [f"B1^^^{B}"]

    kinds = [e["kind"] for e in rows(pix.rt, events)]
    assert kinds.count("link") >= 3 and "review-opened" in kinds
    steward = [a for a in rows(pix.rt, audit_events) if str(a["event_type"]).startswith("empi^")]
    assert {a["action"] for a in steward} == {"R", "U"}
    # every change is also an ITI-10 notification. The source builds each A31 from the person's
    # cross-references when it sends it, so however the unlink and the link interleave with its
    # polls, the outbox drains and the last A31 about A1 lists B1 with it again.
    await until(lambda: not rows(pix.rt, notifications))
    told = [str(m["raw"], "utf-8") for m in notify_messages(pix)[notified:]]
    about_a1 = [t for t in told if f"A1^^^{A}" in t]
    assert len(told) >= 2 and about_a1, told
    assert f"B1^^^{B}" in about_a1[-1]


async def test_the_steward_cannot_join_two_different_national_ids_or_act_on_unknown_records(pix: Pix) -> None:
    await pix.feed(f"PID|1||A1^^^{A}^PI~{NID_A}^^^&2.16.156.10011.1.3&ISO^NI||欧阳^明轩||19850312|M")
    await pix.feed(f"PID|1||B1^^^{B}^PI||林^秀英||19900721|F|||||||||||{NID_B}", app="HIS_B", fac="HOSP_B")
    refused = await hie(pix, "link", "hospital-b", "B1", "--to", "hospital-a", "A1")
    assert refused.exit_code == 1 and "different valid national IDs" in refused.output
    unknown = await hie(pix, "show", "hospital-a", "NOPE")
    assert unknown.exit_code == 1 and "no active record NOPE in domain hospital-a" in unknown.output
    domain = await hie(pix, "unlink", "hospital-x", "A1")
    assert domain.exit_code == 1 and "unknown domain 'hospital-x'" in domain.output
    alone = await hie(pix, "unlink", "hospital-a", "A1")
    assert alone.exit_code == 1 and "only record of its person" in alone.output


async def test_an_a40_is_undone_for_one_identifier(pix: Pix) -> None:
    for local in ("B1", "B2"):
        await pix.feed(f"PID|1||{local}^^^{B}^PI||林^秀英||19900721|F", app="HIS_B", fac="HOSP_B")
    await pix.feed(f"PID|1||B2^^^{B}^PI||林^秀英", event="A40", app="HIS_B", fac="HOSP_B", mrg=f"B1^^^{B}")
    assert seg(await pix.query(f"B1^^^{B}"), "MSA")[0][1] == "AE"
    restored = await hie(pix, "restore", "hospital-b", "B1")
    assert restored.exit_code == 0, restored.output
    assert seg(await pix.query(f"B1^^^{B}"), "QAK")[0][2] == "NF"  # known again, a person of its own


async def test_merge_joins_two_persons_and_their_studies_follow(pix: Pix) -> None:
    await pix.feed(f"PID|1||A7^^^{A}^PI||钱^多多||19660606|F")
    await pix.feed(f"PID|1||B7^^^{B}^PI||孙^小明||19770707|M", app="HIS_B", fac="HOSP_B")
    person = {r["value"]: int(str(r["person_id"])) for r in rows(pix.rt, records)}
    assert person["A7"] != person["B7"]
    now = utcnow()
    with pix.rt.services.db.begin() as conn:  # type: ignore[union-attr]
        conn.execute(
            insert(studies).values(
                study_uid="1.2.826.0.1.3680043.8.498.777", patient_id="B7", issuer="", domain="hospital-b",
                person_id=person["B7"], patient_status="known", patient_name="SUN^XIAOMING", birth_date="",
                sex="M", study_date="20261201", study_time="", accession_number="ACC7", study_id="",
                description="", referring_physician="", source_ae="PACS_B", instances=1,
                first_received_at=now, last_received_at=now,
            )
        )  # fmt: skip

    done = await hie(pix, "merge", "hospital-b", "B7", "--into", "hospital-a", "A7")
    assert done.exit_code == 0, done.output
    assert f"person {person['B7']} merged into person {person['A7']}: 1 record(s) moved" in done.output
    assert pid3(await pix.query(f"A7^^^{A}")) == [f"B7^^^{B}"]
    with pix.rt.services.db.connect() as conn:  # type: ignore[union-attr]
        assert conn.execute(select(studies.c.person_id)).scalars().all() == [person["A7"]]
    again = await hie(pix, "merge", "hospital-b", "B7", "--into", "hospital-a", "A7")
    assert again.exit_code == 1 and "already one person" in again.output

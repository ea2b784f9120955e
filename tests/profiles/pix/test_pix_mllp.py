"""PIX Manager over real MLLP (python-hl7's client) on SQLite and PostgreSQL: ITI-8 feeds, ITI-9 queries.

The answers are the ones ITI TF-2 §3.8 and §3.9.4.2.2.6 name; the sample channels and domains are
those of ``tests/profiles/conftest.py``.
"""

from __future__ import annotations

import base64
import json

import pytest

from engine.store.schema import audit_events, deliveries
from profiles.empi.schema import events, notifications, persons, records
from tests.engine.connectors.mllp_peers import ack_of, hl7_send, rows, until
from tests.profiles.conftest import NATIONAL, NID_A, NID_B, ROOT, A, B, Pix, pid3, seg


def person_a(local: str = "A1001", nid: str = NID_A) -> str:
    return (
        f"PID|1||{local}^^^{A}^PI~{nid}^^^&2.16.156.10011.1.3&ISO^NI||欧阳^明轩||19850312|M"
        "|||||^PRN^CP^^^^^^^^^13851234567"
    )


# -- ITI-8 ------------------------------------------------------------------------------------------
async def test_feeds_from_two_hospitals_link_on_the_national_id_and_answer_the_pix_query(pix: Pix) -> None:
    ack = await pix.feed(person_a())
    assert seg(ack, "MSA")[0][1] == "AA"
    ack = await pix.feed(
        f"PID|1||B2001^^^{B}^PI||欧阳^明轩||19850312|M|||||||||||{NID_A}", app="HIS_B", fac="HOSP_B"
    )
    assert seg(ack, "MSA")[0][1] == "AA"
    stored = rows(pix.rt, records)
    assert {(r["domain"], r["value"]) for r in stored} == {("hospital-a", "A1001"), ("hospital-b", "B2001")}
    assert len({r["person_id"] for r in stored}) == 1
    (person,) = rows(pix.rt, persons)
    assert person["national_id"] == NID_A

    # case 1: every other identifier, fully qualified, never the queried one
    answer = await pix.query(f"A1001^^^{A}")
    assert seg(answer, "MSA")[0][1:3] == ["AA", pix.last_id]
    assert seg(answer, "QAK")[0][1:3] == [seg(answer, "QPD")[0][2], "OK"]
    assert pid3(answer) == [f"{NID_A}^^^NIC&2.16.156.10011.1.3&ISO", f"B2001^^^{B}"]
    assert seg(answer, "PID")[0][5] == "~^^^^^^S"
    # by the national ID, restricted to hospital B (QPD-4, component 4 only; namespace alone is enough)
    answer = await pix.query(f"{NID_A}^^^&2.16.156.10011.1.3&ISO", "^^^HOSP_B")
    assert pid3(answer) == [f"B2001^^^{B}"]


async def test_the_six_pix_query_cases(pix: Pix) -> None:
    await pix.feed(person_a())
    await pix.feed(f"PID|1||A1002^^^{A}^PI||欧阳^明轩||19850312|M", version="2.3.1")  # no national ID

    # case 2: known, but nothing in the requested domain
    answer = await pix.query(f"A1002^^^{A}", f"^^^{B}")
    assert seg(answer, "MSA")[0][1] == "AA" and seg(answer, "QAK")[0][2] == "NF"
    assert not seg(answer, "PID") and not seg(answer, "ERR")

    # case 3: known domain, unknown identifier -> AE/AE, ERR QPD^1^3^1^1 204
    answer = await pix.query(f"NOBODY^^^{A}")
    assert seg(answer, "MSA")[0][1] == "AE" and seg(answer, "QAK")[0][2] == "AE"
    (err,) = seg(answer, "ERR")
    assert err[2] == "QPD^1^3^1^1" and err[3].startswith("204^") and err[4] == "E"
    assert not seg(answer, "PID")

    # case 4: unknown domain of QPD-3 -> ERR at component 4
    answer = await pix.query("A1001^^^NOWHERE&1.2.3.4.5&ISO")
    (err,) = seg(answer, "ERR")
    assert seg(answer, "MSA")[0][1] == "AE" and err[2] == "QPD^1^3^1^4" and err[3].startswith("204^")

    # case 5: every unknown QPD-4 domain named by its repetition (RSP_K23 has one ERR: ERR-2 repeats)
    answer = await pix.query(f"A1001^^^{A}", f"^^^{B}~^^^X1&1.9.9&ISO~^^^X2")
    assert seg(answer, "MSA")[0][1] == "AE" and seg(answer, "QAK")[0][2] == "AE"
    (err,) = seg(answer, "ERR")
    assert err[2] == "QPD^1^4^2~QPD^1^4^3" and err[3].startswith("204^")

    # case 6: two identifiers of one person in one domain come consecutively
    await pix.feed(
        f"PID|1||B2001^^^{B}^PI~B2002^^^{B}^PI||欧阳^明轩||19850312|M|||||||||||{NID_A}",
        app="HIS_B",
        fac="HOSP_B",
    )
    answer = await pix.query(f"A1001^^^{A}")
    assert pid3(answer) == [f"{NID_A}^^^NIC&2.16.156.10011.1.3&ISO", f"B2001^^^{B}", f"B2002^^^{B}"]


async def test_feed_errors_are_answered_in_the_senders_terms_and_recorded(pix: Pix) -> None:
    # unknown assigning authority: AE, 204 at PID^1^3^<rep>^4 (v2.5 ERR-2)
    ack = await pix.feed(f"PID|1||A1^^^{A}^PI~Z9^^^HOSP_Z&1.2.999&ISO^PI||张^三||19800101|M")
    (err,) = seg(ack, "ERR")
    assert seg(ack, "MSA")[0][1] == "AE" and err[2] == "PID^1^3^2^4" and err[3].startswith("204^")
    # a source feeding another hospital's domain (one source per domain)
    ack = await pix.feed(f"PID|1||B9^^^{B}^PI||张^三||19800101|M")
    assert (
        seg(ack, "MSA")[0][1] == "AE"
        and "not the identity source of domain hospital-b" in seg(ack, "ERR")[0][8]
    )
    # v2.3.1 sender: the error is in ERR-1 (segment^sequence^field^code&text&table), MSA-3 the text
    ack = await pix.feed("PID|1||Z1^^^HOSP_Z^PI||张^三||19800101|M", version="2.3.1")
    assert seg(ack, "ERR")[0][1] == "PID^1^3^204&Unknown key identifier&HL70357"
    assert "unknown assigning authority HOSP_Z" in seg(ack, "MSA")[0][3]
    # an event ITI-8 does not take: AR, 201
    ack = await pix.feed(f"PID|1||A1^^^{A}^PI||张^三", event="A10")
    assert seg(ack, "MSA")[0][1] == "AR" and seg(ack, "ERR")[0][3].startswith("201^")
    # two different national IDs in one message
    ack = await pix.feed(person_a("A7", NID_A) + f"||||||{NID_B}")
    assert seg(ack, "MSA")[0][1] == "AE" and "two different national IDs" in seg(ack, "ERR")[0][8]
    # nothing of it reached the index; the refusals are errored deliveries with the reason
    assert rows(pix.rt, records) == []
    refused = [d for d in rows(pix.rt, deliveries) if d["status"] == "errored"]
    assert len(refused) == 5 and all(d["last_error"] and d["response"] for d in refused)


async def test_a_bad_check_digit_is_accepted_with_a_warning_and_not_used_for_linking(pix: Pix) -> None:
    bad = NID_A[:-1] + "2"
    ack = await pix.feed(person_a("A1", bad))
    assert seg(ack, "MSA")[0][1] == "AA"
    (err,) = seg(ack, "ERR")
    assert err[4] == "W" and "check character '1' expected but '2' found" in err[8]
    (record,) = rows(pix.rt, records)
    assert record["national_id"] == bad and record["national_id_valid"] == "N"
    assert rows(pix.rt, persons)[0]["national_id"] is None


async def test_a40_merges_within_a_domain_and_the_subsumed_id_becomes_unknown(pix: Pix) -> None:
    for local in ("B1", "B2"):
        await pix.feed(f"PID|1||{local}^^^{B}^PI||林^秀英||19900721|F", app="HIS_B", fac="HOSP_B")
    await pix.feed(f"PID|1||A5^^^{A}^PI||林^秀英||19900721|F|||||||||||{NID_B}")
    ack = await pix.feed(
        f"PID|1||B2^^^{B}^PI||林^秀英||19900721|F|||||||||||{NID_B}",
        event="A40",
        app="HIS_B",
        fac="HOSP_B",
        mrg=f"B1^^^{B}",
    )
    assert seg(ack, "MSA")[0][1] == "AA"
    # the subsumed identifier is now case 3; the survivor cross-references hospital A
    answer = await pix.query(f"B1^^^{B}")
    assert seg(answer, "MSA")[0][1] == "AE" and seg(answer, "ERR")[0][2] == "QPD^1^3^1^1"
    answer = await pix.query(f"B2^^^{B}")
    assert f"A5^^^{A}" in pid3(answer)
    kinds = [e["kind"] for e in rows(pix.rt, events)]
    assert "merge" in kinds
    # a merge across domains, and a merge of an unknown identifier, are refused
    ack = await pix.feed(
        f"PID|1||B2^^^{B}^PI||林^秀英", event="A40", app="HIS_B", fac="HOSP_B", mrg=f"A5^^^{A}"
    )
    assert seg(ack, "MSA")[0][1] == "AE" and seg(ack, "ERR")[0][2] == "MRG^1^1^1^4"
    ack = await pix.feed(
        f"PID|1||B2^^^{B}^PI||林^秀英", event="A40", app="HIS_B", fac="HOSP_B", mrg=f"B404^^^{B}"
    )
    assert seg(ack, "MSA")[0][1] == "AE" and seg(ack, "ERR")[0][2] == "MRG^1^1^1^1"


async def test_demographic_match_without_a_national_id(pix: Pix) -> None:
    # same name (Hanzi vs pinyin), birth date, sex and phone: one person; a namesake born on
    # another day: a person of their own
    await pix.feed(f"PID|1||A1^^^{A}^PI||张^伟||19700101|M|||||^PRN^CP^^^^^^^^^13900000001")
    await pix.feed(
        f"PID|1||B1^^^{B}^PI||ZHANG^WEI||19700101|M|||||^PRN^CP^^^^^^^^^+86 139 0000 0001",
        app="HIS_B",
        fac="HOSP_B",
    )
    await pix.feed(f"PID|1||B2^^^{B}^PI||张^伟||19710101|M", app="HIS_B", fac="HOSP_B")
    answer = await pix.query(f"A1^^^{A}")
    assert pid3(answer) == [f"B1^^^{B}"]


async def test_malformed_and_hostile_queries_get_a_clear_err(pix: Pix) -> None:
    answer = await pix.query("")
    assert seg(answer, "MSA")[0][1] == "AE" and seg(answer, "ERR")[0][2] == "QPD^1^3"
    answer = await pix.query("A1")  # no assigning authority
    assert seg(answer, "ERR")[0][2] == "QPD^1^3^1^4" and seg(answer, "ERR")[0][3].startswith("101^")
    # (the QPD echoed as TF-2 requires holds the 500 characters: beyond hl7apy's length limit)
    answer = await pix.query(f"{'9' * 500}^^^{A}", strict=False)
    assert seg(answer, "ERR")[0][3].startswith("102^")
    answer = await pix.query(f"x' OR '1'='1^^^{A}")  # bound parameters: just an unknown identifier
    assert seg(answer, "ERR")[0][2] == "QPD^1^3^1^1"


async def test_every_feed_and_query_leaves_its_atna_record(pix: Pix) -> None:
    await pix.feed(person_a())
    await pix.feed("PID|1||Z1^^^HOSP_Z^PI||张^三||19800101|M")  # refused
    await pix.query(f"A1001^^^{A}")
    await pix.pdq("@PID.5.1^欧阳")
    by_type: dict[str, list[dict[str, object]]] = {}
    for row in rows(pix.rt, audit_events):
        by_type.setdefault(str(row["event_type"]).split("^")[0], []).append(row)
    feeds = by_type["ITI-8"]
    assert [(f["event_id"], f["action"], f["outcome"]) for f in feeds] == [
        ("110110^Patient Record^DCM", "C", 0),
        ("110110^Patient Record^DCM", "C", 4),
    ]
    assert feeds[0]["patient_ids"] == f"A1001^^^{A}"
    assert json.loads(str(feeds[0]["participants"]))[0]["user_id"] == "HIS_A|HOSP_A"
    (query,) = by_type["ITI-9"]
    assert query["event_id"] == "110112^Query^DCM" and query["action"] == "E"
    objects = json.loads(str(query["objects"]))
    assert base64.b64decode(objects[-1]["query"]).decode().startswith("QPD|IHE PIX Query|")
    assert query["patient_ids"] == f"{NID_A}^^^NIC&2.16.156.10011.1.3&ISO"
    (pdq,) = by_type["ITI-21"]
    assert f"A1001^^^{A}" in str(pdq["patient_ids"])


# -- ITI-10 -----------------------------------------------------------------------------------------
def a31s(pix: Pix) -> list[list[list[str]]]:
    # not the file destination's hidden temporary files, renamed into place once complete
    files = (
        sorted(f for f in pix.notifications.glob("*") if not f.name.startswith("."))
        if pix.notifications.is_dir()
        else []
    )
    return [[s.split("|") for s in f.read_text("utf-8").replace("\n", "\r").split("\r") if s] for f in files]


async def test_cross_reference_changes_are_notified_with_adt_a31(pix: Pix) -> None:
    await pix.feed(person_a())
    first = await until(lambda: a31s(pix))
    (msg,) = first
    assert seg(msg, "MSH")[0][8] == "ADT^A31^ADT_A05" and seg(msg, "MSH")[0][11] == "2.5"
    assert seg(msg, "PID")[0][3].split("~") == [f"{NID_A}^^^NIC&2.16.156.10011.1.3&ISO", f"A1001^^^{A}"]
    assert seg(msg, "PID")[0][5] == " " and seg(msg, "PV1")[0][2] == "N"
    # hospital B's record joins the person: a second A31 with all three identifiers
    await pix.feed(
        f"PID|1||B2001^^^{B}^PI||欧阳^明轩||19850312|M|||||||||||{NID_A}", app="HIS_B", fac="HOSP_B"
    )
    both = await until(lambda: len(a31s(pix)) == 2 and a31s(pix))
    assert {tuple(seg(m, "PID")[0][3].split("~")) for m in both} >= {
        (f"{NID_A}^^^NIC&2.16.156.10011.1.3&ISO", f"A1001^^^{A}", f"B2001^^^{B}")
    }
    # the A31 went through the durable queue (stored, delivered, ACK checked) and the outbox is empty
    sent = [d for d in rows(pix.rt, deliveries) if d["channel_id"] == "pix-notify"]
    assert len(sent) == 2 and all(d["status"] == "sent" for d in sent)
    assert rows(pix.rt, notifications) == []
    # and each A31 has its ATNA record: 110110 action R, the patients notified about
    told = [a for a in rows(pix.rt, audit_events) if str(a["event_type"]).startswith("ITI-10^")]
    assert len(told) == 2 and all(a["action"] == "R" for a in told)
    assert f"B2001^^^{B}" in str(told[-1]["patient_ids"])


async def test_a_vendor_dialect_feeds_the_index_through_its_mapping(pix: Pix) -> None:
    # hospital A's v2.4 GBK feed (numeric sex, ID card in PID-19) through mappings/hospital-a-adt.yaml
    raw = (ROOT / "tests" / "data" / "mappings" / "hospital-a-adt" / "a01-inpatient.hl7").read_bytes()
    (answer,) = await hl7_send(pix.vendor_port, raw)
    ack = ack_of(answer, "gbk")
    assert ack["MSA"][1] == "AA" and ack["MSH"][11] == "2.4"  # MSH-12: the sender's own version
    answer = await pix.query(f"320102198503120012^^^{NATIONAL}")
    assert pid3(answer) == [f"H0012345^^^{A}"]


# -- the database restarting under a running engine -------------------------------------------------
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_queries_and_feeds_survive_the_database_dropping_every_connection(pix: Pix) -> None:
    """Queries read without a pre-ping and the writer keeps its connection: after PostgreSQL drops
    them all (a restart, a failover), the next query is asked again on a new connection and the next
    feed's group is retried on one, so no sender sees an error."""
    assert seg(await pix.feed(person_a()), "MSA")[0][1] == "AA"
    assert pid3(await pix.query(f"A1001^^^{A}")) == [f"{NID_A}^^^NIC&2.16.156.10011.1.3&ISO"]
    services = pix.rt.services
    assert services is not None
    with services.db.connect() as conn:
        dropped = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar_one()
    assert dropped >= 2  # the reader's and the writer's connections at least
    answer = await pix.query(f"A1001^^^{A}")
    assert seg(answer, "MSA")[0][1] == "AA"
    assert pid3(answer) == [f"{NID_A}^^^NIC&2.16.156.10011.1.3&ISO"]
    assert seg(await pix.feed(person_a("A1002")), "MSA")[0][1] == "AA"
    assert len(rows(pix.rt, records)) == 2

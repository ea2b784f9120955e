"""PDQ Supplier over real MLLP on SQLite and PostgreSQL: ITI-21 queries, continuations, cancel.

Every RSP^K22 passes hl7apy's strict v2.5 validation (``tests/profiles/conftest.py``); the answers
are those ITI TF-2 §3.21 and the notes of pix-pdq.md §5 name.
"""

from __future__ import annotations

from tests.profiles.conftest import NATIONAL, NID_A, NID_B, A, B, Pix, seg


async def three_people(pix: Pix) -> None:
    await pix.feed(
        f"PID|1||A1^^^{A}^PI~{NID_A}^^^{NATIONAL}^NI||欧阳^明轩||19850312|M|||长江路188号^^南京市^江苏省^210018"
        "||^PRN^CP^^^^^^^^^13851234567"
    )
    await pix.feed(f"PID|1||B1^^^{B}^PI||欧阳^明轩||19850312|M|||||||||||{NID_A}", app="HIS_B", fac="HOSP_B")
    await pix.feed(f"PID|1||B2^^^{B}^PI||林^秀英||19900721|F|||||||||||{NID_B}", app="HIS_B", fac="HOSP_B")
    await pix.feed(f"PID|1||A2^^^{A}^PI||王^磊||19700115|M|||^^苏州市")


def pids(answer: list[list[str]]) -> list[list[str]]:
    return seg(answer, "PID")


async def test_queries_by_name_in_hanzi_pinyin_and_wildcards(pix: Pix) -> None:
    await three_people(pix)
    answer = await pix.pdq("@PID.5.1.1^欧阳")
    assert seg(answer, "MSA")[0][1] == "AA" and seg(answer, "QAK")[0][2] == "OK"
    (pid,) = pids(answer)  # one person, fed by two hospitals
    assert pid[3].split("~") == [f"{NID_A}^^^{NATIONAL}", f"A1^^^{A}", f"B1^^^{B}"]
    assert pid[5] == "欧阳^明轩" and pid[7] == "19850312" and pid[8] == "M"
    assert pid[11] == "长江路188号^^南京市^江苏省^210018" and pid[13].endswith("^13851234567")
    assert pid[19] == NID_A
    # QAK-4/5/6: total, in this response, remaining
    assert seg(answer, "QAK")[0][4:7] == ["1", "1", "0"]
    assert pids(await pix.pdq("@PID.5.1^OUYANG"))[0][3] == pid[3]  # pinyin finds Hanzi
    assert pids(await pix.pdq("@PID.5.1^ouyang~@PID.5.2^MINGXUAN"))[0][3] == pid[3]
    assert len(pids(await pix.pdq("@PID.5.1^欧*"))) == 1
    assert len(pids(await pix.pdq("@PID.8^M~@PID.7^19850312"))) == 1
    assert len(pids(await pix.pdq("@PID.8^M"))) == 2
    assert len(pids(await pix.pdq("@PID.11.3^苏州市"))) == 1
    assert len(pids(await pix.pdq("@PID.13^+86 138 5123 4567"))) == 1
    assert pids(await pix.pdq(f"@PID.19^{NID_B}"))[0][5] == "林^秀英"
    assert pids(await pix.pdq("@PID.3.1^B2~@PID.3.4.1^HOSP_B"))[0][5] == "林^秀英"
    assert pids(await pix.pdq(f"@PID.3.1^{NID_B}~@PID.3.4.2^2.16.156.10011.1.3"))[0][5] == "林^秀英"
    # no match: AA / NF, no PID
    answer = await pix.pdq("@PID.5.1^NOBODY")
    assert seg(answer, "MSA")[0][1] == "AA" and seg(answer, "QAK")[0][2] == "NF" and not pids(answer)
    answer = await pix.pdq("@PID.5.1^x' OR '1'='1")  # a value, not SQL
    assert seg(answer, "QAK")[0][2] == "NF"


async def test_queries_by_every_address_part_and_the_account_number(pix: Pix) -> None:
    await three_people(pix)
    await pix.feed(
        f"PID|1||A3^^^{A}^PI||赵^静怡||19881109|F|||中山东路300号^^南京市^江苏省^210002^156^H"
        "|||||||V-20261203-17^^^HOSP_A&1.2.156.112604.1.9&ISO^AN"
    )
    for qpd3 in (
        "@PID.11^中山东路300号",
        "@PID.11.1^中山东路*",
        "@PID.11.5^210002",
        "@PID.11.3^南京市~@PID.11.6^156",
        "@PID.11.4^江苏省~@PID.8^F",
        "@PID.18^V-20261203-17",
        "@PID.18.1^V-20261203-17~@PID.18.4.2^1.2.156.112604.1.9",
        "@PID.18.1^V-20261203-17~@PID.18.4^HOSP_A",
    ):
        answer = await pix.pdq(qpd3)
        assert [p[5] for p in pids(answer)] == ["赵^静怡"], qpd3
    (pid,) = pids(await pix.pdq("@PID.18^V-20261203-17"))
    assert pid[11] == "中山东路300号^^南京市^江苏省^210002^156"
    assert pid[18] == "V-20261203-17^^^HOSP_A&1.2.156.112604.1.9&ISO"
    assert len(pids(await pix.pdq("@PID.11.3^南京市"))) == 2  # 欧阳明轩 lives there too
    for qpd3 in (
        "@PID.11.5^210003",
        "@PID.18^V-20261203-18",
        "@PID.18^V-20261203-17~@PID.18.4.2^1.2.3",
        "@PID.18^V-20261203-17~@PID.18.4.1^HOSP_B",
        "@PID.11.1^%*",  # LIKE's own wildcards are literal: not "every street"
        "@PID.11.1^中山东路_00号",
    ):
        assert seg(await pix.pdq(qpd3), "QAK")[0][2] == "NF", qpd3


async def test_pediatric_demographics_by_mothers_maiden_name(pix: Pix) -> None:
    """A newborn has no ID card yet: the mother's maiden name, the birth date and the home phone find it."""
    await pix.feed(
        f"PID|1||A9^^^{A}^PI||周^一诺|林^晓雯|20261201|F|||||^PRN^PH^^^^^^^^^02584561234", event="A04"
    )
    await pix.feed(f"PID|1||A8^^^{A}^PI||周^一鸣|陈^芳|20261201|M", event="A04")
    answer = await pix.pdq("@PID.6.1^林晓雯~@PID.7^20261201")
    (pid,) = pids(answer)
    assert pid[5] == "周^一诺" and pid[6] == "林^晓雯"
    assert [p[5] for p in pids(await pix.pdq("@PID.6^LIN XIAOWEN"))] == ["周^一诺"]  # pinyin
    assert [p[5] for p in pids(await pix.pdq("@PID.6^林*~@PID.13^025 8456 1234"))] == ["周^一诺"]
    assert len(pids(await pix.pdq("@PID.7^20261201"))) == 2
    answer = await pix.pdq("@PID.6^**")
    assert seg(answer, "MSA")[0][1] == "AE" and seg(answer, "ERR")[0][2] == "QPD^1^3^1"


async def test_domains_returned_and_unknown_domains(pix: Pix) -> None:
    await three_people(pix)
    # QPD-8 = hospital B only: its identifiers only; 王磊 (hospital A only) is left out (case 2)
    answer = await pix.pdq("@PID.8^M", f"^^^{B}")
    assert [p[3] for p in pids(answer)] == [f"B1^^^{B}"]
    # an unknown domain in QPD-8: AE/AE, ERR at QPD^1^8^<repetition>, 204 (case 3)
    answer = await pix.pdq("@PID.8^M", f"^^^{B}~^^^NOWHERE&1.2.3.999&ISO")
    assert seg(answer, "MSA")[0][1] == "AE" and seg(answer, "QAK")[0][2] == "AE"
    (err,) = seg(answer, "ERR")
    assert err[2] == "QPD^1^8^2" and err[3].startswith("204^")


async def test_incremental_responses_continue_and_cancel(pix: Pix) -> None:
    for n in range(5):
        await pix.feed(f"PID|1||Z{n}^^^{A}^PI||张^伟{n}||19800101|M")
    answer = await pix.pdq("@PID.5.1^张", rcp2="2^RD", tag="T-ZHANG")
    assert len(pids(answer)) == 2 and seg(answer, "QAK")[0][4:7] == ["5", "2", "3"]
    ((_, pointer, mode),) = seg(answer, "DSC")
    assert mode == "I" and len(pointer) >= 16
    answer = await pix.pdq("@PID.5.1^张", rcp2="2^RD", dsc=pointer, tag="T-ZHANG")
    assert len(pids(answer)) == 2 and seg(answer, "QAK")[0][4:7] == ["5", "2", "1"]
    ((_, second, _),) = seg(answer, "DSC")
    last = await pix.pdq("@PID.5.1^张", rcp2="2^RD", dsc=second, tag="T-ZHANG")
    assert len(pids(last)) == 1 and not seg(last, "DSC")
    seen = [p[3] for p in pids(answer) + pids(last)]
    assert len(set(seen)) == 3
    # a used pointer is unknown now: AE, ERR DSC^1^1 204
    answer = await pix.pdq("@PID.5.1^张", rcp2="2^RD", dsc=pointer, tag="T-ZHANG")
    assert seg(answer, "MSA")[0][1] == "AE" and seg(answer, "ERR")[0][2] == "DSC^1^1"
    # a pointer is bound to its query: another query cannot use it
    answer = await pix.pdq("@PID.5.1^张", rcp2="2^RD", tag="T-2")
    ((_, fresh, _),) = seg(answer, "DSC")
    answer = await pix.pdq("@PID.5.1^王", rcp2="2^RD", dsc=fresh, tag="T-2")
    assert seg(answer, "ERR")[0][2] == "DSC^1^1"
    # QCN^J01 cancels: ACK^J01 AA, and the pointer is gone
    answer = await pix.pdq("@PID.5.1^张", rcp2="2^RD", tag="T-3")
    ((_, third, _),) = seg(answer, "DSC")
    ack = await pix.cancel("T-3")
    assert seg(ack, "MSH")[0][8] == "ACK^J01^ACK" and seg(ack, "MSA")[0][1] == "AA"
    answer = await pix.pdq("@PID.5.1^张", rcp2="2^RD", dsc=third, tag="T-3")
    assert seg(answer, "MSA")[0][1] == "AE"


async def test_bad_queries_are_answered_with_the_parameter_named(pix: Pix) -> None:
    cases = [
        ("@PID.5.1^**", "QPD^1^3^1", "102"),  # only wildcards
        ("@PID.8^M~@PID.3.1^A1", "QPD^1^3^2", "101"),  # PID.3.1 without PID.3.4
        ("@PID.11.7^H", "QPD^1^3^1", "102"),  # not supported (address type): said, not ignored
        ("@PID.18.4.3^ISO", "QPD^1^3^1", "102"),
        ("PID.5.1^ZHANG", "QPD^1^3^1", "102"),  # not @SEG.n
        ("@PD1.4^X", "QPD^1^3^1", "102"),
        ("@PID.7^1985-13-45", "QPD^1^3^1", "102"),
        ("", "QPD^1^3", "101"),
    ]
    for qpd3, location, code in cases:
        answer = await pix.pdq(qpd3)
        (err,) = seg(answer, "ERR")
        assert seg(answer, "MSA")[0][1] == "AE", qpd3
        assert (err[2], err[3].split("^")[0]) == (location, code), (qpd3, err)
    answer = await pix.pdq("@PID.8^M", rcp2="many^RD")
    assert seg(answer, "ERR")[0][2] == "RCP^1^2"

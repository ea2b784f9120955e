"""``hie empi load``: a hospital's existing identities in bulk, beside a running index.

Rows sharing a valid national ID-card number become one person (PIX answers the other hospital's
id); a row with an invalid number is a person of its own, the number kept and flagged; bad rows are
reported with their line and skipped while the rest loads; a second load skips what is there. On
PostgreSQL the index's tables are vacuumed at the end, so autovacuum does not set upon them under
the first queries.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select, text

from engine.cli.main import main
from profiles.empi.schema import records
from tests.engine.connectors.mllp_peers import rows
from tests.profiles.conftest import NATIONAL, NID_A, NID_B, A, B, Pix, pid3

CSV = f"""domain,value,national_id,name,family,given,birth_date,sex,phone,city
hospital-a,L1,{NID_A},欧阳明轩,欧阳,明轩,1985-03-12,1,13851234567,南京市
hospital-b,M1,{NID_A},欧阳明轩,欧阳,明轩,1985-03-12,1,,南京市
hospital-a,L2,{NID_B},林秀英,林,秀英,1990-07-21,2,,苏州市
hospital-b,M2,320102198503120312,张伟,张,伟,1970-01-01,1,,
no-such-hospital,X1,,王芳,王,芳,1988-08-08,2,,
hospital-a,,,,,,,,,
hospital-a,L3,,赵磊,赵,磊,1999-13-40,1,,
"""


async def hie(pix: Pix, *args: str) -> Result:
    return await asyncio.to_thread(
        CliRunner().invoke, main, ["empi", *args, "--config", str(pix.config)], catch_exceptions=False
    )


async def test_a_bulk_load_links_by_national_id_and_reports_bad_rows_by_line(
    pix: Pix, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(CSV, encoding="utf-8")

    first = await hie(pix, "load", str(people), "--batch", "2")
    assert first.exit_code == 0, first.output
    assert "4 record(s) of 3 new person(s) loaded; 3 skipped" in first.stdout  # the bad rows
    problems = [p.removeprefix(f"{people}:") for p in first.stderr.splitlines() if p.startswith(str(people))]
    assert problems == [
        "6: unknown domain 'no-such-hospital'",
        "7: the identifier must have 1 to 100 characters, not 0",
        "8: birth_date '1999-13-40' is not YYYY-MM-DD",
    ]

    # one person for the two hospitals' ids of the same ID-card number
    assert pid3(await pix.query(f"L1^^^{A}")) == [f"{NID_A}^^^{NATIONAL}", f"M1^^^{B}"]
    assert pid3(await pix.query(f"L2^^^{A}")) == [f"{NID_B}^^^{NATIONAL}"]
    by_value = {r["value"]: r for r in rows(pix.rt, records)}
    assert by_value["M2"]["national_id"] == "320102198503120312"
    assert by_value["M2"]["national_id_valid"] == "N"  # a wrong check character: kept, flagged
    assert by_value["L1"]["national_id_valid"] == "Y"

    again = await hie(pix, "load", str(people))
    assert again.exit_code == 0 and "0 record(s) of 0 new person(s) loaded; 7 skipped" in again.stdout

    db = pix.rt.services.db  # type: ignore[union-attr]
    if db.dialect.name == "postgresql":
        with db.connect() as conn:
            vacuumed = conn.execute(
                text("select relname from pg_stat_user_tables where last_vacuum is not null")
            ).scalars()
            assert {"empi_persons", "empi_records", "empi_events"} <= set(vacuumed)
    with db.connect() as conn:
        assert conn.execute(select(records.c.value).where(records.c.value == "X1")).first() is None

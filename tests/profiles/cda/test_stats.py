"""Upload statistics on SQLite and PostgreSQL: the daily roll-up counts each upload on its local
(Asia/Shanghai) day, running it again changes nothing, and the monthly table gives each institution's
required and declared types, completeness, documents, records, upload days, outpatient visits,
discharges and rejection reasons; ``hie report uploads`` prints it and writes CSV."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, insert, select

from engine.cli.main import main
from engine.store.db import migrate, open_engine
from profiles.cda.config import CdaConfig, Institution
from profiles.cda.schema import record_days, records, upload_days, uploads
from profiles.cda.stats import _rollup_yesterday, monthly, rollup_day, rollup_month
from profiles.plugin import PLUGINS
from tests.conftest import running

SHANGHAI = ZoneInfo("Asia/Shanghai")
A, B = "12320100MB1234567X", "12320100MB7654321Y"
_ids = itertools.count(1)


@pytest.fixture
def db(store_url: str) -> Iterator[Engine]:
    eng = open_engine(store_url)
    migrate(eng, [p.migrations for p in PLUGINS if p.migrations is not None])
    yield eng
    eng.dispose()


def upload(
    db: Engine, at: str, institution: str, code: str, status: str = "accepted", rules: str = ""
) -> None:
    """One upload at local (Shanghai) time ``at``."""
    local = dt.datetime.fromisoformat(at).replace(tzinfo=SHANGHAI)
    with db.begin() as conn:
        conn.execute(
            insert(uploads).values(
                id=next(_ids),
                message_id=None,
                received_at=local.astimezone(dt.UTC),
                institution=institution,
                institution_name={A: "第一人民医院", B: "第二人民医院"}[institution],
                document_code=code,
                document_id="D",
                status=status,
                errors=0 if status == "accepted" else 1,
                warnings=0,
                rules=rules or None,
                report=json.dumps({"accepted": status == "accepted"}),
                xds_unique_id=None,
            )
        )


def record(db: Engine, at: str, institution: str, status: str = "accepted") -> None:
    """One patient registration sent through the national interface at local time ``at``."""
    local = dt.datetime.fromisoformat(at).replace(tzinfo=SHANGHAI)
    with db.begin() as conn:
        conn.execute(
            insert(records).values(
                id=next(_ids),
                message_id=None,
                received_at=local.astimezone(dt.UTC),
                institution=institution,
                service="PatientInfoRegister",
                status=status,
                reason=None if status == "accepted" else "patient: unknown domain",
            )
        )


CONFIG = CdaConfig(
    required=["C0002", "C0049", "C0053"],
    institutions=[Institution(code=A, name="第一人民医院", declared=["C0002", "C0006", "C0049"])],
)


@pytest.fixture
def november(db: Engine) -> Engine:
    upload(db, "2026-11-02T08:00:00", A, "C0002")
    upload(db, "2026-11-02T09:00:00", A, "C0002")
    upload(db, "2026-11-02T23:59:00", A, "C0049")  # 15:59 UTC: still the 2nd in Shanghai
    upload(db, "2026-11-03T00:10:00", A, "C0006")  # 16:10 UTC on the 2nd: the 3rd in Shanghai
    upload(db, "2026-11-03T10:00:00", A, "C0053", "rejected", "header.patient-name,schema.cda")
    upload(db, "2026-11-04T10:00:00", A, "C0053", "rejected", "header.patient-name")
    upload(db, "2026-11-20T10:00:00", B, "C0053")
    upload(db, "2026-12-01T00:30:00", A, "C0002")  # December
    record(db, "2026-11-02T08:30:00", A)
    record(db, "2026-11-05T08:30:00", A)  # a day with a record and no document
    record(db, "2026-11-05T08:31:00", A, "rejected")
    return db


def test_the_daily_roll_up_counts_local_days_and_may_run_twice(november: Engine) -> None:
    with november.begin() as conn:
        assert rollup_day(conn, dt.date(2026, 11, 2), SHANGHAI) == 4  # 3 documents, 1 record
        assert rollup_day(conn, dt.date(2026, 11, 2), SHANGHAI) == 4  # replaced, not added
        rows = {
            (r.document_code, r.received, r.accepted)
            for r in conn.execute(select(upload_days).where(upload_days.c.day == "2026-11-02"))
        }
        kept = conn.execute(select(record_days).where(record_days.c.day == "2026-11-02")).all()
    assert rows == {("C0002", 2, 2), ("C0049", 1, 1)}
    assert [(r.institution, r.service, r.received, r.accepted) for r in kept] == [
        (A, "PatientInfoRegister", 1, 1)
    ]


def test_the_monthly_table(november: Engine) -> None:
    # from the first day anything was uploaded (the 2nd) to the 30th
    assert rollup_month(november, "2026-11", SHANGHAI, today=dt.date(2026, 12, 4)) == 29
    with november.connect() as conn:
        days = conn.execute(select(func.count()).select_from(upload_days)).scalar_one()
        a, b = monthly(conn, "2026-11", CONFIG)
    assert days == 6  # A: (2nd: C0002, C0049), (3rd: C0006, C0053), (4th: C0053); B: (20th: C0053)
    assert (a.institution, a.received, a.accepted, a.rejected) == (A, 6, 4, 2)
    assert a.uploaded_types == {"C0002", "C0049", "C0006"} and a.required_uploaded == 2
    assert a.completeness == pytest.approx(2 / 3) and a.declared_uploaded == 3
    # the 4th had only a rejected document; the 5th an accepted record
    assert a.days == {"2026-11-02", "2026-11-03", "2026-11-05"}
    assert (a.outpatient, a.discharges) == (2, 1)
    assert (a.records_received, a.records_accepted) == (3, 2)
    assert a.top_reasons() == "header.patient-name 2; schema.cda 1"
    # an institution that uploads without being configured is listed, against the required types
    assert (b.institution, b.name, b.declared, b.accepted, b.required_uploaded) == (
        B,
        "第二人民医院",
        [],
        1,
        1,
    )
    # already rolled up: only today (of December, not this month) would be done again
    assert rollup_month(november, "2026-11", SHANGHAI, today=dt.date(2026, 12, 4)) == 0


def test_the_nightly_job_rolls_up_yesterday(db: Engine) -> None:
    yesterday = dt.datetime.now(SHANGHAI).date() - dt.timedelta(days=1)
    upload(db, f"{yesterday.isoformat()}T12:00:00", A, "C0002")

    class Services:
        pass

    services = Services()
    services.db = db  # type: ignore[attr-defined]

    class App:
        def section(self, name: str, model: type[CdaConfig]) -> CdaConfig:
            return CONFIG

    assert _rollup_yesterday(services, App()) == 1  # type: ignore[arg-type]
    with db.connect() as conn:
        (day,) = conn.execute(select(upload_days.c.day)).scalars()
    assert day == yesterday.isoformat()


def test_hie_report_uploads_prints_the_table_and_writes_csv(tmp_path: Path, store_url: str) -> None:
    root = Path(__file__).resolve().parents[3]
    config = (root / "config.yaml").read_text("utf-8")
    config = config.replace("url: ${HIE_STORE_URL:-}", f"url: '{store_url}'")
    config = config.replace("data_dir: ${HIE_DATA_DIR:-data}", f"data_dir: '{tmp_path / 'data'}'")
    (tmp_path / "config.yaml").write_text(config, "utf-8")
    for folder in ("channels", "mappings"):
        (tmp_path / folder).symlink_to(root / folder)
    eng = open_engine(store_url)
    migrate(eng, [p.migrations for p in PLUGINS if p.migrations is not None])
    upload(eng, "2026-11-05T09:00:00", A, "C0002")
    upload(eng, "2026-11-05T09:30:00", A, "C0053", "rejected", "document.template-id")
    record(eng, "2026-11-05T10:00:00", A)
    eng.dispose()
    out = tmp_path / "november.csv"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "uploads",
            "--month",
            "2026-11",
            "--csv",
            str(out),
            "--config",
            str(tmp_path / "config.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert A in result.output and "document.template-id 1" in result.output
    with out.open(encoding="utf-8-sig") as handle:
        (header, row) = list(csv.reader(handle))
    assert header[0] == "机构代码 institution" and row[0] == A
    # documents received/accepted/rejected, records received/stored, days, outpatient
    assert header[10:12] == ["收到记录 records received", "入库记录 records stored"]
    assert row[7:10] == ["2", "1", "1"] and row[10:12] == ["1", "1"] and row[12] == "1" and row[13] == "1"
    bad = CliRunner().invoke(
        main, ["report", "uploads", "--month", "2026-13", "--config", str(tmp_path / "config.yaml")]
    )
    assert bad.exit_code != 0 and "not a month" in bad.output


async def test_the_engine_schedules_the_roll_up_at_the_configured_time(make_app: Any) -> None:
    app = make_app({}, extra="cda:\n  rollup_at: '01:15'\n")
    async with running(app) as rt:
        assert rt._scheduler is not None
        (job,) = [
            j
            for j in rt._scheduler.get_jobs()
            if j.args and getattr(j.args[0], "name", "") == "cda-upload-rollup"
        ]
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("1", "15") and str(
            job.trigger.timezone
        ) == "Asia/Shanghai"

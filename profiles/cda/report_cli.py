"""``hie report uploads``: the month's upload statistics per institution, as the platform's monthly
bulletin shows them (``profiles.cda.stats``)::

    hie report uploads --month 2026-11                 # the table
    hie report uploads --month 2026-11 --csv nov.csv   # and the same as CSV (UTF-8 with BOM, for Excel)

Days of the month not rolled up yet (and today) are rolled up first.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import click

from engine.cli.common import load_or_exit
from engine.cli.store_access import open_store
from profiles.cda.config import CdaConfig
from profiles.cda.stats import MonthRow, monthly, rollup_month

__all__ = ["report"]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
HEADERS = [
    "机构代码 institution",
    "机构名称 name",
    "应上传类型 required",
    "已上传(应) required uploaded",
    "完整率 completeness",
    "申报类型 declared",
    "已上传(申报) declared uploaded",
    "收到文档 received",
    "通过 accepted",
    "拒收 rejected",
    "收到记录 records received",
    "入库记录 records stored",
    "上传天数 upload days",
    "门诊人次 outpatient",
    "出院人次 discharges",
    "主要拒收原因 top rejection reasons",
]


def _cells(row: MonthRow) -> list[str]:
    complete = f"{row.completeness:.0%}" if row.completeness is not None else "-"
    return [
        row.institution or "(none)",
        row.name,
        str(len(row.required)),
        str(row.required_uploaded),
        complete,
        str(len(row.declared)),
        str(row.declared_uploaded),
        str(row.received),
        str(row.accepted),
        str(row.rejected),
        str(row.records_received),
        str(row.records_accepted),
        str(len(row.days)),
        str(row.outpatient),
        str(row.discharges),
        row.top_reasons(),
    ]


@click.group()
def report() -> None:
    """Reports for the platform's operators."""


@report.command("uploads")
@click.option("--month", default=lambda: dt.date.today().strftime("%Y-%m"), show_default="this month")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="also write CSV")
@click.option("--config", "-c", "config", type=click.Path(path_type=Path), default=None)
def uploads(month: str, csv_path: Path | None, config: Path | None) -> None:
    """The month's CDA upload statistics per institution."""
    if not _MONTH.match(month):
        raise click.BadParameter(f"{month!r} is not a month like 2026-11", param_hint="--month")
    app = load_or_exit(config)
    settings = app.section("cda", CdaConfig)
    with open_store(app) as db:
        rollup_month(db, month, settings.zone)
        with db.connect() as conn:
            rows = monthly(conn, month, settings)
    table = [_cells(r) for r in rows]
    click.echo(f"CDA uploads, {month} ({settings.timezone} days): {len(rows)} institution(s)")
    widths = [max([len(h.split(" ")[0]), *(len(t[i]) for t in table)]) for i, h in enumerate(HEADERS)]
    click.echo("  ".join(h.split(" ")[0].ljust(w) for h, w in zip(HEADERS, widths, strict=True)))
    for cells in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    if csv_path is not None:
        with csv_path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADERS)
            writer.writerows(table)
        click.echo(f"wrote {csv_path}")

"""``hie dicom echo / store / find / unreconciled / reconcile`` against the running sample channel: what
a newcomer types to try the archive."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from engine.cli.main import main
from engine.store.schema import audit_events
from tests.profiles.dicom.conftest import Pacs, write_study


async def hie(pacs: Pacs, *args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, main, [*args, "--config", str(pacs.config)])


async def test_echo_store_find_then_reconcile(pacs: Pacs, tmp_path: Path) -> None:
    echoed = await hie(pacs, "dicom", "echo")
    assert echoed.exit_code == 0 and "status 0x0000" in echoed.output, echoed.output

    study = write_study(tmp_path / "study", 2)
    (tmp_path / "study" / "notes.txt").write_text("not DICOM")
    stored = await hie(pacs, "dicom", "store", str(tmp_path / "study"))
    assert stored.exit_code == 0, stored.output
    assert "2 stored, 0 failed" in stored.output and "notes.txt: not a DICOM file" in stored.output

    found = await hie(pacs, "dicom", "find", "-k", "PatientID=A1001")
    assert found.exit_code == 0 and "1 matches" in found.output and study.uid in found.output

    listed = await hie(pacs, "dicom", "unreconciled")
    assert study.uid in listed.output and "A1001^^^-" in listed.output
    with pacs.db.connect() as conn:
        reads = conn.execute(
            select(audit_events.c.user_id).where(audit_events.c.event_type.like("hie dicom unreconciled%"))
        ).all()
    assert len(reads) == 1  # listing patients is itself audited

    await pacs.feed("A1001")
    reconciled = await hie(pacs, "dicom", "reconcile")
    assert "1 studies reconciled" in reconciled.output
    assert "every study's patient is known" in (await hie(pacs, "dicom", "unreconciled")).output


async def test_store_reports_each_failure_and_exits_1(pacs: Pacs, tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", 1)
    pacs.rt.services.actors["dicom"].config.peers[2].may = ["find"]  # type: ignore[union-attr]  # HIE_CLI
    stored = await hie(pacs, "dicom", "store", str(study.files[0]))
    assert stored.exit_code == 1
    assert "0x0124 HIE_CLI may not store here" in stored.output and "0 stored, 1 failed" in stored.output
    wrong_port = await hie(pacs, "dicom", "echo", "--host", "127.0.0.1", "--port", "1", "--aec", "X")
    assert wrong_port.exit_code == 1 and "did not accept the association" in wrong_port.output

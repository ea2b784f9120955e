"""``hie run --workers 2`` on PostgreSQL with the DICOM source: both worker processes listen on the
archive's port (SO_REUSEPORT), the PACS's associations are spread over them, and every instance is
archived and indexed once."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from engine.store.schema import deliveries
from profiles.dicom.schema import instances
from tests.conftest import free_port
from tests.engine.test_crash_recovery import HIE, wait_listening
from tests.engine.test_workers import until, workers_of
from tests.profiles.dicom.conftest import dcmtk, write_study

ROOT = Path(__file__).resolve().parents[3]


def write_config(base: Path, store_url: str, port: int) -> Path:
    (base / "channels").mkdir()
    (base / "config.yaml").write_text(
        "engine: {data_dir: data, log_level: INFO, channels_dir: channels, "
        f"mappings_dir: '{ROOT / 'mappings'}'}}\nstore: {{url: '{store_url}'}}\n"
        "empi:\n  domains:\n    - {id: hospital-a, namespace: HOSP_A, oid: 1.2.156.112604.1.1}\n"
        "dicom:\n  peers:\n    - {ae_title: HOSP_A_PACS, domain: hospital-a}\n",
        encoding="utf-8",
    )
    (base / "channels" / "pacs-store.yaml").write_text(
        f"id: pacs-store\nsource: {{url: 'dicom://127.0.0.1:{port}'}}\n"
        "ack: after_delivery\nack_from: archive\ndestinations:\n  - {id: archive, url: 'dicom-archive:'}\n",
        encoding="utf-8",
    )
    return base / "config.yaml"


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(HIE), "run", "--workers", "2", "--config", str(config)],
            cwd=config.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.postgres
async def test_two_workers_share_the_dicom_port(tmp_path: Path, pg_url: str) -> None:
    port = free_port()
    log = tmp_path / "engine.log"
    supervisor = await asyncio.to_thread(start, write_config(tmp_path, pg_url, port), log)
    try:
        await asyncio.to_thread(wait_listening, port, supervisor, log)
        await asyncio.to_thread(until, lambda: log.read_text().count("engine started") == 2)
        study = write_study(tmp_path / "study", 12)
        # one association per file, several at once: the kernel hands each to a worker
        runs = await asyncio.gather(
            *(
                dcmtk("storescu", "-v", "-aet", "HOSP_A_PACS", "-aec", "HIE_PACS", "127.0.0.1", str(port), f)
                for f in study.files
            )
        )
        assert all("Received Store Response (Success)" in r.out for r in runs), [r.out for r in runs]
        db = create_engine(pg_url)
        try:
            with db.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(instances)).scalar_one()
                owners = set(conn.execute(select(deliveries.c.owner_node).distinct()).scalars())
        finally:
            db.dispose()
        assert stored == 12
        assert len(owners) == 2, owners  # both workers took associations
        assert len(workers_of(supervisor.pid)) == 2
    finally:
        supervisor.terminate()
        supervisor.wait(60)
    assert supervisor.returncode == 0, log.read_text()[-3000:]

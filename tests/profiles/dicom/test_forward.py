"""The DICOM destination: each instance the archive received is forwarded to another PACS (dcmtk's
storescp) from the channel's queue; a peer that is down is retried, not lost."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlalchemy import select

from engine.store.schema import deliveries
from tests.conftest import free_port
from tests.profiles.dicom.conftest import Pacs, write_study

PORT = free_port()
FORWARD = pytest.mark.pacs(
    destinations_extra=f"  - {{id: teaching, url: 'dicom://127.0.0.1:{PORT}', ae_title: TEACH_PACS}}\n"
)


async def wait_for(check: object, seconds: float = 30) -> None:
    for _ in range(int(seconds * 10)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not in time")


@FORWARD
async def test_each_archived_instance_is_forwarded(pacs: Pacs, tmp_path: Path) -> None:
    received = tmp_path / "teaching"
    received.mkdir()
    storescp = await asyncio.create_subprocess_exec(
        "storescp",
        "-aet",
        "TEACH_PACS",
        "-od",
        str(received),
        str(PORT),
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    try:
        study = write_study(tmp_path / "study", 2)
        assert (await pacs.store(*study.files)).statuses == ["Success"] * 2
        await wait_for(lambda: len(list(received.iterdir())) == 2)
    finally:
        storescp.terminate()
        await storescp.wait()
    assert {str(dcmread(f).SOPInstanceUID) for f in received.iterdir()} == pacs.instance_uids(study.uid)
    with pacs.db.connect() as conn:
        statuses = conn.execute(select(deliveries.c.status).where(deliveries.c.destination == "teaching"))
        assert set(statuses.scalars()) == {"sent"}


@FORWARD
async def test_a_peer_that_is_down_is_retried(pacs: Pacs, tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", 1)
    assert (await pacs.store(*study.files)).statuses == ["Success"]  # archived whatever the peer does

    def tried() -> bool:
        with pacs.db.connect() as conn:
            row = conn.execute(
                select(deliveries.c.status, deliveries.c.attempts, deliveries.c.last_error).where(
                    deliveries.c.destination == "teaching"
                )
            ).one()
        return bool(
            row.attempts >= 1 and row.status == "queued" and "did not accept" in (row.last_error or "")
        )

    await wait_for(tried)

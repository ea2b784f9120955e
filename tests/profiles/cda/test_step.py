"""The ``cda-validate`` step in a channel: documents POSTed over real HTTP; an accepted one is
delivered with its report kept, a rejected one is stored as errored with the whole report and the
sender told the first errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import select

from engine.config import AppConfig
from engine.store.schema import messages
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import rows, until
from tests.profiles.cda.test_validator import BREAKING, edit, sample

MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"


async def test_documents_through_a_channel_that_validates(
    make_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    (tmp_path / "mappings").symlink_to(MAPPINGS)  # the value sets the validator checks codes with
    port = free_port()
    app = make_app(
        {
            "cda-in": f"""id: cda-in
source: {{url: "http://127.0.0.1:{port}/cda", content_type: xml}}
steps:
  - cda-validate: {{on_error: reject}}
destinations:
  - {{id: archive, url: "file://{tmp_path / "out"}"}}
"""
        }
    )
    async with running(app) as rt, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{port}/cda"
        good = await client.post(url, content=sample("C0049"), headers={"Content-Type": "text/xml"})
        assert good.status_code == 200, good.text
        bad_bytes = edit("C0053", BREAKING["header.language"][1])  # a warning only: still accepted
        warned = await client.post(url, content=bad_bytes, headers={"Content-Type": "text/xml"})
        assert warned.status_code == 200
        broken = edit("C0053", BREAKING["header.patient-id-card"][1])
        refused = await client.post(url, content=broken, headers={"Content-Type": "text/xml"})
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert "CDA rejected (1 error(s))" in error and "header.patient-id-card" in error and "line" in error
        await until(lambda: len(list((tmp_path / "out").glob("[!.]*"))) == 2)
        stored = {m["status"]: m for m in rows(rt, messages)}
        assert set(stored) == {"received", "errored"}
        report = json.loads(stored["errored"]["error_detail"])
        assert report["accepted"] is False and report["document_code"] == "C0053"
        assert [f["rule"] for f in report["findings"]] == ["header.patient-id-card"]
        with rt.services.db.connect() as conn:
            warnings = conn.execute(
                select(messages.c.warnings).where(messages.c.warnings.is_not(None))
            ).scalars()
            assert any("header.language" in w for w in warnings)

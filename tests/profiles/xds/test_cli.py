"""``hie xds submit / query / get`` against the running sample channels: what a newcomer types."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result

from engine.cli.main import main
from tests.engine.connectors.mllp_peers import hl7_send
from tests.profiles.conftest import NID_A, A
from tests.profiles.xds.conftest import Xds

CDA = "<ClinicalDocument xmlns='urn:hl7-org:v3'><title>出院小结</title></ClinicalDocument>\n".encode()


async def hie(xds: Xds, *args: str) -> Result:
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, main, [*args, "--config", str(xds.config)])


async def test_submit_query_get_by_national_id(xds: Xds, tmp_path: Path) -> None:
    feed = (
        "MSH|^~\\&|HIS_A|HOSP_A|PIX|CITY_HIE|20261203090000||ADT^A04^ADT_A01|CLI1|P|2.5"
        "|||||CHN|UNICODE UTF-8\r"
        f"EVN|A04|20261203090000\rPID|1||A1001^^^{A}^PI~{NID_A}^^^&2.16.156.10011.1.3&ISO^NI||欧阳^明轩||19850312|M\r"
        "PV1|1|O\r"
    )
    (ack,) = await hl7_send(xds.feed_port, feed.encode("utf-8"))
    assert b"MSA|AA" in ack
    document = tmp_path / "discharge.xml"
    document.write_bytes(CDA)

    submitted = await hie(xds, "xds", "submit", str(document), "--patient", NID_A, "--title", "出院小结")
    assert submitted.exit_code == 0, submitted.output
    unique_id = submitted.output.split()[1]
    assert unique_id.startswith("2.25.") and "text/xml" in submitted.output

    # the same person found by the hospital's own id: one person in the EMPI
    found = await hie(xds, "xds", "query", "--patient", "A1001^^^&1.2.156.112604.1.1&ISO")
    assert found.exit_code == 0, found.output
    (line,) = [line for line in found.output.splitlines() if line.startswith(unique_id)]
    assert line.split("\t")[2:] == ["text/xml", "Approved", str(len(CDA)), "出院小结"]

    copy = tmp_path / "copy.xml"
    got = await hie(xds, "xds", "get", unique_id, "--out", str(copy))
    assert got.exit_code == 0, got.output
    assert copy.read_bytes() == CDA


async def test_errors_are_printed_with_their_codes(xds: Xds, tmp_path: Path) -> None:
    document = tmp_path / "note.xml"
    document.write_bytes(CDA)
    refused = await hie(xds, "xds", "submit", str(document), "--patient", "110101199003077777")
    assert refused.exit_code == 1 and "XDSUnknownPatientId" in refused.output
    missing = await hie(xds, "xds", "get", "1.2.3.4")
    assert missing.exit_code == 1 and "XDSDocumentUniqueIdError" in missing.output
    nowhere = await hie(xds, "xds", "query", "--patient", NID_A, "--url", "http://127.0.0.1:9/xds/registry")
    assert nowhere.exit_code == 1 and "cannot reach" in nowhere.output

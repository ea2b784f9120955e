"""``hie send``: files of HL7 messages to an MLLP endpoint, each answer printed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import main
from engine.cli.send import split_messages
from engine.config import AppConfig
from tests.conftest import free_port, hl7_message, running, sample


def test_split_messages_handles_lf_crlf_and_several_per_file() -> None:
    data = (hl7_message("A1") + hl7_message("A2")).replace("\r", "\r\n").encode()
    parts = split_messages(data)
    assert [p.split(b"|")[9] for p in parts] == [b"A1", b"A2"]
    assert all(p.endswith(b"\r") and b"\n" not in p for p in parts)


async def test_send_prints_each_ack_and_exits_1_on_a_nak(
    make_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    port = free_port()
    app = make_app({"adt": f"id: adt\nsource: {{url: 'mllp://127.0.0.1:{port}'}}\n"})
    good = tmp_path / "good.hl7"
    good.write_bytes(sample("adt_a01_utf8.hl7") + sample("adt_a04_gb18030.hl7"))
    bad = tmp_path / "bad.hl7"
    bad.write_text(hl7_message(""))
    async with running(app):
        ok = await asyncio.to_thread(
            CliRunner().invoke, main, ["send", f"mllp://127.0.0.1:{port}", str(good)]
        )
        nak = await asyncio.to_thread(
            CliRunner().invoke, main, ["send", "-q", f"mllp://127.0.0.1:{port}", str(good), str(bad)]
        )
    assert ok.exit_code == 0, ok.output
    assert "MSA|AA|MSG-A-0001" in ok.output and "MSA|AA|MSG-A-0002" in ok.output
    assert nak.exit_code == 1
    assert f"{bad}: AR" in nak.output and "MSH-10" in nak.output
    assert "1 of 3 message(s) not accepted" in nak.output


def test_send_to_a_closed_port_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "m.hl7"
    f.write_text(hl7_message("C1"))
    result = CliRunner().invoke(main, ["send", f"mllp://127.0.0.1:{free_port()}", str(f)])
    assert result.exit_code != 0
    assert "cannot connect" in result.output

"""``hie run --workers N``: several engine processes on one port and one PostgreSQL, supervised.

The supervisor runs as its own process, as an operator would start it. Senders open many MLLP
connections to the one port; the kernel spreads them over the workers, every message is
acknowledged and stored once, and the deliveries belong to both workers' nodes. A worker killed
with SIGKILL is started again; SIGTERM to the supervisor stops every worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hl7.client import MLLPClient
from sqlalchemy import create_engine, func, select

from engine.cli.main import main
from engine.store.schema import deliveries, messages
from tests.conftest import free_port, hl7_message
from tests.engine.test_crash_recovery import HIE, wait_listening

CONNECTIONS = 16


def write_config(base: Path, store_url: str, port: int) -> Path:
    (base / "channels").mkdir()
    (base / "config.yaml").write_text(
        f"engine: {{data_dir: data, log_level: INFO}}\nstore: {{url: '{store_url}'}}\n", encoding="utf-8"
    )
    (base / "channels" / "adt.yaml").write_text(
        "id: adt\n"
        f"source: {{url: 'mllp://127.0.0.1:{port}'}}\n"
        "ack: after_store\n"
        "destinations:\n"
        "  - id: archive\n"
        f"    url: 'file://{base / 'out'}'\n"
        "    filename: '{control_id}.hl7'\n",
        encoding="utf-8",
    )
    return base / "config.yaml"


def workers_of(supervisor: int) -> set[int]:
    """The pids whose parent is ``supervisor`` (from /proc: the workers it started)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor:
                found.add(int(entry.name))
    return found


def until(predicate: object, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def ack_of(client: MLLPClient, control_id: str) -> bytes:
    answer: bytes = client.send_message(hl7_message(control_id))
    while answer and not answer.endswith(b"\x1c\r"):  # MLLPClient reads once; an ACK may come in parts
        answer += client.socket.recv(4096)
    return answer


def test_workers_need_postgresql(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'hie.db'}", free_port())
    result = CliRunner().invoke(main, ["run", "--workers", "2", "--config", str(config)])
    assert result.exit_code == 2
    assert "--workers 2 needs a PostgreSQL store" in result.output and "SQLite" in result.output


@pytest.mark.postgres
def test_two_workers_share_the_port_and_the_store_and_stop_together(tmp_path: Path, pg_url: str) -> None:
    port = free_port()
    config = write_config(tmp_path, pg_url, port)
    log = tmp_path / "engine.log"
    with open(log, "ab") as out:
        supervisor = subprocess.Popen(
            [str(HIE), "run", "--workers", "2", "--config", str(config)],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_listening(port, supervisor, log)
        until(lambda: len(workers_of(supervisor.pid)) == 2)
        until(lambda: log.read_text().count("engine started") == 2)
        sent = 0
        for _ in range(CONNECTIONS):  # each a new connection: the kernel picks a worker for each
            with MLLPClient("127.0.0.1", port) as client:
                for _message in range(3):
                    sent += 1
                    assert b"MSA|AA|" + f"W{sent:04d}".encode() in ack_of(client, f"W{sent:04d}")
        db = create_engine(pg_url)
        try:
            with db.connect() as conn:
                assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == sent
                owners = set(conn.execute(select(deliveries.c.owner_node).distinct()).scalars())
            assert len(owners) == 2, owners  # both workers took connections
        finally:
            db.dispose()
        out_dir = tmp_path / "out"
        until(lambda: len(list(out_dir.glob("*.hl7"))) == sent)

        # a worker killed outright is started again by the supervisor
        victim = min(workers_of(supervisor.pid))
        os.kill(victim, signal.SIGKILL)
        until(lambda: len(workers_of(supervisor.pid) - {victim}) == 2)
        until(lambda: log.read_text().count("engine started") == 3)
        assert "exited with -9; starting it again" in log.read_text()
        with MLLPClient("127.0.0.1", port) as client:
            assert b"MSA|AA|W-AFTER" in ack_of(client, "W-AFTER")
    finally:
        children = workers_of(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(60)
    assert supervisor.returncode == 0, log.read_text()[-3000:]
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)  # every worker stopped

"""``kill -9`` of a running engine loses no acknowledged message and repeats at most one send per lane.

The engine runs as its own process (``hie run``) on a store file (or a PostgreSQL database). One
channel: an MLLP source acknowledging after store, a file destination, and an MLLP destination
(``order_by: patient``, two lanes) that points to a fake downstream system run by this test, which
answers AA and records every control id it receives. Four sender threads send distinct messages
with python-hl7's ``MLLPClient``, one at a time, each waiting for its ACK. After a few hundred ACKs
the engine gets SIGKILL while senders and deliveries are in flight; it is then started again with
the same configuration, and must deliver everything it acknowledged to both destinations:

* every AA'd control id is in the file destination and at the downstream;
* a message that was never acknowledged may or may not be there, but only one per sender (the one
  in flight when the engine died); both destinations deliver the same set of messages;
* the downstream may see a message twice only if its send was in flight at the kill (sent, answered,
  status not yet committed): at most one per lane;
* per patient, first arrivals at the downstream keep the order the patient's messages were sent in.
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hl7.client import MLLPClient
from sqlalchemy import create_engine, func, select

from engine.store.schema import deliveries
from tests.conftest import free_port, hl7_message

pytestmark = pytest.mark.slow

SB, END = b"\x0b", b"\x1c\x0d"
SENDERS = 4
PATIENTS_PER_SENDER = 5
MESSAGES_PER_SENDER = 5000  # more than are sent before the kill
KILL_AFTER_ACKS = 300
LANES = 2
HIE = Path(sys.executable).with_name("hie")


# -- the fake downstream system ------------------------------------------------------------------------


def msh10(message: bytes) -> str:
    first = message.split(b"\r", 1)[0]
    fields = first.split(first[3:4] or b"|")
    return fields[9].decode("ascii", "replace") if len(fields) > 9 else ""


class Downstream(socketserver.ThreadingTCPServer):
    """Answers every message with AA naming its MSH-10; keeps the control ids in arrival order."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _DownstreamHandler)
        self.received: list[str] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.received)


class _DownstreamHandler(socketserver.BaseRequestHandler):
    server: Downstream

    def handle(self) -> None:
        buf = b""
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while (end := buf.find(END)) != -1:
                message = buf[buf.find(SB) + 1 : end]
                buf = buf[end + 2 :]
                cid = msh10(message)
                with self.server.lock:
                    self.server.received.append(cid)
                ack = (
                    f"MSH|^~\\&|DOWN|DOWN_FAC|HIE|CITY_HIE|20261122083000||ACK^A01^ACK|D{cid}|P|2.5\r"
                    f"MSA|AA|{cid}\r"
                ).encode()
                try:
                    self.request.sendall(SB + ack + END)
                except OSError:
                    return


# -- senders --------------------------------------------------------------------------------------------


@dataclass
class Sent:
    """What the senders know: every message in send order, and which ones got an AA."""

    order: dict[str, tuple[str, int]] = field(default_factory=dict)  # control id -> (patient, seq)
    acked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack_count(self) -> int:
        with self.lock:
            return len(self.acked)


def sender(port: int, number: int, sent: Sent, stop: threading.Event) -> None:
    """Send this sender's messages one at a time until the engine goes away (or ``stop``)."""
    patients = [f"9{number}{p:04d}" for p in range(PATIENTS_PER_SENDER)]
    try:
        client = MLLPClient("127.0.0.1", port)
    except OSError as exc:
        with sent.lock:
            sent.errors.append(f"sender {number}: cannot connect: {exc}")
        return
    client.socket.settimeout(15)
    with client:
        for seq in range(MESSAGES_PER_SENDER):
            if stop.is_set():
                return
            patient = patients[seq % len(patients)]
            cid = f"S{number}M{seq:05d}"
            with sent.lock:
                sent.order[cid] = (patient, seq)
            try:
                answer = client.send_message(hl7_message(cid, patient=patient, name="测试^患者"))
                while answer and not answer.endswith(END):  # MLLPClient reads once; an ACK may come in parts
                    more = client.socket.recv(4096)
                    if not more:
                        break
                    answer += more
            except OSError as exc:  # the engine was killed: this message may or may not be stored
                with sent.lock:
                    sent.errors.append(f"sender {number} at {cid}: {type(exc).__name__}")
                return
            if not answer:  # connection closed by the dying engine
                with sent.lock:
                    sent.errors.append(f"sender {number} at {cid}: connection closed")
                return
            segments = answer.strip(SB + END).split(b"\r")
            msa: list[bytes] = next((s.split(b"|") for s in segments if s.startswith(b"MSA")), [])
            if len(msa) > 2 and msa[1] == b"AA" and msa[2].decode() == cid:
                with sent.lock:
                    sent.acked.add(cid)
            else:
                with sent.lock:
                    sent.errors.append(f"sender {number} at {cid}: unexpected answer {answer[:200]!r}")
                return


# -- the engine process ---------------------------------------------------------------------------------


def write_config(base: Path, store_url: str, port: int, downstream: int) -> Path:
    (base / "channels").mkdir()
    (base / "config.yaml").write_text(
        f"engine: {{data_dir: data, log_level: WARNING}}\nstore: {{url: '{store_url}', synchronous: full}}\n",
        encoding="utf-8",
    )
    (base / "channels" / "crash.yaml").write_text(
        "id: crash\n"
        f"source: {{url: 'mllp://127.0.0.1:{port}'}}\n"
        "ack: after_store\n"
        "destinations:\n"
        "  - id: archive\n"
        f"    url: 'file://{base / 'out'}'\n"
        "    filename: '{channel}-{message_id}.hl7'\n"
        "  - id: downstream\n"
        f"    url: 'mllp://127.0.0.1:{downstream}'\n"
        "    order_by: patient\n"
        f"    lanes: {LANES}\n"
        "    retry: {max_attempts: 100, backoff: 0.2, max_backoff: 1}\n",
        encoding="utf-8",
    )
    return base / "config.yaml"


def start_engine(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(HIE), "run", "--config", str(config)],
            cwd=config.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text("utf-8", "replace")[-3000:]
            pytest.fail(f"the engine exited with {proc.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the engine did not listen on {port} within {timeout:g} s")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def file_control_ids(outdir: Path) -> list[str]:
    if not outdir.is_dir():
        return []
    return [msh10(p.read_bytes()) for p in outdir.iterdir() if not p.name.startswith(".")]


def stop_engine(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the scenario ---------------------------------------------------------------------------------------


def kill_and_recover(base: Path, store_url: str) -> None:
    downstream = Downstream()
    threading.Thread(target=downstream.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = free_port()
    config = write_config(base, store_url, port, downstream.port)
    log = base / "engine.log"
    sent = Sent()
    stop = threading.Event()
    proc = start_engine(config, log)
    try:
        wait_listening(port, proc, log)
        threads = [
            threading.Thread(target=sender, args=(port, n, sent, stop), daemon=True) for n in range(SENDERS)
        ]
        for t in threads:
            t.start()
        wait_until(lambda: sent.ack_count() >= KILL_AFTER_ACKS, 20, f"{KILL_AFTER_ACKS} ACKs")
        os.kill(proc.pid, signal.SIGKILL)  # senders and deliveries are mid-flight
        proc.wait(10)
        for t in threads:
            t.join(20)
        stop.set()
        acked = set(sent.acked)
        in_downstream_at_kill = len(downstream.snapshot())
        print(
            f"\nkilled after {len(acked)} ACKs; {len(file_control_ids(base / 'out'))} files and "
            f"{in_downstream_at_kill} downstream receipts at the kill; sender errors: {sent.errors}"
        )

        proc = start_engine(config, log)
        wait_listening(port, proc, log)

        store = create_engine(store_url)

        def drained() -> bool:
            if not acked <= set(file_control_ids(base / "out")) or not acked <= set(downstream.snapshot()):
                return False
            with store.connect() as conn:
                waiting = conn.execute(
                    select(func.count())
                    .select_from(deliveries)
                    .where(deliveries.c.status.in_(("queued", "pending")))
                ).scalar_one()
            return waiting == 0

        try:
            wait_until(drained, 30, "both destinations to have every acknowledged message")
        finally:
            store.dispose()
    finally:
        stop.set()
        stop_engine(proc)
        downstream.shutdown()
        downstream.server_close()

    files = file_control_ids(base / "out")
    received = downstream.snapshot()
    unique = set(received)
    duplicates = len(received) - len(unique)
    print(
        f"acknowledged {len(acked)}, files {len(files)}, downstream {len(received)} "
        f"({len(unique)} distinct, {duplicates} duplicate(s), at most {LANES} allowed)"
    )

    assert not acked - set(files), "acknowledged messages missing from the file destination"
    assert not acked - unique, "acknowledged messages never reached the downstream system"
    assert len(files) == len(set(files)), "a message was written to two files"
    assert set(files) == unique, "both destinations deliver the same messages"
    unacked = unique - acked
    strangers = sorted(unacked - sent.order.keys())
    assert not strangers, f"delivered messages nobody sent: {strangers}"
    assert len(unacked) <= SENDERS, f"stored without an ACK: {sorted(unacked)} (at most one per sender)"
    assert duplicates <= LANES, f"{duplicates} messages sent twice downstream (at most one per lane)"

    first_arrivals: dict[str, list[int]] = {}
    seen: set[str] = set()
    for cid in received:
        if cid in seen:
            continue
        seen.add(cid)
        patient, seq = sent.order[cid]
        first_arrivals.setdefault(patient, []).append(seq)
    for patient, seqs in first_arrivals.items():
        assert seqs == sorted(seqs), f"patient {patient}: messages arrived out of send order: {seqs}"


def test_kill_9_loses_nothing_acknowledged_sqlite(tmp_path: Path) -> None:
    kill_and_recover(tmp_path, f"sqlite:///{tmp_path / 'data' / 'hie.db'}")


@pytest.mark.postgres
def test_kill_9_loses_nothing_acknowledged_postgres(tmp_path: Path, pg_url: str) -> None:
    kill_and_recover(tmp_path, pg_url)

"""MLLP intake throughput: the engine against a bare MLLP echo server on the same machine.

Run from the project root::

    .venv/bin/python bench/mllp_throughput.py [--messages 20000] [--connections 8]
        [--store-url URL] [--postgres] [--repeat N] [--py-spy FILE]

1. Echo ceiling: a uvloop server in its own process that frames each message and answers one fixed
   ACK, driven by the same client as the engine. This is what MLLP over loopback costs on this
   machine with this client, i.e. the most any engine could do.
2. The engine: ``hie run`` in a subprocess on a fresh temp config (SQLite file store with
   ``synchronous: full``, or PostgreSQL); one channel, MLLP source with ``ack: after_store`` and one
   file destination. Every ACK must be AA naming the message's MSH-10, so each acknowledged message
   is durable in the store. After the last ACK the benchmark waits for the file destination to have
   written every message.

The client: each connection sends one message and waits for its ACK before the next one, as real
MLLP senders do. It runs in its own process(es) on uvloop, messages pre-built, so that it is not
the bottleneck (its CPU use is printed).

Messages: synthetic ADT^A01 of about 1 KB, made-up Chinese names and addresses, valid GB 11643
resident ID numbers; even-numbered messages are UTF-8 (MSH-18 ``UNICODE UTF-8``), odd ones GB18030
(MSH-18 ``GB 18030-2000``); MSH-10 unique per run.

The benchmark only measures and prints; it never fails on a missed target (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
END = EB + CR

TARGET_RATE = 5000.0
TARGET_RATIO = 0.3
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

# --------------------------------------------------------------------------------------------------
# synthetic messages

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程魏苏吕丁任沈"
)
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰萍红鹏辉建国志文斌宇浩凯欣怡梓涵子轩雨晨思远"
_CITIES = (
    ("110101", "北京市", "东城区"),
    ("310104", "上海市", "徐汇区"),
    ("440305", "广东省深圳市", "南山区"),
    ("510107", "四川省成都市", "武侯区"),
    ("330106", "浙江省杭州市", "西湖区"),
    ("420102", "湖北省武汉市", "江岸区"),
    ("320102", "江苏省南京市", "玄武区"),
    ("610113", "陕西省西安市", "雁塔区"),
)
_STREETS = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平街",
    "长江路",
    "黄河路",
    "友谊路",
    "光明街",
    "文化路",
)
_WARDS = ("心内科", "呼吸内科", "普外科", "骨科", "神经内科", "消化内科", "肾内科", "内分泌科")
_DIAGNOSES = (
    ("I10", "原发性高血压"),
    ("E11.9", "2型糖尿病，不伴有并发症"),
    ("J18.9", "肺炎，未特指"),
    ("K35.8", "急性阑尾炎"),
    ("I21.9", "急性心肌梗死"),
    ("S72.0", "股骨颈骨折"),
    ("N18.3", "慢性肾脏病3期"),
)
_ALLERGIES = (("Z88.0", "青霉素过敏"), ("Z88.1", "头孢类过敏"), ("Z91.0", "海鲜过敏"))
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_card(area: str, birth: date, seq: int) -> str:
    """A GB 11643-1999 citizen identity number: area, birth date, sequence, ISO 7064 MOD 11-2 check."""
    body = f"{area}{birth:%Y%m%d}{seq % 1000:03d}"
    return body + _CHECK[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]


def valid_id_card(number: str) -> bool:
    body, check = number[:17], number[17:]
    return (
        len(number) == 18
        and body.isdigit()
        and _CHECK[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11] == check
    )


def control_id(tag: str, i: int) -> str:
    return f"{tag}{i:08d}"


def adt_a01(i: int, tag: str) -> bytes:
    """Message ``i`` of a run: deterministic, about 1 KB once encoded; UTF-8 if i is even, else GB18030."""
    rng = random.Random(i * 7919 + 17)
    utf8 = i % 2 == 0
    charset = "UNICODE UTF-8" if utf8 else "GB 18030-2000"
    area, province, district = rng.choice(_CITIES)
    birth = date(1935, 1, 1) + timedelta(days=rng.randrange(0, 32000))
    sex = rng.choice("MF")
    seq = rng.randrange(0, 500) * 2 + (1 if sex == "M" else 0)  # GB 11643: odd sequence = male
    card = id_card(area, birth, seq)
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
    kin = rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN)
    mrn = f"{100000 + i % 5000:06d}"  # 5,000 patients, several messages each
    street = (
        f"{rng.choice(_STREETS)}{rng.randrange(1, 999)}号{rng.randrange(1, 30)}栋{rng.randrange(101, 2999)}室"
    )
    phone = f"1{rng.choice('3589')}{rng.randrange(10**8, 10**9)}"
    ward = rng.choice(_WARDS)
    dx_code, dx_text = rng.choice(_DIAGNOSES)
    al_code, al_text = rng.choice(_ALLERGIES)
    when = f"202611{rng.randrange(1, 29):02d}{rng.randrange(0, 24):02d}{rng.randrange(0, 60):02d}00"
    cid = control_id(tag, i)
    segments = [
        f"MSH|^~\\&|HIS|HOSP_A|HIE|CITY_HIE|{when}||ADT^A01^ADT_A01|{cid}|P|2.5|||AL|NE|CHN|{charset}",
        f"EVN|A01|{when}|||D{rng.randrange(1000, 9999)}^{rng.choice(_SURNAMES)}医生",
        f"PID|1||{mrn}^^^HOSP_A&1.2.156.112604.1.1&ISO^PI~{card}^^^CHN&1.2.156.112604.1.2.1&ISO^NNCHN||"
        f"{name}^^^^^^L||{birth:%Y%m%d}|{sex}|||{street}^^{district}^{province}^{area}^CHN^H||"
        f"^PRN^CP^^^^^^^^^{phone}|||M||V{i:09d}|{card}",
        f"NK1|1|{kin}|SPO^配偶^HL70063|{street}^^{district}^{province}^{area}^CHN|^PRN^CP^^^^^^^^^{phone[::-1]}",
        f"PV1|1|I|{ward}^{rng.randrange(1, 60):03d}^{rng.randrange(1, 4)}^HOSP_A||||"
        f"D{rng.randrange(1000, 9999)}^{rng.choice(_SURNAMES)}^{rng.choice(_GIVEN)}|||{ward}||||1|||"
        f"D{rng.randrange(1000, 9999)}|IP|V{i:09d}|||||||||||||||||||||||||{when}",
        f"PV2|||{dx_code}^{dx_text}^ICD10||||||||||||||||||||||||||||||||||||||||N",
        f"OBX|1|NM|8302-2^身高^LN||{rng.randrange(150, 190)}|cm|||||F",
        f"OBX|2|NM|29463-7^体重^LN||{rng.randrange(45, 95)}|kg|||||F",
        f"AL1|1|DA|{al_code}^{al_text}^ICD10|MO|皮疹",
        f"DG1|1||{dx_code}^{dx_text}^ICD10||{when}|A",
        f"IN1|1|{rng.choice(('310', '390'))}^"
        f"{rng.choice(('城镇职工基本医疗保险', '城乡居民基本医疗保险'))}^CHN_INS|"
        f"{area}^{district}医疗保障局|{district}医疗保障局||||||||||{name}|SEL^本人^HL70063|{birth:%Y%m%d}|"
        f"{street}^^{district}^{province}^{area}^CHN",
    ]
    text = "\r".join(segments) + "\r"
    return text.encode("utf-8" if utf8 else "gb18030")


# --------------------------------------------------------------------------------------------------
# the client (runs in its own process)


@dataclass
class ClientResult:
    sent: int = 0
    acked_ok: int = 0
    bad: list[str] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    first_send: float = 0.0  # time.perf_counter(): CLOCK_MONOTONIC, comparable across processes
    last_ack: float = 0.0
    cpu_seconds: float = 0.0


class _ClientConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(END)
        if end != -1 and self.waiter is not None and not self.waiter.done():
            start = self.buf.find(SB)
            self.waiter.set_result(bytes(self.buf[start + 1 if start != -1 else 0 : end]))
            del self.buf[: end + 2]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))


def check_ack(ack: bytes, expected: str | None) -> str | None:
    """None if ``ack`` is AA (and names ``expected`` in MSA-2, when given), else what is wrong."""
    pos = ack.find(b"\rMSA")
    if pos == -1:
        return f"no MSA segment: {ack[:80]!r}"
    msa = ack[pos + 1 :].split(b"\r", 1)[0].split(ack[3:4] or b"|")
    code = msa[1].decode("ascii", "replace") if len(msa) > 1 else ""
    got = msa[2].decode("ascii", "replace") if len(msa) > 2 else ""
    if code != "AA":
        return f"{expected}: {code or 'no code'} {ack[pos + 1 : pos + 200]!r}"
    if expected is not None and got != expected:
        return f"{expected}: MSA-2 is {got!r}"
    return None


async def _drive(
    port: int, work: list[list[tuple[str, bytes]]], verify: bool, start: Any, ack_timeout: float
) -> ClientResult:
    loop = asyncio.get_running_loop()
    conns: list[_ClientConn] = []
    for _ in work:
        _, proto = await loop.create_connection(_ClientConn, "127.0.0.1", port)
        conns.append(proto)
    result = ClientResult()
    acks: list[tuple[str, bytes]] = []
    start.wait()  # every client process connected: go together (blocking is fine, nothing else runs)

    async def one(proto: _ClientConn, items: list[tuple[str, bytes]]) -> None:
        assert proto.transport is not None
        for cid, framed in items:
            fut: asyncio.Future[bytes] = loop.create_future()
            proto.waiter = fut
            t0 = time.perf_counter_ns()
            proto.transport.write(framed)
            result.sent += 1
            try:
                ack = await asyncio.wait_for(fut, ack_timeout)
            except (TimeoutError, ConnectionError) as exc:
                result.bad.append(f"{cid}: {type(exc).__name__} {exc}")
                return
            result.latencies_ns.append(time.perf_counter_ns() - t0)
            acks.append((cid, ack))

    result.first_send = time.perf_counter()
    await asyncio.gather(*(one(p, items) for p, items in zip(conns, work, strict=True)))
    result.last_ack = time.perf_counter()
    for proto in conns:
        if proto.transport is not None:
            proto.transport.close()
    for cid, ack in acks:  # checked after the clock stopped: checking is not what we measure
        problem = check_ack(ack, cid if verify else None)
        if problem is None:
            result.acked_ok += 1
        else:
            result.bad.append(problem)
    return result


def client_process(
    port: int,
    indices: list[list[int]],
    tag: str,
    verify: bool,
    start: Any,
    out: Connection,
    ack_timeout: float,
) -> None:
    """One client process: ``indices[k]`` are the message numbers connection k sends, in order."""
    import uvloop

    work = [[(control_id(tag, i), SB + adt_a01(i, tag) + END) for i in conn] for conn in indices]
    cpu0 = time.process_time()
    try:
        result = uvloop.run(_drive(port, work, verify, start, ack_timeout))
    except Exception as exc:
        result = ClientResult(bad=[f"client failed: {type(exc).__name__}: {exc}"])
    result.cpu_seconds = time.process_time() - cpu0
    out.send(result)
    out.close()


@dataclass
class LoadResult:
    messages: int
    acked_ok: int
    bad: list[str]
    seconds: float
    latencies_ms: list[float]
    client_cpu_seconds: float
    started_at: float  # perf_counter of the first send

    @property
    def rate(self) -> float:
        return self.acked_ok / self.seconds if self.seconds > 0 else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run_load(
    port: int,
    messages: int,
    connections: int,
    procs: int,
    tag: str,
    *,
    verify: bool,
    ack_timeout: float = 30.0,
) -> LoadResult:
    """Send ``messages`` over ``connections`` connections spread over ``procs`` client processes."""
    ctx = mp.get_context("spawn")
    per_conn = [list(range(k, messages, connections)) for k in range(connections)]
    groups = [per_conn[p::procs] for p in range(procs)]
    start = ctx.Event()
    pipes: list[Connection] = []
    children = []
    for group in groups:
        if not group:
            continue
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=client_process, daemon=True, args=(port, group, tag, verify, start, child_end, ack_timeout)
        )
        proc.start()
        child_end.close()
        pipes.append(parent_end)
        children.append(proc)
    time.sleep(0.5)  # let the children build their messages and connect (they wait for `start`)
    start.set()
    results: list[ClientResult] = []
    for pipe, proc in zip(pipes, children, strict=True):
        try:
            results.append(pipe.recv())
        except EOFError:
            results.append(ClientResult(bad=[f"client process {proc.pid} died (exit {proc.exitcode})"]))
        proc.join(10)
    valid = [r for r in results if r.first_send]
    first = min((r.first_send for r in valid), default=0.0)
    last = max((r.last_ack for r in valid), default=0.0)
    return LoadResult(
        messages=messages,
        acked_ok=sum(r.acked_ok for r in results),
        bad=[b for r in results for b in r.bad],
        seconds=last - first,
        latencies_ms=[ns / 1e6 for r in results for ns in r.latencies_ns],
        client_cpu_seconds=sum(r.cpu_seconds for r in results),
        started_at=first,
    )


# --------------------------------------------------------------------------------------------------
# the echo server (own process)

_ECHO_ACK = SB + b"MSH|^~\\&|ECHO|ECHO|HIS|HOSP_A|20260101000000||ACK^A01^ACK|1|P|2.5\rMSA|AA|ECHO\r" + END


class _EchoConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        answers = 0
        while True:
            end = self.buf.find(END)
            if end == -1:
                break
            del self.buf[: end + 2]
            answers += 1
        if answers and self.transport is not None:
            self.transport.write(_ECHO_ACK * answers)


def echo_process(out: Connection) -> None:
    import uvloop

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_EchoConn, "127.0.0.1", 0, backlog=1024)
        out.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(serve())


def measure_echo(args: argparse.Namespace, tag: str) -> LoadResult:
    ctx = mp.get_context("spawn")
    parent_end, child_end = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=echo_process, args=(child_end,), daemon=True)
    proc.start()
    child_end.close()
    try:
        port = int(parent_end.recv())
        return run_load(port, args.messages, args.connections, args.client_procs, tag, verify=False)
    finally:
        proc.terminate()
        proc.join(5)


# --------------------------------------------------------------------------------------------------
# the engine (subprocess)


@dataclass
class EngineResult:
    store: str
    load: LoadResult | None = None
    error: str = ""
    cpu_percent: float = 0.0  # engine CPU during the send phase, % of one core
    peak_rss_mb: float = 0.0
    drain_after_last_ack: float | None = None
    delivery_rate: float = 0.0  # files / (last file - first send)
    files: int = 0
    files_missing: int = 0
    log_tail: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process in seconds (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _engine_pids(pid: int) -> list[int]:
    """The engine's processes: ``pid`` itself, or the workers a ``--workers`` supervisor started."""
    children = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        children.append(int(entry.name))
            except OSError:
                continue
    return children or [pid]


def _vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_config(
    base: Path,
    store_url: str,
    port: int,
    outdir: Path,
    destination: str = "file",
    synchronous: str = "full",
    lanes: int = 1,
) -> Path:
    (base / "channels").mkdir(parents=True)
    (base / "config.yaml").write_text(
        "engine:\n"
        "  name: HIE\n"
        "  facility: BENCH\n"
        "  data_dir: data\n"
        "  channels_dir: channels\n"
        "  log_level: WARNING\n"
        "store:\n"
        f"  url: '{store_url}'\n"
        f"  synchronous: {synchronous}\n",
        encoding="utf-8",
    )
    (base / "channels" / "bench.yaml").write_text(
        "id: bench\n"
        "source:\n"
        f"  url: mllp://127.0.0.1:{port}\n"
        "ack: after_store\n"
        + (
            "destinations: []\n"
            if destination == "none"
            else "destinations:\n"
            "  - id: archive\n"
            f"    url: file://{outdir}\n"
            "    filename: '{channel}-{control_id}-{message_id}.hl7'\n"
            f"    lanes: {lanes}\n" + ("    fsync: false\n" if destination == "file-nofsync" else "")
        ),
        encoding="utf-8",
    )
    return base / "config.yaml"


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the engine exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the engine did not listen on port {port} within {timeout:g} s")


def _count_files(outdir: Path) -> int:
    try:
        with os.scandir(outdir) as entries:
            return sum(1 for e in entries if not e.name.startswith("."))
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def pg_database(url: str) -> Iterator[str]:
    """Create the database named in ``url`` (must not exist) and drop it afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or ""
    if not name or name == "postgres":
        name = f"hie_bench_{uuid.uuid4().hex[:10]}"
        parsed = parsed.set(database=name)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure_engine(args: argparse.Namespace, store: str, tag: str, run_no: int) -> EngineResult:
    label = "postgresql" if store.startswith("postgresql") else "sqlite"
    result = EngineResult(store=label)
    base = Path(tempfile.mkdtemp(prefix="hie-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            if store.startswith("postgresql"):
                store_url = stack.enter_context(pg_database(store))
            elif store:
                store_url = store
            else:
                store_url = f"sqlite:///{base / 'data' / 'hie.db'}"
            _run_engine(args, base, store_url, tag, run_no, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if args.keep:
            print(f"  kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return result


def _run_engine(
    args: argparse.Namespace, base: Path, store_url: str, tag: str, run_no: int, result: EngineResult
) -> None:
    port = free_port()
    outdir = base / "out"
    config = write_config(base, store_url, port, outdir, args.destination, args.synchronous, args.file_lanes)
    hie = Path(sys.executable).with_name("hie")
    log_path = base / "engine.log"
    with open(log_path, "wb") as log:
        workers = args.workers if store_url.startswith("postgresql") else 1
        proc = subprocess.Popen(
            [str(hie), "run", "--config", str(config), "--workers", str(workers)],
            cwd=base,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    spy: subprocess.Popen[bytes] | None = None
    try:
        _wait_port(port, proc)
        if workers > 1:
            time.sleep(5.0)  # the port opens with the first worker: let the others start too
        pids = _engine_pids(proc.pid) if workers > 1 else [proc.pid]
        if args.py_spy:
            target = Path(args.py_spy)
            target = target.with_name(f"{target.stem}-{result.store}-{run_no}{target.suffix}")
            spy = _start_py_spy(proc.pid, target, args.py_spy_format)
        cpu0 = sum(_proc_cpu(p) for p in pids)
        load = run_load(port, args.messages, args.connections, args.client_procs, tag, verify=True)
        cpu1 = sum(_proc_cpu(p) for p in pids)
        result.load = load
        result.cpu_percent = 100 * (cpu1 - cpu0) / load.seconds if load.seconds else 0.0
        if spy is not None and not args.py_spy_drain:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            spy = None
        ack_done = load.started_at + load.seconds
        expected = load.acked_ok if args.destination != "none" else 0
        deadline = time.monotonic() + args.drain_timeout
        count = _count_files(outdir)
        while count < expected and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
            count = _count_files(outdir)
        last_file = time.perf_counter()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            spy = None
        result.files = count
        if count >= expected:
            result.drain_after_last_ack = max(0.0, last_file - ack_done)
            result.delivery_rate = count / (last_file - load.started_at)
        names = [e.name for e in os.scandir(outdir)] if outdir.exists() else []
        written = {n.split("-")[1] for n in names if not n.startswith(".")}
        result.files_missing = sum(1 for i in range(args.messages) if control_id(tag, i) not in written)
        result.peak_rss_mb = max(_vm_hwm_mb(p) for p in pids)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        result.log_tail = "\n".join(log_path.read_text("utf-8", "replace").splitlines()[-15:])


def _start_py_spy(pid: int, target: Path, fmt: str) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("  py-spy not found (.venv/bin/pip install py-spy); profiling skipped")
        return None
    print(f"  py-spy recording the engine ({pid}) to {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # --nonblocking: sampling must not pause the engine, or the profile measures py-spy
    extra = os.environ.get("HIE_BENCH_PY_SPY_ARGS", "").split()  # e.g. "--gil" or "--native --idle"
    proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--threads",
            "--nonblocking",
            "--format",
            fmt,
            "-o",
            str(target),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attach before the load starts
    return proc


# --------------------------------------------------------------------------------------------------
# reporting


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def _spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """Median, and each run when there were several (the noise)."""
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    low, high = min(values), max(values)
    noise = (high - low) / med * 100 if med else 0.0
    runs = ", ".join(fmt.format(v) for v in values)
    return f"{fmt.format(med)} (median of {len(values)}: {runs}; spread {noise:.0f}%)"


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_load(title: str, load: LoadResult) -> None:
    cpu = 100 * load.client_cpu_seconds / load.seconds if load.seconds else 0.0
    worst = max(load.latencies_ms or [0])
    print(
        f"  {title}: {load.acked_ok:,}/{load.messages:,} AA in {load.seconds:.2f} s = "
        f"{_fmt_rate(load.rate)} msg/s; ACK latency p50 {load.pct(50):.2f} ms, p99 {load.pct(99):.2f} ms, "
        f"max {worst:.1f} ms; client CPU {cpu:.0f}% of one core"
    )
    for problem in load.bad[:5]:
        print(f"    ! {problem}")
    if len(load.bad) > 5:
        print(f"    ! ... {len(load.bad) - 5} more")


def print_engine(res: EngineResult) -> None:
    if res.error:
        print(f"  engine ({res.store}) FAILED: {res.error}")
        if res.log_tail:
            print("    " + res.log_tail.replace("\n", "\n    "))
        return
    assert res.load is not None
    print_load(f"engine ({res.store})", res.load)
    if res.drain_after_last_ack is not None:
        drain = f"{res.drain_after_last_ack:.2f} s after the last ACK"
    else:
        drain = f"NOT drained: {res.files:,} files"
    print(
        f"    engine CPU {res.cpu_percent:.0f}% of one core while receiving; "
        f"peak RSS {res.peak_rss_mb:.0f} MB; "
        f"file destination drained {drain}, delivery {_fmt_rate(res.delivery_rate)} msg/s; "
        f"{res.files_missing} control ids missing from the files"
    )


def summary(
    args: argparse.Namespace,
    echo: list[LoadResult],
    engines: dict[str, list[EngineResult]],
    sample_size: float,
) -> None:
    echo_rates = [r.rate for r in echo]
    echo_med = statistics.median(echo_rates) if echo_rates else 0.0
    print()
    print("=" * 100)
    print(
        f"SUMMARY  {args.messages:,} ADT^A01 of ~{sample_size:,.0f} bytes (half UTF-8, half GB18030), "
        f"{args.connections} connections, one message in flight per connection, "
        f"{args.client_procs} client process(es), {os.cpu_count()} CPUs"
    )
    print("-" * 100)
    print(f"  MLLP echo ceiling (uvloop, fixed ACK)       {_spread(echo_rates)} msg/s")
    for label, runs in engines.items():
        ok = [r for r in runs if r.load is not None and not r.error]
        print(f"  engine, store {label}:")
        if not ok:
            print("    no successful run: " + "; ".join(r.error for r in runs))
            continue
        rates = [r.load.rate for r in ok if r.load]
        med = statistics.median(rates)
        ratio = med / echo_med if echo_med else 0.0
        loads = [r.load for r in ok if r.load]
        bad = sum(len(x.bad) for x in loads)
        print(
            f"    acknowledged and durable                 {_spread(rates)} msg/s"
            f"   target >= {TARGET_RATE:,.0f}: {_mark(med >= TARGET_RATE)}"
        )
        print(
            f"    ratio engine / echo                      {ratio:.3f}"
            f"   target >= {TARGET_RATIO}: {_mark(ratio >= TARGET_RATIO)}"
        )
        p50s, p99s = [x.pct(50) for x in loads], [x.pct(99) for x in loads]
        print(f"    ACK latency p50                          {_spread(p50s, '{:.2f}')} ms")
        print(f"    ACK latency p99                          {_spread(p99s, '{:.2f}')} ms")
        print(
            f"    ACK latency max                          "
            f"{_spread([max(x.latencies_ms or [0]) for x in loads], '{:.1f}')} ms"
        )
        good = sum(x.acked_ok for x in loads)
        print(f"    ACK check (AA with the right MSA-2)      {good:,} ok, {bad} bad")
        cpu = _spread([r.cpu_percent for r in ok])
        print(f"    engine CPU while receiving               {cpu} % of one core")
        print(f"    engine peak RSS (VmHWM)                  {_spread([r.peak_rss_mb for r in ok])} MB")
        drains = [r.drain_after_last_ack for r in ok if r.drain_after_last_ack is not None]
        print(
            f"    file destination drain after last ACK    {_spread(drains, '{:.2f}')} s"
            + ("" if len(drains) == len(ok) else f"   ({len(ok) - len(drains)} run(s) did not drain)")
        )
        print(f"    file delivery (first send -> last file)  {_spread([r.delivery_rate for r in ok])} msg/s")
        print(f"    control ids missing from the files       {sum(r.files_missing for r in ok)}")
    print("=" * 100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--client-procs", type=int, default=1, help="client processes sharing the connections"
    )
    parser.add_argument(
        "--store-url",
        default="",
        help="store of the engine run (default: a fresh SQLite "
        "file); a postgresql+psycopg:// URL names a database created and dropped for the run",
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_PG,
        default=None,
        metavar="URL",
        help=f"also run the engine on a fresh PostgreSQL database "
        f"(on the server of URL, default {DEFAULT_PG})",
    )
    parser.add_argument("--repeat", type=int, default=1, help="measure everything this many times (noise)")
    parser.add_argument(
        "--workers", type=int, default=1, help="engine processes on PostgreSQL (hie run --workers); SQLite: 1"
    )
    parser.add_argument("--no-echo", action="store_true", help="skip the echo ceiling")
    parser.add_argument("--no-engine", action="store_true", help="only the echo ceiling")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--py-spy", metavar="FILE", help="record the engine with py-spy while it receives")
    parser.add_argument("--py-spy-format", default="flamegraph", choices=("flamegraph", "speedscope", "raw"))
    parser.add_argument(
        "--py-spy-drain", action="store_true", help="keep recording until the file destination has drained"
    )
    parser.add_argument(
        "--destination",
        default="file",
        choices=("file", "file-nofsync", "none"),
        help="experiments: the file destination without fsync, or no destination at all",
    )
    parser.add_argument(
        "--synchronous",
        default="full",
        choices=("full", "normal"),
        help="experiments: SQLite synchronous=normal (survives a process kill, not a power cut)",
    )
    parser.add_argument(
        "--file-lanes",
        type=int,
        default=1,
        help="experiments: lanes of the file destination (parallel writers)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp config, store and files")
    args = parser.parse_args(argv)

    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    sizes = [len(adt_a01(i, "T" * 10)) for i in range(200)]
    assert all(valid_id_card(id_card("110101", date(1980, 1, 2), s)) for s in range(20))
    print(
        f"messages: {args.messages:,}, {statistics.mean(sizes):,.0f} bytes on average "
        f"({min(sizes)}-{max(sizes)}), {args.connections} connections, "
        f"{args.client_procs} client process(es)"
    )

    stores = [] if args.no_engine else [args.store_url]
    if args.postgres and not args.no_engine:
        stores.append(args.postgres)
    echo: list[LoadResult] = []
    engines: dict[str, list[EngineResult]] = {}
    for run_no in range(1, args.repeat + 1):
        print(f"run {run_no}/{args.repeat}")
        if not args.no_echo:
            load = measure_echo(args, f"E{uuid.uuid4().hex[:7].upper()}{run_no:02d}")
            echo.append(load)
            print_load("echo", load)
        for store in stores:
            res = measure_engine(args, store, f"B{uuid.uuid4().hex[:7].upper()}{run_no:02d}", run_no)
            engines.setdefault(res.store, []).append(res)
            print_engine(res)
    summary(args, echo, engines, statistics.mean(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())

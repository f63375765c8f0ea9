"""How many listeners one server process holds in one room, and how fast an event reaches them.

The server is its own process (``ServerProcess``); listeners are real WebSocket clients in
load-generator processes (this module run as ``python -m tests.benchmarks.bench_rooms``),
offering permessage-deflate as browsers do. At each level (10, 100, 500, 1000, 2000
listeners) the host toggles its mute 20 times and every listener records when each
``participant.updated`` arrives (spotted in the raw text, so that the generators stay
cheap). Reported per level: join time (connect to welcome), fan-out latency per delivery
and until the last listener has the event (p50/p99), server CPU per event and per delivery
(the server's CPU time in the window over the deliveries), memory per connection, and the
load generators' own CPU.

Two configurations run, one after the other, in the same run: ``frames``, the server as
``ephemera serve`` runs it (each event encoded once, the same frame written to every
socket, no permessage-deflate), and ``stock``, uvicorn's own WebSocket protocol with
permessage-deflate (the ASGI send per socket, as before): the baseline. The last lines:

    rooms summary: CPU per delivery <x> µs; fan-out p99 at 2000 listeners <y> ms

Run: ``.venv/bin/pytest -m bench tests/benchmarks/bench_rooms.py -s`` (or ``ephemera bench
--only rooms``). Everything shares one machine: latencies include the load generators'
own scheduling, so they are upper bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from server import wsframes
from server.settings import Settings
from tests.benchmarks.wsraw import RawListener, listen
from tests.support import ROOT, ServerProcess, auth, settings_env, token

# Listener counts, growing; EPHEMERA_ROOM_BENCH_LEVELS=10,100 for a quick look.
LEVELS = tuple(
    int(n)
    for n in os.environ.get("EPHEMERA_ROOM_BENCH_LEVELS", "10,100,500,1000,2000").split(",")
    if n
)
EVENTS = 20  # host mute toggles per level
GAP = 0.25  # seconds between toggles, so that fan-outs do not overlap
PER_GENERATOR = 500
# Browsers negotiate permessage-deflate, so listeners do too unless this says 0.
DEFLATE = os.environ.get("EPHEMERA_ROOM_BENCH_DEFLATE", "1") != "0"
# The baseline's levels (EPHEMERA_ROOM_BENCH_STOCK_LEVELS="" skips it).
STOCK_LEVELS = tuple(
    int(n) for n in os.environ.get("EPHEMERA_ROOM_BENCH_STOCK_LEVELS", "10,2000").split(",") if n
)
BUDGET = 600.0  # seconds per configuration
GENERATOR_LIMIT = 0.8  # load generators using more cores than this bound the latency


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------- load generator process


async def generate(spec: dict[str, Any]) -> None:
    """Join ``spec["users"]`` to the room, then answer commands read from stdin."""
    url = f"{spec['ws_url']}/v1/rooms/{spec['room']}/ws"
    host = spec["host"]
    gate = asyncio.Semaphore(50)
    join_times: list[float] = []

    async def one(user: str) -> ClientConnection:
        async with gate:
            started = time.monotonic()
            ws = await connect(
                f"{url}?token={token(user)}",
                open_timeout=120,
                ping_interval=None,
                compression="deflate" if spec["deflate"] else None,
            )
            async with asyncio.timeout(120):
                while json.loads(await ws.recv())["type"] != "welcome":
                    pass
            join_times.append(time.monotonic() - started)
            return ws

    # The server's compact JSON, spotted without parsing every message.
    kind, who = '"type":"participant.updated"', f'"user_id":"{host}"'
    arrived = asyncio.Event()

    async def counter(user: str) -> RawListener:
        async with gate:
            started = time.monotonic()
            async with asyncio.timeout(240):
                listener = await listen(f"{url}?token={token(user)}", markers, arrived)
            join_times.append(time.monotonic() - started)
            return listener

    markers = (kind.encode(), who.encode())
    join = counter if spec.get("raw") else one
    results = await asyncio.gather(*(join(u) for u in spec["users"]), return_exceptions=True)
    errors = sorted({repr(r)[:120] for r in results if isinstance(r, BaseException)})
    raws = [r for r in results if isinstance(r, RawListener)]
    conns = [r for r in results if isinstance(r, ClientConnection)]
    arrivals: list[list[float]] = [r.arrivals for r in raws] + [[] for _ in conns]

    async def read(i: int, ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                if isinstance(raw, str) and kind in raw and who in raw:
                    arrivals[i].append(time.monotonic())
                    arrived.set()

    readers = [asyncio.create_task(read(len(raws) + i, ws)) for i, ws in enumerate(conns)]
    say({"ready": len(results) - len(errors), "errors": errors, "join_times": join_times})

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := await stdin.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "arm":
            for a in arrivals:
                a.clear()
            say({"armed": True})
        elif cmd["cmd"] == "collect":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(cmd["timeout"]):
                    while any(len(a) < cmd["events"] for a in arrivals):
                        arrived.clear()
                        await arrived.wait()
            closed = sum(t.done() for t in readers) + sum(r.closed for r in raws)
            say({"arrivals": arrivals, "closed": closed})
        else:
            break
    for r in raws:
        r.close()
    for ws in conns:
        with contextlib.suppress(Exception):
            await ws.close()


async def sink(spec: dict[str, Any]) -> None:
    """Open ``spec["sockets"]`` plain TCP connections and read whatever comes, until killed."""
    conns = [
        await asyncio.open_connection("127.0.0.1", spec["port"]) for _ in range(spec["sockets"])
    ]

    async def drain(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    await asyncio.gather(*(drain(r) for r, _ in conns))


async def write_floor(sockets: int = 1000, rounds: int = 20) -> float:
    """CPU time (µs) to write one event-sized frame to one loopback TCP socket read by
    another process: the kernel's part of any delivery, on this machine, now."""
    transports: list[asyncio.Transport] = []
    everyone = asyncio.Event()

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)  # type: ignore[arg-type]
            if len(transports) == sockets:
                everyone.set()

    server = await asyncio.get_running_loop().create_server(Accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = json.dumps({"sink": True, "port": port, "sockets": sockets})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.benchmarks.bench_rooms", spec, cwd=ROOT
    )
    try:
        async with asyncio.timeout(120):
            await everyone.wait()
        frame = wsframes.text_frame(b"x" * 170)  # a participant.updated's size
        spent = 0.0
        for _ in range(rounds):
            t0 = time.thread_time()
            for transport in transports:
                transport.write(frame)
            spent += time.thread_time() - t0
            await asyncio.sleep(0.05)
        return spent / (sockets * rounds) * 1e6
    finally:
        proc.kill()
        await proc.wait()
        for transport in transports:
            transport.close()
        server.close()


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- driver


class Generator:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    @classmethod
    async def start(cls, spec: dict[str, Any]) -> Generator:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.benchmarks.bench_rooms",
            json.dumps(spec),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        return cls(proc)

    async def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def read(self, within: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), within)
        if not line:
            raise RuntimeError("load generator exited")
        result: dict[str, Any] = json.loads(line)
        return result

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.send({"cmd": "stop"})
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def profiler(pid: int) -> asyncio.subprocess.Process | None:
    """With EPHEMERA_ROOM_BENCH_PROFILE=DIR, py-spy samples the server during the events
    (raw stacks in DIR/rooms-<time>.txt): where the CPU of a delivery goes."""
    where = os.environ.get("EPHEMERA_ROOM_BENCH_PROFILE")
    if not where:
        return None
    out = Path(where) / f"rooms-{time.time():.0f}.txt"
    seconds = str(int(EVENTS * GAP))
    args = (
        "record",
        "--nonblocking",
        "--pid",
        str(pid),
        "-d",
        seconds,
        "-r",
        "250",
        "-f",
        "raw",
        "-o",
        str(out),
    )
    py_spy = Path(sys.executable).with_name("py-spy")
    return await asyncio.create_subprocess_exec(
        py_spy, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(host: ClientConnection, generators: list[Generator], pid: int) -> dict[str, Any]:
    for g in generators:
        await g.send({"cmd": "arm"})
    for g in generators:
        await g.read(30)
    profile = await profiler(pid)
    cpu_before = cpu_seconds(pid)
    gen_before = sum(g.cpu() for g in generators)
    t0 = time.monotonic()
    sent: list[float] = []
    for k in range(EVENTS):
        sent.append(time.monotonic())
        await host.send(json.dumps({"type": "unmute" if k % 2 else "mute"}))
        await asyncio.sleep(GAP)
    if profile is not None:
        await profile.wait()
    for g in generators:
        await g.send({"cmd": "collect", "events": EVENTS, "timeout": 30})
    arrivals = [a for g in generators for a in (await g.read(120))["arrivals"]]
    cpu = cpu_seconds(pid) - cpu_before
    wall = time.monotonic() - t0
    gen_cpu = sum(g.cpu() for g in generators) - gen_before
    deliveries = [a[k] - sent[k] for a in arrivals for k in range(min(len(a), EVENTS))]
    last = [
        max(a[k] for a in arrivals) - sent[k]
        for k in range(EVENTS)
        if all(len(a) > k for a in arrivals)
    ]
    missing = sum(max(0, EVENTS - len(a)) for a in arrivals)
    return {
        "p50_ms": pct(deliveries, 0.5) * 1000,
        "p99_ms": pct(deliveries, 0.99) * 1000,
        "all_p50_ms": pct(last, 0.5) * 1000,
        "all_p99_ms": pct(last, 0.99) * 1000,
        "missing": missing,
        # The toggles are spaced, so the CPU of the window is mostly fan-out work; all of
        # it counts (the host's message, the transaction, the hub, idle work).
        "cpu_ms_per_event": cpu / EVENTS * 1000,
        "us_per_delivery": cpu / max(1, len(deliveries)) * 1e6,
        "server_cores": cpu / wall,
        "generator_cores": gen_cpu / wall,
    }


@dataclass
class Mode:
    name: str
    ws: str  # uvicorn's WebSocket protocol
    deflate: bool  # whether the server accepts permessage-deflate
    levels: tuple[int, ...]
    raw: bool  # listeners count at the socket (wsraw) rather than as websockets clients


MODES = (
    Mode("frames", wsframes.PROTOCOL, False, LEVELS, raw=True),
    # As before: uvicorn's protocol and websockets clients negotiating permessage-deflate.
    Mode("stock", "auto", True, STOCK_LEVELS, raw=False),
)


@pytest.mark.bench
@pytest.mark.timeout(int(BUDGET) * 2 + 300)
async def test_listeners_per_process_and_fanout(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        rate_ws_message="1000/second",
        rate_room_join="100000/minute",
        # Joins wait on Redis behind the fan-out and the generators on this shared machine;
        # the benchmark measures the fan-out, so they get time (no 503 store_unavailable).
        redis_request_timeout=10.0,
        log_level="ERROR",
    )
    floor = await write_floor()
    rows: list[dict[str, Any]] = []
    for mode in MODES:
        if mode.levels:
            env = {**settings_env(settings), "EPHEMERA_WS_PER_MESSAGE_DEFLATE": str(mode.deflate)}
            rows += await run_mode(mode, env)
    report(rows, floor)
    # The baseline may fall behind and lose events (reported in its row); ours may not.
    ours = [row for row in rows if row["mode"] == "frames"]
    assert all(row["missing"] == 0 for row in ours), "some listeners missed events"


async def run_mode(mode: Mode, env: dict[str, str]) -> list[dict[str, Any]]:
    """Grow one room through ``mode.levels`` listeners on a fresh server; one row per level."""
    server = ServerProcess(env, ws=mode.ws).start()
    assert server.proc is not None
    pid = server.proc.pid
    generators: list[Generator] = []
    host_reader: asyncio.Task[None] | None = None
    host: ClientConnection | None = None
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=auth("host"), timeout=30) as c:
            r = await c.post("/v1/rooms", json={"title": "bench"})
            assert r.status_code == 201, r.text
            room = r.json()["id"]
        host = await connect(f"{server.ws_url}/v1/rooms/{room}/ws?token={token('host')}")

        async def drain() -> None:
            with contextlib.suppress(Exception):
                async for _ in host:
                    pass

        host_reader = asyncio.create_task(drain())
        rss_empty = rss_mb(pid)
        joined = 0
        for level in mode.levels:
            if time.monotonic() - started > BUDGET:
                print(f"rooms bench: {mode.name}: time budget spent before {level} listeners")
                break
            t0 = time.monotonic()
            batch: list[Generator] = []
            for first in range(joined, level, PER_GENERATOR):
                users = [f"l{i:05d}" for i in range(first, min(level, first + PER_GENERATOR))]
                spec = {"ws_url": server.ws_url, "room": room, "host": "host", "users": users}
                spec.update(deflate=DEFLATE, raw=mode.raw)
                batch.append(await Generator.start(spec))
            generators += batch
            try:
                ready = [await g.read(300) for g in batch]
            except TimeoutError:
                print(f"rooms bench: {mode.name}: {level} listeners did not join within 300 s")
                break
            join_wall = time.monotonic() - t0
            errors = [e for r in ready for e in r["errors"]]
            join_times = [t for r in ready for t in r["join_times"]]
            if errors:  # a few refused joins (a busy machine) leave a level still worth measuring
                print(f"rooms bench: {len(errors)} failed joins at {level}: {errors[:3]}")
                if len(errors) > level // 100:
                    break
            await asyncio.sleep(1.5)  # let count updates settle
            row = await measure(host, generators, pid)
            row.update(
                mode=mode.name,
                listeners=level,
                join_per_s=(level - joined) / join_wall,
                join_p50_ms=pct(join_times, 0.5) * 1000,
                join_p99_ms=pct(join_times, 0.99) * 1000,
                rss_mb=rss_mb(pid),
                kb_per_conn=(rss_mb(pid) - rss_empty) * 1024 / level,
            )
            joined = level
            rows.append(row)
            print(f"rooms bench: {mode.name}: {level} listeners measured: {brief(row)}")
    finally:
        if host is not None:
            await host.close()
        if host_reader is not None:
            host_reader.cancel()
        await asyncio.gather(*(g.stop() for g in generators))
        server.stop()
    return rows


def brief(row: dict[str, Any]) -> str:
    return (
        f"{row['join_per_s']:.0f} joins/s, fan-out p50 {row['p50_ms']:.1f} p99 "
        f"{row['p99_ms']:.1f} ms, {row['us_per_delivery']:.1f} µs of server CPU per delivery, "
        f"generators {row['generator_cores']:.2f} cores, load average {os.getloadavg()[0]:.1f}"
    )


def report(rows: list[dict[str, Any]], floor: float) -> None:
    assert rows, "no level measured"
    print()
    print(
        "room fan-out, one server process (times in ms; 'all' = until the last listener has "
        "the event; us/deliv = server CPU in the window / deliveries; gen cpu = the load "
        f"generators' CPU in cores; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
        "cores)"
    )
    head = (
        f"{'mode':>6} {'listeners':>9} {'joins/s':>8} {'join p50':>9} {'join p99':>9} "
        f"{'p50':>7} {'p99':>7} {'all p50':>8} {'all p99':>8} {'cpu/event':>9} "
        f"{'us/deliv':>8} {'srv cpu':>7} {'gen cpu':>7} {'RSS MB':>7} {'KB/conn':>7} {'lost':>5}"
    )
    print(head)
    for row in rows:
        print(
            f"{row['mode']:>6} {row['listeners']:>9.0f} {row['join_per_s']:>8.0f} "
            f"{row['join_p50_ms']:>9.1f} {row['join_p99_ms']:>9.1f} {row['p50_ms']:>7.1f} "
            f"{row['p99_ms']:>7.1f} {row['all_p50_ms']:>8.1f} {row['all_p99_ms']:>8.1f} "
            f"{row['cpu_ms_per_event']:>9.2f} {row['us_per_delivery']:>8.1f} "
            f"{row['server_cores']:>7.2f} {row['generator_cores']:>7.2f} "
            f"{row['rss_mb']:>7.0f} {row['kb_per_conn']:>7.1f} {row['missing']:>5.0f}"
        )
    print(
        f"rooms: writing one frame to one loopback socket (no server, same run) costs "
        f"{floor:.1f} µs of CPU here: the floor of a delivery on this machine now"
    )
    summary(rows)


def summary(rows: list[dict[str, Any]]) -> None:
    """The ratio to the baseline, the limit, and the summary line (at the largest level)."""
    if not any(r["mode"] == "frames" for r in rows):
        return
    top = max(r["listeners"] for r in rows if r["mode"] == "frames")
    ours = next(r for r in rows if r["mode"] == "frames" and r["listeners"] == top)
    stock = [r for r in rows if r["mode"] == "stock" and r["listeners"] == top]
    first = min((r for r in rows if r["mode"] == "frames"), key=lambda r: r["listeners"])
    if top > first["listeners"]:
        slope = (ours["cpu_ms_per_event"] - first["cpu_ms_per_event"]) * 1000
        slope /= top - first["listeners"]
        print(
            f"rooms: each delivery more costs {slope:.1f} µs of server CPU (from "
            f"{first['listeners']:.0f} to {top:.0f} listeners; the rest is per event)"
        )
    if stock:
        ratio = stock[0]["us_per_delivery"] / ours["us_per_delivery"]
        print(
            f"rooms: at {top:.0f} listeners, {ours['us_per_delivery']:.1f} µs of server CPU per "
            f"delivery against {stock[0]['us_per_delivery']:.1f} µs for uvicorn's own protocol "
            f"with permessage-deflate in the same run ({ratio:.1f}x less)"
        )
    if ours["generator_cores"] > GENERATOR_LIMIT:
        print(
            f"rooms: the load generators used {ours['generator_cores']:.2f} cores during the "
            f"{top:.0f}-listener window (the server {ours['server_cores']:.2f}): on this machine "
            "they, not the server, bound the fan-out latency"
        )
    print(
        f"rooms summary: CPU per delivery {ours['us_per_delivery']:.1f} µs; "
        f"fan-out p99 at {top:.0f} listeners {ours['p99_ms']:.0f} ms"
    )


if __name__ == "__main__":
    SPEC = json.loads(sys.argv[1])
    asyncio.run(sink(SPEC) if SPEC.get("sink") else generate(SPEC))

"""Media relay benchmark: the fast path against aiortc's stock sender, in one run.

The server runs in its own process (``ServerProcess``); its CPU time is read from
``/proc/<pid>/stat`` (user + system, all threads). Load generators are other processes
(:mod:`tests.benchmarks.relaygen`): one runs the room's speakers (aiortc clients over the
real WebSocket sending Opus-sized packets stamped with their send time), others join
listeners (aiortc clients that count RTP packets at their socket without decrypting
them, and read the speakers' stamps from one packet a second per stream).

For each relay mode (``fast``, the relay; ``stock``, aiortc's own ``RTCRtpSender`` per
listener, as the relay was before) listeners are added to a room with ``SPEAKERS``
speakers until the server's CPU is near ``TARGET_CPU`` of one core; each step measures
server CPU, packets forwarded per second and per CPU-second, packets delivered at the
listeners' sockets, latency from the speaker's send to the listener socket's kernel receive
time (minus the same measured peer to peer, without a server: "added"), and the
generators' own CPU. At the loaded fast step, ``JOIN_RATE`` joins a second arrive for
``JOIN_SECONDS`` (each leaves after its first packet): join to first audio. A short
``reencode`` run (decode once, re-encode per listener) is the older baseline.

Run: ``ephemera bench --only relay`` (about 6 minutes; ``BENCH_QUICK=1`` for a short pass).
The machine is shared: CPU-time figures (packets per CPU-second) hold up when other
processes run, latency and join times do not; the load of the rest of the machine is
printed for each step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from rooms.media.node import VIEW_SECONDS
from rooms.media.trunk import TrunkOut, new_key, trunk_socket
from server.settings import Settings
from tests.benchmarks.relaygen import cpu_seconds
from tests.support import ROOT, ServerProcess, free_port, settings_env

EPHEMERA = str(Path(sys.executable).with_name("ephemera"))

QUICK = os.environ.get("BENCH_QUICK") == "1"
SPEAKERS = 3
TARGET_CPU = 0.8
FIRST_LISTENERS = 30
MAX_LISTENERS = 2000
WINDOW = 4.0 if QUICK else 6.0
BUDGET = 120.0 if QUICK else 300.0  # seconds per ramp
JOIN_RATE = 10.0
JOIN_SECONDS = 5.0 if QUICK else 10.0
JOIN_CONCURRENCY = 10  # per listener process, while ramping up
LISTENER_PROCESSES = 2
GENERATOR_FULL = 0.9  # a generator process using this much of a core is the limit
FULL_CORE = 0.9  # a server using this much of a core is the limit itself
# One room over two processes against one process: each process is loaded to this much of
# a core (the generators need the rest of a two-core machine; more on a bigger one).
SCALE_CPU = float(os.environ.get("BENCH_SCALE_CPU", "0.4"))


class Generator:
    """One load generator process, driven over stdin/stdout."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0
        self.log: Any = None

    async def start(self, log: Path) -> Generator:
        self.log = log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.benchmarks.relaygen",
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.log,
            limit=64 * 1024 * 1024,  # an answer carries every latency sample of a window
        )
        self.pid = (await self.read())["pid"]
        return self

    async def read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 300)
        if not line:
            raise RuntimeError(f"generator {self.args[0]} exited (see its log)")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"generator {self.args[0]}: {answer['error']}")
        return answer

    async def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.read()

    async def stop(self) -> None:
        try:
            if self.proc is not None and self.proc.returncode is None:
                with contextlib.suppress(Exception):
                    assert self.proc.stdin is not None
                    self.proc.stdin.write(b'{"cmd": "quit"}\n')
                    await self.proc.stdin.drain()
                try:
                    await asyncio.wait_for(self.proc.wait(), 30)
                except TimeoutError:
                    self.proc.kill()
                    await self.proc.wait()
        finally:
            if self.log is not None:
                self.log.close()


class Single:
    """One server process (uvicorn), as the relay benchmark has always run it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.server = ServerProcess(env)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def pids(self) -> list[int]:
        assert self.server.proc is not None
        return [self.server.proc.pid]


class Workers:
    """``ephemera serve --workers N``: N server processes on one port, one room over them."""

    def __init__(self, env: dict[str, str], count: int) -> None:
        self.env = env
        self.count = count
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [EPHEMERA, "serve", "--port", str(self.port), "--workers", str(self.count)]
        env = {**os.environ, **self.env, "EPHEMERA_PUBLIC_BASE_URL": self.url}
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        if b"Ephemera running" not in self.proc.stdout.readline():
            raise RuntimeError("ephemera serve did not start")
        time.sleep(2 * VIEW_SECONDS)  # the workers see each other in the registry

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def pids(self) -> list[int]:
        """The worker processes (a supervisor does no work; one worker is no supervisor)."""
        assert self.proc is not None
        if self.count == 1:
            return [self.proc.pid]
        tasks = Path(f"/proc/{self.proc.pid}/task")
        children = [c for t in tasks.iterdir() for c in (t / "children").read_text().split()]
        return sorted(
            int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        )


Deployment = Single | Workers


@dataclass
class Row:
    mode: str
    listeners: int
    cpu: float  # every server process together, fraction of one core
    forwarded_pps: float
    delivered_pps: float
    generator_cpu: float  # the busiest listener process, fraction of one core
    other_cpu: float  # the rest of the machine, cores
    latencies_ms: list[float] = field(default_factory=list)
    busiest: float = 0.0  # the busiest server process, fraction of one core
    processes: int = 1

    @property
    def per_cpu_second(self) -> float:
        return self.forwarded_pps / max(self.cpu, 1e-3)

    @property
    def expected_pps(self) -> float:
        """Every speaker's 50 packets a second to every listener and every other speaker."""
        return SPEAKERS * 50 * (self.listeners + SPEAKERS - 1)

    @property
    def kept_up(self) -> bool:
        return self.forwarded_pps >= 0.9 * self.expected_pps

    @property
    def generator_limited(self) -> bool:
        # Listeners not reading all that the server sent, while the server still had room.
        # (The server's count is flushed every 400 ms: a window's two counts differ a bit.)
        # (Re-encode counts frames handed to senders that may lag: not comparable.)
        unread = self.delivered_pps < 0.8 * self.forwarded_pps and self.busiest < FULL_CORE
        return self.generator_cpu >= GENERATOR_FULL or (unread and self.mode != "reencode")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


async def forwarded_total(base_url: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("ephemera_relay_forwarded_packets_total "):
            return float(line.split()[1])
    return 0.0


class Scenario:
    """One deployment (one server process, or several) in one relay mode, one room, its
    speakers and listeners."""

    def __init__(
        self, env: dict[str, str], mode: str, log: Path, workers: int | None = None
    ) -> None:
        self.mode = mode
        self.log = log
        env = {**env, "EPHEMERA_RELAY_MODE": mode}
        self.server: Deployment = Single(env) if workers is None else Workers(env, workers)
        self.speakers: Generator | None = None
        self.gens: list[Generator] = []
        self.joiner: Generator | None = None  # joins under load, from an idle process
        self.ws_url = ""
        self.listeners = 0

    async def __aenter__(self) -> Scenario:
        self.server.start()
        self.speakers = await Generator(
            "speakers", self.server.url, str(SPEAKERS), self.mode, self.mode
        ).start(self.log)
        self.ws_url = (await self.speakers.ask("room"))["ws_url"]
        self.gens = [
            await Generator("listeners", f"{self.mode}-l{i}-").start(self.log)
            for i in range(LISTENER_PROCESSES)
        ]
        self.joiner = await Generator("listeners", f"{self.mode}-j-").start(self.log)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for gen in [*self.gens, self.joiner, self.speakers]:
            if gen is not None:
                await gen.stop()
        self.server.stop()

    async def grow_to(self, target: int) -> list[float]:
        """Add listeners up to ``target``; their join times."""
        share = target - self.listeners
        parts = [
            share // len(self.gens) + (i < share % len(self.gens)) for i in range(len(self.gens))
        ]
        answers = await asyncio.gather(
            *(
                g.ask("add", ws_url=self.ws_url, n=n, concurrency=JOIN_CONCURRENCY)
                for g, n in zip(self.gens, parts, strict=True)
                if n
            )
        )
        self.listeners = target
        await asyncio.sleep(1.0)  # the joins' handshakes settle
        return [t for answer in answers for t in answer["join_s"]]

    async def measure(self, seconds: float = WINDOW) -> Row:
        servers = self.server.pids()
        before = [await g.ask("stats") for g in self.gens]  # also starts a latency window
        forwarded0 = await forwarded_total(self.server.url)
        cpu0, busy0, t0 = [cpu_seconds(p) for p in servers], machine_busy(), time.monotonic()
        ours0 = sum(cpu_seconds(p) for p in self.pids())
        await asyncio.sleep(seconds)
        cpu1, busy1, t1 = [cpu_seconds(p) for p in servers], machine_busy(), time.monotonic()
        ours1 = sum(cpu_seconds(p) for p in self.pids())
        forwarded1 = await forwarded_total(self.server.url)
        after = [await g.ask("stats") for g in self.gens]
        elapsed = t1 - t0
        ticks = os.sysconf("SC_CLK_TCK")
        machine = (busy1[0] - busy0[0]) / ticks
        each = [(b - a) / elapsed for a, b in zip(cpu0, cpu1, strict=True)]
        return Row(
            mode=self.mode,
            listeners=self.listeners,
            cpu=sum(each),
            busiest=max(each),
            processes=len(each),
            forwarded_pps=(forwarded1 - forwarded0) / elapsed,
            delivered_pps=sum(
                a["packets"] - b["packets"] for a, b in zip(after, before, strict=True)
            )
            / elapsed,
            generator_cpu=max(a["cpu"] - b["cpu"] for a, b in zip(after, before, strict=True))
            / elapsed,
            other_cpu=max(0.0, machine - (ours1 - ours0)) / elapsed,
            latencies_ms=[ms for a in after for ms in a["ms"]],
        )

    def pids(self) -> list[int]:
        others = [g.pid for g in (self.speakers, self.joiner) if g is not None]
        return [*self.server.pids(), *others, *(g.pid for g in self.gens)]

    async def ramp(self, baseline_ms: float, cpu: float = TARGET_CPU) -> list[Row]:
        """Grow the room until the busiest server process's CPU is near ``cpu`` (or
        something else is the limit); each next size aims at it from the last step's cost."""
        rows: list[Row] = []
        target, began = FIRST_LISTENERS, time.monotonic()
        while True:
            await self.grow_to(target)
            row = await self.measure()
            rows.append(row)
            print_row(row, baseline_ms)
            if row.busiest >= cpu - 0.06 or row.generator_limited or not row.kept_up:
                return rows
            if target >= MAX_LISTENERS or time.monotonic() - began > BUDGET:
                return rows
            aim = int(target * cpu / max(row.busiest, 0.05))
            target = min(MAX_LISTENERS, max(target + 10, min(aim, 3 * target)))

    async def match(self, baseline_ms: float, reference: Row, cpu: float) -> list[Row]:
        """Grow the room, from ``reference``'s size, in steps of at most a quarter while
        the latency stays that of ``reference`` and no process is past ``cpu``."""
        rows: list[Row] = []
        target, began = reference.listeners, time.monotonic()
        while time.monotonic() - began < BUDGET and target <= MAX_LISTENERS:
            await self.grow_to(target)
            row = await self.measure()
            print_row(row, baseline_ms)
            if not (row.kept_up and same_latency(row, reference, baseline_ms)):
                break
            rows.append(row)
            if row.busiest >= cpu or row.generator_limited:
                break
            aim = int(target * cpu / max(row.busiest, 0.05))
            target = max(target + 10, min(aim, int(target * 1.25)))
        return rows

    async def joins_under_load(self) -> tuple[list[float], list[float]]:
        """``JOIN_RATE`` joins a second for ``JOIN_SECONDS`` from a process of their own
        (not slowed down by counting packets); total and media-only seconds."""
        assert self.joiner is not None
        n = int(JOIN_RATE * JOIN_SECONDS)
        answer = await self.joiner.ask("churn", ws_url=self.ws_url, n=n, rate=JOIN_RATE)
        return [t for t, _ in answer["join_s"]], [m for _, m in answer["join_s"]]


def print_row(row: Row, baseline_ms: float) -> None:
    lat = row.latencies_ms
    where = f"{row.processes} processes, busiest {row.busiest:.2f}, " if row.processes > 1 else ""
    print(
        f"  {row.mode:>8} N={row.listeners:>4}: server {where}{row.cpu:.2f} core, "
        f"forwarded {row.forwarded_pps:>6.0f} pkt/s = {row.per_cpu_second:>6.0f} per CPU-s, "
        f"delivered {row.delivered_pps:>6.0f} pkt/s; added latency p50 "
        f"{pct(lat, 0.5) - baseline_ms:.1f} p99 {pct(lat, 0.99) - baseline_ms:.1f} ms "
        f"({len(lat)} samples){'' if row.kept_up else ' (fell behind)'}; "
        f"busiest generator {row.generator_cpu:.2f} core"
        f"{' (the limit)' if row.generator_limited else ''}; rest of machine "
        f"{row.other_cpu:.2f} core",
        flush=True,
    )


TRUNK_EDGES = 64


def trunk_cost(packets: int = 3000) -> tuple[float, float]:
    """What one packet costs the origin (us): once, and per edge node it goes to."""

    class Stream:
        trunk_ssrc, trunk_seq = 1234, 0

    payload = bytes(80)
    receivers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(TRUNK_EDGES)]
    sender = trunk_socket()
    try:
        for sock in receivers:
            sock.bind(("127.0.0.1", 0))
        trunk = TrunkOut(new_key(), sender)
        costs = []
        for edges in (receivers[:1], receivers):
            trunk.edges = [s.getsockname() for s in edges]
            started = time.process_time()
            for n in range(packets):
                trunk.forward(Stream, payload, 30, 0, 960 * n)
            costs.append((time.process_time() - started) / packets * 1e6)
    finally:
        for sock in [*receivers, sender]:
            sock.close()
    per_edge = (costs[1] - costs[0]) / (TRUNK_EDGES - 1)
    return costs[0] - per_edge, per_edge


def same_latency(row: Row, reference: Row, baseline_ms: float) -> bool:
    """Whether ``row``'s added latency is ``reference``'s, give or take the noise of a
    shared machine (1 ms at the median, half again or 3 ms at p99)."""
    p50, p99 = pct(row.latencies_ms, 0.5), pct(row.latencies_ms, 0.99)
    ref50, ref99 = pct(reference.latencies_ms, 0.5), pct(reference.latencies_ms, 0.99)
    ref99_added = ref99 - baseline_ms
    return p50 <= ref50 + 1.0 and p99 - baseline_ms <= max(1.5 * ref99_added, ref99_added + 3)


def at_target(rows: list[Row], cpu: float = TARGET_CPU) -> Row:
    """The step that kept up closest to the target load (the last one when none did)."""
    near = [r for r in rows if r.busiest >= cpu - 0.15 and r.kept_up]
    return min(near, key=lambda r: abs(r.busiest - cpu)) if near else rows[-1]


@pytest.mark.bench
@pytest.mark.timeout(1800)
async def test_relay_benchmark(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    # Hundreds of listeners join one room within seconds: not what the join limit is for.
    env = {
        **settings_env(make_settings(log_level="WARNING", rate_room_join="100000/minute")),
        "EPHEMERA_NODE_ID": "bench",
    }
    log = Path(os.environ.get("BENCH_LOG_DIR", tmp_path)) / "relay-generators.log"
    started = time.monotonic()
    print(
        f"\nrelay benchmark ({'quick' if QUICK else 'full'}; {SPEAKERS} speakers; generator "
        f"logs: {log}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )

    async with Scenario(env, "fast", log) as fast:
        assert fast.speakers is not None
        p2p = (await fast.speakers.ask("p2p", seconds=WINDOW))["ms"]
        baseline = pct(p2p, 0.5)
        print(
            f"  peer to peer (no server): speaker -> listener socket p50 {baseline:.2f} ms "
            f"p99 {pct(p2p, 0.99):.2f} ms ({len(p2p)} samples)"
        )
        fast_rows = await fast.ramp(baseline)
        loaded = at_target(fast_rows)
        joins, media = await fast.joins_under_load()
        during = await fast.measure()
        print(
            f"  joins at {JOIN_RATE:.0f}/s into N={fast.listeners} ({during.cpu:.2f} core): "
            f"first audio p50 {1000 * pct(joins, 0.5):.0f} ms p99 {1000 * pct(joins, 0.99):.0f} "
            f"ms; of which from rtc.offer (media only, after the room's welcome) p50 "
            f"{1000 * pct(media, 0.5):.0f} ms p99 {1000 * pct(media, 0.99):.0f} ms"
        )
    async with Scenario(env, "stock", log) as stock:
        stock_rows = await stock.ramp(baseline)
    async with Scenario(env, "reencode", log) as reencode:
        await reencode.grow_to(5)
        reencoded = await reencode.measure()
        print_row(reencoded, baseline)

    stock_row = at_target(stock_rows)
    lat = loaded.latencies_ms
    print(
        f"\n== media relay ({time.monotonic() - started:.0f} s, load average "
        f"{os.getloadavg()[0]:.1f}) =="
    )
    print(
        f"  at {loaded.cpu:.2f} core: fast path N={loaded.listeners} x {SPEAKERS} speakers, "
        f"{loaded.per_cpu_second:.0f} packets per CPU-second; stock aiortc sender "
        f"N={stock_row.listeners} at {stock_row.cpu:.2f} core, "
        f"{stock_row.per_cpu_second:.0f}; re-encode {reencoded.per_cpu_second:.0f} "
        f"({loaded.per_cpu_second / max(stock_row.per_cpu_second, 1):.1f}x stock, "
        f"{loaded.per_cpu_second / max(reencoded.per_cpu_second, 1):.0f}x re-encode)"
    )
    limits = [r for r in (*fast_rows, *stock_rows) if r.generator_limited]
    if limits:
        print(
            "  the load generators were the limit at: "
            + ", ".join(f"{r.mode} N={r.listeners}" for r in limits)
        )
    print(
        f"relay summary: forwarded packets per CPU-second: {loaded.per_cpu_second:.0f} "
        f"(stock aiortc sender in the same run: {stock_row.per_cpu_second:.0f})"
    )
    print(
        f"relay summary: added latency at 80% of a core: p50 {pct(lat, 0.5) - baseline:.1f} ms "
        f"p99 {pct(lat, 0.99) - baseline:.1f} ms"
    )
    print(
        f"relay summary: join to first audio at a loaded node: p50 {1000 * pct(joins, 0.5):.0f} "
        f"ms p99 {1000 * pct(joins, 0.99):.0f} ms"
    )
    assert loaded.delivered_pps > 0 and stock_row.forwarded_pps > 0 and joins and lat


@pytest.mark.bench
@pytest.mark.timeout(1800)
async def test_relay_across_processes(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """One room over ``ephemera serve --workers 2`` against ``--workers 1``: one process is
    loaded to ``SCALE_CPU`` of a core; two processes take listeners while their latency
    stays the same (the trunk adds a hop for an edge's listeners) and neither is past
    ``SCALE_CPU``: how many more listeners they carry."""
    settings = make_settings(
        log_level="WARNING",
        rate_room_join="100000/minute",
        media_node_max_listeners=MAX_LISTENERS,
        media_busy_cpu=0.0,  # spread the room as it grows: each process's load in step
    )
    env = {**settings_env(settings), "EPHEMERA_NODE_ID": "bench"}
    log = Path(os.environ.get("BENCH_LOG_DIR", tmp_path)) / "relay-generators.log"
    print(
        f"\nrelay across processes ({SPEAKERS} speakers, {SCALE_CPU:.2f} core per process; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    async with Scenario(env, "fast", log, workers=1) as one:
        assert one.speakers is not None
        baseline = pct((await one.speakers.ask("p2p", seconds=WINDOW))["ms"], 0.5)
        single = at_target(await one.ramp(baseline, SCALE_CPU), SCALE_CPU)
    async with Scenario(env, "fast", log, workers=2) as two:
        matched = await two.match(baseline, single, SCALE_CPU)
    if not matched:  # a busy machine: not even the first step was as fast as one process
        print("  two processes never had one process's latency: the machine is too busy")
    double = matched[-1] if matched else single
    ratio = double.listeners / max(1, single.listeners) if matched else 0.0
    for name, row in (("one process", single), ("two processes", double)):
        lat = row.latencies_ms
        print(
            f"  {name}: N={row.listeners} at {row.busiest:.2f} core (busiest), added latency "
            f"p50 {pct(lat, 0.5) - baseline:.1f} ms p99 {pct(lat, 0.99) - baseline:.1f} ms; "
            f"rest of the machine {row.other_cpu:.2f} core"
            f"{'; the generators were the limit' if row.generator_limited else ''}"
        )
    per_packet, per_edge = trunk_cost()
    print(
        f"  the origin's trunk: {per_packet:.1f} us per packet (header, SRTP) + "
        f"{per_edge:.1f} us per edge (one sendto each), {TRUNK_EDGES} edges on loopback"
    )
    print(
        f"relay summary: one room over 2 processes: {ratio:.2f}x the listeners of one process "
        "at the same latency"
    )
    assert double.delivered_pps > 0 and single.delivered_pps > 0

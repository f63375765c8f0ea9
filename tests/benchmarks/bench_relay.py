"""Media relay benchmark: forwarding versus aiortc's decode/re-encode path, in one run.

The server runs in its own process (``ServerProcess``); its CPU time is read from
``/proc/<pid>/stat`` (user + system, all threads). Load generators are separate processes
running this file (``python -m tests.benchmarks.bench_relay listeners|speakers``), driven
over JSON lines on stdin/stdout:

* a *speakers* process opens the room, runs the speakers (real Opus from a tone, encoded
  with PyAV, every payload remembered with its send time) and one probe listener that
  matches received payloads to measure latency through the relay; it also measures the same
  latency peer to peer (two aiortc connections, no server) as the baseline;
* *listeners* processes join listeners over the real room WebSocket (aiortc, counting RTP
  packets at the receiver tap without decoding) and report join time to first packet.

Reported, for 1 and 3 speakers at growing listener counts until the server's core is full
(or the time budget ends): server CPU (fraction of one core), CPU per listener (marginal,
over the speakers-only level), packets forwarded per second and per CPU-second, the
probe's latency; then the same room served with ``relay_reencode`` (decode once, re-encode
per listener: aiortc ``MediaRelay``'s cost model) at the first listener counts, as a ratio;
join time to first audio packet (p50/p99).

A step "keeps up" when the server forwards what arrives without a queue building up (probe
median latency under 50 ms); growth stops at the first step that does not (measured twice,
in case another process starved the server for a moment).

Run: ``.venv/bin/pytest -m bench tests/benchmarks/bench_relay.py -s`` (3-5 minutes;
``BENCH_QUICK=1`` for a 1-2 minute pass). On a shared machine, run it while the machine is
otherwise idle (the load average is printed): a starved server process batches its work
and looks cheaper per packet while latency explodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from server.settings import Settings
from tests.media.client import FRAME, RATE, RoomClient, RtcPeer
from tests.support import ROOT, ServerProcess, auth, settings_env, wait_for

QUICK = os.environ.get("BENCH_QUICK") == "1"
STEPS = [5, 10, 25] if QUICK else [5, 10, 25, 50, 100, 150, 200, 300, 400]
REENCODE_STEPS = [5] if QUICK else [5, 10]
WINDOW = 3.0 if QUICK else 6.0
BUDGET = 90.0 if QUICK else 200.0  # seconds per scenario before it stops growing
FULL_CORE = 0.9
# The probe's median latency beyond this means packets queue up in the server: it no longer
# gets the CPU it needs (its core is full, or the shared machine starves it).
BACKLOG_MS = 50.0
JOIN_CONCURRENCY = 10
LISTENER_PROCESSES = 2


# ------------------------------------------------------------------ generator side


class StampedOpus(MediaStreamTrack):
    """A microphone sending real Opus (tone + a little noise, so every payload is unique)
    as ``av.Packet``s; remembers when each payload left, for the latency probe."""

    kind = "audio"

    def __init__(self, sent: dict[bytes, float], hz: float = 440.0) -> None:
        super().__init__()
        self.sent = sent
        self.hz = hz
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.sample_rate = RATE
        self.codec.layout = "mono"
        self.codec.format = "s16"
        self.codec.bit_rate = 32000
        self.codec.time_base = fractions.Fraction(1, RATE)
        self.rng = np.random.default_rng()
        self.n = 0
        self.t0: float | None = None
        self.pending: list[av.Packet] = []

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        while not self.pending:
            if self.t0 is None:
                self.t0 = time.monotonic()
            delay = self.t0 + self.n * FRAME / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t = (np.arange(FRAME) + self.n * FRAME) / RATE
            wave = 9000 * np.sin(2 * np.pi * self.hz * t) + self.rng.normal(0, 300, FRAME)
            frame = av.AudioFrame.from_ndarray(
                wave.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = RATE
            frame.pts = self.n * FRAME
            frame.time_base = fractions.Fraction(1, RATE)
            self.n += 1
            self.pending.extend(self.codec.encode(frame))
        packet = self.pending.pop(0)
        packet.time_base = fractions.Fraction(1, RATE)
        if len(self.sent) > 500:  # never received (lost, or not forwarded): forget
            self.sent.clear()
        self.sent[bytes(packet)] = time.perf_counter()
        return packet


class Probe:
    """Matches received payloads with their send times (same process, same clock)."""

    def __init__(self) -> None:
        self.sent: dict[bytes, float] = {}
        self.latencies_ms: list[float] = []

    def on_packet(self, packet: RtpPacket) -> None:
        sent = self.sent.pop(packet.payload, None)
        if sent is not None:
            self.latencies_ms.append((time.perf_counter() - sent) * 1000)

    def take(self) -> list[float]:
        taken, self.latencies_ms = self.latencies_ms, []
        return taken


def tap_probe(peer: RtcPeer, probe: Probe) -> None:
    """Route every inbound track of ``peer`` (now and later) to the probe."""
    original = peer._on_track

    def on_track(track: MediaStreamTrack) -> None:
        original(track)
        peer.inbound[-1].on_packet = probe.on_packet

    peer.pc.remove_all_listeners("track")
    peer.pc.on("track", on_track)


async def join_listener(ws_url: str, user: str) -> tuple[RoomClient, float]:
    """Join as a listener; seconds from connecting to the first audio packet."""
    started = time.monotonic()
    client = RoomClient(ws_url, user, decode=False)
    await client.connect()
    peer = await client.start_audio()
    await wait_for(lambda: any(i.first_packet_at for i in peer.inbound), 60, 0.005)
    first = min(i.first_packet_at for i in peer.inbound if i.first_packet_at)
    return client, first - started


async def run_listeners(prefix: str) -> None:
    clients: list[RoomClient] = []
    count = 0

    async def add(ws_url: str, n: int) -> list[float]:
        nonlocal count
        gate = asyncio.Semaphore(JOIN_CONCURRENCY)

        async def one(i: int) -> float:
            async with gate:
                client, seconds = await asyncio.wait_for(
                    join_listener(ws_url, f"{prefix}{count + i}"), 60
                )
                clients.append(client)
                return seconds

        times = await asyncio.gather(*(one(i) for i in range(n)))
        count += n
        return list(times)

    async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd["cmd"] == "add":
            return {"join_seconds": await add(cmd["ws_url"], cmd["n"])}
        if cmd["cmd"] == "packets":
            return {"packets": sum(c.rtc.packets for c in clients if c.rtc)}
        raise ValueError(cmd)

    try:
        await serve_commands(handle)
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()


def hand_raised_by(user: str) -> Callable[[dict[str, Any]], bool]:
    def match(event: dict[str, Any]) -> bool:
        p = event["participant"]
        return bool(p["user_id"] == user and p["hand_raised"])

    return match


async def run_speakers(base_url: str, speakers: int, tag: str) -> None:
    probe = Probe()
    clients: list[RoomClient] = []
    host = f"{tag}-host"
    async with httpx.AsyncClient(base_url=base_url, headers=auth(host), timeout=30) as http:
        created = await http.post("/v1/rooms", json={"title": f"bench {tag}"})
        created.raise_for_status()
    ws_url = created.json()["ws_url"]

    async def speaker(user: str, hz: float) -> RoomClient:
        client = RoomClient(ws_url, user)
        await client.connect()
        client.rtc = RtcPeer(client.send, mic=StampedOpus(probe.sent, hz), decode=False)
        clients.append(client)
        return client

    owner = await speaker(host, 440)
    await owner.rtc.start(speak=True)  # type: ignore[union-attr]
    for i in range(1, speakers):
        extra = await speaker(f"{tag}-speaker{i}", 440 + 110 * i)
        await extra.rtc.start()  # type: ignore[union-attr]
        await extra.act("hand.raise")
        await owner.event("participant.updated", hand_raised_by(extra.user))
        await owner.act("hand.accept", user_id=extra.user)
        await wait_for(lambda e=extra: e.rtc is not None and e.rtc.sending, 30)
    listener = RoomClient(ws_url, f"{tag}-probe", decode=False)
    await listener.connect()
    clients.append(listener)
    peer = RtcPeer(listener.send, decode=False)
    listener.rtc = peer
    tap_probe(peer, probe)
    await peer.start()

    async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd["cmd"] == "room":
            await wait_for(lambda: peer.packets >= 50, 60)  # every speaker is flowing
            return {"ws_url": ws_url}
        if cmd["cmd"] == "latency":
            return {"ms": probe.take()}
        if cmd["cmd"] == "p2p":
            return {"ms": await peer_to_peer(cmd["seconds"])}
        raise ValueError(cmd)

    try:
        await serve_commands(handle)
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()


async def peer_to_peer(seconds: float) -> list[float]:
    """The same latency probe between two aiortc connections without a server."""
    probe = Probe()
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RtcPeer(lambda m: asyncio.sleep(0), decode=False)
    tap_probe(b, probe)
    a.addTrack(StampedOpus(probe.sent))
    b.pc.addTransceiver("audio", direction="recvonly")
    await b.pc.setLocalDescription(await b.pc.createOffer())
    await a.setRemoteDescription(b.pc.localDescription)
    await a.setLocalDescription(await a.createAnswer())
    await b.pc.setRemoteDescription(a.localDescription)
    await asyncio.sleep(1.0)
    probe.take()
    await asyncio.sleep(seconds)
    latencies = probe.take()
    await a.close()
    await b.close()
    return latencies


async def serve_commands(handle: Callable[[dict[str, Any]], Any]) -> None:
    """JSON commands on stdin, one JSON answer per line on stdout, until ``quit``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        try:
            answer = await handle(cmd)
        except Exception as exc:
            answer = {"error": repr(exc)}
        print(json.dumps(answer), flush=True)


# ------------------------------------------------------------------ benchmark side


class Generator:
    """One load generator process, driven over stdin/stdout."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.log: Any = None

    async def start(self, log: Path) -> Generator:
        self.log = log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.benchmarks.bench_relay",
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.log,
        )
        await self.read()
        return self

    async def read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 180)
        if not line:
            raise RuntimeError(f"generator {self.args[0]} exited")
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
            await self._stop()
        finally:
            if self.log is not None:
                self.log.close()

    async def _stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"cmd": "quit"}\n')
            await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def forwarded_total(base_url: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("ephemera_relay_forwarded_packets_total "):
            return float(line.split()[1])
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    server: ServerProcess, gens: list[Generator], speakers: Generator | None
) -> dict[str, float]:
    """One window: server CPU, forwarded and delivered packet rates, probe latency."""
    assert server.proc is not None
    if speakers is not None:
        await speakers.ask("latency")  # start a fresh latency window
    packets0 = sum([(await g.ask("packets"))["packets"] for g in gens])
    forwarded0 = await forwarded_total(server.url)
    cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    await asyncio.sleep(WINDOW)
    cpu1, t1 = cpu_seconds(server.proc.pid), time.monotonic()
    forwarded1 = await forwarded_total(server.url)
    packets1 = sum([(await g.ask("packets"))["packets"] for g in gens])
    latency = (await speakers.ask("latency"))["ms"] if speakers is not None else []
    seconds = t1 - t0
    return {
        "cpu": (cpu1 - cpu0) / seconds,
        "forwarded_pps": (forwarded1 - forwarded0) / seconds,
        "delivered_pps": (packets1 - packets0) / seconds,
        "p50_ms": pct(latency, 0.5),
        "p99_ms": pct(latency, 0.99),
    }


async def scenario(
    env: dict[str, str],
    log: Path,
    *,
    speakers: int,
    steps: list[int],
    tag: str,
    joins: list[float] | None = None,
) -> list[dict[str, float]]:
    """One server process, one room with ``speakers``, listeners added step by step."""
    server = ServerProcess(env).start()
    rows: list[dict[str, float]] = []
    gens: list[Generator] = []
    talkers: Generator | None = None
    began = time.monotonic()
    try:
        talkers = await Generator("speakers", server.url, str(speakers), tag).start(log)
        ws_url = (await talkers.ask("room"))["ws_url"]
        gens = [
            await Generator("listeners", f"{tag}-l{i}-").start(log)
            for i in range(LISTENER_PROCESSES)
        ]
        idle = await measure(server, gens, talkers)
        joined = 0
        for target in steps:
            share = target - joined
            parts = [
                share // len(gens) + (1 if i < share % len(gens) else 0) for i in range(len(gens))
            ]
            answers = await asyncio.gather(
                *(g.ask("add", ws_url=ws_url, n=n) for g, n in zip(gens, parts, strict=True) if n)
            )
            step_joins = [t for answer in answers for t in answer["join_seconds"]]
            if joins is not None:
                joins.extend(step_joins)
            joined = target
            await asyncio.sleep(1.0)  # let the joins' handshakes settle
            expected = 50 * speakers * (target + speakers)  # the probe listens too
            for attempt in range(2):
                row = await measure(server, gens, talkers)
                row.update(
                    listeners=target,
                    speakers=speakers,
                    idle_cpu=idle["cpu"],
                    join_p50_ms=1000 * pct(step_joins, 0.5),
                    join_p99_ms=1000 * pct(step_joins, 0.99),
                )
                # Kept up: forwarded what arrived, without a queue building up.
                row["full"] = float(
                    row["cpu"] >= FULL_CORE
                    or row["forwarded_pps"] < 0.8 * expected
                    or row["p50_ms"] > BACKLOG_MS
                )
                print_row(tag + ("" if attempt == 0 else " (again)"), row)
                if not row["full"] or row["cpu"] >= FULL_CORE:
                    break  # a short starvation by another process is measured again once
            rows.append(row)
            if row["full"]:
                break  # the server's core is full, or it can no longer keep up
            if time.monotonic() - began > BUDGET:
                break
    finally:
        for g in gens:
            await g.stop()
        if talkers is not None:
            await talkers.stop()
        server.stop()
    return rows


def per_listener(row: dict[str, float]) -> float:
    return (row["cpu"] - row["idle_cpu"]) / row["listeners"]


def print_row(tag: str, row: dict[str, float]) -> None:
    print(
        f"  {tag:>10} S={int(row['speakers'])} N={int(row['listeners']):>4}: "
        f"server CPU {row['cpu']:.3f} core, {100 * per_listener(row):.2f} %/listener, "
        f"forwarded {row['forwarded_pps']:>7.0f} pkt/s "
        f"({row['forwarded_pps'] / max(row['cpu'], 1e-3):>7.0f} per CPU-s), "
        f"delivered {row['delivered_pps']:>7.0f} pkt/s, "
        f"latency p50 {row['p50_ms']:.1f} ms p99 {row['p99_ms']:.1f} ms, "
        f"joins p50 {row['join_p50_ms']:.0f} ms p99 {row['join_p99_ms']:.0f} ms",
        flush=True,
    )


@pytest.mark.bench
@pytest.mark.timeout(1500)
async def test_relay_benchmark(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    env = {**settings_env(make_settings(log_level="WARNING")), "EPHEMERA_NODE_ID": "bench"}
    log = tmp_path / "generators.log"
    joins: list[float] = []
    started = time.monotonic()
    print(
        f"\nrelay benchmark ({'quick' if QUICK else 'full'}; generator logs: {log}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )

    p2p_gen = await Generator("speakers-p2p").start(log)
    try:
        p2p = (await p2p_gen.ask("p2p", seconds=WINDOW))["ms"]
    finally:
        await p2p_gen.stop()

    forward1 = await scenario(env, log, speakers=1, steps=STEPS, tag="forward", joins=joins)
    # The baseline right after, so both see the same machine conditions.
    reencode = await scenario(
        {**env, "EPHEMERA_RELAY_REENCODE": "true"},
        log,
        speakers=1,
        steps=REENCODE_STEPS,
        tag="reencode",
    )
    forward3 = await scenario(env, log, speakers=3, steps=STEPS, tag="forward3")

    print("\n== media relay: forward Opus vs decode/re-encode (MediaRelay model) ==")
    for row in reencode:
        n = row["listeners"]
        fwd = next((r for r in forward1 if r["listeners"] == n), None)
        if fwd is None:
            continue
        ratio = per_listener(row) / max(per_listener(fwd), 1e-6)
        note = " (re-encode could not keep up: a lower bound)" if row["full"] else ""
        print(
            f"  N={int(n)}: re-encode {100 * per_listener(row):.2f} %/listener "
            f"vs forward {100 * per_listener(fwd):.2f} %/listener -> {ratio:.1f}x the CPU{note}; "
            f"packets per CPU-s {row['forwarded_pps'] / max(row['cpu'], 1e-3):.0f} "
            f"vs {fwd['forwarded_pps'] / max(fwd['cpu'], 1e-3):.0f}"
        )
    for label, rows in (("1 speaker", forward1), ("3 speakers", forward3)):
        kept = [r for r in rows if not r["full"]] or rows[:1]
        last = kept[-1]
        stop = rows[-1]
        print(
            f"  forward, {label}: kept up to N={int(last['listeners'])} listeners at "
            f"{last['cpu']:.2f} core, {100 * per_listener(last):.2f} % of a core per listener, "
            f"{last['forwarded_pps'] / max(last['cpu'], 1e-3):.0f} packets per CPU-second"
            + (
                f"; stopped at N={int(stop['listeners'])} ({stop['cpu']:.2f} core, "
                f"p50 latency {stop['p50_ms']:.0f} ms)"
                if stop["full"]
                else ""
            )
        )
    first = forward1[0]
    print(
        f"  join to first audio packet ({JOIN_CONCURRENCY} at a time): "
        f"first {int(first['listeners'])} joins p50 {first['join_p50_ms']:.0f} ms "
        f"p99 {first['join_p99_ms']:.0f} ms; all "
        f"{len(joins)} (joining a loaded server) p50 {1000 * pct(joins, 0.5):.0f} ms, "
        f"p99 {1000 * pct(joins, 0.99):.0f} ms"
    )
    print(
        f"  latency speaker -> listener: peer to peer (no server) p50 {pct(p2p, 0.5):.1f} ms "
        f"p99 {pct(p2p, 0.99):.1f} ms; through the relay at N={int(forward1[0]['listeners'])} "
        f"p50 {forward1[0]['p50_ms']:.1f} ms p99 {forward1[0]['p99_ms']:.1f} ms "
        f"(added p50 {forward1[0]['p50_ms'] - pct(p2p, 0.5):.1f} ms)"
    )
    print(f"  total {time.monotonic() - started:.0f} s, load average {os.getloadavg()[0]:.1f}")
    assert forward1 and forward3 and reencode and joins and p2p
    assert statistics.fmean(r["delivered_pps"] for r in forward1) > 0


# ------------------------------------------------------------------ entry point


async def _main(argv: list[str]) -> None:
    role = argv[0]
    if role == "listeners":
        await run_listeners(argv[1])
    elif role == "speakers":
        await run_speakers(argv[1], int(argv[2]), argv[3])
    elif role == "speakers-p2p":

        async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
            return {"ms": await peer_to_peer(cmd["seconds"])}

        await serve_commands(handle)
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))

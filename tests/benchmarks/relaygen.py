"""Load generators of the relay benchmark, each its own process, driven over JSON lines.

``python -m tests.benchmarks.relaygen speakers BASE_URL COUNT TAG MODE`` opens a room and
runs COUNT speakers; ``python -m tests.benchmarks.relaygen listeners PREFIX`` joins
listeners on command. Commands arrive on stdin, one JSON object per line; each gets one
JSON answer line on stdout (``{"error": ...}`` on failure), until ``quit``.

Listeners count packets **at the socket**: once ICE has picked a candidate pair, every
datagram on it goes through :class:`SocketCounter` first, which counts RTP packets without
decrypting them and passes on to aiortc only RTCP, DTLS, STUN and one RTP packet in
``SAMPLE_EVERY`` (so a listener costs about what reading a datagram costs, and the
generators do not saturate before the server). The sampled packets are decrypted by
aiortc as usual; their payload carries the wall-clock time the speaker sent them, and the
kernel's receive timestamp of the datagram (``SIOCGSTAMP``, wall clock too) gives the
latency from speaker to listener socket, whatever the generator's own event loop lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import fractions
import json
import os
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import av
import httpx
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from rooms.media.aiortc_seam import DatagramSink, tap_datagrams
from tests.media.client import FRAME, RATE, RoomClient, RtcPeer, ToneTrack, room_socket
from tests.support import auth, wait_for

SAMPLE_EVERY = 25  # RTP sequence numbers: one packet a second per stream is decrypted
SIOCGSTAMP = 0x8906  # the receive time of the last datagram read from a socket
OPUS_TOC = b"\xfc"  # an Opus TOC byte: CELT fullband, 20 ms, one frame
PAYLOAD_BYTES = 80  # a 32 kbit/s Opus frame
STAMP = struct.Struct("!d")


# ------------------------------------------------------------------ speakers


class StampedPackets(MediaStreamTrack):
    """A microphone of ready-made Opus-sized packets carrying their send time.

    aiortc's sender sends an ``av.Packet`` as it is, and so does the relay (it never
    decodes), so the payload reaches every listener unchanged. Real-time paced, 20 ms.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.t0: float | None = None
        self.filler = os.urandom(PAYLOAD_BYTES - 1 - STAMP.size)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self.t0 is None:
            self.t0 = time.monotonic()
        delay = self.t0 + self.n * FRAME / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(OPUS_TOC + STAMP.pack(time.time()) + self.filler)
        packet.pts = self.n * FRAME
        packet.time_base = fractions.Fraction(1, RATE)
        self.n += 1
        return packet


def sent_at(payload: bytes) -> float | None:
    """The speaker's wall-clock send time carried by a stamped payload."""
    if len(payload) != PAYLOAD_BYTES or payload[:1] != OPUS_TOC:
        return None
    return float(STAMP.unpack_from(payload, 1)[0])


def hand_raised_by(user: str) -> Callable[[dict[str, Any]], bool]:
    def match(event: dict[str, Any]) -> bool:
        p = event["participant"]
        return bool(p["user_id"] == user and p["hand_raised"])

    return match


async def run_speakers(base_url: str, speakers: int, tag: str, mode: str) -> None:
    """Open a room with ``speakers`` publishing (real Opus from a tone for ``reencode``,
    stamped packets otherwise); answer ``room`` (its socket's URL) and ``p2p`` (the
    baseline)."""
    clients: list[RoomClient] = []
    async with httpx.AsyncClient(base_url=base_url, headers=auth(f"{tag}-host"), timeout=30) as c:
        created = await c.post("/v1/rooms", json={"title": f"bench {tag}"})
        created.raise_for_status()
    ws_url = room_socket(base_url.replace("http", "ws", 1), created.json()["id"])

    async def speaker(user: str, hz: float) -> RoomClient:
        client = RoomClient(ws_url, user, decode=False)
        await client.connect()
        # A promoted speaker whose media was on an edge reconnects to the origin (it is
        # asked to): its new connection gets a new microphone of the same kind.
        client.make_mic = (lambda: ToneTrack(hz)) if mode == "reencode" else StampedPackets
        clients.append(client)
        return client

    owner = await speaker(f"{tag}-host", 440)
    await owner.start_audio(speak=True)
    for i in range(1, speakers):
        extra = await speaker(f"{tag}-speaker{i}", 440 + 110 * i)
        await extra.start_audio()
        await extra.act("hand.raise")
        await owner.event("participant.updated", hand_raised_by(extra.user))
        await owner.act("hand.accept", user_id=extra.user)
        await wait_for(lambda e=extra: e.rtc is not None and e.rtc.sending, 30)
    for client in clients:
        await wait_for(
            lambda c=client: c.rtc is not None and c.rtc.pc.connectionState == "connected", 30
        )

    async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd["cmd"] == "room":
            return {"ws_url": ws_url}
        if cmd["cmd"] == "p2p":
            return {"ms": await peer_to_peer(cmd["seconds"])}
        raise ValueError(cmd)

    try:
        await serve_commands(handle)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()


async def peer_to_peer(seconds: float) -> list[float]:
    """The same measurement between two aiortc connections, without a server."""
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RtcPeer(lambda m: asyncio.sleep(0), decode=False)
    counter = SocketCounter(sample_every=1)
    counter.attach(b)
    a.addTrack(StampedPackets())
    b.pc.addTransceiver("audio", direction="recvonly")
    await b.pc.setLocalDescription(await b.pc.createOffer())
    await a.setRemoteDescription(b.pc.localDescription)
    await a.setLocalDescription(await a.createAnswer())
    await b.pc.setRemoteDescription(a.localDescription)
    await asyncio.sleep(1.0)
    counter.take_latencies()
    await asyncio.sleep(seconds)
    latencies = counter.take_latencies()
    await a.close()
    await b.close()
    return latencies


# ------------------------------------------------------------------ listeners


class SocketCounter:
    """Counts one listener's RTP packets at its socket; samples latency (see module doc)."""

    def __init__(self, sample_every: int = SAMPLE_EVERY) -> None:
        self.sample_every = sample_every
        self.packets = 0
        self.first_at: float | None = None  # time.monotonic() of the first RTP datagram
        self.latencies_ms: list[float] = []
        self._hooked = False
        self._arrivals: dict[tuple[int, int], float] = {}

    def attach(self, peer: RtcPeer) -> None:
        """Hook ``peer`` once its ICE agent picks a pair (before DTLS, so before any RTP).
        A new connection of the same listener (the server moved it) is hooked the same way.
        """
        pc = peer.pc
        self._hooked = False

        @pc.on("iceconnectionstatechange")
        def on_ice() -> None:
            if pc.iceConnectionState == "completed" and not self._hooked:
                self._hooked = True
                tap_datagrams(pc.getTransceivers()[0].receiver.transport, self.on_datagram)

        original = peer._on_track

        def on_track(track: MediaStreamTrack) -> None:
            original(track)
            peer.inbound[-1].on_packet = self.on_sampled

        pc.remove_all_listeners("track")
        pc.on("track", on_track)

    def on_datagram(
        self, data: bytes, addr: tuple[Any, ...], received: DatagramSink, sock: Any
    ) -> None:
        # RTP, not RTCP (RFC 5761: RTCP packet types 192-223 in the second byte).
        if 128 <= data[0] < 192 and not 192 <= data[1] <= 223 and len(data) >= 12:
            self.packets += 1
            if self.first_at is None:
                self.first_at = time.monotonic()
            seq = (data[2] << 8) | data[3]
            if seq % self.sample_every:
                return
            ssrc = int.from_bytes(data[8:12], "big")
            self._arrivals[(ssrc, seq)] = kernel_time(sock)
            if len(self._arrivals) > 1000:  # never decrypted (a closing connection)
                self._arrivals.clear()
        received(data, addr)

    def on_sampled(self, packet: RtpPacket) -> None:
        arrived = self._arrivals.pop((packet.ssrc, packet.sequence_number), None)
        sent = sent_at(packet.payload)
        if arrived is not None and sent is not None:
            self.latencies_ms.append((arrived - sent) * 1000)

    def take_latencies(self) -> list[float]:
        taken, self.latencies_ms = self.latencies_ms, []
        return taken


def kernel_time(sock: Any) -> float:
    """When the kernel received the datagram just read from ``sock`` (wall clock)."""
    try:
        raw = fcntl.ioctl(sock.fileno(), SIOCGSTAMP, bytes(16))
    except OSError:
        return time.time()
    seconds, micros = struct.unpack("qq", raw)
    return float(seconds + micros / 1e6)


JOIN_TIMEOUT = 30.0


@dataclass
class Join:
    client: RoomClient
    counter: SocketCounter
    seconds: float  # from opening the WebSocket to the first RTP datagram
    media_seconds: float  # from sending rtc.offer (after welcome) to the first RTP datagram


async def join_listener(ws_url: str, user: str) -> Join:
    """Join as a listener, until the first RTP packet arrives at the socket."""
    started = time.monotonic()
    client = RoomClient(ws_url, user, decode=False)
    try:
        await client.connect()
        offered = time.monotonic()
        counter = SocketCounter()
        client.on_rtc = counter.attach
        await client.start_audio()
        await wait_for(lambda: counter.first_at is not None, JOIN_TIMEOUT, 0.005)
    except BaseException as exc:
        errors = [e for e in client.events if e.get("type") == "error"]
        with contextlib.suppress(Exception):
            await client.close()
        if errors:
            raise RuntimeError(f"the server said {errors}") from exc
        raise
    assert counter.first_at is not None
    return Join(client, counter, counter.first_at - started, counter.first_at - offered)


class Listeners:
    """One generator process's listeners."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.joined = 0
        self.clients: list[RoomClient] = []
        self.counters: list[SocketCounter] = []

    def name(self) -> str:
        self.joined += 1
        return f"{self.prefix}{self.joined}"

    async def add(self, ws_url: str, n: int, concurrency: int) -> list[float]:
        """``n`` listeners that stay, ``concurrency`` joining at a time."""
        gate = asyncio.Semaphore(concurrency)

        async def one() -> float:
            async with gate:
                join = await join_listener(ws_url, self.name())
            self.clients.append(join.client)
            self.counters.append(join.counter)
            return join.seconds

        return list(await asyncio.gather(*(one() for _ in range(n))))

    async def churn(self, ws_url: str, n: int, rate: float) -> list[tuple[float, float]]:
        """``n`` joins arriving at ``rate`` per second whatever the server does (open loop);
        each listener leaves once its first packet arrived. A join with no audio within
        ``JOIN_TIMEOUT`` counts as that long. (total, media) seconds per join."""

        async def one(delay: float) -> tuple[float, float]:
            await asyncio.sleep(delay)
            try:
                join = await join_listener(ws_url, self.name())
            except Exception as exc:
                print(f"join failed: {exc!r}", file=sys.stderr, flush=True)
                return JOIN_TIMEOUT, JOIN_TIMEOUT
            with contextlib.suppress(Exception):  # say, a server offer still in flight
                await join.client.close()
            return join.seconds, join.media_seconds

        return list(await asyncio.gather(*(one(i / rate) for i in range(n))))

    def stats(self) -> dict[str, Any]:
        return {
            "packets": sum(c.packets for c in self.counters),
            "ms": [ms for c in self.counters for ms in c.take_latencies()],
            "cpu": cpu_seconds(os.getpid()),
        }

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()


async def run_listeners(prefix: str) -> None:
    listeners = Listeners(prefix)

    async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd["cmd"] == "add":
            return {"join_s": await listeners.add(cmd["ws_url"], cmd["n"], cmd["concurrency"])}
        if cmd["cmd"] == "churn":
            return {"join_s": await listeners.churn(cmd["ws_url"], cmd["n"], cmd["rate"])}
        if cmd["cmd"] == "stats":
            return listeners.stats()
        raise ValueError(cmd)

    try:
        await serve_commands(handle)
    finally:
        await listeners.close()


# ------------------------------------------------------------------ plumbing


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def serve_commands(handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
    """JSON commands on stdin, one JSON answer per line on stdout, until ``quit``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        try:
            answer = await handle(cmd)
        except Exception as exc:
            answer = {"error": repr(exc)}
        print(json.dumps(answer), flush=True)


async def _main(argv: list[str]) -> None:
    if argv[0] == "speakers":
        await run_speakers(argv[1], int(argv[2]), argv[3], argv[4])
    elif argv[0] == "listeners":
        await run_listeners(argv[1])
    else:
        raise SystemExit(f"unknown role {argv[0]}")


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))

"""A real aiortc room participant for tests and load generators.

``RtcPeer`` is the media side (one RTCPeerConnection, the client role of the protocol in
``docs/relay.md``): it offers first, answers server offers, attaches its microphone when a
server offer says ``publish``, and records what it receives (RTP packets counted at the
receiver tap; decoded audio kept for frequency checks unless ``decode=False``).
``RoomClient`` carries it over the room WebSocket. Tests that drive ``MediaService``
directly use ``Loopback`` instead of a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from av import AudioFrame

from rooms.media.aiortc_seam import tap_receiver
from tests.support import token, wait_for

SendJson = Callable[[dict[str, Any]], Awaitable[None]]
RATE = 48000
FRAME = 960  # 20 ms


class ToneTrack(AudioStreamTrack):
    """A microphone that plays a sine tone (48 kHz mono, 20 ms frames, real-time paced)."""

    def __init__(self, hz: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self.hz = hz
        self.amplitude = amplitude
        self._n = 0
        self._t0: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        delay = self._t0 + self._n * FRAME / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(FRAME) + self._n * FRAME) / RATE
        samples = (self.amplitude * 32767 * np.sin(2 * np.pi * self.hz * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._n * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self._n += 1
        return frame


@dataclass
class Inbound:
    """One received track: RTP packets counted at the tap, decoded audio (mono) kept."""

    packets: int = 0
    payload_bytes: int = 0
    first_packet_at: float | None = None
    last_packet_at: float | None = None
    samples: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=100))
    on_packet: Callable[[RtpPacket], None] | None = None

    def tap(self, packet: RtpPacket) -> None:
        self.last_packet_at = time.monotonic()
        if self.first_packet_at is None:
            self.first_packet_at = self.last_packet_at
        self.packets += 1
        self.payload_bytes += len(packet.payload)
        if self.on_packet is not None:
            self.on_packet(packet)

    def recent_audio(self, frames: int = 25) -> np.ndarray:
        chunks = list(self.samples)[-frames:]
        return np.concatenate(chunks) if chunks else np.zeros(0)


async def goes_silent(inbound: Inbound, within: float = 10.0) -> bool:
    """True once no packet arrives on this track for a whole second."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = inbound.packets
        await asyncio.sleep(1.0)
        if inbound.packets == before:
            return True
    return False


def dominant_hz(samples: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def hears_tone(inbound: Inbound, hz: float = 440.0) -> bool:
    audio = inbound.recent_audio()
    return len(audio) >= 8 * FRAME and rms(audio) > 1000 and abs(dominant_hz(audio) - hz) < 15


class RtcPeer:
    """The client side of one participant's media (polite; never needs a rollback)."""

    def __init__(
        self,
        send: SendJson,
        *,
        mic: MediaStreamTrack | None = None,
        decode: bool = True,
        ice_servers: list[dict[str, Any]] | None = None,
        munge_offer: Callable[[str], str] | None = None,
    ) -> None:
        servers = [RTCIceServer(**s) for s in ice_servers or []]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.send = send
        self.mic = mic
        self.decode = decode
        self.munge_offer = munge_offer
        self.upstream: RTCRtpTransceiver | None = None
        self.inbound: list[Inbound] = []
        self.offers_received = 0
        self.answers_received = 0
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    @property
    def packets(self) -> int:
        return sum(i.packets for i in self.inbound)

    @property
    def sending(self) -> bool:
        return self.upstream is not None and self.upstream.sender.track is not None

    def hears_tone(self, hz: float = 440.0) -> bool:
        return any(hears_tone(i, hz) for i in self.inbound)

    async def start(self, *, speak: bool = False) -> None:
        """Offer: recvonly as a listener, sendrecv with the microphone as a speaker."""
        self.upstream = self.pc.addTransceiver("audio", direction="recvonly")
        if speak:
            self._attach_mic()
        offer = await self.pc.createOffer()
        sdp = self.munge_offer(offer.sdp) if self.munge_offer else offer.sdp
        await self.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.send({"type": "rtc.offer", "sdp": self.pc.localDescription.sdp})

    def _attach_mic(self) -> None:
        assert self.upstream is not None and self.mic is not None
        if self.upstream.sender.track is None:
            self.upstream.sender.replaceTrack(self.mic)
        self.upstream.direction = "sendrecv"

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "rtc.answer":
            self.answers_received += 1
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="answer")
            )
        elif kind == "rtc.offer":
            self.offers_received += 1
            if message.get("publish") and self.mic is not None:
                self._attach_mic()
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="offer")
            )
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.send({"type": "rtc.answer", "sdp": self.pc.localDescription.sdp})

    def _on_track(self, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        inbound = Inbound()
        self.inbound.append(inbound)
        tap_receiver(receiver, inbound.tap, decode=self.decode)
        if self.decode:
            self._readers.append(asyncio.create_task(self._read(track, inbound)))

    async def _read(self, track: MediaStreamTrack, inbound: Inbound) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame)
                data = frame.to_ndarray()  # s16 interleaved stereo: (1, 2 * samples)
                inbound.samples.append(data.reshape(-1)[::2].copy())

    def vanish(self) -> None:
        """The client's network goes away: its UDP sockets close without a word (no DTLS
        goodbye, no consent answers, nothing), as when a phone loses its connection."""
        for transceiver in self.pc.getTransceivers():
            connection = transceiver.receiver.transport.transport._connection
            for protocol in connection._protocols:
                protocol.transport.close()

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await self.pc.close()
        if self.mic is not None:
            self.mic.stop()


class Loopback:
    """A participant wired straight to a MediaService, one message at a time each way.

    Messages are queued and handled by tasks, like a WebSocket: neither side ever waits
    for the other inside its own handler.
    """

    def __init__(
        self, service: Any, room_id: str, user_id: str, *, tone: float | None = None, **kw: Any
    ) -> None:
        self.service = service
        self.room_id = room_id
        self.user_id = user_id
        self.to_server: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.to_client: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received: list[dict[str, Any]] = []
        self.errors: list[Exception] = []
        mic = ToneTrack(tone) if tone else None
        self.rtc = RtcPeer(self.to_server.put, mic=mic, **kw)
        self._tasks = [
            asyncio.create_task(self._pump_server()),
            asyncio.create_task(self._pump_client()),
        ]

    async def _deliver(self, message: dict[str, Any]) -> None:
        await self.to_client.put(message)

    async def _pump_server(self) -> None:
        while True:
            message = await self.to_server.get()
            try:
                await self.service.signal(self.room_id, self.user_id, message, self._deliver)
            except Exception as exc:
                self.errors.append(exc)

    async def _pump_client(self) -> None:
        while True:
            message = await self.to_client.get()
            self.received.append(message)
            await self.rtc.handle(message)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.rtc.close()


def room_socket(base_ws_url: str, room_id: str) -> str:
    """The room socket's URL on a server (any process of a deployment takes it)."""
    return f"{base_ws_url}/v1/rooms/{room_id}/ws"


class RoomClient:
    """A participant over the real room WebSocket: control messages, events and media."""

    def __init__(self, ws_url: str, user: str, **rtc: Any) -> None:
        """``ws_url`` is the room socket's URL (``.../v1/rooms/{id}/ws``), without token."""
        self.url = f"{ws_url}?token={token(user)}"
        self.user = user
        self.rtc_options = rtc
        self.ws: Any = None
        self.welcome: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.rtc: RtcPeer | None = None
        # What a new media connection sends when speaking (a tone by default) and who
        # wants to know of each new one (load generators count packets at its socket).
        self.make_mic: Callable[[], MediaStreamTrack] | None = None
        self.on_rtc: Callable[[RtcPeer], None] | None = None
        self.tone: float | None = None
        self.restarts: list[float] = []  # time.monotonic() of each rtc.restart
        self.closed_code: int | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> dict[str, Any]:
        self.ws = await websockets.connect(self.url, max_size=2**20)
        self.welcome = json.loads(await self.ws.recv())
        assert self.welcome["type"] == "welcome", self.welcome
        self._reader = asyncio.create_task(self._read())
        return self.welcome

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def act(self, kind: str, **fields: Any) -> None:
        await self.send({"type": kind, **fields})

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "rtc.restart":
                    await self.restart(bool(message.get("publish")))
                elif str(message.get("type", "")).startswith("rtc.") and self.rtc is not None:
                    await self.rtc.handle(message)
                else:
                    self.events.append(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed_code = self.ws.close_code

    async def restart(self, publish: bool) -> None:
        """The server asked for a new media connection (as the web client does: a new peer
        connection offering at once, sending the microphone if we may)."""
        self.restarts.append(time.monotonic())
        old, self.rtc = self.rtc, None
        speak = publish or (old is not None and old.sending)
        if old is not None:
            await old.close()
        has_mic = self.tone is not None or self.make_mic is not None
        await self.start_audio(speak=speak and has_mic, tone=self.tone)

    async def start_audio(self, *, speak: bool = False, tone: float | None = None) -> RtcPeer:
        """Open the media connection; a ``tone`` microphone is ready even for a listener
        (``make_mic``'s, when set and no tone is given)."""
        if speak and tone is None and self.make_mic is None:
            tone = 440.0
        self.tone = tone
        mic = ToneTrack(tone) if tone else self.make_mic() if self.make_mic else None
        self.rtc = RtcPeer(
            self.send, mic=mic, ice_servers=self.welcome.get("ice_servers"), **self.rtc_options
        )
        if self.on_rtc is not None:
            self.on_rtc(self.rtc)
        await self.rtc.start(speak=speak)
        return self.rtc

    async def event(
        self,
        kind: str,
        where: Callable[[dict[str, Any]], bool] = lambda e: True,
        within: float = 10,
    ) -> dict[str, Any]:
        """The first event of this type matching ``where`` (waits for it)."""
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [e for e in self.events if e.get("type") == kind and where(e)]
            return bool(found)

        await wait_for(seen, within=within)
        return found[0]

    async def close(self) -> None:
        if self.rtc is not None:
            await self.rtc.close()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

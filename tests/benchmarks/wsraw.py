"""A room listener that counts events at its socket, for load generators.

A full WebSocket client parses, decodes and hands over every message in Python; thousands
of them on the machine that runs the server compete with it. This one speaks just enough
of RFC 6455 for a server's unmasked frames: the handshake, text frames scanned for a
marker without decoding, pongs for the server's pings (so that keepalive does not close
it), and the close frame.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from urllib.parse import urlsplit


class RawListener(asyncio.Protocol):
    """One socket: ``welcomed`` resolves at the welcome; ``arrivals`` gets the time of each
    text message holding every one of ``markers``."""

    def __init__(self, url: str, markers: tuple[bytes, ...], arrived: asyncio.Event) -> None:
        parts = urlsplit(url)
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.markers = markers
        self.arrived = arrived
        self.arrivals: list[float] = []
        self.welcomed: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.closed = False
        self._buf = bytearray()
        self._open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError("closed before the welcome"))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._open:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self._buf[: self._buf.find(b"\r\n")]:
                head = bytes(self._buf[:end]).decode(errors="replace").splitlines()[0]
                self.welcomed.set_exception(ConnectionError(head))
                assert self.transport is not None
                self.transport.close()
                return
            self._open = True
            del self._buf[: end + 4]
        self._frames()

    def _frames(self) -> None:
        buf = self._buf
        while len(buf) >= 2:
            n, at = buf[1] & 0x7F, 2
            if n == 126:
                n, at = int.from_bytes(buf[2:4]), 4
            elif n == 127:
                n, at = int.from_bytes(buf[2:10]), 10
            if len(buf) < at + n:
                return
            opcode, payload = buf[0] & 0x0F, bytes(buf[at : at + n])
            del buf[: at + n]
            if opcode == 0x1:
                self._message(payload)
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                self._send(0x8, payload[:2])
                assert self.transport is not None
                self.transport.close()

    def _message(self, payload: bytes) -> None:
        if not self.welcomed.done():
            if b'"type":"welcome"' in payload[:32]:
                self.welcomed.set_result(time.monotonic())
            return
        if all(m in payload for m in self.markers):
            self.arrivals.append(time.monotonic())
            self.arrived.set()

    def _send(self, opcode: int, payload: bytes) -> None:
        """A client frame: always masked."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self._send(0x8, (1000).to_bytes(2))
            self.transport.close()


async def listen(url: str, markers: tuple[bytes, ...], arrived: asyncio.Event) -> RawListener:
    """Connect and wait for the welcome."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    def build() -> RawListener:
        return RawListener(url, markers, arrived)

    _, listener = await loop.create_connection(build, host, port)
    await listener.welcomed
    return listener

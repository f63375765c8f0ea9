"""The trunk: a room's audio from its origin node to its edge nodes.

The origin sends each speaker's packet **once per edge node**, whatever the number of
listeners there; the edge hands it to its own fan-out like a local speaker's packet.

On the wire it is RTP over UDP, protected with SRTP (AEAD AES-128-GCM: encrypted and
authenticated) under a key of the room's origin term (a random key drawn by the node that
claims the room, shared with the edges through Redis; a new origin draws a new key, so no
key ever protects two streams with the same SSRC and sequence numbers). Per packet:

* SSRC: the speaker's trunk stream (random per source; the origin publishes which user
  each SSRC is), sequence number +1 per packet, marker bit as received;
* timestamp: the speaker's packet on the origin's 48 kHz timeline for that source;
* payload type 111 (Opus), one header extension (RFC 8285 one-byte form, id 1): the RFC 6464
  audio level byte as the speaker sent it;
* payload: the speaker's Opus packet, never decoded.

The packet is protected once and the same datagram goes to every edge. An edge listens on
one UDP socket per room it serves (its address is in Redis), so it knows the room, and
the key, before decrypting; anything that does not authenticate is dropped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable
from typing import Any, Protocol

from pylibsrtp import Error as SrtpError
from pylibsrtp import Policy, Session

PROFILE = Policy.SRTP_PROFILE_AEAD_AES_128_GCM
KEY_BYTES = 28  # AES-128 key and 12-byte salt
PAYLOAD_TYPE = 111
LEVEL_ID = 1
RECEIVE_BUFFER = 1 << 20  # bursts arriving while the edge's loop runs a fan-out pass

_HEADER = struct.Struct("!BBHII")
_EXTENSION = b"\xbe\xde\x00\x01" + bytes((LEVEL_ID << 4,))  # one element, one byte long
_HEAD_BYTES = 20  # header, extension block (4) and its one word of elements (4)

# What an edge gets per packet: (ssrc, payload, level byte, marker bit, timestamp).
Deliver = Callable[[int, bytes, int, int, int], None]


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


class TrunkStream(Protocol):
    """One speaker's stream on the trunk (``rooms.media.relay.Source``)."""

    trunk_ssrc: int
    trunk_seq: int


class TrunkOut:
    """The origin's side for one room: one SRTP session, the edges' addresses."""

    def __init__(self, key: bytes, sock: socket.socket) -> None:
        self._protect = Session(
            Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=PROFILE)
        ).protect
        self.sock = sock
        self.edges: list[tuple[str, int]] = []
        self.sent = 0
        self.dropped = 0

    def forward(
        self, stream: TrunkStream, payload: bytes, level: int, marker: int, timestamp: int
    ) -> None:
        """One packet to every edge (the hot path: once per packet, not per listener)."""
        edges = self.edges
        if not edges:
            return
        seq = stream.trunk_seq = (stream.trunk_seq + 1) & 0xFFFF
        head = _HEADER.pack(
            0x90, marker | PAYLOAD_TYPE, seq, timestamp & 0xFFFFFFFF, stream.trunk_ssrc
        )
        datagram = self._protect(head + _EXTENSION + bytes((level, 0, 0)) + payload)
        for addr in edges:
            try:
                self.sock.sendto(datagram, addr)
                self.sent += 1
            except OSError:  # a full buffer, a vanished route: this edge misses one packet
                self.dropped += 1


def trunk_socket() -> socket.socket:
    """The origin's sending socket (one per process, for every room)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


class TrunkIn(asyncio.DatagramProtocol):
    """An edge's side for one room: its UDP socket and the room's current key."""

    def __init__(self, key: bytes, deliver: Deliver, on_reject: Callable[[], None]) -> None:
        self.deliver = deliver
        self.on_reject = on_reject
        self.received = 0
        self.rejected = 0
        self._unprotect = self._session(key)
        self._transport: asyncio.DatagramTransport | None = None

    @staticmethod
    def _session(key: bytes) -> Callable[[bytes], bytes]:
        policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=PROFILE)
        return Session(policy).unprotect

    def set_key(self, key: bytes) -> None:
        """A new origin term: its packets carry new streams under a new key."""
        self._unprotect = self._session(key)

    async def open(self, host: str) -> tuple[str, int]:
        """Listen on ``host`` (any free port); the address bound."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((host, 0))
        transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self._transport = transport
        address: tuple[str, int] = sock.getsockname()
        return address

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            packet = self._unprotect(data)
        except SrtpError:  # not from this room's origin (or from its previous term)
            self.rejected += 1
            self.on_reject()
            return
        if len(packet) <= _HEAD_BYTES or packet[12:17] != _EXTENSION:
            self.rejected += 1
            return
        self.received += 1
        _, second, _, timestamp, ssrc = _HEADER.unpack_from(packet)
        self.deliver(ssrc, packet[_HEAD_BYTES:], packet[17], second & 0x80, timestamp)

"""The trunk between an origin and its edges (rooms.media.trunk): real UDP sockets, SRTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from rooms.media.trunk import TrunkIn, TrunkOut, new_key, trunk_socket
from tests.support import wait_for


@pytest.fixture
def sockets() -> Iterator[Callable[[], socket.socket]]:
    """Origin sockets, closed after the test."""
    made: list[socket.socket] = []

    def make() -> socket.socket:
        made.append(trunk_socket())
        return made[-1]

    yield make
    for sock in made:
        sock.close()


@dataclass
class Stream:
    trunk_ssrc: int = 0x1234ABCD
    trunk_seq: int = 100


@dataclass
class Edge:
    key: bytes
    got: list[tuple[int, bytes, int, int, int]] = field(default_factory=list)
    rejects: int = 0
    trunk: TrunkIn | None = None

    async def open(self) -> tuple[str, int]:
        self.trunk = TrunkIn(self.key, lambda *p: self.got.append(p), self.reject)
        return await self.trunk.open("127.0.0.1")

    def reject(self) -> None:
        self.rejects += 1


async def test_each_packet_reaches_every_edge_once_intact(
    sockets: Callable[[], socket.socket],
) -> None:
    key = new_key()
    edges = [Edge(key) for _ in range(3)]
    out = TrunkOut(key, sockets())
    out.edges = [await e.open() for e in edges]
    stream = Stream()
    for n in range(5):
        out.forward(stream, bytes([n]) * 80, 0x80 | 30, 0x80 if n == 0 else 0, 960 * n)
    await wait_for(lambda: all(len(e.got) == 5 for e in edges))
    assert out.sent == 15 and stream.trunk_seq == 105
    for edge in edges:
        assert edge.got[0] == (0x1234ABCD, bytes([0]) * 80, 0x80 | 30, 0x80, 0)
        assert edge.got[4] == (0x1234ABCD, bytes([4]) * 80, 0x80 | 30, 0, 3840)
        assert edge.rejects == 0
        assert edge.trunk is not None
        edge.trunk.close()


async def test_packets_under_another_key_forged_or_replayed_are_dropped(
    sockets: Callable[[], socket.socket],
) -> None:
    key = new_key()
    edge = Edge(key)
    address = await edge.open()
    assert edge.trunk is not None
    stranger = TrunkOut(new_key(), sockets())  # another room's origin, or an old term
    stranger.edges = [address]
    stranger.forward(Stream(), b"x" * 80, 30, 0, 0)
    await wait_for(lambda: edge.rejects == 1)

    sock = sockets()
    sent: list[bytes] = []

    class Tap:  # the origin's socket, recording what it sends
        def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
            sent.append(data)
            sock.sendto(data, addr)

    out = TrunkOut(key, sock)
    out.sock = Tap()  # type: ignore[assignment]
    out.edges = [address]
    out.forward(Stream(), b"y" * 80, 30, 0, 0)
    await wait_for(lambda: len(edge.got) == 1)
    sock.sendto(sent[0], address)  # replayed
    forged = bytearray(sent[0])
    forged[-20] ^= 1  # a flipped payload bit
    sock.sendto(bytes(forged), address)
    sock.sendto(b"\x80" * 40, address)  # not SRTP at all
    await wait_for(lambda: edge.rejects == 4)
    assert len(edge.got) == 1

    # A new origin term: the edge takes its key; the old one's packets are refused.
    new = new_key()
    edge.trunk.set_key(new)
    out.forward(Stream(trunk_seq=200), b"z" * 80, 30, 0, 960)
    renewed = TrunkOut(new, sockets())
    renewed.edges = [address]
    renewed.forward(Stream(trunk_ssrc=7), b"w" * 80, 30, 0, 0)
    await wait_for(lambda: len(edge.got) == 2)
    await asyncio.sleep(0.1)
    assert edge.got[1][:2] == (7, b"w" * 80) and edge.rejects == 5
    edge.trunk.close()

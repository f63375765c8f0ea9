"""server/wsframes.py: prebuilt frames are what a WebSocket client reads, and what the module
relies on in uvicorn is still there (this fails loudly when an upgrade changes it)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from server import wsframes
from tests.rooms.helpers import create_room
from tests.support import LiveServer, token


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_a_prebuilt_frame_is_one_text_message_for_a_client(size: int) -> None:
    text = ("é" * size)[:size]
    client = ClientProtocol(parse_uri("ws://x/"), state=State.OPEN, max_size=None)
    client.receive_data(wsframes.text_frame(text.encode()))
    events = client.events_received()
    assert len(events) == 1 and isinstance(events[0], Frame)
    assert events[0].opcode is Opcode.TEXT and events[0].fin
    assert bytes(events[0].data).decode() == text


def test_uvicorn_still_has_what_frames_protocol_relies_on() -> None:
    source = inspect.getsource(WebSocketsSansIOProtocol)
    for attribute in ("handshake_complete", "close_sent", "disconnected", "writable"):
        assert f"self.{attribute} = " in source, attribute
    assert '"extensions": {' in source and "self.scope: WebSocketScope = " in source
    assert "self.conn = ServerProtocol(" in source  # rebuilt without permessage-deflate
    init = inspect.signature(WebSocketsSansIOProtocol.__init__).parameters
    assert list(init)[:4] == ["self", "config", "server_state", "app_state"]


async def test_room_sockets_do_not_negotiate_deflate(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server()
    async with srv.client("alice") as a:
        room = (await create_room(a))["id"]
    url = f"{srv.ws_url}/v1/rooms/{room}/ws?token={token('alice')}"
    async with connect(url, compression="deflate") as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert '"type":"welcome"' in str(await ws.recv())
    on = make_server(ws_per_message_deflate=True)
    async with on.client("alice") as a:
        room = (await create_room(a))["id"]
    url = f"{on.ws_url}/v1/rooms/{room}/ws?token={token('alice')}"
    async with connect(url, compression="deflate") as ws:
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        # Prebuilt frames go out uncompressed on a deflate socket too: still readable.
        assert '"type":"welcome"' in str(await ws.recv())

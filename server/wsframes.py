"""Prebuilt WebSocket frames: one event, encoded once, written as the same bytes to every socket.

The ASGI interface sends a ``str`` per socket; the server then encodes it, builds a frame
and (with permessage-deflate) compresses it, once per socket. A room event goes to
thousands of sockets, so ``ephemera serve`` runs uvicorn with ``FramesProtocol``: uvicorn's
own WebSocket protocol plus an ASGI scope extension, ``ephemera.frames``, whose
``write(frame)`` puts a frame built once (``text_frame``) straight on the socket's
transport. Everything else (handshake, reading, pings, closing) is uvicorn's.

Every reach into uvicorn's protocol internals is in this module, and
``tests/test_wsframes.py`` fails if what is relied on changes. Under any other server the
extension is absent and sockets fall back to the ASGI send of the same text.

permessage-deflate is off unless ``ws_per_message_deflate`` says otherwise: room events are
a few hundred bytes, deflate saved little on them and cost about 10 µs of CPU and 40 KB of
memory per socket (docs/architecture.md, "Room events to many sockets"). A socket that
negotiated it still gets prebuilt frames uncompressed, which RFC 7692 allows.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from typing import Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.server import ServerProtocol

from server.settings import Settings

EXTENSION = "ephemera.frames"
# uvicorn's import string for ``--ws`` / ``uvicorn.Config(ws=...)``.
PROTOCOL = "server.wsframes:FramesProtocol"


def text_frame(payload: bytes) -> bytes:
    """A whole, unmasked (server to client) WebSocket text frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


class FrameWriter(Protocol):
    def write(self, frame: bytes) -> bool:
        """Write ``frame`` now; False (nothing written) when the socket cannot take it now."""
        ...


def frame_writer(scope: Mapping[str, Any]) -> FrameWriter | None:
    """The socket's frame writer, when its server provides one."""
    extension = scope.get("extensions", {}).get(EXTENSION)
    return extension.get("writer") if isinstance(extension, dict) else None


class FramesProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, with the ``ephemera.frames`` scope extension."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any]) -> None:
        super().__init__(config, server_state, app_state)
        # The app's settings, from its lifespan state (absent: uvicorn's own choice).
        settings = getattr(app_state.get("platform"), "settings", None)
        if isinstance(settings, Settings) and not settings.ws_per_message_deflate:
            # As uvicorn builds it, without the permessage-deflate extension.
            log = logging.getLogger("uvicorn.error")
            self.conn = ServerProtocol(extensions=[], max_size=config.ws_max_size, logger=log)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # a handshake uvicorn accepted: the app's task starts later
            scope["extensions"][EXTENSION] = {"writer": self}

    def write(self, frame: bytes) -> bool:
        # Not before the handshake's answer, nor after a close frame; and not while the
        # transport is over its high-water mark (the caller queues, then waits as ASGI does).
        if not self.handshake_complete or self.close_sent or self.disconnected:
            return False
        if not self.writable.is_set() or self.transport.is_closing():
            return False
        self.transport.write(frame)
        return True

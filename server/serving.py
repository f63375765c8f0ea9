"""How ``ephemera serve`` runs uvicorn: deadlines for slow clients, and a line saying where.

uvicorn closes idle keep-alive connections but never times out a request that is still
arriving: a client sending its headers a byte at a time ("slowloris"), or a body that stalls,
holds a connection and its memory for ever. Here, as nginx's ``client_header_timeout`` and
``client_body_timeout`` do:

* a request head must be complete within ``header_timeout_seconds`` of the connection
  opening (or, on a kept-alive connection, of the request's first byte); trickling bytes does
  not extend it;
* a request body may pause for at most ``body_timeout_seconds`` between two reads (not
  counting time when the server itself stopped reading because the app is behind).

A client past a deadline gets ``408 Request Timeout`` (when no response has started) and the
connection is closed; an app still reading that body sees the client leave (``400
body_interrupted``). The timeouts come from the app's settings in the lifespan state. Run
the app under another server only behind a proxy that enforces such deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import ChangeReload

from server import wsframes
from server.settings import Settings

log = structlog.get_logger(__name__)

_BODY = b'{"error": {"code": "request_timeout", "message": "the request arrived too slowly"}}'
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + b"content-length: %d\r\n\r\n" % len(_BODY)
    + _BODY
)


def timeouts(app_state: dict[str, Any]) -> tuple[float, float]:
    """(header, body) timeouts from the app's settings, or the defaults for another app."""
    settings = app_state.get("settings")
    if isinstance(settings, Settings):
        return settings.header_timeout_seconds, settings.body_timeout_seconds
    fields = Settings.model_fields
    return fields["header_timeout_seconds"].default, fields["body_timeout_seconds"].default


class DeadlineHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.body_timeout = timeouts(self.app_state)
        self.deadline: asyncio.TimerHandle | None = None
        self.phase: str | None = None  # "headers", "body", or None between requests

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self.phase = phase
        self.deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline, self.phase = None, None

    def _expired(self) -> None:
        phase, self.deadline = self.phase, None
        if self.transport.is_closing():
            return
        if phase == "body" and self.flow.read_paused:
            self._arm("body", self.body_timeout)  # we stopped reading, not the client
            return
        log.info("http.slow_client", phase=phase, client=self.client)
        cycle = self.cycle
        if phase == "headers":  # this request has no cycle yet; the last one must be over
            answer = cycle is None or cycle.response_complete
        else:  # the app may have answered already (e.g. 401 before reading the body)
            answer = cycle is not None and not cycle.response_started
        if answer:
            self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()

    # --- where a request's phases start and end -------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers", self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase == "body":  # the client is still sending: restart the pause clock
            self._arm("body", self.body_timeout)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.phase is None:  # a kept-alive connection's next request
            self._arm("headers", self.header_timeout)

    def on_headers_complete(self) -> None:
        self._arm("body", self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()


class AnnouncingServer(uvicorn.Server):
    """Says where it listens, in one human line on stdout, once its socket is bound."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        bound = self.servers[0].sockets[0].getsockname() if self.servers else None
        if self.started and bound:
            host, port = bound[0], bound[1]
            where = f"[{host}]" if ":" in host else host
            print(f"Ephemera running on http://{where}:{port} (Ctrl-C to stop)", flush=True)


def run(settings: Settings, host: str, port: int, reload: bool) -> str | None:
    """Serve the app until stopped; the reason it could not start, or None."""
    from server.app import create_app

    # The reloader needs an import string; otherwise the app object is ours, so a failed
    # start can be reported with its reason.
    app: Any = "server.app:create_app" if reload else create_app()
    config = uvicorn.Config(
        app,
        factory=reload,
        host=host,
        port=port,
        reload=reload,
        http="server.serving:DeadlineHttpProtocol",
        ws=wsframes.PROTOCOL,
        log_config=None,
        access_log=False,
        ws_max_size=settings.ws_max_message_bytes,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        timeout_graceful_shutdown=10,
    )
    server = AnnouncingServer(config)
    try:
        # uvicorn re-raises the SIGINT it handled after a graceful shutdown: not an error.
        with contextlib.suppress(KeyboardInterrupt):
            if config.should_reload:
                ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
                return None
            server.run()
    except SystemExit as exc:  # uvicorn exits 3 when the app's start-up failed
        if not exc.code:
            return None
    if server.started:
        return None
    return str(getattr(getattr(app, "state", None), "startup_error", "see the log above"))

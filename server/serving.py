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
import os
import socket
from collections.abc import Callable
from multiprocessing.connection import Connection
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
    settings = getattr(app_state.get("platform"), "settings", None)  # the lifespan's
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


class ReportingServer(uvicorn.Server):
    """A worker's server (``server.workers``): tells the supervisor once it serves."""

    def __init__(self, config: uvicorn.Config, conn: Connection) -> None:
        super().__init__(config)
        self.conn = conn

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.conn.send(("ready", os.getpid()))


def _config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http="server.serving:DeadlineHttpProtocol",
        ws=wsframes.PROTOCOL,
        log_config=None,
        access_log=False,
        ws_max_size=settings.ws_max_message_bytes,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        timeout_graceful_shutdown=10,
        **options,
    )


def run(settings: Settings, host: str, port: int, reload: bool) -> str | None:
    """Serve the app in this process until stopped; the reason it could not start, or None
    (several processes: ``server.workers``)."""
    from server.app import create_app

    # The reloader needs an import string; otherwise the app object is ours, so a failed
    # start can be reported with its reason.
    app: Any = "server.app:create_app" if reload else create_app()
    config = _config(app, settings, factory=reload, host=host, port=port, reload=reload)
    server = AnnouncingServer(config)
    if config.should_reload:
        sockets = [config.bind_socket()]
        target = ChangeReload(config, target=server.run, sockets=sockets).run
        return _serve(target, server, None)
    return _serve(server.run, server, app)


def run_worker(settings: Settings, sock: socket.socket, conn: Connection) -> str | None:
    """One worker of ``ephemera serve --workers N`` on the shared socket."""
    from server.app import create_app

    app = create_app(settings)
    server = ReportingServer(_config(app, settings), conn)
    return _serve(lambda: server.run(sockets=[sock]), server, app)


def _serve(target: Callable[[], None], server: uvicorn.Server, app: Any) -> str | None:
    try:
        # uvicorn re-raises the SIGINT it handled after a graceful shutdown: not an error.
        with contextlib.suppress(KeyboardInterrupt):
            target()
    except SystemExit as exc:  # uvicorn exits 3 when the app's start-up failed
        if not exc.code:
            return None
    if server.started or app is None:
        return None
    return str(getattr(getattr(app, "state", None), "startup_error", "see the log above"))

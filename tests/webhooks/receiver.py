"""A real webhook receiver for tests: Starlette on uvicorn on loopback, in its own thread,
verifying every request's signature with the ``standardwebhooks`` library."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.webhooks.events import EVENT
from tests.support import free_port

SECRET = "whsec_" + base64.b64encode(b"ephemera-test-webhook-secret-32b").decode()


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body["type"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.body["data"])


@dataclass
class Receiver:
    """Answers 204 to every correctly signed event; ``hold`` makes it wait before answering
    until ``release`` (at most ``hold_seconds``); ``stop``/``start`` take it off the network."""

    secret: str = SECRET
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    hold_seconds: float = 0.0
    held: int = 0  # requests waiting for their answer now
    refused: int = 0  # correctly signed requests answered with ``status``
    delay: float = 0.0  # every answer waits this long
    status: int = 204  # what a correctly signed event gets (not 2xx: it is not received)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
            EVENT.validate_json(body)  # every payload matches its schema
        except (WebhookVerificationError, ValueError) as exc:
            self.rejected.append(repr(exc))
            return Response(status_code=400)
        if self.hold_seconds:
            self.held += 1
            try:
                await asyncio.to_thread(self._release.wait, self.hold_seconds)
            finally:
                self.held -= 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status >= 300:
            self.refused += 1
            return Response(status_code=self.status)
        self.received.append(Received(request.headers["webhook-id"], json.loads(body)))
        return Response(status_code=self.status)

    def release(self) -> None:
        self.hold_seconds = 0.0
        self._release.set()

    def start(self) -> Receiver:
        app = Starlette(routes=[Route("/hooks", self.handle, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]

    def of_type(self, type: str) -> list[Received]:
        return [r for r in self.received if r.type == type]

    def first_arrivals(self) -> list[Received]:
        """Each webhook-id's first arrival, in arrival order (what a de-duplicating
        receiver keeps)."""
        seen: set[str] = set()
        out = []
        for r in self.received:
            if r.webhook_id not in seen:
                seen.add(r.webhook_id)
                out.append(r)
        return out

"""A client that goes away in the middle of its request body is the client's doing: every
operation with a body answers 400 (nobody reads it), logs no error and counts no 5xx."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message

from server.api import read_capped
from server.errors import BadRequest
from server.http_errors import status_of
from stories.upload import read_upload
from tests.support import LiveServer, token

# Both ways a body can stop short: fewer bytes than Content-Length, and a chunked body whose
# final chunk never comes. Either way the client then closes the connection.
SHORT = "content-length"
UNENDED = "chunked"
# The start of a body that is neither complete JSON nor complete multipart.
PART = b'--XyZ\r\nContent-Disposition: form-data; name="caption"\r\n\r\nhal{"te'


def operations_with_a_body(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path as routed, content type) of every operation that takes a body."""
    ops = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if "requestBody" in op:
                [content_type] = op["requestBody"]["content"]
                ops.append((method.upper(), path, content_type))
    return sorted(ops)


def request_head(method: str, path: str, content_type: str, how: str) -> bytes:
    url = re.sub(r"{[a-z_]+}", "abcdefghijklmnop", path)
    if content_type.startswith("multipart/"):
        content_type = "multipart/form-data; boundary=XyZ"
    length = "Transfer-Encoding: chunked" if how == UNENDED else "Content-Length: 400"
    return (
        f"{method} {url} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token('gone')}\r\n"
        f"Content-Type: {content_type}\r\n{length}\r\n\r\n"
    ).encode()


async def send_part_and_leave(port: int, head: bytes, how: str) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + (b"%x\r\n%s\r\n" % (len(PART), PART) if how == UNENDED else PART))
    await writer.drain()
    await asyncio.sleep(0.05)  # let the server start reading the body
    writer.close()
    await writer.wait_closed()


def counts(metrics: str, method: str, route: str) -> dict[str, float]:
    """Requests counted for one route, by status."""
    labels = f'method="{re.escape(method)}",route="{re.escape(route)}"'
    pattern = re.compile(
        r"^ephemera_http_requests_total\{" + labels + r',status="(\d+)"\} (\S+)$', re.M
    )
    return {status: float(n) for status, n in pattern.findall(metrics)}


async def wait_until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the server never finished the request")


@pytest.mark.parametrize("how", [SHORT, UNENDED])
async def test_every_body_read_survives_a_client_leaving(
    server: LiveServer, anon: httpx.AsyncClient, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    spec = (await anon.get("/openapi.json")).json()
    ops = operations_with_a_body(spec)
    assert ("POST", "/v1/stories/media", "multipart/form-data") in ops
    assert ("POST", "/v1/stories", "application/json") in ops
    for method, path, content_type in ops:
        before = counts((await anon.get("/metrics")).text, method, path)
        await send_part_and_leave(server.port, request_head(method, path, content_type, how), how)

        async def counted(method: str = method, path: str = path, before: Any = before) -> bool:
            now = counts((await anon.get("/metrics")).text, method, path)
            return sum(now.values()) > sum(before.values())

        await wait_until(counted)
        after = counts((await anon.get("/metrics")).text, method, path)
        grew = {s for s, n in after.items() if n > before.get(s, 0)}
        assert grew == {"400"}, (method, path, after, before)
    logs = capsys.readouterr()
    assert "http.unhandled" not in logs.err + logs.out
    assert "Exception in ASGI application" not in logs.err + logs.out


def disconnecting_request(content_type: str) -> Request:
    """A request whose client sends part of the body and leaves, as uvicorn reports it."""
    messages: list[Message] = [
        {"type": "http.request", "body": PART, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    headers = [(b"content-type", content_type.encode())]
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


@pytest.mark.parametrize(
    ("read", "content_type", "code"),
    [
        (lambda r: read_capped(r, 1000), "application/json", "body_interrupted"),
        (lambda r: read_upload(r, 1000), "multipart/form-data; boundary=XyZ", "upload_interrupted"),
    ],
)
async def test_the_interrupted_body_gets_a_stable_code(
    read: Callable[[Request], Awaitable[Any]], content_type: str, code: str
) -> None:
    """What the test above cannot read (the client is gone): the answer's code."""
    with pytest.raises(BadRequest) as err:
        await read(disconnecting_request(content_type))
    assert status_of(err.value) == 400 and err.value.code == code

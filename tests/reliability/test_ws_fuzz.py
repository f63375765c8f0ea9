"""Hypothesis fuzzing of the room WebSocket: no message sequence crashes a room.

Each example connects a fresh participant, sends a few generated frames (valid types with
wrong or random fields, any Unicode including lone surrogates, garbage text, binary, deep
JSON, fake SDP), then checks that the socket was either still answering or closed with a
policy code (never 1011, internal error), that once it closed the participant was released
(their grace period started, the connections gauge came back down), and that the host's
connection in the same room still works.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from server.settings import Settings
from server.valkey import EmbeddedValkey
from tests.support import SECRET, LiveServer, token

TYPES = [
    "hand.raise",
    "hand.lower",
    "hand.accept",
    "hand.dismiss",
    "invite.send",
    "invite.accept",
    "invite.decline",
    "role.cohost",
    "role.demote",
    "role.step_down",
    "mute",
    "unmute",
    "remove",
    "react",
    "room.end",
    "ping",
    "rtc.offer",
    "rtc.answer",
    "rtc.ice",
    "welcome",
]
# Any Unicode, lone UTF-16 surrogates included: they reach the server as JSON escapes
# ("\\ud800"), since a socket only carries UTF-8.
any_char = st.one_of(st.characters(), st.characters(categories=["Cs"]))
any_text = st.text(any_char, max_size=40)
any_key = st.text(any_char, max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_key, inner, max_size=4),
    max_leaves=20,
)
typed = st.builds(
    lambda t, extra: json.dumps({"type": t, **extra}),
    st.sampled_from(TYPES),
    st.dictionaries(
        st.sampled_from(["user_id", "emoji", "sdp", "candidate", "ref", "x"]) | any_text,
        json_values,
        max_size=3,
    ),
)
fake_sdp = st.builds(
    lambda kind, body: json.dumps({"type": kind, "sdp": "v=0\r\n" + body}),
    st.sampled_from(["rtc.offer", "rtc.answer"]),
    st.text(any_char, max_size=300),
)
frames = st.one_of(
    typed,
    fake_sdp,
    st.text(max_size=200),
    st.binary(max_size=200),
    st.just("[" * 5000 + "]" * 5000),
    st.just(json.dumps({"type": "ping", "ref": "r" * 10_000})),
    st.just('{"type": "ping", "ref": "\\ud800"}'),
)


@pytest.fixture(scope="module")
def room(
    valkey: EmbeddedValkey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str, ClientConnection]]:
    server = LiveServer(
        Settings(
            redis_url=valkey.url,
            secret_key=SECRET,
            data_dir=tmp_path_factory.mktemp("fuzz") / "data",
            key_prefix="fuzz:",
            rate_ws_message="100000/second",
            rate_room_join="100000/minute",
            log_level="ERROR",
        )
    ).start()
    r = httpx.post(
        f"{server.url}/v1/rooms",
        json={"title": "fuzz"},
        headers={"Authorization": f"Bearer {token('host')}"},
    )
    room_id = r.json()["id"]
    with connect(f"{server.ws_url}/v1/rooms/{room_id}/ws?token={token('host')}") as host:
        assert json.loads(host.recv(timeout=10))["type"] == "welcome"
        yield server, room_id, host
    server.stop()


def _released(host: ClientConnection, user: str) -> bool:
    """The host is told that ``user``'s socket is gone (their grace period started)."""
    while True:
        msg: dict[str, Any] = json.loads(host.recv(timeout=10))
        p = msg.get("participant") or {}
        if msg["type"] == "participant.updated" and p["user_id"] == user and not p["connected"]:
            return True


def _connections(server: LiveServer) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(r"^ephemera_room_connections (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


def _answers_ping(ws: ClientConnection) -> bool:
    ws.send(json.dumps({"type": "ping", "ref": "probe"}))
    while True:
        msg: dict[str, Any] = json.loads(ws.recv(timeout=10))
        if msg["type"] == "pong":
            return True


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames, min_size=1, max_size=6))
def test_fuzzed_frames_never_break_a_room(
    room: tuple[LiveServer, str, ClientConnection], batch: list[str | bytes], tmp_path: Path
) -> None:
    server, room_id, host = room
    with connect(f"{server.ws_url}/v1/rooms/{room_id}/ws?token={token('fuzzer')}") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        try:
            for frame in batch:
                ws.send(frame)
            assert _answers_ping(ws)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 1006
            assert code in {1003, 1007, 1008, 1009, 4400, 4429}, code
    # However it ended, the socket was released: grace period started, gauge back down.
    assert _released(host, "fuzzer")
    assert _connections(server) == 1  # the host
    assert _answers_ping(host)

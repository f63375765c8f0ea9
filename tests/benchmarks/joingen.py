"""Room join/event load from its own process: ``python -m tests.benchmarks.joingen SPEC_JSON``.

SPEC: {"ws_url", "room_id", "concurrency", "seconds", "prefix"}. Each worker, in a closed loop,
joins the room as its own user (timing connect -> ``welcome``), raises or lowers its hand
(timing send -> its own ``participant.updated`` echo), and leaves. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from tests.benchmarks.loadgen import percentile
from tests.support import token


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    joins: list[float] = []
    events: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + spec["seconds"]

    async def worker(n: int) -> None:
        user = f"{spec['prefix']}{n}"
        url = f"{spec['ws_url']}/v1/rooms/{spec['room_id']}/ws?token={token(user)}"
        while time.monotonic() < deadline:
            try:
                start = time.perf_counter()
                ws = await connect(url, open_timeout=30)
                try:
                    welcome = json.loads(await ws.recv())
                    while welcome["type"] != "welcome":
                        welcome = json.loads(await ws.recv())
                    joins.append(time.perf_counter() - start)
                    # A quick rejoin keeps the hand state (reconnect grace): always toggle it,
                    # so the action is a real change that produces an event.
                    me = next(p for p in welcome["participants"] if p["user_id"] == user)
                    action = "hand.lower" if me["hand_raised"] else "hand.raise"
                    want = not me["hand_raised"]
                    sent = time.perf_counter()
                    await ws.send(json.dumps({"type": action}))
                    while True:
                        msg = json.loads(await ws.recv())
                        if msg["type"] == "error":
                            raise RuntimeError(msg.get("code"))
                        p = msg.get("participant", {})
                        if (
                            msg["type"] == "participant.updated"
                            and p.get("user_id") == user
                            and p.get("hand_raised") == want
                        ):
                            break
                    events.append(time.perf_counter() - sent)
                finally:
                    await ws.close()
            except (OSError, WebSocketException, RuntimeError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0.1)

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(spec["concurrency"])))
    elapsed = time.monotonic() - started
    return {
        "concurrency": spec["concurrency"],
        "joins": len(joins),
        "joins_per_s": len(joins) / elapsed,
        "join_p50_ms": percentile(joins, 0.5) * 1000,
        "join_p99_ms": percentile(joins, 0.99) * 1000,
        "event_p50_ms": percentile(events, 0.5) * 1000,
        "event_p99_ms": percentile(events, 0.99) * 1000,
        "errors": errors,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))

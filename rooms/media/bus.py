"""Messages between media nodes, over Redis pub/sub.

Each process listens on one connection to:

* its **inbox** (``media:node:<node>``): signaling routed to it (``signal`` requests, with
  a ``result`` answer), messages for its participants' sockets (``deliver``), and peer
  connections to drop (``drop``);
* the **room channel** (``media:room:<room>``) of every room whose media it serves (as
  origin or edge): publishing changes, the end of the room, a new origin, edges and sources
  that changed, a node gone.

A ``call`` is a request with an id, answered by a ``result`` on the caller's inbox (or a
timeout: the node is gone or overloaded). A node's inbox has a subscriber exactly while
its process runs, so ``subscribers`` tells at once that a process died (its connection to
Redis closed with it), seconds before its registry lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio import Redis

from server.background import check_cancelled, stop
from server.store import REDIS_DOWN, Keys

log = structlog.get_logger(__name__)

# (room id or None for the inbox, message): called on the bus's task, must not block.
Handler = Callable[[str | None, dict[str, Any]], None]


class Bus:
    def __init__(self, redis: Redis, keys: Keys, node_id: str) -> None:
        self.redis = redis
        self.node_id = node_id
        self._inbox_prefix = keys("media", "node", "")
        self._room_prefix = keys("media", "room", "")
        self.inbox = self.inbox_of(node_id)
        self.handler: Handler = lambda room, message: None
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._calls: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    def inbox_of(self, node_id: str) -> str:
        return self._inbox_prefix + node_id

    def room_channel(self, room_id: str) -> str:
        return self._room_prefix + room_id

    async def start(self) -> None:
        await self._pubsub.subscribe(self.inbox)
        self._task = asyncio.create_task(self._run(), name="media-bus")

    async def stop(self) -> None:
        await stop(self._task)
        for future in self._calls.values():
            future.cancel()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    # ---- sending ----

    async def send(self, node_id: str, message: dict[str, Any]) -> None:
        await self.redis.publish(self.inbox_of(node_id), json.dumps(message))

    async def announce(self, room_id: str, message: dict[str, Any]) -> None:
        await self.redis.publish(self.room_channel(room_id), json.dumps(message))

    async def call(self, node_id: str, message: dict[str, Any], within: float) -> dict[str, Any]:
        """Send a request to ``node_id``'s inbox and wait for its ``result`` (a
        ``TimeoutError`` after ``within`` seconds)."""
        call_id = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        try:
            await self.send(node_id, {**message, "id": call_id, "reply_to": self.node_id})
            return await asyncio.wait_for(future, within)
        finally:
            self._calls.pop(call_id, None)

    async def reply(self, request: dict[str, Any], result: dict[str, Any]) -> None:
        await self.send(request["reply_to"], {**result, "op": "result", "id": request["id"]})

    # ---- rooms and liveness ----

    async def join(self, room_id: str) -> None:
        await self._pubsub.subscribe(self.room_channel(room_id))

    async def leave(self, room_id: str) -> None:
        with contextlib.suppress(*REDIS_DOWN):
            await self._pubsub.unsubscribe(self.room_channel(room_id))

    async def listening(self, node_ids: list[str]) -> dict[str, bool]:
        """Whether each node's process is connected to its inbox right now."""
        if not node_ids:
            return {}
        counts = await self.redis.pubsub_numsub(*(self.inbox_of(n) for n in node_ids))
        return {n: int(count) > 0 for n, (_, count) in zip(node_ids, counts, strict=True)}

    # ---- receiving ----

    async def _run(self) -> None:
        while True:
            check_cancelled()
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: redis-py resubscribes on reconnection
                log.warning("media.bus.read_failed", error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._dispatch(str(message["channel"]), str(message["data"]))

    def _dispatch(self, channel: str, data: str) -> None:
        try:
            message = json.loads(data)
            if channel == self.inbox:
                if message.get("op") == "result":
                    future = self._calls.get(message.get("id", ""))
                    if future is not None and not future.done():
                        future.set_result(message)
                    return
                self.handler(None, message)
            elif channel.startswith(self._room_prefix):
                self.handler(channel.removeprefix(self._room_prefix), message)
        except Exception:  # one bad message must not stop the bus
            log.exception("media.bus.message_failed", channel=channel)

"""An event a receiver refuses for the whole retry window goes to the dead-letter list; the
room's later events then go on."""

from __future__ import annotations

import json
from collections.abc import Callable

from redis.asyncio import Redis

from server.store import Keys
from server.webhooks.outbox import Endpoint
from tests.rooms.helpers import create_room
from tests.support import LiveServer, wait_for
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import soon


async def test_refused_for_the_whole_window_then_dead_lettered(
    hooked: Callable[..., LiveServer], receiver: Receiver
) -> None:
    receiver.status = 500
    server = hooked(webhook_retry_window_seconds=1.5)
    s = server.settings
    endpoint = Endpoint.of(Keys(s.key_prefix), receiver.url)
    redis = Redis.from_url(str(s.redis_url), decode_responses=True)
    try:
        async with server.client("alice") as alice:
            rid = (await create_room(alice, scheduled_for=soon()))["id"]
            await wait_for(lambda: receiver.refused >= 3, within=10)  # retried meanwhile

            async def dead() -> list[str]:
                return [str(x) for x in await redis.lrange(endpoint.dead, 0, -1)]

            await wait_for(dead, within=10)
            [letter] = [json.loads(x) for x in await dead()]
            assert json.loads(letter["body"])["type"] == "room.scheduled"
            assert letter["error"] == "HTTP 500" and letter["attempts"] >= 3
            receiver.status = 204
            assert (await alice.post(f"/v1/rooms/{rid}/cancel")).status_code == 200
            await wait_for(lambda: receiver.of_type("room.ended") != [], within=10)
            assert receiver.of_type("room.scheduled") == []

            async def all_gone() -> bool:  # delivered and dead: both acknowledged and deleted
                return await redis.xlen(endpoint.stream) == 0 == await redis.hlen(endpoint.tries)

            await wait_for(all_gone, within=10)
        async with server.client() as anon:
            metrics = (await anon.get("/metrics")).text
        assert f'ephemera_webhooks_failed_total{{endpoint="{endpoint.id}"}} 1.0' in metrics
    finally:
        await redis.aclose()

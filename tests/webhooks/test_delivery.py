"""Every event type reaches a real receiver, signed (verified with ``standardwebhooks``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from server.store import Keys
from server.webhooks.events import EVENT_TYPES, recording_ready, type_name
from server.webhooks.outbox import Outbox
from tests.rooms.helpers import create_room, join
from tests.support import LiveServer, wait_for
from tests.webhooks.receiver import Receiver


def soon() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


async def room_life(server: LiveServer) -> str:
    """A scheduled room with a reminder, started, joined, a speaker invited then removed,
    ended: every room and participant event once at least."""
    async with server.client("alice") as alice, server.client("bob") as bob:
        room = await create_room(alice, scheduled_for=soon())
        rid = room["id"]
        assert (await bob.put(f"/v1/rooms/{rid}/reminder")).status_code == 200
        assert (await alice.post(f"/v1/rooms/{rid}/start")).status_code == 200
        host = await join(server.ws_url, rid, "alice")
        guest = await join(server.ws_url, rid, "bob")
        await host.send("invite.send", user_id="bob")
        await guest.next("invite.received")
        await guest.send("invite.accept")
        await host.updated("bob", role="speaker")
        await host.send("remove", user_id="bob")
        await guest.wait_closed()
        assert (await alice.post(f"/v1/rooms/{rid}/end")).status_code == 200
        await host.close()
    return str(rid)


async def story_life(server: LiveServer) -> str:
    async with server.client("alice") as alice, server.client("bob") as bob:
        r = await alice.post("/v1/stories", json={"text": "hello", "audience": "public"})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        r = await bob.post(f"/v1/stories/{sid}/replies", json={"text": "hi!"})
        assert r.status_code in (200, 201), r.text
        r = await bob.post(f"/v1/stories/{sid}/reactions", json={"emoji": "🔥"})
        assert r.status_code in (200, 201), r.text
    return str(sid)


async def test_every_event_type_arrives_signed(
    hooked: Callable[..., LiveServer], receiver: Receiver
) -> None:
    server = hooked(story_ttl_seconds=2, sweep_interval_seconds=0.2)
    rid = await room_life(server)
    sid = await story_life(server)
    s = server.settings
    redis = Redis.from_url(str(s.redis_url), decode_responses=True)
    try:
        async with redis.pipeline(transaction=True) as p:
            outbox = Outbox(Keys(s.key_prefix), s.webhook_urls)
            event = recording_ready(
                rid, "rec1", "https://x/rec1.ogg", "audio/ogg", 12.5, 1000, time.time()
            )
            outbox.append(p, event)
            await p.execute()
    finally:
        await redis.aclose()
    everything = {type_name(m) for m in EVENT_TYPES}
    await wait_for(lambda: {r.type for r in receiver.received} >= everything, within=30)
    assert receiver.rejected == []
    ids = receiver.ids()
    assert len(ids) == len(set(ids))  # nothing failed, so nothing was sent twice
    room = [r for r in receiver.received if r.data.get("room_id") == rid]
    assert [r.type for r in room] == [
        "room.scheduled",
        "room.started",
        "participant.joined",  # the host, with the room going live
        "room.reminder",
        "participant.joined",
        "participant.role_changed",
        "participant.left",
        "room.ended",
        "room.recording_ready",
    ]
    [reminder] = receiver.of_type("room.reminder")
    assert reminder.data["user_ids"] == ["bob"]
    [changed] = receiver.of_type("participant.role_changed")
    assert (changed.data["previous_role"], changed.data["role"]) == ("listener", "speaker")
    [left] = receiver.of_type("participant.left")
    assert (left.data["user_id"], left.data["reason"]) == ("bob", "removed")
    story = [r.type for r in receiver.received if r.data.get("story_id") == sid]
    assert story == ["story.published", "story.reply", "story.reaction", "story.expired"]
    assert receiver.of_type("story.reaction")[0].data["emoji"] == "🔥"

"""The live tray (Server-Sent Events) against real servers: events across processes, what
they may carry, authentication, heartbeats, expiry and the per-user cap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

from stories.live import MAX_STREAMS_PER_USER
from tests.stories.conftest import Clients, follow, publish
from tests.support import LiveServer, token

EVENTS = "/v1/stories/tray/events"


@dataclass
class Stream:
    """An open live tray: its frames are read as they come."""

    lines: AsyncIterator[str]
    comments: list[str] = field(default_factory=list)

    async def next(self, within: float = 10.0) -> tuple[str, Any]:
        """The next event (name, data), skipping comments and the retry line."""
        name, data = "", ""
        async with asyncio.timeout(within):
            async for line in self.lines:
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = line[len("data: ") :]
                elif line == "" and name:
                    return name, json.loads(data)
        raise AssertionError("the stream ended")

    async def until(self, name: str, within: float = 10.0) -> Any:
        while True:
            got, data = await self.next(within)
            if got == name:
                return data

    async def tray(self, within: float = 10.0) -> list[str]:
        """The authors of the next tray event."""
        return [e["author"] for e in (await self.until("tray", within))["entries"]]

    async def settles(self, authors: list[str], within: float = 10.0) -> None:
        """Tray events come until one shows ``authors`` (a change told twice sends the
        same tray twice)."""
        async with asyncio.timeout(within):
            while await self.tray() != authors:
                pass


@asynccontextmanager
async def live(srv: LiveServer, user: str, ttl: int = 3600) -> AsyncIterator[Stream]:
    async with (
        httpx.AsyncClient(base_url=srv.url, timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", EVENTS, params={"token": token(user, ttl=ttl)}) as r,
    ):
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        yield Stream(r.aiter_lines())


async def test_a_new_story_is_pushed_across_processes(
    make_server: Callable[..., LiveServer], clients: Clients, server: LiveServer
) -> None:
    other = make_server()  # same Redis and key prefix: another process of the deployment
    await follow(clients, "bob", "ann")
    async with live(server, "bob") as bob:
        assert await bob.tray() == []
        story = await publish(clients, "ann", "hello", srv=other)
        assert await bob.next() == ("story.published", {"author": "ann", "story_id": story["id"]})
        assert await bob.tray() == ["ann"]
        own = await publish(clients, "bob", "me too", srv=other)  # own stories come too
        assert await bob.tray() == ["bob", "ann"]
        assert (await clients("bob", other).put("/v1/me/story-mutes/ann")).status_code == 204
        assert await bob.tray() == ["bob"]
        assert (await clients("bob").delete(f"/v1/stories/{own['id']}")).status_code == 204
        assert await bob.tray() == []


async def test_only_stories_the_viewer_may_see_are_announced(
    clients: Clients, server: LiveServer
) -> None:
    await follow(clients, "bob", "ann")
    await follow(clients, "cat", "ann")
    assert (await clients("ann").put("/v1/me/close-friends/cat")).status_code == 204
    assert (await clients("bob").put("/v1/me/story-mutes/ann")).status_code == 204
    async with live(server, "bob") as bob, live(server, "cat") as cat:
        assert await bob.tray() == [] and await cat.tray() == []
        close = await publish(clients, "ann", "friends only", audience="close_friends")
        published = {"author": "ann", "story_id": close["id"]}
        assert await cat.until("story.published") == published
        # bob follows ann but is no close friend (and muted her): nothing is announced.
        public = await publish(clients, "ann", "everyone", audience="public")
        published = {"author": "ann", "story_id": public["id"]}
        assert await cat.until("story.published") == published
        assert (await clients("bob").delete("/v1/me/story-mutes/ann")).status_code == 204
        seen: list[tuple[str, Any]] = []
        while not seen or seen[-1] != ("tray", {"entries": [await tray_entry(clients, "bob")]}):
            seen.append(await bob.next())
        assert {name for name, _ in seen} == {"tray"}  # never a story.published for bob


async def tray_entry(clients: Clients, user: str) -> dict[str, Any]:
    [entry] = (await clients(user).get("/v1/stories/tray")).json()["entries"]
    assert entry["story_count"] == 1  # the public story only: bob is no close friend
    return dict(entry)


async def test_the_stream_needs_a_valid_token(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        cases = [
            ({}, {}, "missing_token"),
            ({"token": "nonsense"}, {}, "invalid_token"),
            ({"token": token("bob", room="r1")}, {}, "scoped_token"),
            ({}, {"Authorization": "Bearer nonsense"}, "invalid_token"),
        ]
        for params, headers, code in cases:
            r = await c.get(EVENTS, params=params, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == code, (params, r.text)
        # A bearer header works too (clients other than browsers).
        headers = {"Authorization": f"Bearer {token('bob')}"}
        async with c.stream("GET", EVENTS, headers=headers) as r:
            assert r.status_code == 200
            assert await Stream(r.aiter_lines()).next() == ("tray", {"entries": []})


async def test_heartbeats_and_the_end_of_the_token(
    make_server: Callable[..., LiveServer],
) -> None:
    srv = make_server(stories_live_heartbeat_seconds=0.2, token_leeway_seconds=0)
    async with live(srv, "bob", ttl=2) as bob:
        assert await bob.next() == ("tray", {"entries": []})
        assert await bob.next(within=10) == ("expired", {})
        assert ": ping" in bob.comments
        try:
            await bob.next(within=5)
        except AssertionError as ended:
            assert "ended" in str(ended)
        else:
            raise AssertionError("the stream went on after its token expired")


async def test_live_trays_per_user_are_capped(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(10, read=30)) as c:
        params = {"token": token("bob")}
        streams = [c.stream("GET", EVENTS, params=params) for _ in range(MAX_STREAMS_PER_USER)]
        opened = [await s.__aenter__() for s in streams]
        try:
            assert all(r.status_code == 200 for r in opened)
            r = await c.get(EVENTS, params=params)
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
            async with c.stream("GET", EVENTS, params={"token": token("cat")}) as other:
                assert other.status_code == 200  # the cap is per user
        finally:
            for s in streams:
                await s.__aexit__(None, None, None)


async def test_pulled_authors_are_announced_once_to_every_live_follower(
    clients: Clients, server: LiveServer, redis: Redis
) -> None:
    mode = server.settings.key_prefix + "st:mode:{star}"
    await redis.set(mode, "pull")  # too many followers to fan out to
    for fan in ("bob", "cat"):
        await follow(clients, fan, "star")
    async with live(server, "bob") as bob, live(server, "cat") as cat:
        assert await bob.tray() == [] and await cat.tray() == []
        story = await publish(clients, "star", "hello fans")
        published = {"author": "star", "story_id": story["id"]}
        assert await bob.until("story.published") == published
        assert await cat.until("story.published") == published
        assert await bob.tray() == ["star"]
        assert (await clients("star").delete(f"/v1/stories/{story['id']}")).status_code == 204
        assert await cat.tray() == ["star"]  # the tray that came with the story
        assert await cat.tray() == []


async def test_a_reconnect_starts_with_the_whole_tray(clients: Clients, server: LiveServer) -> None:
    """Nothing is replayed after a drop, and nothing needs to be: the first event of every
    stream is the tray as it is now, stories published meanwhile included."""
    await follow(clients, "bob", "ann")
    async with live(server, "bob") as bob:
        assert await bob.tray() == []
    story = await publish(clients, "ann", "while you were away")
    async with live(server, "bob") as bob:
        first = await bob.next()
        assert first[0] == "tray" and first[1]["entries"][0]["start_story_id"] == story["id"]


async def test_follows_unfollows_and_blocks_after_publishing_change_the_live_tray(
    clients: Clients, server: LiveServer
) -> None:
    await publish(clients, "ann", "before bob followed")
    async with live(server, "bob") as bob:
        await bob.settles([])
        await follow(clients, "bob", "ann")  # backfilled: ann's live story comes in
        await bob.settles(["ann"])
        assert (await clients("bob").delete("/v1/users/ann/follow")).status_code == 204
        await bob.settles([])
        await follow(clients, "bob", "ann")
        await bob.settles(["ann"])
        assert (await clients("ann").put("/v1/me/blocks/bob")).status_code == 204
        await bob.settles([])
        assert (await clients("ann").delete("/v1/me/blocks/bob")).status_code == 204
        await follow(clients, "bob", "ann")  # a block ended the follow: follow again
        await bob.settles(["ann"])


async def test_a_story_leaves_the_live_tray_when_it_expires(
    make_server: Callable[..., LiveServer], clients: Clients
) -> None:
    srv = make_server(story_ttl_seconds=2)  # expiry publishes nothing: the stream keeps time
    await follow(clients, "bob", "ann", srv)
    async with live(srv, "bob") as bob:
        await bob.settles([])
        await publish(clients, "ann", "brief", srv=srv)
        await bob.settles(["ann"])
        await bob.settles([], within=8)  # long before the 15 s heartbeat

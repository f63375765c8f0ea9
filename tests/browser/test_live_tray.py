"""The web client's live tray: a story published elsewhere appears in an open tray without a
reload, and a deleted one leaves it (Server-Sent Events)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import expect
from redis.asyncio import Redis

from tests.browser.conftest import Browsers
from tests.browser.helpers import PHONE, poll, screenshot
from tests.support import LiveServer


async def test_the_tray_updates_itself(browsers: Browsers, server: LiveServer) -> None:
    async with server.client("bob") as bob_api:
        assert (await bob_api.put("/v1/users/alice/follow")).status_code == 204
    bob = await browsers.page("bob", PHONE, "/")
    await expect(bob.locator(".tray-empty")).to_be_visible()
    requests: list[str] = []
    bob.on("request", lambda r: requests.append(r.url))

    async with server.client("alice") as alice_api:
        r = await alice_api.post("/v1/stories", json={"text": "live!"})
        assert r.status_code == 201
        ring = bob.locator(".tray-link[data-author='alice']")
        await expect(ring).to_have_accessible_name("alice: 1 new of 1 story")
        await screenshot(bob, "tray-live")
        # Pushed, not polled: no read of the tray (the stream itself may reconnect).
        assert not [url for url in requests if urlsplit(url).path == "/v1/stories/tray"]
        assert (await alice_api.delete(f"/v1/stories/{r.json()['id']}")).status_code == 204
        await expect(ring).to_have_count(0)
        await expect(bob.locator(".tray-empty")).to_be_visible()

    # Leaving the page closes the stream: the server stops listening for bob.
    assert await subscribers(server, "bob") == 1
    await bob.get_by_role("link", name="Add a story").click()
    await expect(bob.locator(".tray")).to_have_count(0)

    async def closed() -> bool:
        return await subscribers(server, "bob") == 0

    await poll(closed, "the live tray closes")


async def subscribers(server: LiveServer, user: str) -> int:
    """Server processes subscribed to the user's live tray channel."""
    assert server.settings.redis_url is not None
    channel = f"{server.settings.key_prefix}st:events:{{{user}}}"
    async with Redis.from_url(server.settings.redis_url, decode_responses=True) as redis:
        reply = await redis.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply[1])

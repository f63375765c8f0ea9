"""Share links in Chromium: path routes, old hash links, a signed-out guest who opens a room's
link, signs in and hears the host, and a public story's link opening the viewer."""

from __future__ import annotations

from functools import partial

from playwright.async_api import Page, expect

from tests.browser.conftest import Browsers
from tests.browser.helpers import DESKTOP, PHONE, poll
from tests.browser.test_rooms import audio_connected, create_room, inbound
from tests.share.unfurler import unfurl
from tests.support import LiveServer, token

PLAYING = "[...document.querySelectorAll('.audio-box audio')].some(a => !a.paused)"


async def _grew(page: Page, than: int) -> int:
    now = await inbound(page)
    return now if now > than else 0


async def test_guest_opens_a_share_link_signs_in_and_hears_the_host(
    browsers: Browsers, server: LiveServer
) -> None:
    alice = await browsers.page("alice", DESKTOP, "/")
    room_id = await create_room(alice, "Listen by link")
    await poll(partial(audio_connected, alice), "the host's audio connects")
    await alice.get_by_role("button", name="Share room link").click()
    link = await alice.get_by_role("textbox", name="Room link").input_value()
    assert link == f"{server.url}/rooms/{room_id}"

    # What a chat app shows for the link, fetched without JavaScript.
    async with server.client() as anon:
        card = await unfurl(anon, link)
    assert card.meta["og:title"] == "Listen by link"
    assert card.meta["og:description"] == "Live now · hosted by @alice"

    # dave is signed out: the public preview, the sign-in form, then the room itself.
    dave = await browsers.page(None, PHONE, link)
    await expect(dave.locator(".room-preview")).to_contain_text("Listen by link")
    await expect(dave.locator(".room-preview")).to_contain_text("hosted by alice")
    await dave.get_by_label("Bearer token").fill(token("dave"))
    await dave.get_by_role("button", name="Sign in").click()
    await expect(dave.get_by_role("heading", name="Listen by link")).to_be_visible()
    assert dave.url == link
    await poll(partial(audio_connected, dave), "dave's audio connects")
    # One tap at most: the sign-in click usually lets audio autoplay; if Chromium still
    # blocked it, "Tap to listen" is the single tap that starts it.
    tap = dave.get_by_role("button", name="Tap to listen")
    if await tap.is_visible():
        await tap.click()
    heard = await poll(lambda: _grew(dave, 2000), "dave receives the host's audio", within=30)
    await poll(lambda: _grew(dave, heard), "the host's audio keeps arriving")
    await poll(lambda: dave.evaluate(PLAYING), "dave's page plays it")
    await expect(alice.locator(".listener-grid [data-user-id='dave']")).to_be_visible()


async def test_path_routes_history_and_old_hash_links(
    browsers: Browsers, server: LiveServer
) -> None:
    async with server.client("alice") as a:
        room = (await a.post("/v1/rooms", json={"title": "Routing room"})).json()
        body = {"text": "A public hello", "audience": "public"}
        story = (await a.post("/v1/stories", json=body)).json()
    room_path = f"{server.url}/rooms/{room['id']}"

    # A link shared before path routes still opens the room, under its path.
    bob = await browsers.page("bob", DESKTOP, f"#/rooms/{room['id']}")
    await expect(bob).to_have_url(room_path)
    await expect(bob.get_by_role("heading", name="Routing room")).to_be_visible()

    # In-app links change the path without reloading the page; Back and Forward work.
    await bob.evaluate("window.sameDocument = true")
    await bob.get_by_role("link", name="Back to rooms").click()
    await expect(bob).to_have_url(f"{server.url}/")
    live = bob.get_by_role("list", name="Live now").locator(f"[data-room-id='{room['id']}']")
    await expect(live).to_be_visible()
    await bob.go_back()
    await expect(bob).to_have_url(room_path)
    await expect(bob.get_by_role("heading", name="Routing room")).to_be_visible()
    await bob.go_forward()
    await expect(bob).to_have_url(f"{server.url}/")
    await bob.get_by_role("link", name="Your profile").click()
    await expect(bob).to_have_url(f"{server.url}/me")
    assert await bob.evaluate("window.sameDocument") is True
    # The skip link is an in-page anchor, not a route: the screen stays.
    await bob.evaluate("document.querySelector('.skip-link').click()")
    await expect(bob).to_have_url(f"{server.url}/me#view")

    # Old hash routes of other screens redirect too; unknown paths go home.
    await bob.goto(f"{server.url}/#/compose")
    await expect(bob).to_have_url(f"{server.url}/compose")
    await bob.goto(f"{server.url}/#/nowhere")
    await expect(bob).to_have_url(f"{server.url}/")

    # A public story's share link opens the viewer at that story.
    await bob.goto(f"{server.url}/stories/alice/{story['id']}")
    await expect(bob.get_by_role("dialog", name="Stories by alice")).to_contain_text(
        "A public hello"
    )

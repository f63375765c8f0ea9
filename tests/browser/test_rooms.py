"""Audio rooms in the browser: create, join by share link, hands, real audio, moderation."""

from __future__ import annotations

import re
from functools import partial

from playwright.async_api import Locator, Page, expect

from tests.browser.conftest import Browsers
from tests.browser.helpers import DESKTOP, PHONE, poll, screenshot
from tests.support import LiveServer, token

INBOUND = "window.ephemeraRoom.audio.inboundAudioBytes()"
# Logs once the "Tap to listen" button shows up, without touching the page from the test.
WATCH_TAP = """
new MutationObserver((_, observer) => {
  if (document.querySelector('.tap-to-listen')) {
    console.log('tap-to-listen shown');
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""


def tile(page: Page, user: str) -> Locator:
    return page.locator(f".tile[data-user-id='{user}']")


async def inbound(page: Page) -> int:
    return int(await page.evaluate(f"window.ephemeraRoom?.audio ? {INBOUND} : 0"))


async def audio_connected(page: Page) -> bool:
    state = await page.evaluate("window.ephemeraRoom?.audio?.pc.connectionState ?? 'none'")
    return state == "connected"


async def create_room(page: Page, title: str) -> str:
    await page.get_by_role("button", name="Start a room").click()
    form = page.get_by_role("dialog", name="Start a room")
    await form.get_by_label("Title").fill(title)
    await form.get_by_label("Description (optional)").fill("A room made by the browser test")
    await form.get_by_role("button", name="Start room now").click()
    await expect(page.locator(".room")).to_be_visible()
    return str(await page.locator(".room").get_attribute("data-room-id"))


async def test_room_share_link_hand_audio_mute_end(browsers: Browsers, server: LiveServer) -> None:
    # ---- alice starts a room and mutes herself, so any audio later is bob's ------------
    alice = await browsers.page("alice", DESKTOP, "/")
    room_id = await create_room(alice, "Browser test room")
    await expect(tile(alice, "alice")).to_have_attribute("data-role", "host")
    await poll(lambda: audio_connected(alice), "the host's audio connects")
    await alice.get_by_role("button", name="Mute microphone").click()
    await expect(tile(alice, "alice")).to_have_attribute("data-muted", "true")
    await expect(tile(alice, "alice").locator(".mute-badge")).to_be_visible()

    await alice.get_by_role("button", name="Share room link").click()
    link = await alice.get_by_role("textbox", name="Room link").input_value()
    assert link == f"{server.url}/rooms/{room_id}"
    await (
        alice.get_by_role("dialog", name="Share this room")
        .get_by_role("button", name="Close")
        .click()
    )

    # ---- bob and carol open the share link -------------------------------------------
    bob = await browsers.page("bob", PHONE, link)
    carol = await browsers.page("carol", PHONE, link)
    for page in (bob, carol):
        await expect(page.get_by_role("heading", name="Browser test room")).to_be_visible()
        await poll(partial(audio_connected, page), "a listener's audio connects")
    await expect(alice.get_by_role("heading", name="Listeners (2)")).to_be_visible()
    await expect(alice.locator(".listener-count")).to_have_text("2 listening")

    # Only a muted host on stage: carol receives no audio at all.
    quiet = await inbound(carol)
    await carol.wait_for_timeout(1000)  # a window in which nothing may arrive
    assert await inbound(carol) == quiet

    # ---- bob raises his hand, alice accepts: bob's microphone opens --------------------
    # Listeners are never asked for the microphone.
    assert await bob.evaluate("window.ephemeraRoom.audio.mic") is None
    await bob.get_by_role("button", name="Raise hand").click()
    await expect(bob.get_by_role("button", name="Lower hand")).to_be_visible()
    hands = alice.get_by_role("region", name="Raised hands (1)")
    await expect(hands).to_contain_text("bob")
    await screenshot(alice, "room-host-hand")
    await hands.get_by_role("button", name="Accept bob's hand").click()
    await expect(tile(carol, "bob")).to_have_attribute("data-role", "speaker")
    await expect(bob.get_by_role("button", name="Mute microphone")).to_be_visible()
    await poll(
        lambda: bob.evaluate("Boolean(window.ephemeraRoom.audio.mic)"),
        "bob's microphone opens once he is a speaker",
    )

    # ---- carol hears bob ---------------------------------------------------------------
    # Playwright's evaluate() counts as a user gesture, so whether Chromium let this page
    # autoplay depends on timing; if it did not, "Tap to listen" starts playback (the
    # blocked path is checked deterministically in the next test).
    tap = carol.get_by_role("button", name="Tap to listen")
    if await tap.is_visible():
        await tap.click()
    heard = await poll(lambda: _grew(carol, quiet + 2000), "carol receives bob's audio", within=30)
    await poll(lambda: _grew(carol, heard), "bob's audio keeps arriving")
    await poll(
        lambda: carol.evaluate(
            "[...document.querySelectorAll('.audio-box audio')].some(a => !a.paused)"
        ),
        "carol's page plays the audio",
    )
    await expect(tap).to_have_count(0)
    await expect(tile(carol, "bob")).to_have_attribute("data-speaking", "true")
    await expect(tile(carol, "bob")).to_have_class(re.compile(r"\bis-speaking\b"))

    # Reactions reach everyone (floating emoji are short-lived: record them as they come).
    await alice.evaluate(
        """() => { window.floated = [];
          new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach(
            (n) => window.floated.push(n.textContent))))
          .observe(document.querySelector('.floats'), {childList: true}); }"""
    )
    await carol.get_by_role("button", name="React 👏").click()
    await poll(lambda: alice.evaluate("window.floated.includes('👏')"), "alice sees 👏")

    assert await carol.evaluate("window.ephemeraRoom.audio.mic") is None
    await screenshot(carol, "room-listener")
    await screenshot(bob, "room-speaker")

    # ---- alice mutes bob ----------------------------------------------------------------
    await tile(alice, "bob").get_by_role("button").click()
    await alice.get_by_role("dialog", name="bob").get_by_role("button", name="Mute").click()
    await expect(tile(carol, "bob")).to_have_attribute("data-muted", "true")
    await expect(bob.get_by_role("button", name="Unmute microphone")).to_be_visible()
    mic_live = await bob.evaluate(
        "window.ephemeraRoom.audio.mic.getAudioTracks().some(t => t.enabled)"
    )
    assert not mic_live

    # ---- alice ends the room -------------------------------------------------------------
    await alice.get_by_role("button", name="End room").click()
    await (
        alice.get_by_role("dialog", name="End this room?")
        .get_by_role("button", name="End room")
        .click()
    )
    for page in (alice, bob, carol):
        await expect(page.get_by_role("status").filter(has_text="ended")).to_be_visible()
    async with server.client("alice") as api:
        assert (await api.get(f"/v1/rooms/{room_id}")).json()["state"] == "ended"


async def _true(value: bool) -> bool:
    return value


async def _grew(page: Page, than: int) -> int:
    now = await inbound(page)
    return now if now > than else 0


async def test_scheduled_room_invites_roles_and_removal(
    browsers: Browsers, server: LiveServer
) -> None:
    # ---- alice schedules an invited-only room; it is listed as scheduled ---------------
    alice = await browsers.page("alice", DESKTOP, "#/")
    await alice.get_by_role("button", name="Start a room").click()
    form = alice.get_by_role("dialog", name="Start a room")
    await form.get_by_label("Title").fill("Scheduled chat")
    await form.get_by_label("Only people I invite").check()
    await form.get_by_label("Schedule for later").check()
    await form.get_by_role("button", name="Schedule room").click()
    await expect(alice.get_by_role("button", name="Start now")).to_be_visible()
    room_id = str(await alice.locator(".room").get_attribute("data-room-id"))
    link = f"{server.url}/rooms/{room_id}"
    await screenshot(alice, "room-scheduled", ("phone",))

    bob = await browsers.page("bob", PHONE, "#/")
    await expect(
        bob.get_by_role("list", name="Scheduled").locator(f"[data-room-id='{room_id}']")
    ).to_contain_text("Scheduled chat")
    await screenshot(bob, "home-rooms")

    # Someone signed out who opens the link sees a preview, signs in, and lands in the room.
    dave = await browsers.page(None, PHONE, link)
    await expect(dave.locator(".room-preview")).to_contain_text("Scheduled chat")
    await expect(dave.locator(".room-preview")).to_contain_text("hosted by alice")
    await dave.get_by_label("Bearer token").fill(token("dave"))
    await dave.get_by_role("button", name="Sign in").click()
    await expect(dave.get_by_text("This page joins the room by itself")).to_be_visible()

    # ---- bob and carol wait on the room page; alice starts it -------------------------
    await bob.goto(link)
    carol = await browsers.page("carol", PHONE, link)
    await alice.get_by_role("button", name="Start now").click()
    for page in (alice, bob, carol, dave):
        await expect(page.locator(".room .badge-live")).to_be_visible()
    await expect(alice.get_by_role("heading", name="Listeners (3)")).to_be_visible()
    # Invited-only: listeners have no hand to raise.
    await expect(bob.get_by_role("button", name="Raise hand")).to_have_count(0)
    # Autoplay: a page that has had no user gesture may not play the host's audio, so it
    # offers "Tap to listen". Every Playwright call on a page counts as a gesture, so erin's
    # page is only watched passively (an init script logs when the button appears) until then.
    logged: list[str] = []
    erin = await browsers.page("erin", PHONE, link, init_script=WATCH_TAP, console=logged)
    await poll(lambda: _true("tap-to-listen shown" in logged), "erin is offered tap to listen")
    playing = "[...document.querySelectorAll('.audio-box audio')].some(a => !a.paused)"
    assert not await erin.evaluate(playing)
    await erin.get_by_role("button", name="Tap to listen").click()
    await expect(erin.get_by_role("button", name="Tap to listen")).to_have_count(0)
    await poll(lambda: erin.evaluate(playing), "the tap starts playback")

    # ---- alice invites carol; carol accepts and goes on stage --------------------------
    await alice.locator(".listener-grid [data-user-id='carol'] button").click()
    await (
        alice.get_by_role("dialog", name="carol")
        .get_by_role("button", name="Invite to speak")
        .click()
    )
    invite = carol.locator(".banner-invite")
    await expect(invite).to_contain_text("alice invited you to speak")
    await screenshot(carol, "room-invited", ("phone",))
    await invite.get_by_role("button", name="Join as speaker").click()
    await expect(tile(alice, "carol")).to_have_attribute("data-role", "speaker")
    await expect(carol.get_by_role("button", name="Mute microphone")).to_be_visible()

    # ---- carol's connection drops; the page reconnects, still a speaker with her mic -----
    await poll(partial(audio_connected, carol), "carol's audio connects")
    await carol.evaluate("window.ephemeraRoom.audio.marker = 'old'")
    await carol.evaluate("window.ephemeraRoom.socket.ws.close(3000, 'test drop')")
    await poll(
        lambda: carol.evaluate(
            "(() => { const a = window.ephemeraRoom.audio;"
            " return Boolean(a && a.marker !== 'old' && a.pc.connectionState === 'connected'"
            " && a.mic); })()"
        ),
        "carol reconnects with a new peer connection and her microphone",
    )
    await expect(tile(alice, "carol")).to_have_attribute("data-role", "speaker")
    await expect(carol.get_by_role("button", name="Mute microphone")).to_be_visible()

    # ---- promote carol to co-host, then back to speaker; she steps down ----------------
    await tile(alice, "carol").get_by_role("button").click()
    await (
        alice.get_by_role("dialog", name="carol").get_by_role("button", name="Make co-host").click()
    )
    await expect(tile(bob, "carol")).to_have_attribute("data-role", "cohost")
    # A co-host moderates listeners too.
    await carol.locator(".listener-grid [data-user-id='bob'] button").click()
    await expect(
        carol.get_by_role("dialog", name="bob").get_by_role("button", name="Invite to speak")
    ).to_be_visible()
    await carol.get_by_role("dialog", name="bob").get_by_role("button", name="Close").click()
    await tile(alice, "carol").get_by_role("button").click()
    await (
        alice.get_by_role("dialog", name="carol").get_by_role("button", name="Make speaker").click()
    )
    await expect(tile(bob, "carol")).to_have_attribute("data-role", "speaker")
    await carol.get_by_role("button", name="Step down").click()
    await expect(tile(alice, "carol")).to_have_count(0)
    await expect(alice.locator(".listener-grid [data-user-id='carol']")).to_be_visible()

    # ---- alice removes bob --------------------------------------------------------------
    await alice.locator(".listener-grid [data-user-id='bob'] button").click()
    await (
        alice.get_by_role("dialog", name="bob")
        .get_by_role("button", name="Remove from room")
        .click()
    )
    await expect(bob.get_by_role("status")).to_contain_text("You were removed from this room.")
    await expect(alice.locator(".listener-grid [data-user-id='bob']")).to_have_count(0)
    await expect(bob.get_by_role("button", name="Try again")).to_have_count(0)
    # The server refuses bob's socket from now on; the page says so instead of retrying.
    await bob.reload()
    await expect(bob.get_by_role("status")).to_contain_text("You cannot join this room")


# Marks an element so that a later check can tell whether it is still the same node.
MARK = "(el) => { el.dataset.probe = 'kept'; }"


async def kept(locator: Locator) -> bool:
    return await locator.evaluate("(el) => el.isConnected && el.dataset.probe === 'kept'")


async def test_redraws_keep_what_people_press(browsers: Browsers, server: LiveServer) -> None:
    """Events about others never replace the element under someone's pointer, and an open
    participant sheet follows the room instead of offering what no longer applies."""
    alice = await browsers.page("alice", DESKTOP, "/")
    room_id = await create_room(alice, "Busy room")
    link = f"{server.url}/rooms/{room_id}"
    bob = await browsers.page("bob", PHONE, link)
    await expect(alice.locator(".listener-grid [data-user-id='bob']")).to_be_visible()
    own_tile = tile(alice, "alice").get_by_role("button")
    mic = alice.get_by_role("button", name="Mute microphone")
    bob_in_grid = alice.locator(".listener-grid [data-user-id='bob'] button")
    for element in (own_tile, mic, bob_in_grid):
        await element.evaluate(MARK)

    # The sheet's Follow button is there the moment the sheet opens (disabled until the
    # relationship is known), so the actions below it never move under the pointer.
    follow_at_once = await alice.evaluate(
        """() => { document.querySelector(".listener-grid [data-user-id='bob'] button").click();
          return Boolean(document.querySelector('dialog .follow-slot button')); }"""
    )
    assert follow_at_once
    sheet = alice.get_by_role("dialog", name="bob")
    await expect(sheet.get_by_role("button", name="Invite to speak")).to_be_visible()
    await expect(sheet.get_by_role("button", name="Accept hand")).to_have_count(0)
    await expect(sheet.get_by_role("button", name="Follow bob")).to_be_enabled()
    invite = sheet.get_by_role("button", name="Invite to speak")
    await invite.evaluate(MARK)

    # Others come and go, and bob raises his hand while alice's sheet is open.
    carol = await browsers.page("carol", PHONE, link)
    await expect(alice.get_by_role("heading", name="Listeners (2)")).to_be_visible()
    await carol.close()
    await bob.get_by_role("button", name="Raise hand").click()
    await expect(sheet.get_by_role("button", name="Accept hand")).to_be_visible()
    await expect(sheet).to_contain_text("hand raised")
    assert await kept(own_tile)
    assert await kept(mic)
    assert await kept(invite)  # the sheet's other actions stayed where they were
    assert not await kept(bob_in_grid)  # bob's own entry changed: it shows his hand now

    await sheet.get_by_role("button", name="Accept hand").click()
    await expect(tile(alice, "bob")).to_have_attribute("data-role", "speaker")

"""The "Remind me" toggle of a scheduled room, in Chromium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.helpers import PHONE, screenshot
from tests.support import LiveServer


async def test_remind_me_toggle(browsers: Browsers, server: LiveServer) -> None:
    when = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    async with server.client("alice") as alice:
        r = await alice.post("/v1/rooms", json={"title": "Later chat", "scheduled_for": when})
        room_id = r.json()["id"]
    link = f"{server.url}/rooms/{room_id}"
    url = f"/v1/rooms/{room_id}"

    bob = await browsers.page("bob", PHONE, link)
    toggle = bob.get_by_role("button", name="Remind me")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(bob.locator(".reminder-count")).to_have_text(
        "Nobody has asked for a reminder yet."
    )
    await toggle.click()
    pressed = bob.get_by_role("button", name="Reminder set")
    await expect(pressed).to_have_attribute("aria-pressed", "true")
    await expect(bob.locator(".reminder-count")).to_have_text("You will be reminded.")
    await screenshot(bob, "room-reminder", ("phone",))
    async with server.client("alice") as alice:
        assert (await alice.get(url)).json()["reminder_count"] == 1
        # The host sees the count on their own page, without a toggle.
        host = await browsers.page("alice", PHONE, link)
        await expect(host.locator(".reminder-count")).to_have_text("1 person wants a reminder.")
        await expect(host.get_by_role("button", name="Remind me")).to_have_count(0)

        await bob.reload()  # the toggle shows the server's state
        await expect(bob.get_by_role("button", name="Reminder set")).to_be_visible()
        await bob.get_by_role("button", name="Reminder set").click()
        await expect(bob.get_by_role("button", name="Remind me")).to_have_attribute(
            "aria-pressed", "false"
        )
        assert (await alice.get(url)).json()["reminder_count"] == 0
        await bob.get_by_role("button", name="Remind me").click()
        await expect(bob.get_by_role("button", name="Reminder set")).to_be_visible()

        # Once the room starts, bob's page joins it by itself; reminders are spent.
        assert (await alice.post(f"{url}/start")).status_code == 200
        await expect(bob.locator(".room .badge-live")).to_be_visible(timeout=15_000)
        assert (await alice.get(url)).json()["reminder_count"] == 0

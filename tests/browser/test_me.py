"""The "you" page: your connections with their buttons, finding someone, your stories."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.helpers import DESKTOP
from tests.support import LiveServer


async def test_connections_relation_buttons_and_your_stories(
    browsers: Browsers, server: LiveServer
) -> None:
    async with server.client("bob") as bob_api:
        assert (await bob_api.put("/v1/users/alice/follow")).status_code == 204
    async with server.client("alice") as alice_api:
        assert (await alice_api.put("/v1/users/carol/follow")).status_code == 204
        assert (await alice_api.post("/v1/stories", json={"text": "hello"})).status_code == 201

    page = await browsers.page("alice", DESKTOP, "/me")
    await expect(page.locator(".profile")).to_contain_text("1 follower · 1 following")

    # Following: each person with Follow and Mute stories; Followers: Follow and Close friend.
    following = page.get_by_role("list", name="Following")
    await expect(following.get_by_role("button", name="Unfollow carol")).to_have_attribute(
        "aria-pressed", "true"
    )
    await following.get_by_role("button", name="Mute carol's stories").click()
    await expect(following.get_by_role("button", name="Unmute carol's stories")).to_have_text(
        "Stories muted"
    )
    followers = page.get_by_role("list", name="Followers")
    await expect(followers.get_by_role("button", name="Follow bob")).to_have_attribute(
        "aria-pressed", "false"
    )
    await followers.get_by_role("button", name="Add bob to close friends").click()
    await expect(
        followers.get_by_role("button", name="Remove bob from close friends")
    ).to_have_text("★ Close friend")
    # Following back redraws the Following list and the counts.
    await followers.get_by_role("button", name="Follow bob").click()
    await expect(following.locator("[data-user-id='bob']")).to_be_visible()
    await expect(page.locator(".profile")).to_contain_text("1 follower · 2 following")

    # Your stories: the kind and age, seen by nobody yet.
    story = page.locator(".my-story")
    await expect(story).to_contain_text("Text · just now")
    await expect(story.get_by_role("button", name="Seen by 0")).to_be_visible()

    # Find: yourself, then carol with every relation button in its state.
    await page.get_by_label("User id").fill("alice")
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator(".find-result")).to_have_text("That is you.")
    await page.get_by_label("User id").fill("carol")
    await page.get_by_role("button", name="Find").click()
    card = page.locator(".person-card[data-user-id='carol']")
    names = ["Unfollow carol", "Add carol to close friends", "Unmute carol's stories"]
    names += ["Hide my stories from carol", "Block carol"]
    await expect(card.get_by_role("button")).to_have_count(len(names))
    for name in names:
        await expect(card.get_by_role("button", name=name)).to_be_visible()
    await card.get_by_role("button", name="Hide my stories from carol").click()
    await expect(card.get_by_role("button", name="Show my stories to carol")).to_be_visible()
    # Blocking unfollows: the Following list and the counts follow.
    await card.get_by_role("button", name="Block carol").click()
    await expect(card.get_by_role("button", name="Unblock carol")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(following.locator("[data-user-id='carol']")).to_have_count(0)
    await expect(page.locator(".profile")).to_contain_text("1 follower · 1 following")

    async with server.client("alice") as alice_api:
        for path, users in [
            ("/v1/me/close-friends", ["bob"]),
            ("/v1/me/story-mutes", ["carol"]),
            ("/v1/me/story-hidden", ["carol"]),
            ("/v1/me/blocks", ["carol"]),
            ("/v1/users/alice/following", ["bob"]),
        ]:
            assert (await alice_api.get(path)).json()["users"] == users, path

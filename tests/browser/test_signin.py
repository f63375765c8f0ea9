"""Sign in with a pasted token, see who you are, follow someone from the web client."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import Browsers
from tests.browser.helpers import DESKTOP, PHONE
from tests.support import LiveServer, token


async def test_sign_in_with_pasted_token_and_follow(browsers: Browsers, server: LiveServer) -> None:
    page = await browsers.page(None, PHONE, "#/me")

    # Signed out: the sign-in form explains how to mint a token.
    form = page.get_by_role("form", name="Sign in")
    await expect(form).to_be_visible()
    await expect(form).to_contain_text("ephemera token")

    # A token the server does not accept is refused with a clear message, not stored.
    await page.get_by_label("Bearer token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("token")
    assert await page.evaluate("localStorage.getItem('ephemera.token')") is None

    # A real token signs in and lands on the page that asked for it.
    await page.get_by_label("Bearer token").fill(token("alice"))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#me-name")).to_have_text("alice")
    await expect(page.get_by_role("link", name="Your profile")).to_contain_text("A")

    # Follow bob through "Find people"; the server records it.
    await page.get_by_label("User id").fill("bob")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name="Follow bob").click()
    found = page.get_by_role("region", name="Find people")
    await expect(found.get_by_role("button", name="Unfollow bob")).to_have_attribute(
        "aria-pressed", "true"
    )
    async with server.client("bob") as bob:
        followers = (await bob.get("/v1/users/bob/followers")).json()
    assert followers["users"] == ["alice"]
    await expect(page.get_by_role("list", name="Following")).to_contain_text("bob")
    await expect(page.locator(".profile")).to_contain_text("1 following")

    # Signing out forgets the token.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("form", name="Sign in")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('ephemera.token')") is None


async def test_api_docs_page_lists_the_endpoints(browsers: Browsers, server: LiveServer) -> None:
    page = await browsers.page(None, DESKTOP, f"{server.url}/docs")
    async with server.client() as anon:
        paths = (await anon.get("/openapi.json")).json()["paths"]
    ops = page.locator(".op")
    await expect(ops).to_have_count(sum(len(methods) for methods in paths.values()))
    await expect(page.locator("#ops")).to_contain_text("/v1/stories/tray")
    await expect(page.get_by_role("link", name="Open the web client")).to_have_attribute(
        "href", "/"
    )

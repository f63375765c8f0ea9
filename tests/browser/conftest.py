"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against a real server.

One browser per session; each test opens isolated contexts (one per user), signed in by
putting a token minted with ``tests.support.token`` into localStorage before the app loads,
which is exactly what the sign-in form does with a pasted token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, DEADLINE_MS, DESKTOP, write_tone
from tests.support import LiveServer, token


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    # Chromium's default fake microphone beeps briefly once a second: too little sound for
    # the relay's speaking detector. A steady tone makes a speaker audibly "speaking".
    tone = tmp_path_factory.mktemp("audio") / "tone.wav"
    write_tone(tone)
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={tone}"]
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield b
        await b.close()


class Browsers:
    """Opens one signed-in page per user and records what the page logged."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []
        # Warnings the pages logged (a message the server refused, a failed offer...),
        # printed at teardown: pytest shows them with a failing test's output.
        self.warnings: list[str] = []

    async def page(
        self,
        user: str | None,
        viewport: dict[str, int] = DESKTOP,
        where: str = "/",
        init_script: str | None = None,
        console: list[str] | None = None,
    ) -> Page:
        """A new browser context signed in as ``user``, opened at ``where`` (a path of the
        app such as ``/compose``, an old hash route such as ``#/me``, or a full URL such as
        a room's share link). ``init_script`` runs in the page before the app; what the
        page logs is appended to ``console``."""
        ctx = await self.browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        self.contexts.append(ctx)
        if user is not None:
            await ctx.add_init_script(f"localStorage.setItem('ephemera.token', {token(user)!r})")
        if init_script is not None:
            await ctx.add_init_script(init_script)
        page = await ctx.new_page()
        page.set_default_timeout(DEADLINE_MS)
        page.on("pageerror", lambda exc: self.errors.append(f"{user}: {exc}"))
        page.on("console", lambda message: self._note(user, message))
        if console is not None:
            page.on("console", lambda message: console.append(message.text))
        url = where if where.startswith("http") else f"{self.base_url}/{where.lstrip('/')}"
        await page.goto(url)
        return page

    def _note(self, user: str | None, message: ConsoleMessage) -> None:
        if message.type in ("warning", "error"):
            self.warnings.append(f"{user}: {message.text}")

    async def close(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


@pytest.fixture
async def browsers(browser: Browser, server: LiveServer) -> AsyncIterator[Browsers]:
    b = Browsers(browser, server.url)
    yield b
    await b.close()
    for line in b.warnings:
        print("page warning:", line)
    # An uncaught exception in the app is a bug even when the flow still finished.
    assert not b.errors, b.errors

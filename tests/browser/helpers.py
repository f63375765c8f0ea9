"""Shared constants and helpers of the browser tests."""

from __future__ import annotations

import asyncio
import math
import os
import struct
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.support import ROOT

CHROMIUM = Path(os.environ.get("EPHEMERA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Every wait in these tests polls for a condition with this deadline (no timing assertions).
DEADLINE_MS = 20_000
expect.set_options(timeout=DEADLINE_MS)


async def screenshot(page: Page, name: str, sizes: tuple[str, ...] = ("phone", "desktop")) -> None:
    """Save the page at phone and desktop sizes under tests/artifacts/ (for a human to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for size in sizes:
        await page.set_viewport_size(PHONE if size == "phone" else DESKTOP)  # type: ignore[arg-type]
        await page.wait_for_timeout(150)  # let layout settle after the resize (not a test wait)
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"))
    if original is not None:
        await page.set_viewport_size(original)


async def poll(predicate: Callable[[], Awaitable[Any]], what: str, within: float = 20.0) -> Any:
    """Await ``predicate()`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not met in {within} s: {what}")
        await asyncio.sleep(0.1)


def write_tone(path: Path, seconds: float = 2.0, hz: float = 440.0, rate: int = 48_000) -> None:
    """A mono 16-bit WAV sine tone (Chromium loops it as the fake microphone)."""
    samples = (
        int(0.5 * 32767 * math.sin(2 * math.pi * hz * i / rate)) for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))

"""Stories in the browser: compose text and photo, the tray, the viewer, seen-by, replies."""

from __future__ import annotations

import io
import re

from PIL import Image, ImageDraw
from playwright.async_api import FilePayload, Page, expect

from tests.browser.conftest import Browsers
from tests.browser.helpers import DESKTOP, PHONE, poll, screenshot
from tests.support import LiveServer

PAUSED = re.compile(r"\bis-paused\b")


def photo_bytes() -> bytes:
    image = Image.new("RGB", (720, 900), (24, 60, 96))
    draw = ImageDraw.Draw(image)
    for i in range(0, 720, 48):
        draw.ellipse((i, i, i + 240, i + 240), outline=(255, 200, 0), width=6)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


async def fill_width(page: Page, index: int) -> float:
    """How far the viewer's progress segment ``index`` is filled, in percent."""
    width = await page.locator(f".seg[data-index='{index}'] .seg-fill").evaluate(
        "el => el.style.width"
    )
    return float(width.rstrip("%") or 0)


async def test_post_view_reply_and_seen_by(browsers: Browsers, server: LiveServer) -> None:
    async with server.client("bob") as bob_api:
        assert (await bob_api.put("/v1/users/alice/follow")).status_code == 204
        config = (await bob_api.get("/v1/stories/config")).json()
    background = config["backgrounds"][2]

    # ---- alice composes a text story and a photo story --------------------------------
    alice = await browsers.page("alice", DESKTOP, "#/compose")
    await alice.get_by_label("Story text").fill("Hello from a real browser!")
    await alice.get_by_label(f"Background {background}").check()
    preview = alice.locator(".text-preview")
    await expect(preview).to_have_css("background-color", hex_to_rgb(background))
    await screenshot(alice, "composer-text")
    await alice.get_by_role("button", name="Share story").click()
    await expect(alice.get_by_role("status").filter(has_text="Story shared")).to_be_visible()
    await expect(alice.get_by_role("link", name="Your story: 1 story, all seen")).to_be_visible()

    await alice.goto(f"{server.url}/#/compose")
    await alice.get_by_role("radio", name="Photo").check()
    photo: FilePayload = {"name": "rings.jpg", "mimeType": "image/jpeg", "buffer": photo_bytes()}
    await alice.locator("#story-file").set_input_files(files=[photo])
    await expect(alice.get_by_alt_text("Photo preview")).to_be_visible()
    await alice.get_by_label("Caption").fill("Golden rings")
    await screenshot(alice, "composer-photo")
    # Record what the upload progress bar shows while the upload runs.
    await alice.evaluate(
        """() => {
          window.progressSeen = [];
          const bar = document.getElementById('upload-progress');
          const set = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value').set;
          Object.defineProperty(bar, 'value', {
            get() { return Number(this.getAttribute('value') || 0); },
            set(v) { window.progressSeen.push(v); set.call(this, v); },
          });
        }"""
    )
    await alice.get_by_role("button", name="Share story").click()
    await expect(alice.get_by_role("link", name="Your story: 2 stories, all seen")).to_be_visible()
    progress = await alice.evaluate("window.progressSeen")
    assert progress and max(progress) == 100, progress

    async with server.client("alice") as alice_api:
        stories = (await alice_api.get("/v1/users/alice/stories")).json()["stories"]
    assert [s["kind"] for s in stories] == ["text", "photo"]
    text_story, photo_story = stories
    assert text_story["background"].lower() == background.lower()
    assert photo_story["caption"] == "Golden rings"

    # ---- bob sees alice in his tray, unseen --------------------------------------------
    bob = await browsers.page("bob", PHONE, "#/")
    ring = bob.locator(".tray-link[data-author='alice']")
    await expect(ring).to_have_attribute("data-seen", "false")
    await expect(ring).to_have_accessible_name("alice: 2 new of 2 stories")
    await screenshot(bob, "tray")

    # ---- bob views: the progress bar advances, then the photo comes by itself ----------
    await ring.click()
    viewer = bob.get_by_role("dialog", name="Stories by alice")
    await expect(viewer).to_have_attribute("data-story-id", text_story["id"])
    await expect(bob.locator(".seg")).to_have_count(2)
    first = await poll(lambda: fill_width(bob, 0), "the first segment starts filling")
    await poll(lambda: _greater(bob, 0, first), "the first segment keeps filling")
    await expect(viewer).to_contain_text("Hello from a real browser!")
    await screenshot(bob, "viewer-text")
    await expect(viewer).to_have_attribute("data-story-id", photo_story["id"])
    assert await fill_width(bob, 0) == 100
    await expect(bob.get_by_alt_text("Golden rings")).to_be_visible()
    await screenshot(bob, "viewer-photo")

    # ---- bob reacts and replies (typing pauses the story) ------------------------------
    await bob.get_by_role("button", name="React ❤️").click()
    await expect(bob.get_by_role("status").filter(has_text="You reacted ❤️")).to_be_visible()
    await bob.get_by_label("Reply to alice").fill("Lovely rings!")
    await expect(viewer).to_have_class(PAUSED)
    await bob.get_by_role("button", name="Send reply").click()
    await expect(bob.get_by_role("status").filter(has_text="Reply sent to alice")).to_be_visible()
    # The last story ends and the viewer closes back to the tray, now greyed for alice.
    await expect(bob.locator(".tray-link[data-author='alice']")).to_have_attribute(
        "data-seen", "true"
    )

    # ---- alice sees who viewed, and the inbox -------------------------------------------
    await alice.goto(f"{server.url}/#/me")
    row = alice.locator(f".my-story[data-story-id='{text_story['id']}']")
    await expect(row.get_by_role("button", name="Seen by 1")).to_be_visible()
    await row.get_by_role("button", name="Seen by 1").click()
    viewers = alice.get_by_role("dialog", name="Seen by")
    await expect(viewers.get_by_role("list", name="Viewers")).to_contain_text("bob")
    await screenshot(alice, "seen-by")
    await viewers.get_by_role("button", name="Close").click()
    inbox = alice.get_by_role("list", name="Replies and reactions")
    await expect(inbox.locator("[data-kind='reply']")).to_contain_text("Lovely rings!")
    await expect(inbox.locator("[data-kind='reaction']")).to_contain_text("❤️")

    # ---- alice deletes the text story; bob no longer gets it ----------------------------
    await row.get_by_role("button", name="Delete story").click()
    await (
        alice.get_by_role("dialog", name="Delete story?")
        .get_by_role("button", name="Delete")
        .click()
    )
    await expect(row).to_have_count(0)
    async with server.client("bob") as bob_api:
        left = (await bob_api.get("/v1/users/alice/stories")).json()["stories"]
    assert [s["id"] for s in left] == [photo_story["id"]]


async def _greater(page: Page, index: int, than: float) -> bool:
    return await fill_width(page, index) > than


def hex_to_rgb(colour: str) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


async def test_viewer_keys_tap_and_hold(browsers: Browsers, server: LiveServer) -> None:
    async with server.client("alice") as alice_api:
        for text in ("one", "two", "three"):
            r = await alice_api.post("/v1/stories", json={"text": text})
            assert r.status_code == 201
    async with server.client("bob") as bob_api:
        await bob_api.put("/v1/users/alice/follow")

    bob = await browsers.page("bob", DESKTOP, "#/stories/alice")
    viewer = bob.get_by_role("dialog", name="Stories by alice")
    await expect(viewer).to_contain_text("one")
    # Space pauses (so nothing advances by itself while keys and taps are checked).
    await bob.keyboard.press(" ")
    await expect(bob.get_by_role("button", name="Play")).to_be_visible()
    await bob.keyboard.press("ArrowRight")
    await expect(viewer).to_contain_text("two")
    await bob.keyboard.press("ArrowLeft")
    await expect(viewer).to_contain_text("one")
    await bob.get_by_role("button", name="Next story").click()
    await expect(viewer).to_contain_text("two")
    await bob.get_by_role("button", name="Previous story").click()
    await expect(viewer).to_contain_text("one")
    await bob.keyboard.press(" ")
    await expect(bob.get_by_role("button", name="Pause")).to_be_visible()

    # Holding the story pauses it: the bar stops while held and moves again on release.
    zone = bob.get_by_role("button", name="Next story")
    box = await zone.bounding_box()
    assert box is not None
    await bob.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await bob.mouse.down()
    await expect(viewer).to_have_class(PAUSED)
    held = await fill_width(bob, 0)
    await bob.wait_for_timeout(400)  # a held story must not move (not a timing assertion)
    assert await fill_width(bob, 0) == held
    await bob.mouse.up()
    await expect(viewer).not_to_have_class(PAUSED)
    await expect(viewer).to_contain_text("one")  # a hold is not a tap
    await poll(lambda: _greater(bob, 0, held), "the bar moves again after the hold")

    # Escape closes the viewer.
    await bob.keyboard.press("Escape")
    await expect(viewer).to_have_count(0)
    await expect(bob.locator(".tray-link[data-author='alice']")).to_be_visible()


def webm_bytes(seconds: float = 2.0, fps: int = 10) -> bytes:
    """A small VP8 WebM clip whose colour changes every frame."""
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 180, 320, "yuv420p"
        for i in range(int(seconds * fps)):
            pixels = np.full((320, 180, 3), (40 + i * 9) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


async def test_video_story_plays_its_length_and_bad_files_get_clear_errors(
    browsers: Browsers, server: LiveServer
) -> None:
    async with server.client("bob") as bob_api:
        await bob_api.put("/v1/users/alice/follow")
    alice = await browsers.page("alice", PHONE, "#/compose?kind=video")
    await expect(alice.get_by_role("radio", name="Video")).to_be_checked()

    # Bytes that are no video: the server's reason is shown, nothing is published.
    bogus: FilePayload = {"name": "clip.webm", "mimeType": "video/webm", "buffer": b"not a video"}
    await alice.locator("#story-file").set_input_files(files=[bogus])
    await alice.get_by_role("button", name="Share story").click()
    await expect(alice.get_by_role("alert")).to_contain_text("video")
    await expect(alice.get_by_role("heading", name="New story")).to_be_visible()

    clip: FilePayload = {"name": "clip.webm", "mimeType": "video/webm", "buffer": webm_bytes()}
    await alice.locator("#story-file").set_input_files(files=[clip])
    await expect(alice.get_by_label("Video preview")).to_be_visible()
    await expect(alice.get_by_role("alert")).to_be_hidden()
    await screenshot(alice, "composer-video")
    await alice.get_by_role("button", name="Share story").click()
    await expect(alice.get_by_role("link", name="Your story: 1 story, all seen")).to_be_visible()
    async with server.client("alice") as alice_api:
        (story,) = (await alice_api.get("/v1/users/alice/stories")).json()["stories"]
    assert story["kind"] == "video"
    assert abs(story["media"]["duration"] - 2.0) < 0.3

    bob = await browsers.page("bob", PHONE, "#/")
    await bob.locator(".tray-link[data-author='alice']").click()
    viewer = bob.get_by_role("dialog", name="Stories by alice")
    await expect(viewer).to_have_attribute("data-kind", "video")
    video = viewer.locator("video")
    duration = await poll(lambda: video.evaluate("v => v.duration || 0"), "the video loads")
    assert abs(duration - story["media"]["duration"]) < 0.3
    # The bar follows the video's own clock, and the story ends when the video does.
    await poll(lambda: _greater(bob, 0, 0), "the video's segment fills")
    await poll(lambda: video.evaluate("v => v.currentTime > 0"), "the video plays")
    await expect(viewer).to_have_count(0)
    await expect(bob.locator(".tray-link[data-author='alice']")).to_have_attribute(
        "data-seen", "true"
    )


async def test_author_tools_in_the_viewer(browsers: Browsers, server: LiveServer) -> None:
    async with server.client("alice") as alice_api:
        ids = []
        for text in ("first", "second"):
            r = await alice_api.post("/v1/stories", json={"text": text})
            ids.append(r.json()["id"])
    async with server.client("bob") as bob_api:
        await bob_api.put("/v1/users/alice/follow")
        assert (await bob_api.post(f"/v1/stories/{ids[0]}/seen")).status_code == 204

    alice = await browsers.page("alice", PHONE, "#/stories/alice")
    viewer = alice.get_by_role("dialog", name="Your stories")
    await expect(viewer).to_contain_text("first")
    await alice.keyboard.press(" ")  # paused: nothing moves on while the test looks
    await expect(viewer.get_by_role("button", name="Play")).to_be_visible()
    await expect(viewer.get_by_role("button", name="Seen by 1 person")).to_be_visible()
    # The author turns replies off from the viewer; the server keeps it.
    await viewer.get_by_role("button", name="Story settings").click()
    settings = alice.get_by_role("dialog", name="Story settings")
    await settings.get_by_label("Allow replies").uncheck()
    await expect(settings.get_by_label("Allow replies")).not_to_be_checked()
    async with server.client("alice") as alice_api:
        assert (await alice_api.get(f"/v1/stories/{ids[0]}")).json()["allow_replies"] is False
    await settings.get_by_role("button", name="Close").click()
    await expect(viewer.locator(".viewer-note")).to_have_text("Replies off")

    # A viewer gets reactions but no reply field on that story.
    bob = await browsers.page("bob", PHONE, f"#/stories/alice?story={ids[0]}")
    bob_viewer = bob.get_by_role("dialog", name="Stories by alice")
    await expect(bob_viewer).to_contain_text("first")
    await bob.keyboard.press(" ")
    await expect(bob_viewer.get_by_role("button", name="Play")).to_be_visible()
    await expect(bob_viewer).to_contain_text("first")
    await expect(bob_viewer.get_by_role("button", name="React ❤️")).to_be_visible()
    await expect(bob_viewer.get_by_label("Reply to alice")).to_have_count(0)
    await bob.keyboard.press("ArrowRight")
    await expect(bob_viewer.get_by_label("Reply to alice")).to_be_visible()

    # Deleting from the viewer moves on to the remaining story.
    await expect(viewer).to_contain_text("first")
    await viewer.get_by_role("button", name="Story settings").click()
    await (
        alice.get_by_role("dialog", name="Story settings")
        .get_by_role("button", name="Delete story")
        .click()
    )
    await (
        alice.get_by_role("dialog", name="Delete story?")
        .get_by_role("button", name="Delete")
        .click()
    )
    await expect(viewer).to_contain_text("second")
    await expect(alice.locator(".seg")).to_have_count(1)

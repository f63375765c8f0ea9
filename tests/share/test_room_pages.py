"""Room share links fetched as link unfurlers fetch them: no JavaScript, bot user agents.

Every metadata value is checked for live, scheduled, ended and cancelled rooms, hostile
titles included; the card image is a real 1200x630 PNG, cached by ETag and redrawn when
what it shows changes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from PIL import Image

from rooms.control.share import when
from tests.rooms.helpers import create_room, join
from tests.share.unfurler import BOTS, Page, unfurl
from tests.support import LiveServer

HOSTILE = [
    '"><script>alert(1)</script>',
    "</title><script>alert('t')</script>",
    'Tom & Jerry\'s <b>show</b> "live"',
    "' onmouseover='alert(1)' x='",
    "<!-- comment --> --> <![CDATA[ x ]]>",
]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def check_page(page: Page, server: LiveServer, room_id: str, title: str, description: str) -> None:
    """Everything an unfurler reads from a room page."""
    url = f"{server.url}/rooms/{room_id}"
    assert page.status == 200
    assert page.content_type.startswith("text/html")
    assert page.title == f"{title} · Ephemera"
    m = page.meta
    assert m["og:title"] == m["twitter:title"] == title
    assert m["og:description"] == m["twitter:description"] == m["description"] == description
    assert m["og:url"] == url
    assert m["og:type"] == "website" and m["og:site_name"] == "Ephemera"
    assert m["twitter:card"] == "summary_large_image"
    image = urlsplit(m["og:image"])
    assert (
        f"{image.scheme}://{image.netloc}{image.path}"
        == f"{url.replace('/rooms/', '/v1/rooms/')}/card.png"
    )
    assert len(parse_qs(image.query)["v"][0]) == 24
    assert m["twitter:image"] == m["og:image"]
    assert (m["og:image:width"], m["og:image:height"], m["og:image:type"]) == (
        "1200",
        "630",
        "image/png",
    )
    assert m["og:image:alt"] == m["twitter:image:alt"] == f"{title}: {description}"
    assert "robots" not in m
    assert page.link("canonical") == {"rel": "canonical", "href": url}
    oembed = page.link("alternate")
    assert oembed is not None and oembed["type"] == "application/json+oembed"
    assert parse_qs(urlsplit(oembed["href"]).query) == {"url": [url], "format": ["json"]}
    # The only script is the web client's own module: nothing from the title became markup.
    assert page.scripts == [{"type": "module", "src": "/js/app.js"}]
    assert page.tags.count("title") == 1 and "b" not in page.tags


async def test_live_room_unfurls_for_every_bot(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client() as anon:
        room = await create_room(a, title="Morning show", description="secret plans")
        assert room["share_url"] == f"{server.url}/rooms/{room['id']}"
        peers = [await join(server.ws_url, room["id"], u) for u in ("bob", "carol")]
        expected = "Live now · hosted by @alice · 2 listening"
        pages = [await unfurl(anon, room["share_url"], bot) for bot in (*BOTS, BROWSER)]
        for page in pages:
            check_page(page, server, room["id"], "Morning show", expected)
        # One answer for bots and browsers alike, and nothing but the public facts.
        raw = [(await anon.get(room["share_url"], headers={"User-Agent": b})).text for b in BOTS]
        assert len(set(raw)) == 1
        assert "secret plans" not in raw[0] and "bob" not in raw[0]
        # HEAD answers like GET, without a body.
        head = await anon.head(room["share_url"])
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/html")
        for peer in peers:
            await peer.close()


async def test_a_lone_host_has_no_listener_count(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client() as anon:
        room = await create_room(a, title="Quiet")
        page = await unfurl(anon, room["share_url"])
        check_page(page, server, room["id"], "Quiet", "Live now · hosted by @alice")


async def test_scheduled_ended_and_cancelled_rooms(server: LiveServer) -> None:
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    async with server.client("alice") as a, server.client() as anon:
        scheduled = await create_room(a, title="Later", scheduled_for=start.isoformat())
        page = await unfurl(anon, scheduled["share_url"])
        stamp = f"{start:%a} {start.day} {start:%b}, {start:%H:%M} UTC"
        assert when(start.timestamp()) == stamp
        check_page(
            page, server, scheduled["id"], "Later", f"Scheduled for {stamp} · hosted by @alice"
        )

        assert (await a.post(f"/v1/rooms/{scheduled['id']}/cancel")).status_code == 200
        page = await unfurl(anon, scheduled["share_url"])
        check_page(page, server, scheduled["id"], "Later", "Cancelled")

        live = await create_room(a, title="Done soon")
        peer = await join(server.ws_url, live["id"], "bob")
        assert (await a.post(f"/v1/rooms/{live['id']}/end")).status_code == 200
        page = await unfurl(anon, live["share_url"])
        check_page(page, server, live["id"], "Done soon", "Ended · hosted by @alice")
        await peer.close()


async def test_hostile_titles_stay_text(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(rate_room_create="1000/hour")
    async with server.client("mallory") as m, server.client() as anon:
        for title in HOSTILE:
            room = await create_room(m, title=title)
            page = await unfurl(anon, room["share_url"])
            check_page(page, server, room["id"], title.strip(), "Live now · hosted by @mallory")
            raw = (await anon.get(room["share_url"])).text
            assert "<script>alert" not in raw and "</title><script>" not in raw
            card = await anon.get(page.meta["og:image"])
            assert card.status_code == 200
            assert Image.open(io.BytesIO(card.content)).size == (1200, 630)


async def test_unknown_rooms_get_the_client_with_a_generic_card(anon: httpx.AsyncClient) -> None:
    for path in ("/rooms/nope", "/rooms/%3Cscript%3E", "/rooms/" + "x" * 65):
        page = await unfurl(anon, path)
        assert page.status == 404 and page.content_type.startswith("text/html")
        assert page.title == "Ephemera" and page.meta["og:title"] == "Ephemera"
        assert "og:image" not in page.meta and page.meta["robots"] == "noindex"
        assert page.scripts == [{"type": "module", "src": "/js/app.js"}]
        assert "<script>" not in (await anon.get(path)).text.replace(
            '<script type="module" src="/js/app.js"></script>', ""
        )


async def test_client_paths_serve_the_client_but_not_the_api(anon: httpx.AsyncClient) -> None:
    for path in ("/", "/compose", "/me", "/stories/alice"):
        page = await unfurl(anon, path)
        assert page.status == 200 and page.meta["og:title"] == "Ephemera", path
        assert page.scripts == [{"type": "module", "src": "/js/app.js"}]
    r = await anon.get("/v1/rooms/nope/preview")
    assert r.status_code == 404 and r.json()["error"]["code"] == "room_not_found"
    r = await anon.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await anon.post("/rooms/abc")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert (await anon.get("/js/app.js")).headers["content-type"].startswith("text/javascript")


async def test_card_is_a_png_cached_by_etag_and_redrawn_on_change(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client() as anon:
        start = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
        room = await create_room(a, title="Card room", scheduled_for=start)
        card_url = (await unfurl(anon, room["share_url"])).meta["og:image"]
        r = await anon.get(card_url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        img = Image.open(io.BytesIO(r.content))
        assert (img.format, img.size) == ("PNG", (1200, 630))
        assert r.headers["cache-control"] == "public, max-age=300"
        etag = r.headers["etag"]
        assert etag == f'"{parse_qs(urlsplit(card_url).query)["v"][0]}"'

        again = await anon.get(card_url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag

        # Going live changes what the card shows: a new key, a new picture.
        assert (await a.post(f"/v1/rooms/{room['id']}/start")).status_code == 200
        live_url = (await unfurl(anon, room["share_url"])).meta["og:image"]
        assert live_url != card_url
        r2 = await anon.get(live_url, headers={"If-None-Match": etag})
        assert r2.status_code == 200 and r2.headers["etag"] != etag
        assert r2.headers["cache-control"] == "public, max-age=60"
        assert r2.content != r.content
        # The card for an old key is the current card (unfurlers asking late get the truth).
        assert (await anon.get(card_url)).content == r2.content

        missing = await anon.get("/v1/rooms/nope/card.png")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "room_not_found"


async def test_cards_are_stored_once_per_room_and_dropped_with_it(
    server: LiveServer, tmp_path: Path
) -> None:
    cards = server.settings.data_dir / "cards"
    async with server.client("alice") as a, server.client() as anon:
        start = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
        room = await create_room(a, title="Stored", scheduled_for=start)
        await anon.get(f"/v1/rooms/{room['id']}/card.png")
        assert len(list((cards / room["id"]).iterdir())) == 1
        await a.patch(f"/v1/rooms/{room['id']}", json={"title": "Stored, renamed"})
        await anon.get(f"/v1/rooms/{room['id']}/card.png")
        files = list((cards / room["id"]).iterdir())
        assert len(files) == 1  # the previous card went
        # A file removed behind the server's back (another process pruned it) is redrawn.
        files[0].unlink()
        r = await anon.get(f"/v1/rooms/{room['id']}/card.png")
        assert r.status_code == 200 and len(list((cards / room["id"]).iterdir())) == 1

"""oEmbed (https://oembed.com) for room and public story links."""

from __future__ import annotations

from urllib.parse import urlsplit
from xml.etree import ElementTree

from tests.rooms.helpers import create_room
from tests.share.unfurler import unfurl
from tests.support import LiveServer


async def test_room_links_embed_as_links_with_the_card(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client() as anon:
        room = await create_room(a, title="<i>Embed</i> me")
        card = (await unfurl(anon, room["share_url"])).meta["og:image"]
        old_link = f"{server.url}/#/rooms/{room['id']}"
        for link in (room["share_url"], old_link):
            r = await anon.get("/oembed", params={"url": link, "format": "json"})
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            assert r.json() == {
                "version": "1.0",
                "type": "link",
                "title": "<i>Embed</i> me",
                "provider_name": "Ephemera",
                "provider_url": f"{server.url}/",
                "author_name": "alice",
                "cache_age": 60,
                "thumbnail_url": card,
                "thumbnail_width": 1200,
                "thumbnail_height": 630,
            }
        # A thumbnail larger than the consumer's maxima is left out (the spec's rule).
        small = await anon.get("/oembed", params={"url": room["share_url"], "maxwidth": 600})
        assert small.status_code == 200 and "thumbnail_url" not in small.json()
        fits = await anon.get("/oembed", params={"url": room["share_url"], "maxwidth": 1200})
        assert fits.json()["thumbnail_width"] == 1200
        # The XML form carries the same fields.
        xml = await anon.get("/oembed", params={"url": room["share_url"], "format": "xml"})
        assert xml.status_code == 200 and xml.headers["content-type"].startswith("text/xml")
        root = ElementTree.fromstring(xml.content)
        assert root.tag == "oembed"
        assert {child.tag: child.text for child in root} == {k: str(v) for k, v in r.json().items()}


async def test_public_stories_embed_and_others_do_not(server: LiveServer) -> None:
    async with server.client("alice") as a, server.client() as anon:
        public = (await a.post("/v1/stories", json={"text": "x", "audience": "public"})).json()
        private = (await a.post("/v1/stories", json={"text": "y"})).json()
        r = await anon.get("/oembed", params={"url": f"{server.url}/stories/alice/{public['id']}"})
        doc = r.json()
        assert (doc["title"], doc["author_name"], doc["type"]) == (
            "Story by @alice",
            "alice",
            "link",
        )
        assert 0 < doc["cache_age"] <= 86400
        r = await anon.get("/oembed", params={"url": f"{server.url}/stories/alice/{private['id']}"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_bad_requests_get_clear_errors(server: LiveServer) -> None:
    async with server.client() as anon:
        room_link = f"{server.url}/rooms/doesnotexist"
        host = urlsplit(server.url).netloc
        for url in (
            room_link,
            "https://elsewhere.example/rooms/abc",
            f"ftp://{host}/rooms/abc",
            f"{server.url}/me",
            f"{server.url}/#/me",
            "not a url at all",
            "http://[::1/rooms/abc",
            f"{server.url}/rooms/a/b",
        ):
            r = await anon.get("/oembed", params={"url": url})
            assert r.status_code == 404, url
            assert r.json()["error"]["code"] == "not_found"
        for params in (
            {},
            {"url": ""},
            {"url": "x" * 3000},
            {"url": room_link, "maxwidth": "0"},
            {"url": room_link, "format": "yaml"},
        ):
            r = await anon.get("/oembed", params=params)
            assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
        r = await anon.post("/oembed")
        assert r.status_code == 405 and "GET" in r.headers["allow"]

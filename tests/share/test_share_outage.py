"""With Redis gone, share links still load the web client (503, generic card), the card and
oEmbed answer 503 (the test client's 10 s timeout catches a hang), and all of it recovers
by itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.valkey import EmbeddedValkey
from tests.share.unfurler import unfurl
from tests.support import wait_for


async def test_share_links_during_a_redis_outage(make_server: Any, tmp_path: Path) -> None:
    own = EmbeddedValkey(tmp_path / "own-valkey")
    own.start()
    try:
        srv = make_server(redis_url=own.url)
        async with srv.client("alice") as a, srv.client() as anon:
            room = (await a.post("/v1/rooms", json={"title": "Outage"})).json()
            story = (await a.post("/v1/stories", json={"text": "t", "audience": "public"})).json()
            story_link = f"/stories/alice/{story['id']}"
            own.kill()
            for link in (room["share_url"], story_link):
                page = await unfurl(anon, link)
                assert page.status == 503 and int(page.headers["retry-after"]) >= 1
                assert page.meta["og:title"] == "Ephemera"
                assert page.scripts == [{"type": "module", "src": "/js/app.js"}]
            for path in (f"/v1/rooms/{room['id']}/card.png", f"/oembed?url={room['share_url']}"):
                r = await anon.get(path)
                assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
            own.start()

            async def back() -> bool:
                return (await unfurl(anon, room["share_url"])).meta["og:title"] == "Outage"

            await wait_for(back, within=10, interval=0.1)
            assert (await unfurl(anon, story_link)).meta["og:title"] == "Story by @alice"
    finally:
        own.stop()

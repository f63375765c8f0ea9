"""The stories HTTP API against a real server and Valkey: publishing, the tray, seen-by,
replies and reactions, audiences, blocks, mutes, delete and limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from server.clock import SystemClock
from server.graph.store import Graph
from server.store import Keys
from stories.model import InboxItem
from stories.store import StoryStore
from tests.stories.conftest import Clients, follow, publish, story_data_keys
from tests.support import LiveServer

CONTRACT_PATHS = {
    ("get", "/v1/stories/config"),
    ("post", "/v1/stories"),
    ("post", "/v1/stories/media"),
    ("get", "/v1/stories/tray"),
    ("get", "/v1/users/{user_id}/stories"),
    ("get", "/v1/stories/{story_id}"),
    ("post", "/v1/stories/{story_id}/seen"),
    ("get", "/v1/stories/{story_id}/viewers"),
    ("patch", "/v1/stories/{story_id}"),
    ("delete", "/v1/stories/{story_id}"),
    ("post", "/v1/stories/{story_id}/replies"),
    ("post", "/v1/stories/{story_id}/reactions"),
    ("get", "/v1/stories/inbox"),
    ("get", "/v1/stories/{story_id}/media/{variant}"),
    ("put", "/v1/me/story-mutes/{user_id}"),
    ("delete", "/v1/me/story-mutes/{user_id}"),
    ("get", "/v1/me/story-mutes"),
    ("put", "/v1/me/story-hidden/{user_id}"),
    ("delete", "/v1/me/story-hidden/{user_id}"),
    ("get", "/v1/me/story-hidden"),
}


async def test_every_endpoint_is_in_the_openapi_schema(anon: httpx.AsyncClient) -> None:
    spec = (await anon.get("/openapi.json")).json()
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert documented >= CONTRACT_PATHS
    story = spec["components"]["schemas"]["StoryOut"]["properties"]
    assert {"id", "author", "kind", "media", "seen", "view_count", "expires_at"} <= set(story)
    upload = spec["paths"]["/v1/stories/media"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert "security" not in spec["paths"]["/v1/stories/{story_id}/media/{variant}"]["get"]


async def test_config(clients: Clients, server: LiveServer) -> None:
    body = (await clients("ann").get("/v1/stories/config")).json()
    assert body["max_text"] == server.settings.max_story_text
    assert body["ttl_seconds"] == server.settings.story_ttl_seconds
    assert body["max_upload_bytes"] == server.settings.max_upload_bytes
    assert body["max_video_seconds"] == 60.0
    assert "❤️" in body["allowed_reactions"]
    assert all(c.startswith("#") and len(c) == 7 for c in body["backgrounds"])


async def test_auth_is_required(anon: httpx.AsyncClient) -> None:
    for method, path in [("GET", "/v1/stories/tray"), ("POST", "/v1/stories")]:
        r = await anon.request(method, path)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "missing_token"


async def test_publish_and_read_text_story(clients: Clients, server: LiveServer) -> None:
    await follow(clients, "bob", "ann")
    story = await publish(clients, "ann", "  first story  ", background="#ff0000")
    assert story["kind"] == "text" and story["text"] == "first story"
    assert story["background"] == "#FF0000"
    assert story["audience"] == "followers" and story["allow_replies"] and story["allow_reactions"]
    assert story["media"] is None and story["caption"] is None
    assert story["view_count"] == 0 and story["seen"] is True
    from datetime import datetime

    created = datetime.fromisoformat(story["created_at"])
    expires = datetime.fromisoformat(story["expires_at"])
    assert (expires - created).total_seconds() == server.settings.story_ttl_seconds

    seen_by_bob = (await clients("bob").get(f"/v1/stories/{story['id']}")).json()
    assert seen_by_bob["seen"] is False and seen_by_bob["view_count"] is None
    listed = (await clients("bob").get("/v1/users/ann/stories")).json()["stories"]
    assert [s["id"] for s in listed] == [story["id"]]


async def test_text_validation(clients: Clients, server: LiveServer) -> None:
    ann = clients("ann")
    limit = server.settings.max_story_text
    cases = [
        ({"text": "x" * (limit + 1)}, 422, "text_too_long"),
        ({"text": " " + "x" * (limit + 1) + " "}, 422, "text_too_long"),
        ({"text": " \n\t "}, 422, "empty_text"),
        ({"text": 5}, 422, "validation_error"),
        ({"text": "hi", "allow_replies": 0}, 422, "validation_error"),
        ({"text": ""}, 422, "empty_text"),
        ({"text": "hi", "background": "red"}, 422, "validation_error"),
        ({"text": "hi", "audience": "everyone"}, 422, "validation_error"),
        ({"text": "hi", "surprise": 1}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = await ann.post("/v1/stories", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), body
    r = await ann.post(
        "/v1/stories", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert (await ann.post("/v1/stories", json={"text": "x" * limit})).status_code == 201
    # The limit counts the text as stored: blanks around it are trimmed first.
    r = await ann.post("/v1/stories", json={"text": "\n  " + "y" * limit + " \t\n"})
    assert r.status_code == 201 and r.json()["text"] == "y" * limit


async def test_configured_text_limit(
    make_server: Callable[..., LiveServer], clients: Clients
) -> None:
    srv = make_server(max_story_text=10)
    ann = clients("ann", srv)
    r = await ann.post("/v1/stories", json={"text": "x" * 11})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "text_too_long")
    assert (await ann.post("/v1/stories", json={"text": "  " + "x" * 10 + "  "})).status_code == 201
    assert (await clients("ann", srv).get("/v1/stories/config")).json()["max_text"] == 10


async def test_unknown_and_malformed_story_ids_are_404(clients: Clients) -> None:
    ann = clients("ann")
    for sid in ["AAAAAAAAAAAAAAAA", "short", "x" * 200, "a.b~c%00"]:
        r = await ann.get(f"/v1/stories/{sid}")
        assert r.status_code == 404, sid
        assert r.json()["error"]["code"] == "story_not_found"
    assert (await ann.post("/v1/stories/AAAAAAAAAAAAAAAA/seen")).status_code == 404


async def test_max_active_stories(make_server: Callable[..., LiveServer], clients: Clients) -> None:
    srv = make_server(max_active_stories=3)
    for i in range(3):
        await publish(clients, "ann", f"s{i}", srv=srv)
    r = await clients("ann", srv).post("/v1/stories", json={"text": "one too many"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "too_many_stories"
    first = (await clients("ann", srv).get("/v1/users/ann/stories")).json()["stories"][0]
    assert (await clients("ann", srv).delete(f"/v1/stories/{first['id']}")).status_code == 204
    await publish(clients, "ann", "room again", srv=srv)


async def test_max_active_stories_holds_under_concurrency(
    make_server: Callable[..., LiveServer], clients: Clients, redis: Redis
) -> None:
    srv = make_server(max_active_stories=3)
    bob = clients("bob", srv)
    answers = await asyncio.gather(
        *(bob.post("/v1/stories", json={"text": f"burst {i}"}) for i in range(12))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 3 + [409] * 9
    assert len((await bob.get("/v1/users/bob/stories")).json()["stories"]) == 3
    # Refused publishes left nothing behind: 3 story hashes, 3 due entries.
    prefix = srv.settings.key_prefix
    hashes = [k async for k in redis.scan_iter(match=prefix + "st:{*}")]
    assert len(hashes) == 3
    assert await redis.zcard(prefix + "st:due") == 3


async def test_publish_is_rate_limited(
    make_server: Callable[..., LiveServer], clients: Clients
) -> None:
    srv = make_server(rate_publish="2/minute")
    await publish(clients, "ann", "1", srv=srv)
    await publish(clients, "ann", "2", srv=srv)
    r = await clients("ann", srv).post("/v1/stories", json={"text": "3"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    await publish(clients, "bob", "other users are not affected", srv=srv)


async def test_tray_order_and_seen_state(clients: Clients) -> None:
    viewer = "vic"
    for author in ["ann", "bob", "cat", "dan"]:
        await follow(clients, viewer, author)
    ann1 = await publish(clients, "ann", "ann 1")
    bob1 = await publish(clients, "bob", "bob 1")
    ann2 = await publish(clients, "ann", "ann 2")
    cat1 = await publish(clients, "cat", "cat 1")
    own = await publish(clients, viewer, "mine")
    await publish(clients, "zed", "not followed")
    v = clients(viewer)

    entries = (await v.get("/v1/stories/tray")).json()["entries"]
    assert [e["author"] for e in entries] == [viewer, "cat", "ann", "bob"]
    by = {e["author"]: e for e in entries}
    assert by[viewer]["start_story_id"] == own["id"] and by[viewer]["all_seen"]
    assert by["ann"] == {
        "author": "ann",
        "story_count": 2,
        "unseen_count": 2,
        "all_seen": False,
        "start_story_id": ann1["id"],
        "latest_at": ann2["created_at"],
    }

    # Seeing ann's first story moves her start to the second one.
    assert (await v.post(f"/v1/stories/{ann1['id']}/seen")).status_code == 204
    by = {e["author"]: e for e in (await v.get("/v1/stories/tray")).json()["entries"]}
    assert by["ann"]["start_story_id"] == ann2["id"] and by["ann"]["unseen_count"] == 1

    # Fully seen authors go after every author with unseen stories.
    for sid in (ann2["id"], cat1["id"]):
        assert (await v.post(f"/v1/stories/{sid}/seen")).status_code == 204
    entries = (await v.get("/v1/stories/tray")).json()["entries"]
    assert [e["author"] for e in entries] == [viewer, "bob", "cat", "ann"]
    assert [e["all_seen"] for e in entries] == [True, False, True, True]
    assert entries[2]["start_story_id"] == cat1["id"]
    assert entries[1]["start_story_id"] == bob1["id"]

    listed = (await v.get("/v1/users/ann/stories")).json()["stories"]
    assert [s["id"] for s in listed] == [ann1["id"], ann2["id"]]  # oldest first
    assert all(s["seen"] for s in listed)


async def test_empty_tray(clients: Clients) -> None:
    assert (await clients("loner").get("/v1/stories/tray")).json() == {"entries": []}
    await follow(clients, "loner", "quiet")
    assert (await clients("loner").get("/v1/stories/tray")).json() == {"entries": []}


async def test_seen_is_idempotent_and_seen_by_is_for_the_author(clients: Clients) -> None:
    story = await publish(clients, "ann", "watch me", audience="public")
    sid = story["id"]
    for user in ["bob", "cat", "dan", "bob", "bob"]:
        assert (await clients(user).post(f"/v1/stories/{sid}/seen")).status_code == 204
    assert (await clients("ann").post(f"/v1/stories/{sid}/seen")).status_code == 204  # no-op

    viewers = (await clients("ann").get(f"/v1/stories/{sid}/viewers")).json()
    assert viewers["view_count"] == 3
    assert [v["user_id"] for v in viewers["viewers"]] == ["dan", "cat", "bob"]  # newest first
    assert (await clients("ann").get(f"/v1/stories/{sid}")).json()["view_count"] == 3
    assert (await clients("bob").get(f"/v1/stories/{sid}")).json()["seen"] is True

    r = await clients("bob").get(f"/v1/stories/{sid}/viewers")
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_author"
    r = await clients("eve").get(f"/v1/stories/{sid}/viewers")
    assert r.status_code == 403  # a public story: eve may see it, but not who else did


async def test_seen_by_pagination(clients: Clients) -> None:
    story = await publish(clients, "ann", "popular", audience="public")
    sid = story["id"]
    users = [f"u{i:02d}" for i in range(7)]
    for user in users:
        assert (await clients(user).post(f"/v1/stories/{sid}/seen")).status_code == 204
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await clients("ann").get(f"/v1/stories/{sid}/viewers", params=params)).json()
        seen += [v["user_id"] for v in page["viewers"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(users)) and pages == 3
    r = await clients("ann").get(f"/v1/stories/{sid}/viewers", params={"cursor": "garbage"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    # An overflowing score is outside the schema too, so every schema-valid cursor decodes.
    r = await clients("ann").get(f"/v1/stories/{sid}/viewers", params={"cursor": "1e999~bob"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = await clients("ann").get(f"/v1/stories/{sid}/viewers", params={"limit": 0})
    assert r.status_code == 422


async def test_replies_and_reactions_reach_the_inbox(clients: Clients) -> None:
    await follow(clients, "bob", "ann")
    story = await publish(clients, "ann", "say something")
    sid = story["id"]
    bob = clients("bob")
    r = await bob.post(f"/v1/stories/{sid}/replies", json={"text": " nice! "})
    assert r.status_code == 201
    reply = r.json()
    assert (reply["kind"], reply["text"], reply["emoji"], reply["from_user"]) == (
        "reply",
        "nice!",
        None,
        "bob",
    )
    r = await bob.post(f"/v1/stories/{sid}/reactions", json={"emoji": "🔥"})
    assert r.status_code == 201 and r.json()["emoji"] == "🔥"

    inbox = (await clients("ann").get("/v1/stories/inbox")).json()
    assert [i["kind"] for i in inbox["items"]] == ["reaction", "reply"]  # newest first
    assert all(i["story_id"] == sid for i in inbox["items"])
    assert inbox["next_cursor"] is None
    page = (await clients("ann").get("/v1/stories/inbox", params={"limit": 1})).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = await clients("ann").get("/v1/stories/inbox", params={"cursor": page["next_cursor"]})
    assert [i["kind"] for i in rest.json()["items"]] == ["reply"]
    assert (await bob.get("/v1/stories/inbox")).json()["items"] == []

    for body, code in [({"emoji": "💩"}, "validation_error"), ({"emoji": ""}, "validation_error")]:
        r = await bob.post(f"/v1/stories/{sid}/reactions", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (422, code)
    r = await clients("ann").post(f"/v1/stories/{sid}/replies", json={"text": "me"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "own_story"


async def test_reply_and_reaction_toggles(clients: Clients) -> None:
    await follow(clients, "bob", "ann")
    quiet = await publish(clients, "ann", "no replies", allow_replies=False)
    bob = clients("bob")
    r = await bob.post(f"/v1/stories/{quiet['id']}/replies", json={"text": "hi"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "replies_disabled"
    assert (
        await bob.post(f"/v1/stories/{quiet['id']}/reactions", json={"emoji": "❤️"})
    ).status_code == 201

    r = await clients("ann").patch(
        f"/v1/stories/{quiet['id']}", json={"allow_replies": True, "allow_reactions": False}
    )
    assert r.status_code == 200
    assert (r.json()["allow_replies"], r.json()["allow_reactions"]) == (True, False)
    assert (
        await bob.post(f"/v1/stories/{quiet['id']}/replies", json={"text": "hi"})
    ).status_code == 201
    r = await bob.post(f"/v1/stories/{quiet['id']}/reactions", json={"emoji": "❤️"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "reactions_disabled"

    r = await bob.patch(f"/v1/stories/{quiet['id']}", json={"allow_replies": False})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_author"
    r = await clients("ann").patch(f"/v1/stories/{quiet['id']}", json={"allow_replies": "maybe"})
    assert r.status_code == 422


async def test_reactions_are_rate_limited(
    make_server: Callable[..., LiveServer], clients: Clients
) -> None:
    srv = make_server(rate_react="3/minute")
    story = await publish(clients, "ann", "react", srv=srv, audience="public")
    bob = clients("bob", srv)
    for _ in range(3):
        r = await bob.post(f"/v1/stories/{story['id']}/reactions", json={"emoji": "👏"})
        assert r.status_code == 201
    r = await bob.post(f"/v1/stories/{story['id']}/reactions", json={"emoji": "👏"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert len((await clients("ann", srv).get("/v1/stories/inbox")).json()["items"]) == 3


async def test_audiences(clients: Clients) -> None:
    await follow(clients, "fol", "ann")
    await follow(clients, "friend", "ann")
    assert (await clients("ann").put("/v1/me/close-friends/friend")).status_code == 204
    assert (await clients("ann").put("/v1/me/close-friends/outsider_cf")).status_code == 204
    followers = await publish(clients, "ann", "for followers")
    close = await publish(clients, "ann", "for close friends", audience="close_friends")
    public = await publish(clients, "ann", "for everyone", audience="public")

    expected = {
        "fol": {followers["id"], public["id"]},
        "friend": {followers["id"], close["id"], public["id"]},
        "outsider_cf": {close["id"], public["id"]},  # close friend who does not follow
        "stranger": {public["id"]},
        "ann": {followers["id"], close["id"], public["id"]},
    }
    for user, ids in expected.items():
        c = clients(user)
        listed = {s["id"] for s in (await c.get("/v1/users/ann/stories")).json()["stories"]}
        assert listed == ids, user
        for sid in (followers["id"], close["id"], public["id"]):
            r = await c.get(f"/v1/stories/{sid}")
            assert r.status_code == (200 if sid in ids else 404), (user, sid)
            if sid not in ids:
                assert r.json()["error"]["code"] == "story_not_found"
                for path, body in [
                    ("seen", None),
                    ("replies", {"text": "x"}),
                    ("reactions", {"emoji": "🔥"}),
                ]:
                    r = await c.post(f"/v1/stories/{sid}/{path}", json=body)
                    assert r.status_code == 404, (user, path)
                assert (await c.get(f"/v1/stories/{sid}/viewers")).status_code == 404

    tray = (await clients("fol").get("/v1/stories/tray")).json()["entries"]
    assert tray[0]["story_count"] == 2  # the close-friends story is not counted for fol
    tray = (await clients("friend").get("/v1/stories/tray")).json()["entries"]
    assert tray[0]["story_count"] == 3 and tray[0]["start_story_id"] == followers["id"]
    # Only the close-friends story is unseen: the tray starts there.
    for sid in (followers["id"], public["id"]):
        await clients("friend").post(f"/v1/stories/{sid}/seen")
    tray = (await clients("friend").get("/v1/stories/tray")).json()["entries"]
    assert (tray[0]["unseen_count"], tray[0]["start_story_id"]) == (1, close["id"])
    await clients("ann").delete("/v1/me/close-friends/friend")
    tray = (await clients("friend").get("/v1/stories/tray")).json()["entries"]
    assert (tray[0]["story_count"], tray[0]["all_seen"]) == (2, True)


async def test_blocks_hide_everything_both_ways(
    clients: Clients, server: LiveServer, redis: Redis
) -> None:
    await follow(clients, "bob", "ann")
    await follow(clients, "ann", "bob")
    ann_story = await publish(clients, "ann", "ann's", audience="public")
    bob_story = await publish(clients, "bob", "bob's", audience="public")
    await clients("bob").post(f"/v1/stories/{ann_story['id']}/replies", json={"text": "before"})
    assert len((await clients("ann").get("/v1/stories/inbox")).json()["items"]) == 1

    assert (await clients("ann").put("/v1/me/blocks/bob")).status_code == 204
    for viewer, sid, author in [("bob", ann_story["id"], "ann"), ("ann", bob_story["id"], "bob")]:
        c = clients(viewer)
        assert (await c.get(f"/v1/stories/{sid}")).status_code == 404
        assert (await c.get(f"/v1/users/{author}/stories")).json() == {"stories": []}
        assert (await c.post(f"/v1/stories/{sid}/seen")).status_code == 404
        assert (
            await c.post(f"/v1/stories/{sid}/reactions", json={"emoji": "🔥"})
        ).status_code == 404
        assert (await c.get("/v1/stories/tray")).json()["entries"][0]["author"] == viewer
        assert len((await c.get("/v1/stories/tray")).json()["entries"]) == 1
    # The old reply is hidden too.
    assert (await clients("ann").get("/v1/stories/inbox")).json()["items"] == []
    # Blocking ends the follows, but the tray does not rely on that: a follow written
    # anyway (as by a request racing the block) still shows nothing.
    await Graph(redis, Keys(server.settings.key_prefix), SystemClock()).follow("bob", "ann")
    assert len((await clients("bob").get("/v1/stories/tray")).json()["entries"]) == 1

    assert (await clients("ann").delete("/v1/me/blocks/bob")).status_code == 204
    assert (await clients("bob").get(f"/v1/stories/{ann_story['id']}")).status_code == 200


async def test_hide_list(clients: Clients) -> None:
    await follow(clients, "bob", "ann")
    story = await publish(clients, "ann", "not for bob", audience="public")
    ann = clients("ann")
    assert (await ann.put("/v1/me/story-hidden/bob")).status_code == 204
    assert (await ann.put("/v1/me/story-hidden/bob")).status_code == 204  # idempotent
    assert (await ann.get("/v1/me/story-hidden")).json() == {"users": ["bob"], "next_cursor": None}
    bob = clients("bob")
    assert (await bob.get(f"/v1/stories/{story['id']}")).status_code == 404
    assert (await bob.get("/v1/users/ann/stories")).json() == {"stories": []}
    assert (await bob.get("/v1/stories/tray")).json() == {"entries": []}
    assert (await clients("cat").get(f"/v1/stories/{story['id']}")).status_code == 200
    assert (await ann.delete("/v1/me/story-hidden/bob")).status_code == 204
    assert (await bob.get(f"/v1/stories/{story['id']}")).status_code == 200
    r = await ann.put("/v1/me/story-hidden/ann")
    assert r.status_code == 409 and r.json()["error"]["code"] == "self_reference"
    assert (await ann.put("/v1/me/story-hidden/bad%20id")).status_code == 422


async def seen_by(clients: Clients, author: str, story_id: str, limit: int = 50) -> list[str]:
    """Every viewer in the author's seen-by list, page by page."""
    users: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = (await clients(author).get(f"/v1/stories/{story_id}/viewers", params=params)).json()
        users += [v["user_id"] for v in page["viewers"]]
        if not (cursor := page["next_cursor"]):
            return users


async def view_counts(clients: Clients, author: str, story_id: str) -> tuple[int, int, int]:
    """The view count as the seen-by list, the story and the author's list each give it."""
    c = clients(author)
    listed = (await c.get(f"/v1/stories/{story_id}/viewers")).json()["view_count"]
    single = (await c.get(f"/v1/stories/{story_id}")).json()["view_count"]
    stories = (await c.get(f"/v1/users/{author}/stories")).json()["stories"]
    [in_list] = [s["view_count"] for s in stories if s["id"] == story_id]
    return listed, single, in_list


async def test_blocked_viewers_leave_the_seen_by_list_both_ways(clients: Clients) -> None:
    story = await publish(clients, "ann", "who saw it", audience="public")
    viewers = ["v1", "bob", "v2", "cat", "v3"]
    for user in viewers:
        assert (await clients(user).post(f"/v1/stories/{story['id']}/seen")).status_code == 204
    assert await view_counts(clients, "ann", story["id"]) == (5, 5, 5)

    # ann blocks bob, and cat blocks ann: both vanish from ann's seen-by and counts, on
    # every page (pages of 2 must neither skip nor repeat anyone).
    assert (await clients("ann").put("/v1/me/blocks/bob")).status_code == 204
    assert (await clients("cat").put("/v1/me/blocks/ann")).status_code == 204
    assert await seen_by(clients, "ann", story["id"], limit=2) == ["v3", "v2", "v1"]
    assert await view_counts(clients, "ann", story["id"]) == (3, 3, 3)

    # Unblocking shows the view again: it happened, only the block hid it.
    assert (await clients("ann").delete("/v1/me/blocks/bob")).status_code == 204
    assert (await clients("cat").delete("/v1/me/blocks/ann")).status_code == 204
    assert await seen_by(clients, "ann", story["id"], limit=2) == ["v3", "cat", "v2", "bob", "v1"]
    assert await view_counts(clients, "ann", story["id"]) == (5, 5, 5)


async def test_hiding_from_someone_removes_their_replies_from_the_inbox(
    clients: Clients,
) -> None:
    story = await publish(clients, "ann", "reply to me", audience="public")
    for user, text in [("bob", "from bob"), ("cat", "from cat")]:
        r = await clients(user).post(f"/v1/stories/{story['id']}/replies", json={"text": text})
        assert r.status_code == 201
    r = await clients("bob").post(f"/v1/stories/{story['id']}/reactions", json={"emoji": "🔥"})
    assert r.status_code == 201
    assert (await clients("bob").post(f"/v1/stories/{story['id']}/seen")).status_code == 204

    def senders(inbox: httpx.Response) -> list[str]:
        return [i["from_user"] for i in inbox.json()["items"]]

    ann = clients("ann")
    assert senders(await ann.get("/v1/stories/inbox")) == ["bob", "cat", "bob"]
    assert (await ann.put("/v1/me/story-hidden/bob")).status_code == 204
    assert senders(await ann.get("/v1/stories/inbox")) == ["cat"]
    # bob did see the story before being hidden from: he stays in the seen-by list.
    assert await seen_by(clients, "ann", story["id"]) == ["bob"]
    assert (await ann.delete("/v1/me/story-hidden/bob")).status_code == 204
    assert senders(await ann.get("/v1/stories/inbox")) == ["bob", "cat", "bob"]


async def test_mute_only_leaves_the_tray(clients: Clients) -> None:
    await follow(clients, "bob", "ann")
    await follow(clients, "bob", "cat")
    story = await publish(clients, "ann", "muted soon")
    await publish(clients, "cat", "still here")
    bob = clients("bob")
    assert (await bob.put("/v1/me/story-mutes/ann")).status_code == 204
    assert (await bob.get("/v1/me/story-mutes")).json() == {"users": ["ann"], "next_cursor": None}
    assert [e["author"] for e in (await bob.get("/v1/stories/tray")).json()["entries"]] == ["cat"]
    # Muting is not blocking: the story itself stays reachable, and the follow stays.
    assert (await bob.get(f"/v1/stories/{story['id']}")).status_code == 200
    assert (await bob.get("/v1/users/bob/following")).json()["users"] == ["cat", "ann"]
    assert (await bob.delete("/v1/me/story-mutes/ann")).status_code == 204
    authors = {e["author"] for e in (await bob.get("/v1/stories/tray")).json()["entries"]}
    assert authors == {"ann", "cat"}


async def test_delete(clients: Clients, server: LiveServer, redis: Redis) -> None:
    await follow(clients, "bob", "ann")
    story = await publish(clients, "ann", "regret")
    sid = story["id"]
    await clients("bob").post(f"/v1/stories/{sid}/seen")
    await clients("bob").post(f"/v1/stories/{sid}/replies", json={"text": "hm"})
    r = await clients("bob").delete(f"/v1/stories/{sid}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_author"
    assert (await clients("eve").delete(f"/v1/stories/{sid}")).status_code == 404

    assert (await clients("ann").delete(f"/v1/stories/{sid}")).status_code == 204
    for user in ["ann", "bob"]:
        assert (await clients(user).get(f"/v1/stories/{sid}")).status_code == 404
    assert (await clients("bob").get("/v1/stories/tray")).json() == {"entries": []}
    assert (await clients("ann").get("/v1/stories/inbox")).json()["items"] == []
    assert (await clients("ann").delete(f"/v1/stories/{sid}")).status_code == 404
    assert await story_data_keys(redis, server) == []

    # A reply that was being written while the story was deleted stays out of the inbox.
    store = StoryStore(
        redis,
        Keys(server.settings.key_prefix),
        60,
        Graph(redis, Keys(server.settings.key_prefix), SystemClock()),
        SystemClock(),
    )
    late = InboxItem("late-reply-00001", "reply", sid, "bob", time.time(), time.time() + 60, "hm")
    await store.add_inbox_item("ann", late)
    assert (await clients("ann").get("/v1/stories/inbox")).json()["items"] == []


async def test_reply_text_follows_the_same_rule(clients: Clients, server: LiveServer) -> None:
    limit = server.settings.max_story_text
    story = await publish(clients, "ann", "reply", audience="public")
    bob = clients("bob")
    url = f"/v1/stories/{story['id']}/replies"
    r = await bob.post(url, json={"text": " " + "r" * limit + "\n"})
    assert r.status_code == 201 and r.json()["text"] == "r" * limit
    for text, code in [("r" * (limit + 1), "text_too_long"), (" \n ", "empty_text")]:
        r = await bob.post(url, json={"text": text})
        assert (r.status_code, r.json()["error"]["code"]) == (422, code)

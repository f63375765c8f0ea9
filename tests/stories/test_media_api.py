"""Photo and video stories over HTTP: uploads, signed media URLs, and bad uploads that are
refused with a clear 4xx and leave nothing behind (no blob, no Redis key)."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis

from stories import signing
from tests.stories import samples
from tests.stories.conftest import (
    Clients,
    follow,
    media_files,
    path_of,
    story_data_keys,
    upload,
)
from tests.support import SECRET, LiveServer, token


async def test_photo_story(clients: Clients, server: LiveServer, anon: httpx.AsyncClient) -> None:
    await follow(clients, "bob", "ann")
    r = await upload(
        clients("ann"),
        samples.jpeg((64, 32), orientation=6, gps=True),
        caption=" at the beach ",
        audience="followers",
        allow_replies="false",
    )
    assert r.status_code == 201, r.text
    story = r.json()
    assert (story["kind"], story["caption"], story["allow_replies"]) == (
        "photo",
        "at the beach",
        False,
    )
    m = story["media"]
    assert (m["content_type"], m["width"], m["height"], m["duration"]) == (
        "image/jpeg",
        32,
        64,
        None,
    )
    assert m["url"].startswith(server.url + "/v1/stories/") and "sig=" in m["url"]

    # The URL works without a token, like an <img src>; the bytes are the cleaned image.
    full = await anon.get(path_of(m["url"]))
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
    assert full.headers["x-content-type-options"] == "nosniff"
    assert "private" in full.headers["cache-control"]
    with Image.open(io.BytesIO(full.content)) as img:
        assert img.size == (32, 64) and dict(img.getexif()) == {}
    thumb = await anon.get(path_of(m["thumbnail_url"]))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

    # A follower gets URLs of their own for the same story.
    seen = (await clients("bob").get(f"/v1/stories/{story['id']}")).json()
    assert (await anon.get(path_of(seen["media"]["url"]))).status_code == 200
    assert len(media_files(server)) == 2


async def test_video_story(clients: Clients, anon: httpx.AsyncClient) -> None:
    r = await upload(clients("ann"), samples.video(2.0, "webm"), "clip.webm", "video/webm")
    assert r.status_code == 201, r.text
    m = r.json()["media"]
    assert (r.json()["kind"], m["content_type"], m["width"], m["height"]) == (
        "video",
        "video/webm",
        96,
        64,
    )
    assert m["duration"] == pytest.approx(2.0, abs=0.3)
    video = await anon.get(path_of(m["url"]))
    assert video.status_code == 200 and video.headers["content-type"] == "video/webm"
    assert video.content[:4] == b"\x1a\x45\xdf\xa3"  # EBML
    # Browsers seek with range requests.
    part = await anon.get(path_of(m["url"]), headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and len(part.content) == 10
    poster = await anon.get(path_of(m["thumbnail_url"]))
    assert poster.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(poster.content)).size == (96, 64)


async def test_media_of_a_hidden_story_is_404(
    clients: Clients, server: LiveServer, anon: httpx.AsyncClient
) -> None:
    await follow(clients, "bob", "ann")
    r = await upload(clients("ann"), samples.jpeg(), audience="close_friends")
    story = r.json()
    sid = story["id"]
    # bob follows but is not a close friend: no story, no media URL.
    assert (await clients("bob").get(f"/v1/stories/{sid}")).status_code == 404
    assert (await clients("bob").get("/v1/users/ann/stories")).json() == {"stories": []}
    # Guessing or forging a URL does not help: only a signature the server issued works.
    url = story["media"]["url"]
    query = parse_qs(urlsplit(url).query)
    forged = [
        f"/v1/stories/{sid}/media/full?exp={query['exp'][0]}&sig=AAAA",
        f"/v1/stories/{sid}/media/full?exp={int(query['exp'][0]) + 600}&sig={query['sig'][0]}",
        f"/v1/stories/{sid}/media/thumb?exp={query['exp'][0]}&sig={query['sig'][0]}",
        f"/v1/stories/{sid}/media/other?exp={query['exp'][0]}&sig={query['sig'][0]}",
        f"/v1/stories/{sid}/media/full",
    ]
    for path in forged:
        r = await clients("bob").get(path)
        assert r.status_code in (404, 422), path
        if r.status_code == 404:
            assert r.json()["error"]["code"] == "media_not_found"
    # Blocking: the author's media stops being issued to the blocked user.
    await clients("ann").put("/v1/me/close-friends/bob")
    assert (await clients("bob").get(f"/v1/stories/{sid}")).status_code == 200
    await clients("ann").put("/v1/me/blocks/bob")
    assert (await clients("bob").get(f"/v1/stories/{sid}")).status_code == 404


async def test_deleted_story_media_is_gone(
    clients: Clients, server: LiveServer, anon: httpx.AsyncClient, redis: Redis
) -> None:
    r = await upload(clients("ann"), samples.jpeg())
    story = r.json()
    assert len(media_files(server)) == 2
    assert (await clients("ann").delete(f"/v1/stories/{story['id']}")).status_code == 204
    r = await anon.get(path_of(story["media"]["url"]))
    assert r.status_code == 404
    assert media_files(server) == []
    assert await story_data_keys(redis, server) == []


async def test_expired_link_of_a_live_story_is_403(
    clients: Clients, anon: httpx.AsyncClient
) -> None:
    sid = (await upload(clients("ann"), samples.jpeg())).json()["id"]
    # A link the server did sign, but whose time is up (the tests know the server secret).
    exp = int(time.time()) - 5
    sig = signing.sign(SECRET, sid, "full", exp)
    r = await anon.get(f"/v1/stories/{sid}/media/full?exp={exp}&sig={sig}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "url_expired"
    # Fetching the story again hands out a working link.
    fresh = (await clients("ann").get(f"/v1/stories/{sid}")).json()["media"]["url"]
    assert (await anon.get(path_of(fresh))).status_code == 200


BAD_UPLOADS = [
    # (name, bytes, filename, declared type, status, code)
    (
        "pdf named .jpg",
        b"%PDF-1.7\n" + b"0" * 4000,
        "cat.jpg",
        "image/jpeg",
        415,
        "unsupported_media_type",
    ),
    (
        "html named .png",
        b"<html><script>alert(1)</script></html>",
        "a.png",
        "image/png",
        415,
        "unsupported_media_type",
    ),
    (
        "zip named .mp4",
        b"PK\x03\x04" + b"\0" * 4000,
        "v.mp4",
        "video/mp4",
        415,
        "unsupported_media_type",
    ),
    ("bmp named .jpg", samples.image("BMP"), "x.jpg", "image/jpeg", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
async def test_wrong_type_behind_right_extension(
    case: tuple[str, bytes, str, str, int, str], clients: Clients, server: LiveServer, redis: Redis
) -> None:
    _, data, filename, ctype, status, code = case
    r = await upload(clients("ann"), data, filename, ctype)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    await assert_nothing_stored(clients, server, redis)


async def assert_nothing_stored(clients: Clients, server: LiveServer, redis: Redis) -> None:
    assert media_files(server) == []
    assert await story_data_keys(redis, server) == []
    assert (await clients("ann").get("/v1/users/ann/stories")).json() == {"stories": []}


async def test_truncated_uploads(clients: Clients, server: LiveServer, redis: Redis) -> None:
    png = samples.image("PNG", (300, 300))
    video = samples.video(3.0, "mp4", fps=10, size=(160, 120), noise=True)
    for data, name in [(png[: len(png) // 2], "a.png"), (video[: len(video) // 2], "v.mp4")]:
        r = await upload(clients("ann"), data, name)
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_media"), name
    await assert_nothing_stored(clients, server, redis)


async def test_pixel_bomb(clients: Clients, server: LiveServer, redis: Redis) -> None:
    r = await upload(clients("ann"), samples.pixel_bomb_png(), "bomb.png", "image/png")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "too_many_pixels")
    await assert_nothing_stored(clients, server, redis)


async def test_too_long_video(clients: Clients, server: LiveServer, redis: Redis) -> None:
    r = await upload(clients("ann"), samples.video(61.0, fps=1), "long.mp4", "video/mp4")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "video_too_long"
    assert "60" in r.json()["error"]["message"]
    await assert_nothing_stored(clients, server, redis)


async def test_too_large_upload(
    make_server: Callable[..., LiveServer], clients: Clients, redis: Redis
) -> None:
    srv = make_server(max_upload_bytes=200_000)
    big = samples.image("PNG", (600, 600))
    big += b"\0" * (250_000 - len(big))  # a valid PNG head, padded past the cap
    r = await upload(clients("ann", srv), big, "big.png", "image/png")
    assert r.status_code == 413 and r.json()["error"]["code"] == "upload_too_large"
    await assert_nothing_stored_on(clients, srv, redis)


async def assert_nothing_stored_on(clients: Clients, srv: LiveServer, redis: Redis) -> None:
    assert media_files(srv) == []
    assert await story_data_keys(redis, srv) == []


async def test_upload_cap_is_enforced_while_streaming(
    make_server: Callable[..., LiveServer], redis: Redis
) -> None:
    """No Content-Length, and the client stops sending past the cap without finishing the
    body: the server must answer 413 right there, without waiting for (or buffering) the rest."""
    srv = make_server(max_upload_bytes=100_000)
    boundary = "XyZ123"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(
        (
            "POST /v1/stories/media HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token('ann')}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    sent = 0
    chunk = head + samples.jpeg() + b"\0" * 16_000
    while sent < 200_000:  # twice the cap, then stall: the body never ends
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
        sent += len(chunk)
        chunk = b"\0" * 16_000
    response = await asyncio.wait_for(reader.read(4096), timeout=30)
    writer.close()
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"upload_too_large" in response
    assert media_files(srv) == []
    assert await story_data_keys(redis, srv) == []


async def test_malformed_uploads(clients: Clients, server: LiveServer, redis: Redis) -> None:
    ann = clients("ann")
    r = await ann.post("/v1/stories/media", json={"file": "nope"})
    assert (r.status_code, r.json()["error"]["code"]) == (415, "expected_multipart")
    r = await ann.post(
        "/v1/stories/media", data={"caption": "no file"}, files={"other": ("a", b"x")}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "missing_file")
    r = await ann.post(
        "/v1/stories/media",
        content=b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_multipart")
    r = await upload(ann, b"", "empty.jpg")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "empty_file")
    r = await upload(ann, samples.jpeg(), audience="everyone")
    assert r.status_code == 422
    r = await upload(ann, samples.jpeg(), caption="x" * (server.settings.max_story_text + 1))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "text_too_long")
    r = await upload(ann, samples.jpeg(), colour="blue")
    assert r.status_code == 422
    await assert_nothing_stored(clients, server, redis)


async def test_empty_form_fields_are_refused_as_the_schema_says(
    clients: Clients, server: LiveServer, anon: httpx.AsyncClient, redis: Redis
) -> None:
    spec = (await anon.get("/openapi.json")).json()
    form = spec["paths"]["/v1/stories/media"]["post"]["requestBody"]["content"]
    fields = form["multipart/form-data"]["schema"]["properties"]
    # The published schema is the validating model's: enums, booleans, the text rule.
    assert fields["audience"]["enum"] == ["followers", "close_friends", "public"]
    assert fields["allow_replies"]["type"] == fields["allow_reactions"]["type"] == "boolean"
    assert fields["caption"]["type"] == "string" and not re.search(
        fields["caption"]["pattern"], " \t"
    )
    # None of them allows an empty value, so the server refuses each one.
    ann = clients("ann")
    for name in ("audience", "allow_replies", "allow_reactions", "caption"):
        r = await upload(ann, samples.jpeg(), **{name: ""})
        assert r.status_code == 422, (name, r.text)
    r = await upload(ann, samples.jpeg(), caption=" \n ")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "empty_text")
    await assert_nothing_stored(clients, server, redis)
    # Leaving the fields out gives their defaults.
    r = await upload(ann, samples.jpeg())
    story = r.json()
    assert (story["audience"], story["allow_replies"], story["allow_reactions"]) == (
        "followers",
        True,
        True,
    )
    assert story["caption"] is None


async def test_a_caption_is_counted_without_the_blanks_around_it(
    clients: Clients, server: LiveServer
) -> None:
    limit = server.settings.max_story_text
    r = await upload(clients("ann"), samples.jpeg(), caption="\n " + "c" * limit + " \n")
    assert r.status_code == 201 and r.json()["caption"] == "c" * limit


async def test_refused_publishes_do_not_use_up_the_quota(
    make_server: Callable[..., LiveServer], clients: Clients, redis: Redis
) -> None:
    srv = make_server(rate_publish="2/hour", max_upload_bytes=50_000)
    ann = clients("ann", srv)
    png = samples.image("PNG", (300, 300))
    refused = [
        await upload(ann, b"not an image at all", "x.jpg"),  # 415
        await upload(ann, png[: len(png) // 2], "half.png"),  # 422
        await upload(ann, samples.jpeg(), audience="everyone"),  # 422
        await upload(ann, samples.jpeg(), caption="  "),  # 422
        await upload(ann, b"\0" * 60_000, "big.jpg"),  # 413
        await ann.post("/v1/stories", json={"text": "   "}),  # 422
        await ann.post("/v1/stories", json={"text": "x" * 501}),  # 422
    ]
    assert [r.status_code for r in refused] == [415, 422, 422, 422, 413, 422, 422]
    assert (await upload(ann, samples.jpeg())).status_code == 201
    assert (await ann.post("/v1/stories", json={"text": "second"})).status_code == 201
    r = await upload(ann, samples.jpeg())
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert (await ann.post("/v1/stories", json={"text": "third"})).status_code == 429


async def test_the_publish_quota_holds_under_concurrent_uploads(
    make_server: Callable[..., LiveServer], clients: Clients
) -> None:
    srv = make_server(rate_publish="3/hour")
    ann = clients("ann", srv)
    photo = samples.jpeg()
    results = await asyncio.gather(*(upload(ann, photo) for _ in range(8)))
    assert sorted(r.status_code for r in results) == [201] * 3 + [429] * 5
    assert len((await ann.get("/v1/users/ann/stories")).json()["stories"]) == 3

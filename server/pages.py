"""The web client's pages, each with what its link unfurls into, and the oEmbed endpoint.

Every client path (``/``, ``/rooms/<id>``, ``/stories/<author>[/<story id>]``,
``/compose``, ``/me``) answers ``static/index.html`` carrying a server-rendered title and
Open Graph / Twitter card metadata, so apps that fetch a link without running JavaScript
can draw a card; the client then routes by path with the history API. The same answer goes
to browsers and bots (no user-agent sniffing).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from rooms.control import share
from rooms.control.service import ROOMS
from server import links, story_share
from server.api import Api, Ctx
from server.errors import NotFound
from server.settings import Settings
from server.store import REDIS_DOWN
from server.unfurl import PageMeta, PageTemplate, generic, oembed, oembed_xml
from stories.api import STORIES

api = Api("share")
ROOM_PATH = re.compile(r"^/rooms/([^/]+)$")
STORY_PATH = re.compile(r"^/stories/([^/]+)/([^/]+)$")
PAGE_HEADERS = {"Cache-Control": "no-cache"}


async def room_meta(request: Request, room_id: str) -> PageMeta | None:
    facts = await share.load_facts(ROOMS.of(request).store, room_id)
    return (
        share.page_meta(facts, request.state.platform.settings.public_base_url) if facts else None
    )


async def story_meta(request: Request, author: str, story_id: str) -> PageMeta | None:
    settings: Settings = request.state.platform.settings
    now = time.time()
    store = STORIES.of(request).store
    story = await story_share.public_story(store, author, story_id, now)
    if story is None:
        return None
    base = settings.public_base_url
    thumb = story_share.thumbnail_url(
        story, base, settings.secret_key, settings.media_url_ttl_seconds, now
    )
    return story_share.story_meta(story, base, thumb, now)


class Pages:
    """The client's paths, rendering ``index.html`` (read once) with each page's metadata."""

    def __init__(self, index_html: Path) -> None:
        self.template = PageTemplate(index_html.read_text(encoding="utf-8"))

    def routes(self) -> list[Route]:
        return [
            Route("/", self.plain),
            Route("/compose", self.plain),
            Route("/me", self.plain),
            Route("/rooms/{room_id}", self.room),
            Route("/stories/{author}", self.author_stories),
            Route("/stories/{author}/{story_id}", self.story),
        ]

    def render(self, request: Request, meta: PageMeta, status: int = 200) -> Response:
        html = self.template.render(meta, request.state.platform.settings.public_base_url)
        headers = dict(PAGE_HEADERS)
        if status == 503:
            headers["Retry-After"] = str(request.state.platform.settings.redis_retry_after)
        return HTMLResponse(html, status_code=status, headers=headers)

    @staticmethod
    def url(request: Request, path: str) -> str:
        return links.absolute(request.state.platform.settings.public_base_url, path)

    async def plain(self, request: Request) -> Response:
        return self.render(request, generic(self.url(request, request.url.path)))

    async def author_stories(self, request: Request) -> Response:
        path = "/stories/" + quote(request.path_params["author"], safe="")
        return self.render(request, generic(self.url(request, path), indexable=False))

    async def room(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        canonical = self.url(request, links.room_path(room_id))
        try:
            meta = await room_meta(request, room_id)
        except REDIS_DOWN:  # the client still loads; it says what is wrong
            return self.render(request, generic(canonical), 503)
        if meta is None:
            return self.render(request, generic(canonical, indexable=False), 404)
        return self.render(request, meta)

    async def story(self, request: Request) -> Response:
        author, story_id = request.path_params["author"], request.path_params["story_id"]
        canonical = self.url(request, links.story_path(author, story_id))
        try:
            meta = await story_meta(request, author, story_id)
        except REDIS_DOWN:
            return self.render(request, generic(canonical), 503)
        return self.render(request, meta or story_share.not_shared(canonical))


# ---- oEmbed (https://oembed.com) ----


class OEmbedQuery(BaseModel):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    format: Literal["json", "xml"] = "json"
    maxwidth: Annotated[int, Field(ge=1, le=100_000)] | None = None
    maxheight: Annotated[int, Field(ge=1, le=100_000)] | None = None


def error_doc(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorResponse"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class OEmbed(BaseModel):
    version: str
    type: str
    title: str
    provider_name: str
    provider_url: str
    author_name: str | None = None
    cache_age: int | None = None
    thumbnail_url: str | None = None
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None


def local_path(url: str, base_url: str) -> str | None:
    """The app path a URL of this deployment points at (old ``/#/rooms/<id>`` links too)."""
    try:
        target, base = urlsplit(url), urlsplit(base_url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if target.scheme not in ("http", "https") or target.netloc != base.netloc:
        return None
    prefix = base.path.rstrip("/")
    path = target.path or "/"
    if prefix:
        if path != prefix and not path.startswith(prefix + "/"):
            return None
        path = path[len(prefix) :] or "/"
    if path == "/" and target.fragment.startswith("/"):
        path = target.fragment.split("?", 1)[0]
    return unquote(path)


async def resolve(request: Request, url: str) -> PageMeta | None:
    path = local_path(url, request.state.platform.settings.public_base_url)
    if path is None:
        return None
    if m := ROOM_PATH.match(path):
        return await room_meta(request, m.group(1))
    if m := STORY_PATH.match(path):
        return await story_meta(request, m.group(1), m.group(2))
    return None


@api.get(
    "/oembed",
    auth=False,
    responses={
        200: {
            "description": "An oEmbed 1.0 link document",
            "content": {
                "application/json": {"schema": OEmbed.model_json_schema()},
                "text/xml": {},
            },
        },
        404: error_doc("Not a room or public story link of this server"),
    },
)
async def get_oembed(ctx: Ctx, query: OEmbedQuery) -> Response:
    """oEmbed for room and public story links (``?url=<share link>&format=json|xml``)."""
    meta = await resolve(ctx.request, query.url)
    if meta is None:
        raise NotFound("nothing to embed at this URL", code="not_found")
    base = ctx.settings.public_base_url
    doc = OEmbed.model_validate(oembed(meta, base, query.maxwidth, query.maxheight))
    body = doc.model_dump(exclude_none=True)
    headers = {"Cache-Control": f"public, max-age={meta.cache_age or 60}"}
    if query.format == "xml":
        return Response(oembed_xml(body), media_type="text/xml", headers=headers)
    return JSONResponse(body, headers=headers)

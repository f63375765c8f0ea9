"""The web client's pages, each with what its link unfurls into.

Every client path (``/``, ``/rooms/<id>``, ``/stories/<author>[/<story id>]``,
``/compose``, ``/me``) answers ``static/index.html`` carrying a server-rendered title and
Open Graph / Twitter card metadata, so apps that fetch a link without running JavaScript
can draw a card; the client then routes by path with the history API. The same answer goes
to browsers and bots (no user-agent sniffing).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from server import links
from server.settings import Settings
from server.share.api import SHARE
from server.store import REDIS_DOWN
from server.unfurl import PageMeta, PageTemplate, generic
from stories.share import not_shared

PAGE_HEADERS = {"Cache-Control": "no-cache"}


def settings_of(request: Request) -> Settings:
    settings: Settings = request.state.platform.settings
    return settings


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
        settings = settings_of(request)
        html = self.template.render(meta, settings.public_base_url)
        headers = dict(PAGE_HEADERS)
        if status == 503:
            headers["Retry-After"] = str(settings.redis_retry_after)
        return HTMLResponse(html, status_code=status, headers=headers)

    @staticmethod
    def url(request: Request, path: str) -> str:
        return links.absolute(settings_of(request).public_base_url, path)

    async def plain(self, request: Request) -> Response:
        return self.render(request, generic(self.url(request, request.url.path)))

    async def author_stories(self, request: Request) -> Response:
        path = "/stories/" + quote(request.path_params["author"], safe="")
        return self.render(request, generic(self.url(request, path), indexable=False))

    async def room(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        canonical = self.url(request, links.room_path(room_id))
        try:
            meta = await SHARE.of(request).room_meta(room_id)
        except REDIS_DOWN:  # the client still loads; it says what is wrong
            return self.render(request, generic(canonical), 503)
        if meta is None:
            return self.render(request, generic(canonical, indexable=False), 404)
        return self.render(request, meta)

    async def story(self, request: Request) -> Response:
        author, story_id = request.path_params["author"], request.path_params["story_id"]
        canonical = self.url(request, links.story_path(author, story_id))
        try:
            meta = await SHARE.of(request).story_meta(author, story_id)
        except REDIS_DOWN:
            return self.render(request, generic(canonical), 503)
        return self.render(request, meta or not_shared(canonical))

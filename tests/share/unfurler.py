"""Fetch a link the way a link unfurler does (a bot user agent, no JavaScript) and read the
page's metadata with the standard library's HTML parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx

BOTS = (
    "Twitterbot/1.0",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "WhatsApp/2.23.20.0",
)


@dataclass
class Page:
    status: int
    title: str = ""
    meta: dict[str, str] = field(default_factory=dict)  # property/name -> content
    links: list[dict[str, str]] = field(default_factory=list)
    scripts: list[dict[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # every start tag, in order
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def link(self, rel: str) -> dict[str, str] | None:
        return next((attrs for attrs in self.links if attrs.get("rel") == rel), None)


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.page.tags.append(tag)
        if tag == "meta" and ("property" in a or "name" in a):
            key = a.get("property") or a["name"]
            assert key not in self.page.meta, f"duplicate meta {key}"
            self.page.meta[key] = a.get("content", "")
        elif tag == "link":
            self.page.links.append(a)
        elif tag == "script":
            self.page.scripts.append(a)
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.page.title += data


async def unfurl(client: httpx.AsyncClient, url: str, bot: str = BOTS[0]) -> Page:
    r = await client.get(url, headers={"User-Agent": bot, "Accept": "text/html"})
    page = Page(r.status_code, content_type=r.headers.get("content-type", ""))
    page.headers = dict(r.headers)
    _Reader(page).feed(r.text)
    return page

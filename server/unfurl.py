"""Link-preview metadata for the web client's pages: Open Graph, Twitter cards, oEmbed.

Pure functions: callers gather the facts (a room, a public story) into a ``PageMeta`` and
these render it. Every value is escaped with ``html.escape``, so a title such as
``"><script>`` stays text in an attribute or in ``<title>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

SITE_NAME = "Ephemera"
SITE_DESCRIPTION = "Ephemeral stories and live audio rooms."
DESCRIPTION_MAX = 300
# Characters XML 1.0 cannot carry at all (a room title may hold control characters).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Image:
    url: str
    alt: str
    width: int | None = None
    height: int | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class PageMeta:
    """What a page says about itself to a link unfurler."""

    title: str
    description: str
    url: str  # canonical, absolute
    image: Image | None = None
    author: str | None = None  # user id of the room's host or the story's author
    indexable: bool = True
    oembed: bool = False  # the page has an oEmbed document (/oembed?url=<url>)
    cache_age: int | None = None  # seconds an oEmbed consumer may keep the answer

    @property
    def page_title(self) -> str:
        return self.title if self.title == SITE_NAME else f"{self.title} · {SITE_NAME}"


def generic(url: str, *, indexable: bool = True) -> PageMeta:
    """The site's own card: for the home page, and for anything that must not say more."""
    return PageMeta(SITE_NAME, SITE_DESCRIPTION, url, indexable=indexable)


def shorten(text: str, limit: int = DESCRIPTION_MAX) -> str:
    """``text`` on one line, cut at a word boundary with an ellipsis past ``limit``."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


def _meta_tags(meta: PageMeta) -> list[tuple[str, str, str]]:
    image = meta.image
    tags = [
        ("name", "description", meta.description),
        ("property", "og:site_name", SITE_NAME),
        ("property", "og:type", "website"),
        ("property", "og:title", meta.title),
        ("property", "og:description", meta.description),
        ("property", "og:url", meta.url),
        ("name", "twitter:card", "summary_large_image" if image else "summary"),
        ("name", "twitter:title", meta.title),
        ("name", "twitter:description", meta.description),
    ]
    if not meta.indexable:
        tags.append(("name", "robots", "noindex"))
    if image is not None:
        tags += [("property", "og:image", image.url), ("property", "og:image:alt", image.alt)]
        if image.content_type:
            tags.append(("property", "og:image:type", image.content_type))
        if image.width and image.height:
            tags.append(("property", "og:image:width", str(image.width)))
            tags.append(("property", "og:image:height", str(image.height)))
        tags += [("name", "twitter:image", image.url), ("name", "twitter:image:alt", image.alt)]
    return tags


def oembed_link(base_url: str, page_url: str) -> str:
    return f"{base_url.rstrip('/')}/oembed?{urlencode({'url': page_url, 'format': 'json'})}"


def head_tags(meta: PageMeta, base_url: str) -> str:
    """The ``<meta>`` and ``<link>`` elements describing the page, one per line."""
    lines = [
        f'<meta {kind}="{escape(key)}" content="{escape(value)}">'
        for kind, key, value in _meta_tags(meta)
    ]
    lines.append(f'<link rel="canonical" href="{escape(meta.url)}">')
    if meta.oembed:
        href = escape(oembed_link(base_url, meta.url))
        lines.append(
            f'<link rel="alternate" type="application/json+oembed" href="{href}"'
            f' title="{escape(meta.title)}">'
        )
    return "\n  ".join(lines)


class PageTemplate:
    """The web client's ``index.html`` with a slot for a page's title and metadata."""

    TITLE = f"<title>{SITE_NAME}</title>"
    SLOT = "<!--share-meta-->"

    def __init__(self, html: str) -> None:
        if html.count(self.TITLE) != 1 or html.count(self.SLOT) != 1:
            raise ValueError(f"index.html needs one {self.TITLE} and one {self.SLOT}")
        self.html = html

    def render(self, meta: PageMeta, base_url: str) -> str:
        title = f"<title>{escape(meta.page_title)}</title>"
        return self.html.replace(self.TITLE, title).replace(self.SLOT, head_tags(meta, base_url))


def oembed(
    meta: PageMeta, base_url: str, maxwidth: int | None, maxheight: int | None
) -> dict[str, Any]:
    """An oEmbed 1.0 ``link`` document; the image is offered only if it fits the maxima."""
    doc: dict[str, Any] = {
        "version": "1.0",
        "type": "link",
        "title": meta.title,
        "provider_name": SITE_NAME,
        "provider_url": base_url.rstrip("/") + "/",
    }
    if meta.author is not None:
        doc["author_name"] = meta.author
    if meta.cache_age is not None:
        doc["cache_age"] = meta.cache_age
    image = meta.image
    if image is not None and image.width and image.height:
        fits = (maxwidth or image.width) >= image.width and (
            maxheight or image.height
        ) >= image.height
        if fits:
            doc.update(
                thumbnail_url=image.url,
                thumbnail_width=image.width,
                thumbnail_height=image.height,
            )
    return doc


def oembed_xml(doc: dict[str, Any]) -> bytes:
    """The same document in oEmbed's XML form: ``<oembed><title>...</title>...</oembed>``."""
    root = ElementTree.Element("oembed")
    for key, value in doc.items():
        ElementTree.SubElement(root, key).text = NOT_XML.sub("", str(value))
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)

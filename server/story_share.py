"""What a story's share link (``/stories/<author>/<story id>``) unfurls into.

Stories are not public: only a live story whose audience is ``public`` unfurls (author,
kind, text or caption, and its thumbnail through a signed media URL). Anything else (another
audience, an expired or deleted story, another author, no such story) gets the same generic
page, so a link never tells whether a private story exists.
"""

from __future__ import annotations

from server import links
from server.unfurl import SITE_NAME, Image, PageMeta, generic, shorten
from stories import rules, signing
from stories.model import Story
from stories.store import StoryStore

KIND = {"text": "Story", "photo": "Photo story", "video": "Video story"}


async def public_story(store: StoryStore, author: str, story_id: str, now: float) -> Story | None:
    """The live story if it is public and by ``author``; None in every other case."""
    story = await store.load(story_id, now)
    if story is None or story.author != author or story.audience != "public":
        return None
    return story


def thumbnail_url(story: Story, base_url: str, secret: str, ttl: int, now: float) -> str | None:
    """A signed URL of the story's thumbnail (the poster frame of a video), like the API's."""
    if story.media is None or "thumb" not in story.media.blobs:
        return None
    exp = rules.signed_url_expiry(now, story.expires_at, ttl)
    sig = signing.sign(secret, story.id, "thumb", exp)
    return links.absolute(base_url, f"/v1/stories/{story.id}/media/thumb?exp={exp}&sig={sig}")


def story_meta(story: Story, base_url: str, image_url: str | None, now: float) -> PageMeta:
    kind = KIND.get(story.kind, "Story")
    title = f"{kind} by @{story.author}"
    words = story.text or story.caption
    return PageMeta(
        title=title,
        description=shorten(words) if words else f"{title} on {SITE_NAME}",
        url=links.absolute(base_url, links.story_path(story.author, story.id)),
        image=Image(image_url, title) if image_url else None,
        author=story.author,
        indexable=False,  # gone within a day: not for search engines
        oembed=True,
        cache_age=max(0, int(story.expires_at - now)),
    )


def not_shared(url: str) -> PageMeta:
    """The one answer for every story link that does not unfurl."""
    return generic(url, indexable=False)

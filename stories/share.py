"""What a story's share link (``/stories/<author>/<story id>``) unfurls into.

Stories are not public: only a live story whose audience is ``public`` unfurls (author,
kind, text or caption, and its thumbnail through a signed media URL); the service decides
which (``StoriesService.shared``). Anything else (another audience, an expired or deleted
story, another author, no such story) gets the same generic page, so a link never tells
whether a private story exists.
"""

from __future__ import annotations

from server import links
from server.unfurl import SITE_NAME, Image, PageMeta, generic, shorten
from stories.model import StoryView
from stories.signing import MediaLinks

KIND = {"text": "Story", "photo": "Photo story", "video": "Video story"}


def page_meta(view: StoryView, base_url: str, media: MediaLinks) -> PageMeta:
    """The card of a shared story; its image is the thumbnail (a video's poster frame)."""
    story = view.story
    kind = KIND.get(story.kind, "Story")
    title = f"{kind} by @{story.author}"
    words = story.text or story.caption
    has_thumb = story.media is not None and "thumb" in story.media.blobs
    return PageMeta(
        title=title,
        description=shorten(words) if words else f"{title} on {SITE_NAME}",
        url=links.absolute(base_url, links.story_path(story.author, story.id)),
        image=Image(media.url(story, "thumb", view.at), title) if has_thumb else None,
        author=story.author,
        indexable=False,  # gone within a day: not for search engines
        oembed=True,
        cache_age=max(0, int(story.expires_at - view.at)),
    )


def not_shared(url: str) -> PageMeta:
    """The one answer for every story link that does not unfurl."""
    return generic(url, indexable=False)

"""Stories as the API shows them: domain objects in, wire models out, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from server.settings import Settings
from stories import media, rules
from stories.model import InboxItem, StoryView, ViewerPage
from stories.rules import Cursor, TrayEntry
from stories.schemas import (
    ConfigOut,
    InboxItemOut,
    InboxOut,
    MediaOut,
    StoryOut,
    TrayEntryOut,
    TrayOut,
    ViewerOut,
    ViewersOut,
)
from stories.signing import MediaLinks


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def next_cursor(cursor: Cursor | None) -> str | None:
    return rules.encode_cursor(*cursor) if cursor else None


def media_links(settings: Settings) -> MediaLinks:
    """How the API hands out media URLs: absolute when the deployment says where it is
    reachable (``ephemera serve`` does); otherwise relative, which ``<img src>`` resolves
    against the page's own origin."""
    base = settings.public_base_url if "public_base_url" in settings.model_fields_set else ""
    return MediaLinks(settings.secret_key, settings.media_url_ttl_seconds, base)


def media_out(view: StoryView, links: MediaLinks) -> MediaOut | None:
    story = view.story
    if story.media is None:
        return None
    return MediaOut(
        url=links.url(story, "full", view.at),
        thumbnail_url=links.url(story, "thumb", view.at),
        content_type=story.media.content_type,
        width=story.media.width,
        height=story.media.height,
        duration=story.media.duration,
    )


def story_out(view: StoryView, links: MediaLinks) -> StoryOut:
    story = view.story
    return StoryOut(
        id=story.id,
        author=story.author,
        kind=story.kind,
        text=story.text,
        background=story.background,
        caption=story.caption,
        media=media_out(view, links),
        audience=story.audience,
        allow_replies=story.allow_replies,
        allow_reactions=story.allow_reactions,
        created_at=ts(story.created_at),
        expires_at=ts(story.expires_at),
        seen=view.seen,
        view_count=view.view_count,
    )


def item_out(item: InboxItem) -> InboxItemOut:
    return InboxItemOut(
        id=item.id,
        kind=item.kind,
        story_id=item.story_id,
        from_user=item.from_user,
        text=item.text,
        emoji=item.emoji,
        created_at=ts(item.created_at),
    )


def inbox_out(items: list[InboxItem], nxt: Cursor | None) -> InboxOut:
    return InboxOut(items=[item_out(i) for i in items], next_cursor=next_cursor(nxt))


def tray_out(entries: list[TrayEntry]) -> TrayOut:
    return TrayOut(
        entries=[
            TrayEntryOut(
                author=e.author,
                story_count=e.story_count,
                unseen_count=e.unseen_count,
                all_seen=e.all_seen,
                start_story_id=e.start_story_id,
                latest_at=ts(e.latest_at),
            )
            for e in entries
        ]
    )


def viewers_out(page: ViewerPage) -> ViewersOut:
    return ViewersOut(
        viewers=[ViewerOut(user_id=u, seen_at=ts(t)) for u, t in page.viewers],
        view_count=page.view_count,
        next_cursor=next_cursor(page.next_cursor),
    )


def config_out(s: Settings) -> ConfigOut:
    """Limits and choices a client needs to build the publish screen."""
    return ConfigOut(
        allowed_reactions=list(rules.ALLOWED_REACTIONS),
        max_text=s.max_story_text,
        ttl_seconds=s.story_ttl_seconds,
        max_video_seconds=s.max_video_seconds,
        max_upload_bytes=s.max_upload_bytes,
        backgrounds=list(rules.BACKGROUNDS),
        audiences=list(rules.AUDIENCES),
        image_types=media.IMAGE_TYPES,
        video_types=media.VIDEO_TYPES,
    )


def media_headers(max_age: int) -> dict[str, str]:
    """A media file's headers: private caching up to the URL's or story's end, and no
    sniffing or scripting of an uploaded file."""
    return {
        "Cache-Control": f"private, max-age={max_age}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }

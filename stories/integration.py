"""Webhook events of stories (docs/webhooks.md): a story published or expired, a reply or a
reaction. Plain code, no I/O; the store appends them in the transaction that makes them true.
"""

from __future__ import annotations

from server.webhooks.events import (
    Envelope,
    StoryExpired,
    StoryPublished,
    StoryReaction,
    StoryReply,
    at,
)
from stories.model import InboxItem, Story


def published(story: Story) -> StoryPublished:
    data = {
        "story_id": story.id,
        "author": story.author,
        "kind": story.kind,
        "audience": story.audience,
        "created_at": at(story.created_at),
        "expires_at": at(story.expires_at),
        "text": story.text,
        "caption": story.caption,
        "content_type": story.media.content_type if story.media else None,
    }
    return StoryPublished.model_validate({"timestamp": at(story.created_at), "data": data})


def expired(story: Story, now: float) -> StoryExpired:
    data = {"story_id": story.id, "author": story.author, "expired_at": at(story.expires_at)}
    return StoryExpired.model_validate({"timestamp": at(now), "data": data})


def answered(author: str, item: InboxItem) -> Envelope:
    """A reply or a reaction to one of ``author``'s stories."""
    data = {
        "story_id": item.story_id,
        "author": author,
        "item_id": item.id,
        "from_user": item.from_user,
        "created_at": at(item.created_at),
    }
    when = at(item.created_at)
    if item.kind == "reply":
        return StoryReply.model_validate({"timestamp": when, "data": {**data, "text": item.text}})
    return StoryReaction.model_validate({"timestamp": when, "data": {**data, "emoji": item.emoji}})

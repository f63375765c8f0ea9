"""Which page a share link names and what it unfurls into. Rooms and stories each describe
their own links (``rooms.control.share``, ``stories.share``); this asks the right one."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from rooms.control import share as room_share
from rooms.control.store import RoomStore
from server.settings import Settings
from server.unfurl import PageMeta
from stories import share as story_share
from stories.service import StoriesService
from stories.signing import MediaLinks

ROOM_PATH = re.compile(r"^/rooms/([^/]+)$")
STORY_PATH = re.compile(r"^/stories/([^/]+)/([^/]+)$")


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


class ShareService:
    def __init__(self, stories: StoriesService, rooms: RoomStore, settings: Settings) -> None:
        self.stories = stories
        self.rooms = rooms
        self.settings = settings
        self.base_url = settings.public_base_url
        # Always absolute: a card is read far from this server.
        self.media = MediaLinks(settings.secret_key, settings.media_url_ttl_seconds, self.base_url)

    async def room_meta(self, room_id: str) -> PageMeta | None:
        """A room's card; None if there is no such room (any more)."""
        facts = await room_share.load_facts(self.rooms, room_id)
        return room_share.page_meta(facts, self.base_url) if facts else None

    async def story_meta(self, author: str, story_id: str) -> PageMeta | None:
        """A live public story's card; None for every other story link."""
        view = await self.stories.shared(author, story_id)
        return story_share.page_meta(view, self.base_url, self.media) if view else None

    async def resolve(self, url: str) -> PageMeta | None:
        """What a link of this deployment unfurls into; None if it is no room or story link."""
        path = local_path(url, self.base_url)
        if path is None:
            return None
        if m := ROOM_PATH.match(path):
            return await self.room_meta(m.group(1))
        if m := STORY_PATH.match(path):
            return await self.story_meta(m.group(1), m.group(2))
        return None

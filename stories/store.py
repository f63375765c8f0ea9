"""Stories in Redis: key names, Lua scripts and pipelines. Decisions are left to ``rules``.

Keys (under the configured prefix; ``{...}`` are cluster hash tags):

* ``st:{<id>}``            hash: the story (``Story.to_hash``); EXPIREAT expiry + grace
* ``st:{<id>}:viewers``    zset viewer -> first seen time; same EXPIREAT
* ``st:{<id>}:items``      set of inbox item ids about this story; same EXPIREAT
* ``st:by:{<author>}``     zset story id -> expires_at (the author's live stories)
* ``st:meta:{<author>}``   hash story id -> "created expires audience" (what the tray needs)
* ``st:seen:{<viewer>}``   zset story id -> its expiry (stories the viewer has seen)
* ``st:due``               lease table (``server.leases``): story id -> expiry in ms, or the
                           end of the sweeper's lease once claimed
* ``st:inbox:{<author>}``  zset item id -> created time
* ``st:item:<item id>``    hash: one reply or reaction; EXPIREAT its story's expiry + grace
* ``st:mutes:{<user>}``    zset author -> time (authors whose stories leave the user's tray)
* ``st:hidden:{<author>}`` zset user -> time (users the author hides stories from)
* ``st:hidden_from:{<user>}`` zset author -> time (the same list, read the other way)
* ``st:tray:{<viewer>}``   zset tray member -> expiry: refs fanned out to the viewer
                           (``model.tray_member``); EXPIREAT the newest ref's expiry + grace
* ``st:pull:{<viewer>}``   zset pulled author -> last interaction (follow or story seen)
* ``st:mode:{<author>}``   string ``promoting`` | ``pull`` (absent: fanned out)
* ``st:gone:{gone-<k>}``   zset story id -> expiry: stories deleted before they expired,
                           spread over ``GONE_SHARDS`` keys by the id's CRC-32
* ``st:fanout:{fanout-<k>}`` stream of fan-out batches (``stories.fanout``)
* channel ``st:events:{<viewer>}``: the viewer's live tray events (sharded pub/sub)
* channel ``st:posts:{<author>}``: a pulled author's new and deleted stories, to live trays

Hash slots: everything tagged ``{<user>}`` lives in that user's slot, so a viewer's tray,
pull set, seen set, mutes, hide list and events channel share one; ``{<id>}`` is the
story's slot; each ``gone`` and ``fanout`` shard is a slot of its own. Every Lua script and
MULTI touches one slot; pipelines that span slots are plain pipelines.

The per-story keys and the per-author/per-viewer indexes get EXPIREATs (pushed later as newer
stories arrive); ``st:due`` and the ``gone`` shards are global indexes whose entries carry
their expiry as the score and are trimmed by the sweeper.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from server.clock import Clock
from server.graph.store import Graph, user_page
from server.leases import LeaseTable, ms
from server.store import Keys
from server.webhooks.outbox import Outbox, lua_append
from stories import integration, rules
from stories.model import InboxItem, Story, ViewerPage, meta_value, ref_of
from stories.rules import Cursor, Relation

STORY_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")
# Tombstones of deleted stories are spread over this many keys (one hash slot each).
GONE_SHARDS = 4


def gone_shard(story_id: str) -> int:
    return zlib.crc32(story_id.encode()) % GONE_SHARDS


# Adds a story to its author's index and tray metadata unless the author already has
# ``max`` live stories; expired entries are trimmed on the way. Both keys share the
# author's hash tag, so the script is atomic and cluster-safe. KEYS[3...] are webhook
# outbox streams: the story.published event is appended with the story (ARGV[7...]).
RESERVE = (
    """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
for i = 1, 2 do
  if redis.call('EXPIRETIME', KEYS[i]) < tonumber(ARGV[6]) then
    redis.call('EXPIREAT', KEYS[i], ARGV[6])
  end
end
"""
    + lua_append(3, 7)
    + "return 1"
)

# HSET only if the story still exists: a plain HSET racing a delete would recreate the key
# without a TTL.
UPDATE_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


def _extend(p: Any, key: str, expire_at: int) -> None:
    """Queue an EXPIREAT that only ever moves the key's expiry later (NX sets the first one)."""
    p.expireat(key, expire_at, nx=True)
    p.expireat(key, expire_at, gt=True)


def _mapping(h: dict[str, str]) -> dict[Any, Any]:
    """redis-py's ``hset`` typing wants a wider key type than ``dict[str, str]``."""
    return h


class StoryStore:
    """Every read is as of ``clock``'s now: Redis expires keys lazily, so reads filter on it."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        grace_seconds: int,
        graph: Graph,
        clock: Clock,
        outbox: Outbox | None = None,
    ) -> None:
        self.r = redis
        self.outbox = outbox or Outbox(keys)
        self.k = keys
        self.grace = grace_seconds
        self.clock = clock
        # The graph owns its key names; we only read them, in our own pipelines.
        self.graph = graph
        self._reserve = redis.register_script(RESERVE)
        self.due = LeaseTable(redis, self.due_key())
        self._update = redis.register_script(UPDATE_IF_EXISTS)

    # --- key names ---------------------------------------------------------------------

    def story_key(self, sid: str) -> str:
        return self.k("st", "{" + sid + "}")

    def viewers_key(self, sid: str) -> str:
        return self.k("st", "{" + sid + "}", "viewers")

    def items_key(self, sid: str) -> str:
        return self.k("st", "{" + sid + "}", "items")

    def by_author_key(self, author: str) -> str:
        return self.k("st", "by", "{" + author + "}")

    def meta_key(self, author: str) -> str:
        return self.k("st", "meta", "{" + author + "}")

    def seen_key(self, viewer: str) -> str:
        return self.k("st", "seen", "{" + viewer + "}")

    def due_key(self) -> str:
        return self.k("st", "due")

    def inbox_key(self, author: str) -> str:
        return self.k("st", "inbox", "{" + author + "}")

    def item_key(self, item_id: str) -> str:
        return self.k("st", "item", item_id)

    def mutes_key(self, user: str) -> str:
        return self.k("st", "mutes", "{" + user + "}")

    def hidden_key(self, author: str) -> str:
        return self.k("st", "hidden", "{" + author + "}")

    def hidden_from_key(self, user: str) -> str:
        return self.k("st", "hidden_from", "{" + user + "}")

    def tray_key(self, viewer: str) -> str:
        return self.k("st", "tray", "{" + viewer + "}")

    def pull_key(self, viewer: str) -> str:
        return self.k("st", "pull", "{" + viewer + "}")

    def mode_key(self, author: str) -> str:
        return self.k("st", "mode", "{" + author + "}")

    def gone_shard_key(self, shard: int) -> str:
        return self.k("st", "gone", "{gone-" + str(shard) + "}")

    def gone_key(self, sid: str) -> str:
        return self.gone_shard_key(gone_shard(sid))

    def events_channel(self, viewer: str) -> str:
        """The viewer's live tray events (a sharded pub/sub channel in the viewer's slot)."""
        return self.k("st", "events", "{" + viewer + "}")

    def posts_channel(self, author: str) -> str:
        """What a pulled author announces to every live follower at once (author's slot)."""
        return self.k("st", "posts", "{" + author + "}")

    def _expire_at(self, story: Story) -> int:
        return rules.redis_expire_at(story.expires_at, self.grace)

    # --- publishing and deleting -------------------------------------------------------

    async def count_live(self, author: str) -> int:
        now = self.clock.now()
        return int(await self.r.zcount(self.by_author_key(author), f"({now!r}", "+inf"))

    async def mark_due(self, sid: str, expires_at: float) -> None:
        """Written before any blob, so a crash mid-publish still leaves the sweeper a trail."""
        await self.due.put(sid, expires_at)

    async def reserve(self, story: Story, max_active: int, client: Pipeline | None = None) -> Any:
        """Take one of the author's ``max_active`` slots: 1, or 0 when they are all used
        (with ``client``, queued on that pipeline: its reply is the result)."""
        streams: list[str] = []
        event: list[str] = []
        if self.outbox.enabled:
            streams, event = self.outbox.script_args(integration.published(story))
        return await self._reserve(
            keys=[self.by_author_key(story.author), self.meta_key(story.author), *streams],
            args=[
                repr(self.clock.now()),
                max_active,
                repr(story.expires_at),
                story.id,
                meta_value(ref_of(story)),
                self._expire_at(story),
                *event,
            ],
            client=client,
        )

    async def save(self, story: Story) -> None:
        key = self.story_key(story.id)
        async with self.r.pipeline(transaction=False) as p:
            p.zadd(self.due_key(), {story.id: ms(story.expires_at)})
            p.hset(key, mapping=_mapping(story.to_hash()))
            p.expireat(key, self._expire_at(story))
            await p.execute()

    async def update_flags(self, sid: str, fields: dict[str, bool]) -> bool:
        args: list[str] = []
        for name, value in fields.items():
            args += [name, "1" if value else "0"]
        return bool(await self._update(keys=[self.story_key(sid)], args=args))

    async def purge(
        self, sid: str, author: str | None = None, tombstone: bool = True, expired: bool = False
    ) -> Story | None:
        """Delete every key of a story (blobs are the caller's); safe to repeat.

        ``author`` helps when the hash is already gone (a publish that failed half-way);
        ``tombstone=False`` for a story no tray can hold (its publish was refused);
        ``expired`` (the sweeper) appends story.expired with the deletion."""
        async with self.r.pipeline(transaction=False) as p:
            p.hgetall(self.story_key(sid))
            p.smembers(self.items_key(sid))
            raw, item_ids = await p.execute()
        story = Story.from_hash(raw)
        author = story.author if story else raw.get("author") or author
        if tombstone and story is not None and rules.is_live(story.expires_at, self.clock.now()):
            await self._tombstone(story)
        await self._forget_seen(sid)
        # One MULTI only for the webhook event's sake (never on a cluster: docs/webhooks.md);
        # the deletions alone are safe to repeat.
        async with self.r.pipeline(transaction=self.outbox.enabled) as p:
            if expired and story is not None:
                self.outbox.append(p, integration.expired(story, self.clock.now()))
            p.delete(self.story_key(sid), self.viewers_key(sid), self.items_key(sid))
            p.zrem(self.due_key(), sid)
            if author:
                p.zrem(self.by_author_key(author), sid)
                p.hdel(self.meta_key(author), sid)
                if item_ids:
                    p.zrem(self.inbox_key(author), *item_ids)
            for item_id in item_ids:
                p.delete(self.item_key(item_id))
            await p.execute()
        return story

    async def _tombstone(self, story: Story) -> None:
        """Deleted before it expired: trays stop showing it at once, wherever its refs are
        (the fan-out takes them out later; they would expire with the story anyway)."""
        key = self.gone_key(story.id)
        async with self.r.pipeline(transaction=False) as p:
            p.zadd(key, {story.id: story.expires_at})
            p.zremrangebyscore(key, "-inf", repr(self.clock.now()))
            await p.execute()

    async def _forget_seen(self, sid: str, chunk: int = 1000) -> None:
        """Take the story out of its viewers' seen sets, a thousand viewers per round trip."""
        key = self.viewers_key(sid)
        start = 0
        while viewers := await self.r.zrange(key, start, start + chunk - 1):
            async with self.r.pipeline(transaction=False) as p:
                for viewer in viewers:
                    p.zrem(self.seen_key(str(viewer)), sid)
                await p.execute()
            start += chunk

    async def claim_due(self, lease_seconds: float, batch: int) -> list[str]:
        """Stories due by now, each leased for purging (see ``server.leases``)."""
        return await self.due.take_due("sweeper", lease_seconds, batch, self.clock.now())

    async def trim_gone(self) -> None:
        """Forget tombstones of stories that have expired since (their refs have too)."""
        now = repr(self.clock.now())
        async with self.r.pipeline(transaction=False) as p:
            for shard in range(GONE_SHARDS):
                p.zremrangebyscore(self.gone_shard_key(shard), "-inf", now)
            await p.execute()

    # --- reading -----------------------------------------------------------------------

    async def load(self, sid: str) -> Story | None:
        """The story if it exists and is live (the TTL alone is not a visibility guarantee)."""
        if not STORY_ID.match(sid):
            return None
        story = Story.from_hash(await self.r.hgetall(self.story_key(sid)))
        if story is None or not rules.is_live(story.expires_at, self.clock.now()):
            return None
        return story

    async def relation(self, viewer: str, author: str) -> Relation:
        if viewer == author:
            return Relation(is_author=True)
        g = self.graph
        async with self.r.pipeline(transaction=False) as p:
            p.zscore(g.following_key(viewer), author)
            p.zscore(g.close_friends_key(author), viewer)
            p.zscore(g.blocks_key(viewer), author)
            p.zscore(g.blocks_key(author), viewer)
            p.zscore(self.hidden_key(author), viewer)
            follows, close, blocked_by_viewer, blocked_by_author, hidden = await p.execute()
        return Relation(
            follows=follows is not None,
            close_friend=close is not None,
            blocked=blocked_by_viewer is not None or blocked_by_author is not None,
            hidden=hidden is not None,
        )

    async def author_stories(self, author: str) -> list[Story]:
        """The author's live stories, oldest first."""
        now = self.clock.now()
        ids = [
            str(i)
            for i in await self.r.zrangebyscore(self.by_author_key(author), f"({now!r}", "+inf")
        ]
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as p:
            for sid in ids:
                p.hgetall(self.story_key(sid))
            raws = await p.execute()
        stories = [s for s in map(Story.from_hash, raws) if s and rules.is_live(s.expires_at, now)]
        return sorted(stories, key=lambda s: (s.created_at, s.id))

    async def seen_and_counts(
        self, stories: list[Story], viewer: str
    ) -> list[tuple[bool, int | None]]:
        """Per story: whether ``viewer`` saw it, and its view count when ``viewer`` wrote it
        (not counting anyone blocked either way: blocks hide everything, views included)."""
        if not stories:
            return []
        own = any(s.author == viewer for s in stories)
        blocked = sorted(await self.unwanted(viewer)) if own else []
        async with self.r.pipeline(transaction=False) as p:
            for s in stories:
                if s.author != viewer:
                    p.zscore(self.viewers_key(s.id), viewer)
                    continue
                p.zcard(self.viewers_key(s.id))
                if blocked:
                    p.zmscore(self.viewers_key(s.id), blocked)
            replies = iter(await p.execute())
        out: list[tuple[bool, int | None]] = []
        for s in stories:
            if s.author != viewer:
                out.append((next(replies) is not None, None))
                continue
            total = int(next(replies))
            hidden = sum(score is not None for score in next(replies)) if blocked else 0
            out.append((True, total - hidden))  # your own stories count as seen
        return out

    async def mark_seen(self, story: Story, viewer: str) -> None:
        """Idempotent: the first view's time is kept (ZADD NX), so a viewer counts once."""
        now = self.clock.now()
        key = self.viewers_key(story.id)
        seen = self.seen_key(viewer)
        async with self.r.pipeline(transaction=False) as p:
            p.zadd(key, {viewer: now}, nx=True)
            p.expireat(key, self._expire_at(story))
            p.zadd(seen, {story.id: story.expires_at})
            p.zremrangebyscore(seen, "-inf", repr(now))
            _extend(p, seen, self._expire_at(story))
            # A pulled author the viewer watches moves up among those the tray reads.
            p.zadd(self.pull_key(viewer), {story.author: now}, xx=True)
            await p.execute()

    async def viewers_page(self, story: Story, cursor: Cursor | None, limit: int) -> ViewerPage:
        """Who saw the story, newest first, without users blocked either way."""
        key = self.viewers_key(story.id)
        blocked = await self.unwanted(story.author)
        items, nxt = await self._page_desc(key, cursor, limit, skip=blocked)
        [(_, count)] = await self.seen_and_counts([story], story.author)
        return ViewerPage(viewers=items, view_count=count or 0, next_cursor=nxt)

    async def _page_desc(
        self, key: str, cursor: Cursor | None, limit: int, skip: frozenset[str] = frozenset()
    ) -> tuple[list[tuple[str, float]], Cursor | None]:
        """Newest first from ``cursor`` (exclusive), members in ``skip`` left out; ties on
        the score are ordered by member."""
        top: Any = "+inf" if cursor is None else repr(cursor[0])
        out: list[tuple[str, float]] = []
        offset = 0
        while len(out) <= limit:
            batch: list[Any] = await self.r.zrevrangebyscore(
                key, top, "-inf", start=offset, num=limit + 1, withscores=True
            )
            offset += len(batch)
            pairs: list[tuple[str, float]] = [(str(m), float(sc)) for m, sc in batch]
            out += [p for p in rules.after_cursor(pairs, cursor) if p[0] not in skip]
            if len(batch) <= limit:
                break
        page = out[:limit]
        nxt = (page[-1][1], page[-1][0]) if len(out) > limit else None
        return page, nxt

    async def unwanted(self, author: str, hidden: bool = False) -> frozenset[str]:
        """Users ``author`` blocked or was blocked by, and with ``hidden`` those the author
        hides their stories from: whose views and replies the author no longer sees."""
        g = self.graph
        async with self.r.pipeline(transaction=False) as p:
            p.zrange(g.blocks_key(author), 0, -1)
            p.zrange(g.blocked_by_key(author), 0, -1)
            if hidden:
                p.zrange(self.hidden_key(author), 0, -1)
            lists = await p.execute()
        return frozenset(str(u) for users in lists for u in users)

    # --- replies and reactions ---------------------------------------------------------

    async def add_inbox_item(self, author: str, item: InboxItem) -> None:
        expire_at = rules.redis_expire_at(item.story_expires_at, self.grace)
        async with self.r.pipeline(transaction=self.outbox.enabled) as p:  # as in purge
            self.outbox.append(p, integration.answered(author, item))
            p.hset(self.item_key(item.id), mapping=_mapping(item.to_hash()))
            p.expireat(self.item_key(item.id), expire_at)
            p.sadd(self.items_key(item.story_id), item.id)
            p.expireat(self.items_key(item.story_id), expire_at)
            p.zadd(self.inbox_key(author), {item.id: item.created_at})
            _extend(p, self.inbox_key(author), expire_at)
            await p.execute()

    async def inbox_page(
        self, author: str, cursor: Cursor | None, limit: int
    ) -> tuple[list[InboxItem], Cursor | None]:
        """Newest first; items of expired stories, and from users blocked either way or hidden
        from, are left out (the items stay: unblocking or unhiding shows them again)."""
        now = self.clock.now()
        key = self.inbox_key(author)
        entries, nxt = await self._page_desc(key, cursor, limit)
        if not entries:
            return [], nxt
        async with self.r.pipeline(transaction=False) as p:
            for item_id, _ in entries:
                p.hgetall(self.item_key(item_id))
            raws = await p.execute()
        items: list[InboxItem] = []
        gone: list[str] = []
        for (item_id, _), raw in zip(entries, raws, strict=True):
            item = InboxItem.from_hash(raw)
            if item is None:
                gone.append(item_id)
            elif rules.is_live(item.story_expires_at, now):
                items.append(item)
        if gone:  # expired by TTL before the sweeper got to them
            await self.r.zrem(key, *gone)
        if not items:
            return [], nxt
        # Drop replies from users blocked either way or hidden from, and to stories deleted
        # while the reply was being written (the delete removes the others itself).
        unwanted = await self.unwanted(author, hidden=True)
        stories = sorted({i.story_id for i in items})
        async with self.r.pipeline(transaction=False) as p:
            for sid in stories:
                p.exists(self.story_key(sid))
            exists = await p.execute()
        deleted = {sid for sid, there in zip(stories, exists, strict=True) if not there}
        items = [i for i in items if i.from_user not in unwanted and i.story_id not in deleted]
        return items, nxt

    # --- mutes and the hide list -------------------------------------------------------

    async def set_muted(self, user: str, author: str, on: bool) -> None:
        if on:
            await self.r.zadd(self.mutes_key(user), {author: self.clock.now()}, nx=True)
        else:
            await self.r.zrem(self.mutes_key(user), author)

    async def set_hidden(self, author: str, user: str, on: bool) -> None:
        """Both directions: the author lists whom they hide from; the tray reads it per viewer."""
        async with self.r.pipeline(transaction=False) as p:
            if on:
                now = self.clock.now()
                p.zadd(self.hidden_key(author), {user: now}, nx=True)
                p.zadd(self.hidden_from_key(user), {author: now}, nx=True)
            else:
                p.zrem(self.hidden_key(author), user)
                p.zrem(self.hidden_from_key(user), author)
            await p.execute()

    async def mutes_page(self, user: str, offset: int, limit: int) -> tuple[list[str], int | None]:
        """Muted authors, newest first, paged like the graph's lists."""
        return await user_page(self.r, self.mutes_key(user), offset, limit)

    async def hidden_page(
        self, author: str, offset: int, limit: int
    ) -> tuple[list[str], int | None]:
        """Users the author hides from, newest first, paged like the graph's lists."""
        return await user_page(self.r, self.hidden_key(author), offset, limit)

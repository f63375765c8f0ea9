"""The tray index: story refs fanned out to each follower, pull sets for the authors with too
many followers to fan out to, and the tray read in at most two round trips.

* Fanned-out refs live in the viewer's ``st:tray:{<viewer>}`` (a member names author, story,
  creation time and audience; the score is the expiry), written by ``stories.fanout`` and
  by backfills here (a follow, a close friend added, a hide lifted). Unfollowing and
  blocking take an author's refs out again.
* Authors above ``stories_fanout_max_followers`` are not fanned out: their followers keep
  them in ``st:pull:{<viewer>}`` and the tray reads their ``st:meta`` hashes directly, at most
  ``stories_tray_pull_max`` of them (the ones the viewer followed or watched last).
* Everything that decides what shows is read with the refs and checked by ``rules.build_tray``:
  follows, mutes, blocks both ways, hide lists, close friends, deletions (``st:gone``) and
  expiry. A ref is only a hint that a story may be shown.

Round trip 1 reads the viewer's own slot (tray index, seen set, pull set, own stories,
mutes, hide list, close-friend-of list) and their blocks both ways, each list whole when it
has at most ``SMALL`` members (the usual case); round trip 2 asks whom the viewer follows
among the tray's authors, asks the lists that were too long about those authors only, asks
the tombstone shards about the fanned-out stories (tombstones are many at scale: they are
never read whole) and reads the pulled authors' stories: 4 + 5 commands, then 1 + at most 5
+ ``GONE_SHARDS`` + ``pull_max``, whatever the number of followed authors (at most 39 with
the default 20 pulled authors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.commands.core import AsyncScript

from server.graph.store import GraphChange
from stories import rules
from stories.model import (
    TRAY_CHANGED,
    ref_from_member,
    ref_from_meta,
    tray_member,
)
from stories.rules import TrayEntry, TrayFacts, TrayRef
from stories.store import GONE_SHARDS, StoryStore, gone_shard

# KEYS[1]: a tray index. ARGV: now, the key's expiry (only ever pushed later), the channel to
# tell ('' for none), the message, then score/member pairs. Expired refs are trimmed on the
# way; the message goes out only when a ref was new, so a batch done twice tells once.
ADD_REFS = """
local added = 0
for i = 5, #ARGV, 2 do
  added = added + redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('EXPIRETIME', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
if added > 0 and ARGV[3] ~= '' then redis.call('SPUBLISH', ARGV[3], ARGV[4]) end
return added
"""

# KEYS[1]: a tray index. ARGV: the channel to tell ('' for none), the message, an author
# prefix ("<author>|": every ref of that author; '' for none), then members to remove.
REMOVE_REFS = """
local gone = {}
for i = 4, #ARGV do gone[#gone + 1] = ARGV[i] end
if ARGV[3] ~= '' then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(m, 1, #ARGV[3]) == ARGV[3] then gone[#gone + 1] = m end
  end
end
local removed = 0
if #gone > 0 then removed = redis.call('ZREM', KEYS[1], unpack(gone)) end
if removed > 0 and ARGV[1] ~= '' then redis.call('SPUBLISH', ARGV[1], ARGV[2]) end
return removed
"""


# A list this long or shorter is read whole in the first round trip; a longer one is asked
# about the tray's authors (or stories) in the second.
SMALL = 256
RELATIONS = ("mutes", "blocks", "blocked_by", "hidden_from", "close_of")


def whole(members: list[str]) -> frozenset[str] | None:
    """The list read in round trip 1, or None when it was too long to read whole."""
    return frozenset(members) if len(members) <= SMALL else None


@dataclass(frozen=True)
class FirstRead:
    pushed: list[TrayRef]  # fanned-out refs, live
    seen: frozenset[str]
    pulled: list[str]  # pulled authors to ask about
    own: list[TrayRef]
    lists: list[frozenset[str] | None]  # RELATIONS, whole or too long


@dataclass(frozen=True)
class TrayRead:
    entries: list[TrayEntry]
    round_trips: int
    pulled: list[str]  # the pulled authors this read asked about
    expires_next: float | None = None  # when the first story shown expires


def scored(names: Sequence[str], scores: Sequence[float | None]) -> frozenset[str]:
    """The names a ZMSCORE found."""
    return frozenset(n for n, sc in zip(names, scores, strict=True) if sc is not None)


def live_refs(author: str, meta: Mapping[str, str]) -> list[TrayRef]:
    """An author's stories from their ``meta`` hash (expiry is the reader's to check)."""
    return [r for sid, raw in meta.items() if (r := ref_from_meta(author, sid, raw))]


async def queue_script(
    p: Pipeline | ClusterPipeline, script: AsyncScript, keys: list[str], args: list[Any]
) -> None:
    """Queue ``script`` on pipeline ``p``. A cluster pipeline refuses EVALSHA (it cannot load
    a missing script on one node mid-pipeline): there the script's text goes with EVAL, sent
    to its key's node like any command (each node caches the compiled script)."""
    if isinstance(p, ClusterPipeline):
        p.execute_command("EVAL", script.script, len(keys), *keys, *args)
    else:
        await script(keys=keys, args=args, client=p)


class TrayIndex:
    def __init__(self, store: StoryStore, pull_max: int) -> None:
        self.store = store
        self.r = store.r
        self.graph = store.graph
        self.clock = store.clock
        self.pull_max = pull_max
        self._add = store.r.register_script(ADD_REFS)
        self._remove = store.r.register_script(REMOVE_REFS)

    # --- reading -------------------------------------------------------------------------

    def relation_keys(self, viewer: str) -> dict[str, str]:
        """The viewer's lists that keep an author out of the tray, or let close-friends
        stories in (``close_of``)."""
        s, g = self.store, self.graph
        return {
            "mutes": s.mutes_key(viewer),
            "blocks": g.blocks_key(viewer),
            "blocked_by": g.blocked_by_key(viewer),
            "hidden_from": s.hidden_from_key(viewer),
            "close_of": g.close_friend_of_key(viewer),
        }

    async def read(self, viewer: str) -> TrayRead:
        """The viewer's tray (``rules.build_tray``) in one or two round trips."""
        now = self.clock.now()
        first = await self._first(viewer, now)
        authors = sorted(({r.author for r in first.pushed} | set(first.pulled)) - {viewer})
        if not authors:
            none: frozenset[str] = frozenset()
            facts = TrayFacts(none, none, none, none, first.seen)
            entries = rules.build_tray(viewer, first.own, [], facts, now)
            return TrayRead(entries, 1, first.pulled, rules.first_expiry(entries, first.own))
        facts, pulled_refs = await self._second(viewer, authors, first)
        refs = [*first.pushed, *pulled_refs]
        entries = rules.build_tray(viewer, first.own, refs, facts, now)
        expires_next = rules.first_expiry(entries, [*first.own, *refs])
        return TrayRead(entries, 2, first.pulled, expires_next)

    async def _first(self, viewer: str, now: float) -> FirstRead:
        """Round trip 1: the viewer's own slot (fanned-out refs, seen stories, pulled authors
        to ask about, own stories) and their short lists whole."""
        s = self.store
        live = f"({now!r}"
        async with self.r.pipeline(transaction=False) as p:
            p.zrangebyscore(s.tray_key(viewer), live, "+inf", withscores=True)
            p.zrangebyscore(s.seen_key(viewer), live, "+inf")
            p.zrevrange(s.pull_key(viewer), 0, self.pull_max - 1)
            p.hgetall(s.meta_key(viewer))
            for key in self.relation_keys(viewer).values():
                p.zrange(key, 0, SMALL)
            members, seen, pulled, meta, *lists = await p.execute()
        return FirstRead(
            pushed=[r for m, sc in members if (r := ref_from_member(m, float(sc)))],
            seen=frozenset(seen),
            pulled=[str(a) for a in pulled],
            own=live_refs(viewer, meta),
            lists=[whole(found) for found in lists],
        )

    async def _second(
        self, viewer: str, authors: list[str], first: FirstRead
    ) -> tuple[TrayFacts, list[TrayRef]]:
        """Round trip 2: whom the viewer follows of these authors, the long lists asked about
        them, the tombstone shards asked about the fanned-out stories, and the pulled
        authors' stories."""
        s = self.store
        asked = [
            (key, authors)
            for key, got in zip(self.relation_keys(viewer).values(), first.lists, strict=True)
            if got is None
        ]
        ids_by_shard: dict[int, list[str]] = {}
        for ref in first.pushed:
            ids_by_shard.setdefault(gone_shard(ref.id), []).append(ref.id)
        asked += [(s.gone_shard_key(shard), ids) for shard, ids in sorted(ids_by_shard.items())]
        async with self.r.pipeline(transaction=False) as p:
            p.zmscore(self.graph.following_key(viewer), authors)
            for key, names in asked:
                p.zmscore(key, names)
            for author in first.pulled:
                p.hgetall(s.meta_key(author))
            following, *replies = await p.execute()
        answers = iter(replies)
        found = {key: scored(names, next(answers)) for key, names in asked}
        pulled_refs = [r for a in first.pulled for r in live_refs(a, next(answers))]
        return self._facts(viewer, scored(authors, following), first, found), pulled_refs

    def _facts(
        self,
        viewer: str,
        following: frozenset[str],
        first: FirstRead,
        found: dict[str, frozenset[str]],
    ) -> TrayFacts:
        keys = list(self.relation_keys(viewer).values())
        rel = dict(
            zip(
                RELATIONS,
                (
                    got if got is not None else found[key]
                    for key, got in zip(keys, first.lists, strict=True)
                ),
                strict=True,
            )
        )
        gone: frozenset[str] = frozenset().union(
            *(found.get(self.store.gone_shard_key(k), frozenset()) for k in range(GONE_SHARDS))
        )
        excluded = rel["mutes"] | rel["blocks"] | rel["blocked_by"] | rel["hidden_from"]
        return TrayFacts(following, excluded, rel["close_of"], gone, first.seen)

    # --- writing -------------------------------------------------------------------------

    async def queue_add(
        self, p: Pipeline, viewer: str, refs: Iterable[TrayRef], event: str
    ) -> None:
        """Add refs to the viewer's tray index on pipeline ``p``, telling the viewer's live
        tray ``event`` if one was new ('' tells nothing)."""
        s = self.store
        refs = list(refs)
        newest = max(r.expires_at for r in refs)
        args: list[Any] = [repr(self.clock.now()), rules.redis_expire_at(newest, s.grace)]
        args += [s.events_channel(viewer) if event else "", event]
        for ref in refs:
            args += [repr(ref.expires_at), tray_member(ref)]
        await queue_script(p, self._add, [s.tray_key(viewer)], args)

    async def queue_remove(
        self,
        p: Pipeline,
        viewer: str,
        members: Sequence[str] = (),
        author: str = "",
        tell: bool = True,
    ) -> None:
        """Take refs out of the viewer's tray index (``members``, or all of ``author``'s),
        telling the viewer's live tray if one was there (with ``tell``)."""
        s = self.store
        prefix = author + "|" if author else ""
        args = [s.events_channel(viewer) if tell else "", TRAY_CHANGED, prefix, *members]
        await queue_script(p, self._remove, [s.tray_key(viewer)], args)

    async def notify(self, *viewers: str) -> None:
        """Tell the viewers' live trays that something changed."""
        async with self.r.pipeline(transaction=False) as p:
            for viewer in viewers:
                p.spublish(self.store.events_channel(viewer), TRAY_CHANGED)
            await p.execute()

    async def followed(self, viewer: str, author: str) -> None:
        """The viewer follows the author (or may now see more of them): a pulled author
        joins the viewer's pull set, otherwise the author's live stories are backfilled."""
        s = self.store
        now = self.clock.now()
        async with self.r.pipeline(transaction=False) as p:
            p.get(s.mode_key(author))
            p.hgetall(s.meta_key(author))
            mode, meta = await p.execute()
        refs = [r for r in live_refs(author, meta) if rules.is_live(r.expires_at, now)]
        async with self.r.pipeline(transaction=False) as p:
            if mode:
                p.zadd(s.pull_key(viewer), {author: now})
            elif refs:
                await self.queue_add(p, viewer, refs, "")
            p.spublish(s.events_channel(viewer), TRAY_CHANGED)
            await p.execute()

    async def unfollowed(self, viewer: str, author: str) -> None:
        """The viewer no longer follows the author: their refs and pull entry go."""
        async with self.r.pipeline(transaction=False) as p:
            await self.queue_remove(p, viewer, author=author, tell=False)  # told once below
            p.zrem(self.store.pull_key(viewer), author)
            p.spublish(self.store.events_channel(viewer), TRAY_CHANGED)
            await p.execute()

    async def may_see_more(self, viewer: str, author: str) -> None:
        """The author let the viewer see more (close friend, hide lifted): backfill if the
        viewer follows them, tell the viewer either way."""
        if await self.graph.follows(viewer, author):
            await self.followed(viewer, author)
        else:
            await self.notify(viewer)

    async def graph_changed(self, change: GraphChange) -> None:
        """Keeps the index in step with the graph (a ``server.graph`` listener)."""
        user, target = change.user, change.target
        if change.kind == "follow":
            await self.followed(user, target)
        elif change.kind == "unfollow":
            await self.unfollowed(user, target)
        elif change.kind == "block":  # the follows both ways ended
            await self.unfollowed(user, target)
            await self.unfollowed(target, user)
        elif change.kind == "close_friend":
            await self.may_see_more(target, user)
        elif change.kind == "not_close_friend":
            await self.notify(target)

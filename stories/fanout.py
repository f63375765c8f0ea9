"""Fan-out on write, in batches, from Redis Stream consumer groups.

Publishing a story queues one job on its author's shard of the fan-out stream
(``st:fanout:{fanout-<k>}``, k = CRC-32 of the author mod ``FANOUT_SHARDS``) and returns.
Every server process runs one consumer per shard in the consumer group ``fanout``. A stream
entry is one batch: up to ``stories_fanout_batch`` followers of the author, one ZSCAN page
from the entry's cursor. The consumer writes the batch, then one script on the stream's
slot acknowledges the entry, deletes it and queues the next batch (the same job at the next
cursor). So the stream holds only work not done yet, the batches of one big fan-out spread
over every process, and a process that dies mid-batch leaves its entry pending, taken over
with XAUTOCLAIM after ``stories_fanout_claim_seconds`` by any consumer. Doing a batch twice
is harmless: a ref added twice is one member, a live event goes out only for a new ref,
and only the first acknowledgement of an entry queues its next batch.

ZSCAN returns every follower present for the whole scan at least once; a follow during the
fan-out is covered by its backfill (the story is in its author's ``meta`` hash before its
job is queued), an unfollow by the tray read's follow check.

Jobs (``model.FanoutJob``): ``publish`` writes a story's ref where its audience allows;
``retract`` takes the ref of a story deleted before it expired out again; ``promote`` adds
an author who passed ``stories_fanout_max_followers`` to each follower's pull set, then
switches the author to ``pull`` (no more fan-out; until then stories are fanned out too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from dataclasses import replace
from functools import partial
from typing import Any

import structlog
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from server.background import check_cancelled, every
from server.settings import Settings
from stories import rules
from stories.model import FanoutJob, LiveEvent, Story, ref_of, tray_member
from stories.rules import TrayRef
from stories.trays import TrayIndex

log = structlog.get_logger(__name__)

FANOUT_SHARDS = 4
GROUP = "fanout"
# An author stays ``promoting`` (fanned out and pulled at once) at most this long: should
# the promotion job be lost, the author's next publish starts it again.
PROMOTION_SECONDS = 3600
# Consumers (process runs) with nothing pending and idle this long are forgotten.
CONSUMER_IDLE_MS = 24 * 3600 * 1000

# KEYS[1]: a fan-out stream. ARGV: group, entry id, then the next batch's fields (if any).
# Only the first acknowledgement queues the next batch: a batch done twice (its consumer
# was slow, not dead) does not fork the job.
FINISH = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
if #ARGV > 2 then redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3)) end
return 1
"""


def shard_of(author: str) -> int:
    return zlib.crc32(author.encode()) % FANOUT_SHARDS


def found(scores: list[Any]) -> list[bool]:
    return [score is not None for score in scores]


class Fanout:
    def __init__(self, trays: TrayIndex, settings: Settings, consumer: str) -> None:
        self.trays = trays
        self.store = trays.store
        self.r = trays.r
        self.graph = trays.graph
        self.batch = settings.stories_fanout_batch
        self.claim_after = settings.stories_fanout_claim_seconds
        self.max_followers = settings.stories_fanout_max_followers
        self.consumer = consumer
        self._finish = self.r.register_script(FINISH)
        self._claimed_at: dict[int, float] = {}

    def stream_key(self, shard: int) -> str:
        return self.store.k("st", "fanout", "{fanout-" + str(shard) + "}")

    # --- producing -------------------------------------------------------------------------

    async def mode(self, author: str) -> str | None:
        """How the author's stories reach followers: None (fanned out), ``promoting`` or
        ``pull``. An author found past the threshold starts being promoted."""
        async with self.r.pipeline(transaction=False) as p:
            p.get(self.store.mode_key(author))
            p.zcard(self.graph.followers_key(author))
            mode, followers = await p.execute()
        if mode is None and rules.pulled(int(followers), self.max_followers):
            return await self._promote(author)
        return None if mode is None else str(mode)

    async def _promote(self, author: str) -> str:
        key = self.store.mode_key(author)
        if await self.r.set(key, "promoting", nx=True, ex=PROMOTION_SECONDS):
            await self._xadd(FanoutJob("promote", author))
            log.info("stories.fanout.promoting", author=author)
            return "promoting"
        return str(await self.r.get(key) or "promoting")

    def queue(self, p: Pipeline, job: FanoutJob) -> None:
        """Queue a job on pipeline ``p`` (for a publish: after its reserve script)."""
        p.xadd(self.stream_key(shard_of(job.author)), job.to_fields())  # type: ignore[arg-type]

    async def _xadd(self, job: FanoutJob) -> None:
        await self.r.xadd(self.stream_key(shard_of(job.author)), job.to_fields())  # type: ignore[arg-type]

    async def retract(self, story: Story) -> None:
        """Take a deleted story's ref out of its followers' trays (pulled authors have none;
        the tombstone already hides it)."""
        if await self.r.get(self.store.mode_key(story.author)) == "pull":
            return
        member = tray_member(ref_of(story))
        await self._xadd(FanoutJob("retract", story.author, "0", member, story.expires_at))

    # --- consuming ---------------------------------------------------------------------------

    async def run(self) -> None:
        """One consumer loop per shard, until cancelled."""
        loops = [every(0.05, partial(self.work, s), "stories.fanout") for s in range(FANOUT_SHARDS)]
        await asyncio.gather(*loops)

    async def work(self, shard: int, block_ms: int = 1000) -> int:
        """Take over batches left by dead consumers (now and then), then do batches until
        none came for ``block_ms``; returns how many batches were done."""
        try:
            done = await self._claim_if_due(shard)
            while taken := await self.take(shard, block_ms):
                done += taken
                check_cancelled()
            return done
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.create_group(shard)  # a new (or emptied) Redis
            return 0

    async def create_group(self, shard: int) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.r.xgroup_create(self.stream_key(shard), GROUP, id="0", mkstream=True)

    async def take(self, shard: int, block_ms: int) -> int:
        key = self.stream_key(shard)
        streams: Any = {key: ">"}
        reply: Any = await self.r.xreadgroup(GROUP, self.consumer, streams, 1, block_ms)
        entries = [entry for _, batch in reply or [] for entry in batch]
        for entry_id, fields in entries:
            await self.handle(key, entry_id, fields)
        return len(entries)

    async def _claim_if_due(self, shard: int) -> int:
        now = time.monotonic()
        if now - self._claimed_at.get(shard, 0.0) < self.claim_after / 3:
            return 0
        self._claimed_at[shard] = now
        return await self.claim(shard)

    async def claim(self, shard: int, count: int = 10) -> int:
        """Do the batches other consumers left pending for ``claim_after`` (they died)."""
        key = self.stream_key(shard)
        idle_ms = int(self.claim_after * 1000)
        reply: Any = await self.r.xautoclaim(key, GROUP, self.consumer, idle_ms, "0-0", count)
        entries = [(entry_id, fields) for entry_id, fields in reply[1] if fields]
        for entry_id, fields in entries:
            await self.handle(key, entry_id, fields)
        await self._forget_idle_consumers(key)
        return len(entries)

    async def _forget_idle_consumers(self, key: str) -> None:
        for c in await self.r.xinfo_consumers(key, GROUP):
            if c["pending"] == 0 and c["idle"] > CONSUMER_IDLE_MS and c["name"] != self.consumer:
                await self.r.xgroup_delconsumer(key, GROUP, c["name"])

    async def handle(self, key: str, entry_id: str, fields: dict[str, str]) -> None:
        """Do one batch, then acknowledge it and queue the next (one script)."""
        job = FanoutJob.from_fields(fields)
        cursor = "0" if job is None else await self.do_batch(job)
        args: list[str] = [GROUP, entry_id]
        if job is not None and cursor != "0":
            for name, value in replace(job, cursor=cursor).to_fields().items():
                args += [name, value]
        await self._finish(keys=[key], args=args)

    async def do_batch(self, job: FanoutJob) -> str:
        """One batch of ``job``; returns the next batch's cursor ("0": the job is done)."""
        if job.kind == "promote":
            return await self._promote_batch(job)
        ref = job.ref
        if ref is None or job.kind not in ("publish", "retract"):
            log.warning("stories.fanout.bad_job", job=job)
            return "0"
        if job.kind == "publish":
            return await self._publish_batch(job, ref)
        return await self._retract_batch(job)

    async def _publish_batch(self, job: FanoutJob, ref: TrayRef) -> str:
        async with self.r.pipeline(transaction=False) as p:
            p.zscan(self.graph.followers_key(job.author), int(job.cursor), count=self.batch)
            p.hexists(self.store.meta_key(job.author), ref.id)
            (cursor, page), live = await p.execute()
        if not live:  # deleted, or its publish failed: stop
            return "0"
        targets = await self._may_see(ref, [str(m) for m, _ in page])
        event = LiveEvent("story.published", ref.author, ref.id).encode()
        if targets:
            async with self.r.pipeline(transaction=False) as p:
                for viewer in targets:
                    await self.trays.queue_add(p, viewer, [ref], event)
                await p.execute()
        return str(cursor)

    async def _may_see(self, ref: TrayRef, followers: list[str]) -> list[str]:
        """The followers who may see the story now: its audience, blocks, the hide list."""
        if not followers:
            return []
        g, author = self.graph, ref.author
        async with self.r.pipeline(transaction=False) as p:
            p.zmscore(g.close_friends_key(author), followers)
            p.zmscore(g.blocks_key(author), followers)
            p.zmscore(g.blocked_by_key(author), followers)
            p.zmscore(self.store.hidden_key(author), followers)
            close, blocks, blocked_by, hidden = await p.execute()
        blocked = [a or b for a, b in zip(found(blocks), found(blocked_by), strict=True)]
        return rules.fanout_targets(followers, ref.audience, found(close), blocked, found(hidden))

    async def _retract_batch(self, job: FanoutJob) -> str:
        key = self.graph.followers_key(job.author)
        cursor, page = await self.r.zscan(key, int(job.cursor), count=self.batch)
        async with self.r.pipeline(transaction=False) as p:
            for viewer, _ in page:
                await self.trays.queue_remove(p, str(viewer), [job.member])
            await p.execute()
        return str(cursor)

    async def _promote_batch(self, job: FanoutJob) -> str:
        key = self.graph.followers_key(job.author)
        cursor, page = await self.r.zscan(key, int(job.cursor), count=self.batch)
        now = self.trays.clock.now()
        async with self.r.pipeline(transaction=False) as p:
            for viewer, _ in page:
                p.zadd(self.store.pull_key(str(viewer)), {job.author: now}, nx=True)
            if cursor == 0:
                p.set(self.store.mode_key(job.author), "pull")
                log.info("stories.fanout.pulled", author=job.author)
            await p.execute()
        return str(cursor)

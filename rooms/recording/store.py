"""Recordings in Redis: state, segments, expiry, and the indexes that list replays.

Per room ``rec:{id}`` (a hash: ``state`` live | ready | deleted, the room's metadata as it
ended, ``duration``, ``expires_at``) and ``rec:{id}:segs`` (the segments' durations, in
order). Indexes: ``recordings:ready`` (room id -> ended_at, for ``GET /v1/rooms?state=ended``),
``recordings:host:{user}`` (the host's replays, for their profile) and two lease tables:
``recordings:expiry`` (the sweeper takes replays whose time is up) and
``recordings:owner`` (the one node recording a live room). A replay's keys carry a TTL a
day past its expiry; a deleted one keeps a tombstone (``state`` deleted) until then.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from rooms.control.state import Meta
from server.leases import LeaseTable
from server.store import Keys
from server.webhooks.events import RoomRecordingReady
from server.webhooks.outbox import Outbox

TOMBSTONE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Recording:
    meta: Meta  # the room, as it was when the recording started or ended
    state: str  # live, ready, deleted
    durations: tuple[float, ...] = ()
    expires_at: float = 0.0  # ready: when the replay expires
    started_at: float = 0.0  # when the recording started: position 0 of the replay

    @property
    def duration(self) -> float:
        return round(sum(self.durations), 3)

    def live_at(self, now: float) -> str:
        """The state as of ``now``: an expired replay reads as deleted (read-time check)."""
        if self.state == "ready" and self.expires_at <= now:
            return "deleted"
        return self.state


class RecordingStore:
    def __init__(self, redis: Redis, keys: Keys, outbox: Outbox | None = None) -> None:
        self.r = redis
        self.k = keys
        self.outbox = outbox or Outbox(keys)
        self.ready_index = keys("recordings", "ready")
        self.expiry = LeaseTable(redis, keys("recordings", "expiry"))
        self.owners = LeaseTable(
            redis, keys("recordings", "owner"), keys("recordings", "owner", "holders")
        )

    def key(self, room_id: str) -> str:
        return self.k("rec", room_id)

    def segs(self, room_id: str) -> str:
        return self.k("rec", room_id, "segs")

    def by_host(self, host: str) -> str:
        return self.k("recordings", "host", host)

    async def load(self, room_id: str) -> Recording | None:
        async with self.r.pipeline(transaction=False) as p:
            p.hgetall(self.key(room_id))
            p.lrange(self.segs(room_id), 0, -1)
            raw, segs = await p.execute()
        if not raw:
            return None
        h = {str(k): str(v) for k, v in raw.items()}
        return Recording(
            meta=Meta.from_hash(json.loads(h["meta"])),
            state=h["state"],
            durations=tuple(float(s) for s in segs),
            expires_at=float(h.get("expires_at") or 0),
            started_at=float(h.get("started_at") or 0),
        )

    async def begin(self, meta: Meta, started_at: float) -> None:
        """The room's recording starts."""
        mapping = {"meta": _dump(meta), "state": "live", "started_at": started_at}
        await self.r.hset(self.key(meta.id), mapping=mapping)  # type: ignore[arg-type]

    async def add_segment(self, room_id: str, seconds: float) -> int:
        """Append a segment; returns its index."""
        return int(await self.r.rpush(self.segs(room_id), f"{seconds:.6f}")) - 1

    async def segment_count(self, room_id: str) -> int:
        return int(await self.r.llen(self.segs(room_id)))

    async def ready(
        self,
        meta: Meta,
        expires_at: float,
        durations: Sequence[float],
        event: RoomRecordingReady | None = None,
    ) -> None:
        """The replay is complete (these segments): listed, and expiring at ``expires_at``;
        ``event`` (the ``room.recording_ready`` webhook) is written in the same transaction."""
        key, segs = self.key(meta.id), self.segs(meta.id)
        async with self.r.pipeline(transaction=True) as p:
            if event is not None:
                self.outbox.append(p, event)
            p.delete(segs)
            p.rpush(segs, *(f"{s:.6f}" for s in durations))
            p.hset(key, mapping={"meta": _dump(meta), "state": "ready", "expires_at": expires_at})
            p.zadd(self.ready_index, {meta.id: meta.ended_at})
            p.zadd(self.by_host(meta.host), {meta.id: meta.ended_at})
            p.expireat(key, int(expires_at + TOMBSTONE_SECONDS))
            p.expireat(segs, int(expires_at + TOMBSTONE_SECONDS))
            await p.execute()
        await self.expiry.put(meta.id, expires_at)

    async def mark_deleted(self, rec: Recording) -> None:
        """Unlisted at once; the tombstone says ``deleted`` until its keys expire."""
        room_id = rec.meta.id
        async with self.r.pipeline(transaction=True) as p:
            p.hset(self.key(room_id), "state", "deleted")
            p.delete(self.segs(room_id))
            p.zrem(self.ready_index, room_id)
            p.zrem(self.by_host(rec.meta.host), room_id)
            p.expire(self.key(room_id), TOMBSTONE_SECONDS)
            await p.execute()
        await self.expiry.done(room_id)

    async def listed(self, index: str, limit: int, now: float) -> list[Recording]:
        """The newest replays of an index that are still ready."""
        ids = [str(i) for i in await self.r.zrevrange(index, 0, limit * 2)]
        found = [await self.load(i) for i in ids]
        return [r for r in found if r is not None and r.live_at(now) == "ready"][:limit]


def _dump(meta: Meta) -> str:
    return json.dumps({k: str(v) for k, v in asdict(meta).items()})

"""Rooms in Redis: metadata, participants, indexes, and every state change as a transaction.

Layout (``{id}`` is a hash tag, so one room's keys share a cluster slot):

* ``room:{id}:meta``     hash: title, host, state, timestamps...
* ``room:{id}:p:<user>`` JSON participant record (role, mute, hand, connection)
* ``room:{id}:members``  zset user -> joined_at (everyone present or within a grace period)
* ``room:{id}:stage``    hash user -> role, for everyone on stage (counts and caps)
* ``room:{id}:flags``    set of listeners with a raised hand or a pending invitation
* ``room:{id}:removed``  set of removed users (never readmitted)
* ``rooms:live`` / ``rooms:scheduled`` zsets for discovery, ``rooms:by_host:<user>``
* ``rooms:deadlines``    zset ``room|user|conn`` -> when a disconnected participant's grace ends

A change reads with WATCH, asks ``rooms.control.rules`` whether it is allowed, then writes and
publishes its events in one MULTI/EXEC; a concurrent change makes EXEC fail and the whole
decision is taken again on fresh data, so two processes can never exceed a cap.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from rooms.control import hub, rules
from rooms.control.rules import Caps, Change, Member, Refused, Role, SpeakerPolicy
from rooms.control.schemas import Room, RoomPreview
from server import links
from server.errors import Conflict, Forbidden, NotFound
from server.settings import Settings
from server.store import Keys

SCHEDULE_HORIZON_SECONDS = 90 * 24 * 3600
ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def checked_id(room_id: str) -> str:
    """A room id from a URL; anything that cannot be one is simply not found."""
    if not ROOM_ID.match(room_id):
        raise NotFound("no such room", code="room_not_found")
    return room_id


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


@dataclass(frozen=True)
class Meta:
    id: str
    title: str
    description: str
    language: str
    host: str
    speaker_policy: SpeakerPolicy
    state: str
    created_at: float
    scheduled_for: float = 0.0
    started_at: float = 0.0
    ended_at: float = 0.0
    ended_reason: str = ""

    def to_hash(self) -> dict[Any, Any]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_hash(cls, raw: Mapping[Any, Any]) -> Meta:
        h = {str(k): str(v) for k, v in raw.items()}
        return cls(
            id=h["id"],
            title=h["title"],
            description=h["description"],
            language=h["language"],
            host=h["host"],
            speaker_policy=SpeakerPolicy(h["speaker_policy"]),
            state=h["state"],
            created_at=float(h["created_at"]),
            scheduled_for=float(h.get("scheduled_for") or 0),
            started_at=float(h.get("started_at") or 0),
            ended_at=float(h.get("ended_at") or 0),
            ended_reason=h.get("ended_reason", ""),
        )


@dataclass(frozen=True)
class Record:
    """A participant as stored: the rules' Member plus where their socket is."""

    member: Member
    connected: bool = False
    conn: str = ""  # id of the participant's current connection
    node: str = ""
    joined_at: float = 0.0

    @property
    def user_id(self) -> str:
        return self.member.user_id

    def dumps(self) -> str:
        m = self.member
        return json.dumps(
            {
                "user_id": m.user_id,
                "role": m.role.value,
                "muted": m.muted,
                "hand_raised": m.hand_raised,
                "invited": m.invited,
                "since": m.since,
                "connected": self.connected,
                "conn": self.conn,
                "node": self.node,
                "joined_at": self.joined_at,
            }
        )

    @classmethod
    def loads(cls, raw: str | bytes) -> Record:
        d = json.loads(raw)
        member = Member(
            user_id=d["user_id"],
            role=Role(d["role"]),
            muted=d["muted"],
            hand_raised=d["hand_raised"],
            invited=d["invited"],
            since=d["since"],
        )
        return cls(member, d["connected"], d["conn"], d["node"], d["joined_at"])

    def public(self) -> dict[str, Any]:
        """The participant on the wire (docs/protocol.md); live speaking comes in events."""
        m = self.member
        return {
            "user_id": m.user_id,
            "role": m.role,  # a str enum: JSON writes its value
            "muted": m.muted,
            "hand_raised": m.hand_raised,
            "invited": m.invited,
            "speaking": False,
            "connected": self.connected,
        }


class RoomKeys:
    def __init__(self, keys: Keys, room_id: str) -> None:
        self.room_id = room_id
        self._tag = "{" + room_id + "}"
        self._keys = keys
        self.meta = keys("room", self._tag, "meta")
        self.members = keys("room", self._tag, "members")
        self.stage = keys("room", self._tag, "stage")
        self.flags = keys("room", self._tag, "flags")
        self.removed = keys("room", self._tag, "removed")

    def part(self, user_id: str) -> str:
        return self._keys("room", self._tag, "p", user_id)


def deadline_entry(room_id: str, user_id: str, conn: str) -> str:
    return f"{room_id}|{user_id}|{conn}"


class RoomStore:
    def __init__(self, redis: Redis, keys: Keys, settings: Settings) -> None:
        self.r = redis
        self.k = keys
        self.settings = settings
        self.caps = Caps(settings.max_cohosts, settings.max_speakers)
        self.live_index = keys("rooms", "live")
        self.scheduled_index = keys("rooms", "scheduled")
        self.deadlines = keys("rooms", "deadlines")
        self._claim = redis.register_script(CLAIM_DUE)

    def rk(self, room_id: str) -> RoomKeys:
        return RoomKeys(self.k, room_id)

    def by_host(self, user_id: str) -> str:
        return self.k("rooms", "by_host", user_id)

    def node_conns(self, node: str) -> str:
        return self.k("rooms", "node", node, "conns")

    # ---- reading ----

    async def meta(self, room_id: str) -> Meta | None:
        h = await self.r.hgetall(self.rk(room_id).meta)
        return Meta.from_hash(h) if h else None

    async def require(self, room_id: str) -> Meta:
        meta = await self.meta(room_id)
        if meta is None:
            raise NotFound("no such room", code="room_not_found")
        return meta

    async def counts(self, room_ids: Iterable[str]) -> list[tuple[int, int]]:
        """(listeners, on stage) per room."""
        ids = list(room_ids)
        async with self.r.pipeline(transaction=False) as p:
            for room_id in ids:
                rk = self.rk(room_id)
                p.zcard(rk.members)
                p.hlen(rk.stage)
            raw = await p.execute()
        return [(int(raw[i]) - int(raw[i + 1]), int(raw[i + 1])) for i in range(0, len(raw), 2)]

    async def room(self, meta: Meta, counts: tuple[int, int] | None = None) -> Room:
        if counts is None:
            counts = (await self.counts([meta.id]))[0]
        return Room(
            id=meta.id,
            title=meta.title,
            description=meta.description,
            language=meta.language,
            host=meta.host,
            speaker_policy=meta.speaker_policy,
            state=meta.state,
            scheduled_for=ts(meta.scheduled_for),
            started_at=ts(meta.started_at),
            ended_at=ts(meta.ended_at),
            ended_reason=meta.ended_reason or None,
            created_at=ts(meta.created_at),
            listener_count=counts[0],
            speaker_count=counts[1],
            share_url=links.absolute(self.settings.public_base_url, links.room_path(meta.id)),
        )

    async def rooms(self, metas: list[Meta]) -> list[Room]:
        counts = await self.counts(m.id for m in metas)
        return [await self.room(m, c) for m, c in zip(metas, counts, strict=True)]

    async def preview(self, room_id: str) -> RoomPreview:
        meta = await self.require(room_id)
        listeners, stage = (await self.counts([room_id]))[0]
        return RoomPreview(
            id=meta.id,
            title=meta.title,
            host=meta.host,
            state=meta.state,
            listener_count=listeners,
            speaker_count=stage,
            started_at=ts(meta.started_at),
            scheduled_for=ts(meta.scheduled_for),
        )

    async def metas(self, room_ids: Iterable[str]) -> list[Meta]:
        ids = list(room_ids)
        async with self.r.pipeline(transaction=False) as p:
            for room_id in ids:
                p.hgetall(self.rk(room_id).meta)
            raw = await p.execute()
        return [Meta.from_hash(h) for h in raw if h]

    async def listing(self, state: str, followed: list[str], limit: int) -> list[Meta]:
        """Live or scheduled rooms: hosted by ``followed`` users first, then the others.

        Live rooms newest first; scheduled rooms soonest first.
        """
        index = self.live_index if state == "live" else self.scheduled_index
        newest_first = state == "live"
        async with self.r.pipeline(transaction=False) as p:
            for host in followed[:1000]:
                p.zrange(self.by_host(host), 0, -1)
            per_host = await p.execute() if followed else []
        first = {str(room_id) for ids in per_host for room_id in ids}
        if newest_first:
            others = await self.r.zrevrange(index, 0, limit * 4)
        else:
            others = await self.r.zrange(index, 0, limit * 4)
        metas = await self.metas([*first, *(str(r) for r in others if r not in first)])
        metas = [m for m in metas if m.state == state]

        def key(m: Meta) -> tuple[bool, float]:
            when = -m.started_at if newest_first else m.scheduled_for
            return (m.host not in followed, when)

        return sorted(metas, key=key)[:limit]

    async def snapshot(self, room_id: str, you: str) -> list[Record]:
        """Participants for a welcome: everyone on stage, every raised hand or invitation,
        and the first listeners up to the announcement limit (all of them in a small room)."""
        rk = self.rk(room_id)
        limit = self.settings.room_listener_events_max
        async with self.r.pipeline(transaction=False) as p:
            p.hkeys(rk.stage)
            p.smembers(rk.flags)
            p.zrange(rk.members, 0, limit + self.caps.max_cohosts + self.caps.max_speakers)
            stage, flags, first = await p.execute()
        users = sorted({*map(str, stage), *map(str, flags), *map(str, first), you})
        records: list[Record] = []
        for i in range(0, len(users), 500):
            chunk = users[i : i + 500]
            raw = await self.r.mget([rk.part(u) for u in chunk])
            records.extend(Record.loads(x) for x in raw if x)
        return sorted(records, key=lambda rec: (-rules.RANK[rec.member.role], rec.joined_at))

    async def record(self, room_id: str, user_id: str) -> Record | None:
        raw = await self.r.get(self.rk(room_id).part(user_id))
        return Record.loads(raw) if raw else None

    # ---- lifecycle (HTTP) ----

    async def create(
        self,
        host: str,
        title: str,
        description: str,
        language: str,
        policy: SpeakerPolicy,
        scheduled_for: float | None,
    ) -> Meta:
        now = time.time()
        if scheduled_for is not None:
            check_schedule(scheduled_for, now)
        meta = Meta(
            id=secrets.token_urlsafe(12),
            title=title.strip(),
            description=description,
            language=language,
            host=host,
            speaker_policy=policy,
            state="scheduled" if scheduled_for is not None else "live",
            created_at=now,
            scheduled_for=scheduled_for or 0.0,
            started_at=0.0 if scheduled_for is not None else now,
        )
        rk = self.rk(meta.id)
        async with self.r.pipeline(transaction=True) as p:
            p.hset(rk.meta, mapping=meta.to_hash())
            if meta.state == "live":
                self._go_live(p, meta, now)
            else:
                p.zadd(self.scheduled_index, {meta.id: meta.scheduled_for})
                p.zadd(self.by_host(host), {meta.id: meta.scheduled_for})
            await p.execute()
        return meta

    def _go_live(self, p: Pipeline, meta: Meta, now: float) -> None:
        """The host's place is held from the start: if they never connect, the host grace
        period runs out like for a host who left."""
        rk = self.rk(meta.id)
        host = Record(Member(meta.host, Role.HOST, since=now), joined_at=now, conn="created")
        self._put(p, rk, host)
        p.zadd(rk.members, {meta.host: now})
        p.zadd(self.live_index, {meta.id: now})
        p.zadd(self.by_host(meta.host), {meta.id: now})
        p.zrem(self.scheduled_index, meta.id)
        p.zadd(
            self.deadlines,
            {deadline_entry(meta.id, meta.host, host.conn): now + self.settings.host_grace_seconds},
        )

    async def _host_change(
        self, room_id: str, user: str, expect: str, apply: Callable[[Pipeline, Meta], None]
    ) -> Meta:
        """A host-only HTTP change of a room in state ``expect``, checked and applied atomically."""
        rk = self.rk(room_id)
        async with self.r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(rk.meta)
                    h = await p.hgetall(rk.meta)
                    if not h:
                        raise NotFound("no such room", code="room_not_found")
                    meta = Meta.from_hash(h)
                    if meta.host != user:
                        raise Forbidden("only the host may do that", code="not_host")
                    if meta.state != expect:
                        raise Conflict(f"the room is {meta.state}", code=f"room_not_{expect}")
                    p.multi()
                    apply(p, meta)
                    await p.execute()
                except WatchError:
                    continue
                return (await self.meta(room_id)) or meta

    async def edit(self, room_id: str, user: str, changes: dict[str, Any]) -> Meta:
        if changes.get("scheduled_for") is not None:
            check_schedule(changes["scheduled_for"], time.time())

        def apply(p: Pipeline, meta: Meta) -> None:
            fields: dict[Any, Any] = {k: str(v) for k, v in changes.items() if v is not None}
            if fields:
                p.hset(self.rk(room_id).meta, mapping=fields)
            if changes.get("scheduled_for") is not None:
                p.zadd(self.scheduled_index, {room_id: changes["scheduled_for"]})
                p.zadd(self.by_host(meta.host), {room_id: changes["scheduled_for"]})

        return await self._host_change(room_id, user, "scheduled", apply)

    async def start(self, room_id: str, user: str) -> Meta:
        def apply(p: Pipeline, meta: Meta) -> None:
            now = time.time()
            live: dict[Any, Any] = {"state": "live", "started_at": str(now)}
            p.hset(self.rk(room_id).meta, mapping=live)
            self._go_live(p, replace(meta, state="live", started_at=now), now)

        return await self._host_change(room_id, user, "scheduled", apply)

    async def cancel(self, room_id: str, user: str) -> Meta:
        def apply(p: Pipeline, meta: Meta) -> None:
            self._end(p, meta, "cancelled")

        meta = await self._host_change(room_id, user, "scheduled", apply)
        await self._cleanup(room_id)
        return meta

    async def end_by_host(self, room_id: str, user: str) -> Meta:
        def apply(p: Pipeline, meta: Meta) -> None:
            self._end(p, meta, "ended_by_host")

        meta = await self._host_change(room_id, user, "live", apply)
        await self._cleanup(room_id)
        return meta

    async def cancel_overdue(self, now: float, limit: int = 100) -> list[str]:
        """Cancel the scheduled rooms whose host has not started them within
        ``scheduled_room_expiry_seconds`` of their start time (reason ``not_started``).

        Any process may run this at any time: each room is cancelled by one check-and-set
        transaction, so processes doing it at once cancel it once.
        """
        cutoff = now - self.settings.scheduled_room_expiry_seconds
        due = await self.r.zrangebyscore(self.scheduled_index, "-inf", cutoff, start=0, num=limit)
        return [str(r) for r in due if await self._cancel_unstarted(str(r), cutoff)]

    async def _cancel_unstarted(self, room_id: str, cutoff: float) -> bool:
        rk = self.rk(room_id)
        async with self.r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(rk.meta)
                    h = await p.hgetall(rk.meta)
                    meta = Meta.from_hash(h) if h else None
                    pending = meta if meta is not None and meta.state == "scheduled" else None
                    if pending is not None and pending.scheduled_for > cutoff:
                        await p.reset()  # the host moved it meanwhile
                        return False
                    p.multi()
                    if pending is not None:
                        self._end(p, pending, "not_started")
                        p.expire(rk.meta, self.settings.room_ended_ttl_seconds)
                    else:  # started, ended or gone: only the index entry was left
                        p.zrem(self.scheduled_index, room_id)
                    await p.execute()
                    return pending is not None
                except WatchError:
                    continue

    def _end(self, p: Pipeline, meta: Meta, reason: str) -> None:
        rk = self.rk(meta.id)
        ended: dict[Any, Any] = {
            "state": "ended",
            "ended_at": str(time.time()),
            "ended_reason": reason,
        }
        p.hset(rk.meta, mapping=ended)
        p.zrem(self.live_index, meta.id)
        p.zrem(self.scheduled_index, meta.id)
        p.zrem(self.by_host(meta.host), meta.id)
        hub.queue(p, self.k, meta.id, {"type": "room.ended", "reason": reason})

    async def _cleanup(self, room_id: str) -> None:
        """Drop an ended room's participants; keep its metadata readable for a while."""
        rk = self.rk(room_id)
        users = [str(u) for u in await self.r.zrange(rk.members, 0, -1)]
        async with self.r.pipeline(transaction=False) as p:
            for i in range(0, len(users), 1000):
                p.delete(*[rk.part(u) for u in users[i : i + 1000]])
            p.delete(rk.members, rk.stage, rk.flags, rk.removed)
            p.expire(rk.meta, self.settings.room_ended_ttl_seconds)
            await p.execute()

    # ---- participants ----

    def _put(self, p: Pipeline, rk: RoomKeys, rec: Record) -> None:
        """Write a record and keep the stage and flags indexes in step with it."""
        m = rec.member
        p.set(rk.part(m.user_id), rec.dumps())
        if m.on_stage:
            p.hset(rk.stage, m.user_id, m.role.value)
        else:
            p.hdel(rk.stage, m.user_id)
        if m.role is Role.LISTENER and (m.hand_raised or m.invited):
            p.sadd(rk.flags, m.user_id)
        else:
            p.srem(rk.flags, m.user_id)

    def _drop(self, p: Pipeline, rk: RoomKeys, user_id: str) -> None:
        p.delete(rk.part(user_id))
        p.zrem(rk.members, user_id)
        p.hdel(rk.stage, user_id)
        p.srem(rk.flags, user_id)

    async def _listeners(self, p: Pipeline, rk: RoomKeys) -> int:
        members = await p.zcard(rk.members)
        stage = await p.hlen(rk.stage)
        return int(members) - int(stage)

    def _announce(self, rec: Record, listeners: int) -> bool:
        """Listeners' comings and goings are announced only in rooms of modest size."""
        return rec.member.on_stage or listeners <= self.settings.room_listener_events_max

    async def join(self, room_id: str, user_id: str, conn: str, node: str) -> Record:
        """Admit ``user_id`` over connection ``conn``; raises an DomainError when refused."""
        rk = self.rk(room_id)
        async with self.r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(rk.meta, rk.removed, rk.part(user_id))
                    h = await p.hgetall(rk.meta)
                    if not h:
                        raise NotFound("no such room", code="room_not_found")
                    meta = Meta.from_hash(h)
                    if meta.state == "scheduled":
                        raise Conflict("the room has not started yet", code="room_not_live")
                    if meta.state == "ended":
                        raise Conflict("the room has ended", code="room_ended")
                    removed = bool(await p.sismember(rk.removed, user_id))
                    raw = await p.get(rk.part(user_id))
                    old = Record.loads(raw) if raw else None
                    try:
                        member = rules.admit(user_id, old.member if old else None, removed=removed)
                    except Refused as exc:
                        raise Forbidden(exc.message, code=exc.code) from None
                    now = time.time()
                    rec = Record(member, True, conn, node, old.joined_at if old else now)
                    listeners = await self._listeners(p, rk)
                    p.multi()
                    self._put(p, rk, rec)
                    p.zadd(rk.members, {user_id: rec.joined_at}, nx=True)
                    p.sadd(self.node_conns(node), deadline_entry(room_id, user_id, conn))
                    if old is not None:
                        p.zrem(self.deadlines, deadline_entry(room_id, user_id, old.conn))
                        if old.connected:  # the same user on a new socket: close the old one
                            hub.queue(
                                p, self.k, room_id, {"type": "_replaced", "conn": old.conn}, user_id
                            )
                    if self._announce(rec, listeners):
                        kind = "participant.updated" if old else "participant.joined"
                        hub.queue(p, self.k, room_id, {"type": kind, "participant": rec.public()})
                    await p.execute()
                    return rec
                except WatchError:
                    continue

    async def disconnect(self, room_id: str, user_id: str, conn: str, node: str) -> None:
        """The socket ``conn`` closed: keep the participant's place for a grace period."""
        rk = self.rk(room_id)
        entry = deadline_entry(room_id, user_id, conn)
        async with self.r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(rk.part(user_id))
                    raw = await p.get(rk.part(user_id))
                    rec = Record.loads(raw) if raw else None
                    if rec is None or rec.conn != conn or not rec.connected:
                        await p.reset()
                        await self.r.srem(self.node_conns(node), entry)
                        return
                    listeners = await self._listeners(p, rk)
                    is_host = rec.member.role is Role.HOST
                    s = self.settings
                    grace = s.host_grace_seconds if is_host else s.reconnect_grace_seconds
                    rec = replace(rec, connected=False)
                    p.multi()
                    p.set(rk.part(user_id), rec.dumps())
                    p.zadd(self.deadlines, {entry: time.time() + grace})
                    p.srem(self.node_conns(node), entry)
                    if self._announce(rec, listeners):
                        hub.queue(
                            p,
                            self.k,
                            room_id,
                            {"type": "participant.updated", "participant": rec.public()},
                        )
                    await p.execute()
                    return
                except WatchError:
                    continue

    async def expire(self, room_id: str, user_id: str, conn: str) -> None:
        """A grace period ended: the participant is gone; a host's place passes on or the
        room ends. Does nothing if they came back meanwhile."""
        rk = self.rk(room_id)
        entry = deadline_entry(room_id, user_id, conn)
        ended = False
        async with self.r.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(rk.meta, rk.stage, rk.part(user_id))
                    h = await p.hgetall(rk.meta)
                    raw = await p.get(rk.part(user_id))
                    rec = Record.loads(raw) if raw else None
                    if not h or rec is None or rec.connected or rec.conn != conn:
                        await p.reset()
                        await self.r.zrem(self.deadlines, entry)
                        return
                    meta = Meta.from_hash(h)
                    listeners = await self._listeners(p, rk)
                    heir: Record | None = None
                    room_event: dict[str, Any] = {}
                    if rec.member.role is Role.HOST:
                        heir = await self._heir(p, rk)
                    if heir is not None:
                        new_meta = replace(meta, host=heir.user_id)
                        counts = (listeners, int(await p.hlen(rk.stage)) - 1)
                        room = await self.room(new_meta, counts)
                        room_event = {"type": "room.updated", "room": room.model_dump(mode="json")}
                    p.multi()
                    self._drop(p, rk, user_id)
                    p.zrem(self.deadlines, entry)
                    if self._announce(rec, listeners):
                        hub.queue(
                            p,
                            self.k,
                            room_id,
                            {"type": "participant.left", "user_id": user_id, "reason": "left"},
                        )
                    if heir is not None:
                        self._put(p, rk, heir)
                        p.hset(rk.meta, "host", heir.user_id)
                        p.zrem(self.by_host(meta.host), room_id)
                        p.zadd(self.by_host(heir.user_id), {room_id: meta.started_at})
                        hub.queue(
                            p,
                            self.k,
                            room_id,
                            {"type": "participant.updated", "participant": heir.public()},
                        )
                        hub.queue(p, self.k, room_id, room_event)
                    elif rec.member.role is Role.HOST and meta.state == "live":
                        self._end(p, meta, "host_left")
                        ended = True
                    await p.execute()
                    break
                except WatchError:
                    continue
        if ended:
            await self._cleanup(room_id)

    async def _heir(self, p: Pipeline, rk: RoomKeys) -> Record | None:
        """The co-host who takes the host's place (``rules.successor``), as a record."""
        stage = await p.hgetall(rk.stage)
        cohosts = [rk.part(str(u)) for u, role in stage.items() if role == Role.COHOST.value]
        records = [Record.loads(x) for x in await p.mget(cohosts) if x] if cohosts else []
        chosen = rules.successor(r.member for r in records)
        if chosen is None:
            return None
        old = next(r for r in records if r.user_id == chosen.user_id)
        return replace(old, member=chosen)

    async def act(self, room_id: str, actor_id: str, action: str, target_id: str | None) -> Change:
        """Apply a client action under the rules; raises ``Refused`` and changes nothing
        when the sender's current role does not allow it."""
        rk = self.rk(room_id)
        async with self.r.pipeline(transaction=True) as p:
            while True:
                try:
                    watched = [rk.meta, rk.stage, rk.part(actor_id)]
                    if target_id is not None:
                        watched.append(rk.part(target_id))
                    await p.watch(*watched)
                    h = await p.hgetall(rk.meta)
                    if not h or h.get("state") != "live":
                        raise Refused("room_not_live", "the room is not live")
                    meta = Meta.from_hash(h)
                    raw_actor = await p.get(rk.part(actor_id))
                    if raw_actor is None:
                        raise Refused("not_in_room", "you are not in this room")
                    actor = Record.loads(raw_actor)
                    target: Record | None = None
                    if target_id == actor_id:
                        target = actor
                    elif target_id is not None:
                        raw_target = await p.get(rk.part(target_id))
                        target = Record.loads(raw_target) if raw_target else None
                    raw_stage = await p.hgetall(rk.stage)
                    stage = {str(u): Role(str(r)) for u, r in raw_stage.items()}
                    situation = rules.Situation(
                        actor=actor.member,
                        target=target.member if target else None,
                        stage=stage,
                        caps=self.caps,
                        policy=meta.speaker_policy,
                        now=time.time(),
                    )
                    change = rules.decide(action, situation)
                    if change.empty:
                        await p.reset()
                        return change
                    records = {actor_id: actor}
                    if target is not None:
                        records[target.user_id] = target
                    p.multi()
                    for member in change.updates:
                        rec = replace(records[member.user_id], member=member)
                        self._put(p, rk, rec)
                        hub.queue(
                            p,
                            self.k,
                            room_id,
                            {"type": "participant.updated", "participant": rec.public()},
                        )
                    if change.invited is not None:
                        hub.queue(
                            p,
                            self.k,
                            room_id,
                            {"type": "invite.received", "from_user": actor_id},
                            change.invited,
                        )
                    if change.removed is not None:
                        self._drop(p, rk, change.removed)
                        p.sadd(rk.removed, change.removed)
                        hub.queue(p, self.k, room_id, {"type": "removed"}, change.removed)
                        hub.queue(
                            p,
                            self.k,
                            room_id,
                            {
                                "type": "participant.left",
                                "user_id": change.removed,
                                "reason": "removed",
                            },
                        )
                    if change.ended:
                        self._end(p, meta, "ended_by_host")
                    await p.execute()
                    break
                except WatchError:
                    continue
        if change.ended:
            await self._cleanup(room_id)
        return change

    async def present(self, room_id: str, user_id: str) -> Record:
        """The sender's record in a live room (for messages that change nothing)."""
        rk = self.rk(room_id)
        async with self.r.pipeline(transaction=False) as p:
            p.hget(rk.meta, "state")
            p.get(rk.part(user_id))
            state, raw = await p.execute()
        if state != "live":
            raise Refused("room_not_live", "the room is not live")
        if raw is None:
            raise Refused("not_in_room", "you are not in this room")
        return Record.loads(raw)

    # ---- deadlines and nodes ----

    async def claim_due(self, now: float, lease: float, limit: int = 100) -> list[str]:
        """Take due deadlines; each is leased (pushed back) so a crash mid-way retries it."""
        due = await self._claim(keys=[self.deadlines], args=[now, now + lease, limit])
        return [str(x) for x in due]


CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
"""


def check_schedule(when: float, now: float) -> None:
    if when <= now:
        raise Conflict("scheduled_for must be in the future", code="schedule_in_past")
    if when > now + SCHEDULE_HORIZON_SECONDS:
        raise Conflict("scheduled_for is too far ahead (90 days at most)", code="schedule_too_far")

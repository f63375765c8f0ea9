"""Rooms in Redis: metadata, participants and indexes; every change one transaction with
its events.

Layout (``{id}`` is a hash tag, so one room's keys share a cluster slot):

* ``room:{id}:meta``     hash: title, host, state, timestamps...
* ``room:{id}:p:<user>`` JSON participant record (role, mute, hand, connection)
* ``room:{id}:members``  zset user -> joined_at (everyone present or within a grace period)
* ``room:{id}:stage``    hash user -> role, for everyone on stage (counts and caps)
* ``room:{id}:flags``    set of listeners with a raised hand or a pending invitation
* ``room:{id}:invited``  set of listeners with a pending invitation
* ``room:{id}:removed``  set of removed users (never readmitted)
* ``room:{id}:reminders`` set of users to remind when the scheduled room starts
* ``rooms:live`` / ``rooms:scheduled`` zsets for discovery, ``rooms:by_host:<user>``
* ``rooms:grace``        lease table (``server.leases``): ``room|user|conn`` -> when a
  disconnected participant's grace period ends
* ``rooms:overdue``      lease table: scheduled room -> when it is cancelled if not started
* ``rooms:node:<node>:conns`` set of ``room|user|conn`` connected through that node

Every change is a ``rooms.control.reducer`` change run in one transaction
(``server.transactions``): the store WATCHes and reads the part of the room the change
needs, the reducer gives the new state and its events, and the store writes what changed
(records, and every index that follows them), publishes the events and appends the
change's webhook events to the outbox (``rooms.control.integration``) in the same
MULTI/EXEC. A concurrent write makes EXEC fail and the change is decided again on fresh
data, so two processes can never exceed a cap, and every process sees events in commit
order.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from rooms.control import hub, integration, rules
from rooms.control.reducer import (
    Act,
    CancelOverdue,
    Close,
    Create,
    Disconnect,
    Edit,
    Env,
    Expire,
    Join,
    Outcome,
    RoomChange,
    Start,
    Terms,
)
from rooms.control.rules import Caps, Refused, Role, SpeakerPolicy
from rooms.control.state import Meta, Record, RoomState
from server.clock import Clock
from server.errors import Conflict, NotFound
from server.leases import LeaseTable, ms
from server.settings import Settings
from server.store import Keys
from server.transactions import Writes, transact
from server.webhooks.events import Envelope
from server.webhooks.outbox import Outbox

ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def checked_id(room_id: str) -> str:
    """A room id from a URL; anything that cannot be one is simply not found."""
    if not ROOM_ID.match(room_id):
        raise NotFound("no such room", code="room_not_found")
    return room_id


def entry(room_id: str, user_id: str, conn: str) -> str:
    """A connection in the grace and node lists."""
    return f"{room_id}|{user_id}|{conn}"


def entry_of(room_id: str, rec: Record) -> str:
    return entry(room_id, rec.user_id, rec.conn)


class RoomKeys:
    def __init__(self, keys: Keys, room_id: str) -> None:
        self.room_id = room_id
        self._tag = "{" + room_id + "}"
        self._keys = keys
        self.meta = keys("room", self._tag, "meta")
        self.members = keys("room", self._tag, "members")
        self.stage = keys("room", self._tag, "stage")
        self.flags = keys("room", self._tag, "flags")
        self.invited = keys("room", self._tag, "invited")
        self.removed = keys("room", self._tag, "removed")
        self.reminders = keys("room", self._tag, "reminders")

    def part(self, user_id: str) -> str:
        return self._keys("room", self._tag, "p", user_id)


@dataclass(frozen=True)
class Reads:
    """The part of a room a change reads and watches (its metadata always)."""

    users: tuple[str, ...] = ()  # these participants' records
    stage: bool = False  # everyone on stage and every invited listener too
    removed: bool = False  # which of ``users`` were removed
    listeners: bool = False  # the listener count (not watched: it only decides announcements)
    reminders: bool = False  # who asked to be reminded (for room.reminder webhooks)


class RoomStore:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: Settings,
        clock: Clock,
        outbox: Outbox | None = None,
    ) -> None:
        self.r = redis
        self.k = keys
        self.settings = settings
        self.clock = clock
        self.caps = Caps(settings.max_cohosts, settings.max_speakers)
        s = settings
        grace = (s.reconnect_grace_seconds, s.host_grace_seconds)
        limits = (s.room_listener_events_max, s.scheduled_room_expiry_seconds)
        self.terms = Terms(self.caps, *grace, *limits, s.public_base_url)
        self.outbox = outbox or Outbox(keys)
        self.live_index = keys("rooms", "live")
        self.scheduled_index = keys("rooms", "scheduled")
        self.grace = LeaseTable(redis, keys("rooms", "grace"))
        self.overdue = LeaseTable(redis, keys("rooms", "overdue"))

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
        and the first listeners up to the announcement limit (all of them in a small room,
        and for the host and co-hosts, who hear of every listener)."""
        rk = self.rk(room_id)
        async with self.r.pipeline(transaction=False) as p:
            p.hgetall(rk.stage)
            p.smembers(rk.flags)
            stage, flags = await p.execute()
        last = self.settings.room_listener_events_max + len(stage)
        if stage.get(you) in (Role.HOST.value, Role.COHOST.value):
            last = -1
        first = await self.r.zrange(rk.members, 0, last)
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

    # ---- changes: the room (HTTP) ----

    async def create(
        self,
        host: str,
        title: str,
        description: str,
        language: str,
        policy: SpeakerPolicy,
        scheduled_for: float | None,
        recorded: bool = False,
    ) -> Meta:
        room_id = secrets.token_urlsafe(12)
        change = Create(
            room_id, host, title, description, language, policy, scheduled_for, recorded
        )
        return self._meta_of(await self._apply(room_id, change, Reads()))

    async def edit(self, room_id: str, user: str, changes: dict[str, object]) -> Meta:
        return self._meta_of(await self._apply(room_id, Edit(user, changes), Reads()))

    async def start(self, room_id: str, user: str) -> Meta:
        reads = Reads(reminders=self.outbox.enabled)
        return self._meta_of(await self._apply(room_id, Start(user), reads))

    async def cancel(self, room_id: str, user: str) -> Meta:
        return self._meta_of(await self._apply(room_id, Close(user, "scheduled"), Reads()))

    async def end_by_host(self, room_id: str, user: str) -> Meta:
        return self._meta_of(await self._apply(room_id, Close(user, "live"), Reads()))

    async def cancel_overdue(self, holder: str, lease: float, limit: int = 100) -> list[str]:
        """Cancel the scheduled rooms whose host has not started them within
        ``scheduled_room_expiry_seconds`` of their start time (reason ``not_started``).

        Any process may run this at any time: each overdue room is taken by one process
        (leased, so another one takes it if that process dies) and cancelled by one
        check-and-set transaction.
        """
        due = await self.overdue.take_due(holder, lease, limit, self.clock.now())
        return [room_id for room_id in due if await self._cancel_overdue(room_id)]

    async def _cancel_overdue(self, room_id: str) -> bool:
        outcome = await self._apply(room_id, CancelOverdue(), Reads())
        meta = outcome.state.meta
        if meta is not None and meta.state == "scheduled":  # moved: due at its new time
            await self.overdue.put(room_id, meta.scheduled_for + self.terms.expiry)
        else:  # cancelled now, or started, ended or gone meanwhile
            await self.overdue.done(room_id)
        return bool(outcome.events)

    @staticmethod
    def _meta_of(outcome: Outcome) -> Meta:
        assert outcome.state.meta is not None  # a change that succeeded has a room
        return outcome.state.meta

    # ---- reminders ----

    async def remind(self, room_id: str, user_id: str, on: bool) -> int:
        """Add or drop ``user_id``'s reminder of a scheduled room; the room's reminder count.

        Checked and written in one transaction with the room's state: a reminder set while
        the room starts is either refused or in the start's ``room.reminder`` events.
        """
        rk = self.rk(room_id)

        async def attempt(p: Pipeline) -> tuple[None, Writes | None]:
            await p.watch(rk.meta)
            state = await p.hget(rk.meta, "state")
            if state is None:
                raise NotFound("no such room", code="room_not_found")
            if state != "scheduled":
                raise Conflict(f"the room is {state!s}", code="room_not_scheduled")

            def writes(w: Pipeline) -> None:
                if on:
                    w.sadd(rk.reminders, user_id)
                else:
                    w.srem(rk.reminders, user_id)

            return None, writes

        await transact(self.r, attempt)
        return int(await self.r.scard(rk.reminders))

    async def reminded(self, room_id: str, user_id: str) -> tuple[bool, int]:
        """Whether ``user_id`` asked to be reminded, and how many did."""
        rk = self.rk(room_id)
        async with self.r.pipeline(transaction=False) as p:
            p.sismember(rk.reminders, user_id)
            p.scard(rk.reminders)
            mine, count = await p.execute()
        return bool(mine), int(count)

    async def reminder_counts(self, room_ids: Iterable[str]) -> list[int]:
        async with self.r.pipeline(transaction=False) as p:
            for room_id in room_ids:
                p.scard(self.rk(room_id).reminders)
            return [int(n) for n in await p.execute()]

    # ---- changes: participants (the socket, grace periods) ----

    async def join(self, room_id: str, user_id: str, conn: str, node: str) -> Record:
        """Admit ``user_id`` over connection ``conn``; raises a DomainError when refused."""
        reads = Reads(users=(user_id,), removed=True, listeners=True)
        outcome = await self._apply(room_id, Join(user_id, conn, node), reads)
        return outcome.state.members[user_id]

    async def disconnect(self, room_id: str, user_id: str, conn: str, node: str) -> None:
        """The socket ``conn`` closed: keep the participant's place for a grace period."""
        reads = Reads(users=(user_id,), listeners=True)
        await self._apply(room_id, Disconnect(user_id, conn), reads)
        # Gone from this node's list in any case (the room may have ended meanwhile).
        await self.r.srem(self.node_conns(node), entry(room_id, user_id, conn))

    async def expire(self, room_id: str, user_id: str, conn: str) -> None:
        """A grace period ended: the participant is gone (unless they came back)."""
        reads = Reads(users=(user_id,), stage=True, listeners=True)
        await self._apply(room_id, Expire(user_id, conn), reads)
        await self.grace.done(entry(room_id, user_id, conn))

    async def act(self, room_id: str, actor_id: str, action: str, target_id: str | None) -> None:
        """Apply a client action under the rules; raises ``Refused`` and changes nothing
        when the sender's current role does not allow it."""
        users = (actor_id,) if target_id in (None, actor_id) else (actor_id, target_id)
        await self._apply(room_id, Act(actor_id, action, target_id), Reads(users, stage=True))

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

    # ---- one change, one transaction ----

    async def _apply(self, room_id: str, change: RoomChange, reads: Reads) -> Outcome:
        rk = self.rk(room_id)

        async def attempt(p: Pipeline) -> tuple[tuple[RoomState, Outcome], Writes | None]:
            before = await self._read(p, rk, reads)
            now = self.clock.now()
            outcome = change.apply(before, Env(self.terms, now))
            if outcome.state is before and not outcome.events:
                return (before, outcome), None
            subscribers = await self._subscribers(p, rk) if reads.reminders else []
            hooks = self._webhooks(before, outcome.state, now, subscribers)
            write = partial(self._write, rk=rk, before=before, outcome=outcome, hooks=hooks)
            return (before, outcome), write

        before, outcome = await transact(self.r, attempt)
        was, now = before.meta, outcome.state.meta
        if now is not None and now.state == "ended" and (was is None or was.state != "ended"):
            await self._cleanup(room_id)
        return outcome

    async def _read(self, p: Pipeline, rk: RoomKeys, reads: Reads) -> RoomState:
        """WATCH and read the part of the room ``reads`` names."""
        watched = [rk.meta, *map(rk.part, reads.users)]
        watched += [rk.stage, rk.invited] if reads.stage else []
        watched += [rk.removed] if reads.removed else []
        await p.watch(*watched)
        raw_meta = await p.hgetall(rk.meta)
        users = list(dict.fromkeys(reads.users))
        if reads.stage:
            others = {str(u) for u in await p.hkeys(rk.stage)}
            others |= {str(u) for u in await p.smembers(rk.invited)}
            extra = sorted(others - set(users))
            if extra:
                await p.watch(*map(rk.part, extra))
            users += extra
        raw = await p.mget(list(map(rk.part, users))) if users else []
        members = {r.user_id: r for r in (Record.loads(x) for x in raw if x)}
        removed = set()
        for user_id in reads.users if reads.removed else ():
            if await p.sismember(rk.removed, user_id):
                removed.add(user_id)
        listeners = (await self.counts([rk.room_id]))[0][0] if reads.listeners else 0
        meta = Meta.from_hash(raw_meta) if raw_meta else None
        return RoomState(meta, members, frozenset(removed), listeners)

    async def _subscribers(self, p: Pipeline, rk: RoomKeys) -> list[str]:
        await p.watch(rk.reminders)
        return [str(u) for u in await p.smembers(rk.reminders)]

    def _webhooks(
        self, before: RoomState, after: RoomState, now: float, subscribers: list[str]
    ) -> list[Envelope]:
        if not self.outbox.enabled:
            return []
        batch = self.settings.webhook_reminder_batch
        return integration.webhook_events(before, after, now, subscribers, batch)

    # ---- writing ----

    def _write(
        self,
        p: Pipeline,
        *,
        rk: RoomKeys,
        before: RoomState,
        outcome: Outcome,
        hooks: list[Envelope],
    ) -> None:
        """Write what ``outcome`` changed, and its events, on the MULTI ``p``."""
        after = outcome.state
        if after.meta is not None and after.meta != before.meta:
            self._write_meta(p, before.meta, after.meta)
        if after.meta is None or after.meta.state != "ended":  # else: _cleanup drops them
            for user_id, rec in after.members.items():
                old = before.members.get(user_id)
                if rec != old:
                    self._put(p, rk, old, rec)
            for user_id in before.members.keys() - after.members.keys():
                self._drop(p, rk, before.members[user_id])
        added = after.removed - before.removed
        if added:
            p.sadd(rk.removed, *added)
        for event, to in outcome.events:
            hub.queue(p, self.k, rk.room_id, event, to)
        self.outbox.append(p, *hooks)

    def _write_meta(self, p: Pipeline, old: Meta | None, new: Meta) -> None:
        """Write the room's metadata; the discovery indexes and leases follow its state."""
        room_id = new.id
        p.hset(self.rk(room_id).meta, mapping=new.to_hash())
        if old is not None and old.host != new.host:
            p.zrem(self.by_host(old.host), room_id)
        if new.state == "live":
            p.zadd(self.live_index, {room_id: new.started_at})
            p.zadd(self.by_host(new.host), {room_id: new.started_at})
            p.zrem(self.scheduled_index, room_id)
            p.zrem(self.overdue.key, room_id)
        elif new.state == "scheduled":
            p.zadd(self.scheduled_index, {room_id: new.scheduled_for})
            p.zadd(self.by_host(new.host), {room_id: new.scheduled_for})
            p.zadd(self.overdue.key, {room_id: ms(new.scheduled_for + self.terms.expiry)})
        else:
            for index in (self.live_index, self.scheduled_index, self.overdue.key):
                p.zrem(index, room_id)
            p.zrem(self.by_host(new.host), room_id)
        if new.state != "scheduled":  # reminders are for the start (and sent with it)
            p.delete(self.rk(room_id).reminders)

    def _put(self, p: Pipeline, rk: RoomKeys, old: Record | None, rec: Record) -> None:
        """Write a record and keep every index that follows it in step."""
        m, user_id = rec.member, rec.user_id
        p.set(rk.part(user_id), rec.dumps())
        if old is None:
            p.zadd(rk.members, {user_id: rec.joined_at}, nx=True)
        if m.on_stage:
            p.hset(rk.stage, user_id, m.role.value)
        else:
            p.hdel(rk.stage, user_id)
        listener = m.role is Role.LISTENER
        _in_set(p, rk.flags, user_id, listener and (m.hand_raised or m.invited))
        _in_set(p, rk.invited, user_id, listener and m.invited)
        self._follow(p, rk.room_id, old, rec)

    def _drop(self, p: Pipeline, rk: RoomKeys, old: Record) -> None:
        user_id = old.user_id
        p.delete(rk.part(user_id))
        p.zrem(rk.members, user_id)
        p.hdel(rk.stage, user_id)
        p.srem(rk.flags, user_id)
        p.srem(rk.invited, user_id)
        self._follow(p, rk.room_id, old, None)

    def _follow(self, p: Pipeline, room_id: str, old: Record | None, new: Record | None) -> None:
        """Where a participant's connection is listed: in its node's set while connected
        (for a dead node's participants), in the grace lease table while not."""
        if old is not None and new is not None and _where(old) == _where(new):
            return
        if old is not None and old.connected:
            p.srem(self.node_conns(old.node), entry_of(room_id, old))
        elif old is not None:
            p.zrem(self.grace.key, entry_of(room_id, old))
        if new is not None and new.connected:
            p.sadd(self.node_conns(new.node), entry_of(room_id, new))
        elif new is not None:
            p.zadd(self.grace.key, {entry_of(room_id, new): ms(new.grace_until)})

    async def _cleanup(self, room_id: str) -> None:
        """Drop an ended room's participants; keep its metadata readable for a while."""
        rk = self.rk(room_id)
        users = [str(u) for u in await self.r.zrange(rk.members, 0, -1)]
        async with self.r.pipeline(transaction=False) as p:
            for i in range(0, len(users), 1000):
                p.delete(*[rk.part(u) for u in users[i : i + 1000]])
            p.delete(rk.members, rk.stage, rk.flags, rk.invited, rk.removed)
            p.expire(rk.meta, self.settings.room_ended_ttl_seconds)
            await p.execute()


def _where(rec: Record) -> tuple[bool, str, str, float]:
    return rec.connected, rec.conn, rec.node, rec.grace_until


def _in_set(p: Pipeline, key: str, member: str, present: bool) -> None:
    if present:
        p.sadd(key, member)
    else:
        p.srem(key, member)

"""The room reducer: a change applied to a room's state gives the new state and its events.

Plain code, no I/O: the time, the settings and the room's socket URL come in ``Env``. Every
change of a room goes through ``RoomChange.apply``: joins, disconnections, grace periods
running out, every client action (through ``rules``), and the host's HTTP changes. A
refusal raises a domain error and changes nothing. The Redis store reads the part of a room
a change needs, applies the change and writes the new state with its events in one
transaction; the property tests (tests/rooms/test_rules.py) drive the same changes over
whole rooms in memory.

Events are ``(event, to)`` pairs: ``to`` addresses one participant, ``None`` everyone.
After each change, everyone whose possible actions changed gets an ``actions`` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from rooms.control import presenters, rules
from rooms.control.actions import allowed
from rooms.control.events import (
    MODERATORS,
    ActionsChanged,
    Event,
    InviteReceived,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RecordingStarted,
    Removed,
    Replaced,
    RoomEnded,
    RoomUpdated,
)
from rooms.control.rules import Caps, Member, Refused, Role, SpeakerPolicy
from rooms.control.state import Meta, Record, RoomState
from server.errors import Conflict, Forbidden, NotFound

SCHEDULE_HORIZON_SECONDS = 90 * 24 * 3600
Addressed = tuple[Event, str | None]


@dataclass(frozen=True)
class Terms:
    """The deployment's settings a change looks at."""

    caps: Caps
    reconnect_grace: float
    host_grace: float
    announce_max: int  # above this many listeners, listeners' comings and goings are
    # announced to moderators only (``audience``)
    expiry: float  # a scheduled room not started this long after its time is cancelled
    base_url: str


@dataclass(frozen=True)
class Env:
    terms: Terms
    now: float


@dataclass(frozen=True)
class Outcome:
    state: RoomState
    events: tuple[Addressed, ...] = ()


class RoomChange(Protocol):
    def apply(self, room: RoomState, env: Env) -> Outcome:
        """The room after this change, and its events; raises a domain error if refused."""
        ...


# ---- participants ----


@dataclass(frozen=True)
class Join:
    """``user_id`` connects over ``conn`` (on ``node``): back in their place, or a listener."""

    user_id: str
    conn: str
    node: str

    def apply(self, room: RoomState, env: Env) -> Outcome:
        joinable(room.meta)
        old = room.members.get(self.user_id)
        removed = self.user_id in room.removed
        member = rules.admit(self.user_id, old.member if old else None, removed=removed)
        joined_at = old.joined_at if old else env.now
        rec = Record(member, True, self.conn, self.node, joined_at)
        events: list[Addressed] = []
        if old is not None and old.connected:  # the same user on a new socket: close the old one
            events.append((Replaced(conn=old.conn), self.user_id))
        kind = ParticipantUpdated if old else ParticipantJoined
        events.append((kind(participant=presenters.participant(rec)), audience(rec, room, env)))
        return Outcome(room.put(rec), tuple(events))


@dataclass(frozen=True)
class Disconnect:
    """Socket ``conn`` closed: the participant's place is kept for a grace period."""

    user_id: str
    conn: str

    def apply(self, room: RoomState, env: Env) -> Outcome:
        rec = room.members.get(self.user_id)
        if rec is None or rec.conn != self.conn or not rec.connected:
            return Outcome(room)  # replaced, gone, or already disconnected
        t = env.terms
        grace = t.host_grace if rec.member.role is Role.HOST else t.reconnect_grace
        rec = replace(rec, connected=False, grace_until=env.now + grace)
        event = ParticipantUpdated(participant=presenters.participant(rec))
        return Outcome(room.put(rec), ((event, audience(rec, room, env)),))


@dataclass(frozen=True)
class Expire:
    """The grace period of connection ``conn`` ran out: the participant is gone; a host's
    place passes to the first co-host, or the room ends. Nothing if they came back."""

    user_id: str
    conn: str

    def apply(self, room: RoomState, env: Env) -> Outcome:
        rec = room.members.get(self.user_id)
        if room.meta is None or rec is None or rec.connected or rec.conn != self.conn:
            return Outcome(room)
        after = room.drop(self.user_id)
        left = ParticipantLeft(user_id=self.user_id, reason="left")
        events: list[Addressed] = [(left, audience(rec, room, env))]
        if rec.member.role is Role.HOST:
            after = succeed(after, env, events)
        return settle(room, after, events, env)


def succeed(room: RoomState, env: Env, events: list[Addressed]) -> RoomState:
    """The host is gone: the first co-host takes over, or the room ends."""
    meta = room.meta
    assert meta is not None
    heir = rules.successor(r.member for r in room.members.values())
    if heir is None:
        if meta.state != "live":
            return room
        ended, event = end(room, "host_left", env)
        events.append(event)
        return ended
    heir_rec = replace(room.members[heir.user_id], member=heir)
    new_meta = replace(meta, host=heir.user_id)
    after = replace(room.put(heir_rec), meta=new_meta)
    counts = (after.listeners, len(after.stage))
    shown = presenters.room(new_meta, counts, env.terms.base_url)
    events += [updated(heir_rec), (RoomUpdated(room=shown), None)]
    return after


@dataclass(frozen=True)
class Act:
    """A client message, applied under the sender's current role (``rules``)."""

    actor: str
    action: str
    target: str | None

    def apply(self, room: RoomState, env: Env) -> Outcome:
        meta = room.meta
        if meta is None or meta.state != "live":
            raise Refused("room_not_live", "the room is not live")
        actor = room.members.get(self.actor)
        if actor is None:
            raise Refused("not_in_room", "you are not in this room")
        target = room.members.get(self.target) if self.target is not None else None
        situation = rules.Situation(
            actor=actor.member,
            target=target.member if target else None,
            stage=room.stage,
            caps=env.terms.caps,
            policy=meta.speaker_policy,
            now=env.now,
            recorded=meta.recorded,
        )
        change = rules.decide(self.action, situation)
        if change.empty:
            return Outcome(room)
        return decided(room, change, self.actor, env)


def decided(room: RoomState, change: rules.Change, actor: str, env: Env) -> Outcome:
    """The room after a change the rules allowed."""
    after, events = room, []
    for member in change.updates:
        rec = replace(after.members[member.user_id], member=member)
        after = after.put(rec)
        events.append(updated(rec))
    if change.invited is not None:
        events.append((InviteReceived(from_user=actor), change.invited))
    if change.removed is not None:
        after = after.drop(change.removed)
        after = replace(after, removed=after.removed | {change.removed})
        events.append((Removed(), change.removed))
        events.append((ParticipantLeft(user_id=change.removed, reason="removed"), None))
    if change.record and after.meta is not None:
        after = replace(after, meta=replace(after.meta, recorded=True))
        events.append((RecordingStarted(by=actor), None))
    if change.ended:
        after, event = end(after, "ended_by_host", env)
        events.append(event)
    return settle(room, after, events, env)


# ---- the room itself (HTTP) ----


@dataclass(frozen=True)
class Create:
    room_id: str
    host: str
    title: str
    description: str
    language: str
    policy: SpeakerPolicy
    scheduled_for: float | None
    recorded: bool = False

    def apply(self, room: RoomState, env: Env) -> Outcome:
        now, when = env.now, self.scheduled_for
        if when is not None:
            check_schedule(when, now)
        meta = Meta(
            id=self.room_id,
            title=self.title.strip(),
            description=self.description,
            language=self.language,
            host=self.host,
            speaker_policy=self.policy,
            state="scheduled" if when is not None else "live",
            created_at=now,
            scheduled_for=when or 0.0,
            started_at=0.0 if when is not None else now,
            recorded=self.recorded,
        )
        created = RoomState(meta)
        return Outcome(go_live(created, env) if when is None else created)


@dataclass(frozen=True)
class Edit:
    user: str
    fields: Mapping[str, Any]  # Meta fields: title, description, scheduled_for...

    def apply(self, room: RoomState, env: Env) -> Outcome:
        when = self.fields.get("scheduled_for")
        if when is not None:
            check_schedule(when, env.now)
        meta = hosted(room, self.user, "scheduled")
        return Outcome(replace(room, meta=replace(meta, **self.fields)))


@dataclass(frozen=True)
class Start:
    user: str

    def apply(self, room: RoomState, env: Env) -> Outcome:
        meta = hosted(room, self.user, "scheduled")
        return Outcome(go_live(replace(room, meta=replace(meta, state="live")), env))


@dataclass(frozen=True)
class Close:
    """The host ends the room: cancels it while scheduled, ends it for everyone while live."""

    user: str
    expect: str  # the state the host acts on: "scheduled" (cancel) or "live" (end)

    def apply(self, room: RoomState, env: Env) -> Outcome:
        hosted(room, self.user, self.expect)
        reason = "cancelled" if self.expect == "scheduled" else "ended_by_host"
        after, event = end(room, reason, env)
        return Outcome(after, (event,))


@dataclass(frozen=True)
class CancelOverdue:
    """A scheduled room its host has not started ``expiry`` after its time is cancelled."""

    def apply(self, room: RoomState, env: Env) -> Outcome:
        meta = room.meta
        if meta is None or meta.state != "scheduled":
            return Outcome(room)
        if meta.scheduled_for + env.terms.expiry > env.now:
            return Outcome(room)  # the host moved it meanwhile
        after, event = end(room, "not_started", env)
        return Outcome(after, (event,))


# ---- helpers ----


def joinable(meta: Meta | None) -> Meta:
    if meta is None:
        raise NotFound("no such room", code="room_not_found")
    if meta.state == "scheduled":
        raise Conflict("the room has not started yet", code="room_not_live")
    if meta.state == "ended":
        raise Conflict("the room has ended", code="room_ended")
    return meta


def hosted(room: RoomState, user: str, expect: str) -> Meta:
    """The room's metadata, if ``user`` hosts it and it is in state ``expect``."""
    meta = room.meta
    if meta is None:
        raise NotFound("no such room", code="room_not_found")
    if meta.host != user:
        raise Forbidden("only the host may do that", code="not_host")
    if meta.state != expect:
        raise Conflict(f"the room is {meta.state}", code=f"room_not_{expect}")
    return meta


def check_schedule(when: float, now: float) -> None:
    if when <= now:
        raise Conflict("scheduled_for must be in the future", code="schedule_in_past")
    if when > now + SCHEDULE_HORIZON_SECONDS:
        raise Conflict("scheduled_for is too far ahead (90 days at most)", code="schedule_too_far")


def go_live(room: RoomState, env: Env) -> RoomState:
    """The room goes live now. The host's place is held from the start: if they never
    connect, the host grace period runs out like for a host who left."""
    assert room.meta is not None
    now = env.now
    meta = replace(room.meta, started_at=now)
    host = Member(meta.host, Role.HOST, since=now)
    placeholder = Record(
        host, joined_at=now, conn="created", grace_until=now + env.terms.host_grace
    )
    return replace(room, meta=meta).put(placeholder)


def end(room: RoomState, reason: str, env: Env) -> tuple[RoomState, Addressed]:
    """The room ends now; everyone in it leaves with it."""
    assert room.meta is not None
    meta = replace(room.meta, state="ended", ended_at=env.now, ended_reason=reason)
    return RoomState(meta, removed=room.removed), (RoomEnded(reason=reason), None)


def audience(rec: Record, room: RoomState, env: Env) -> str | None:
    """Who hears that ``rec`` came, went or lost its connection: everyone (None); in a room
    with more than ``announce_max`` listeners, for a listener without a raised hand or an
    invitation, the host and co-hosts only (the others get counts: ``listeners``)."""
    m = rec.member
    if m.on_stage or m.hand_raised or m.invited or room.listeners <= env.terms.announce_max:
        return None
    return MODERATORS


def updated(rec: Record) -> Addressed:
    return ParticipantUpdated(participant=presenters.participant(rec)), None


def settle(before: RoomState, after: RoomState, events: list[Addressed], env: Env) -> Outcome:
    """The outcome of a change: its events, then ``actions`` to whoever may now do other
    things (the participants changed, and on a free or filled seat everyone on stage and
    every invited listener: the store reads them for such changes)."""
    meta = after.meta
    if meta is None or meta.state != "live":
        return Outcome(after, tuple(events))
    caps, policy = env.terms.caps, meta.speaker_policy
    recording = (before.meta is not None and before.meta.recorded, meta.recorded)
    moved = seats(before.stage, caps) != seats(after.stage, caps) or len(set(recording)) > 1
    for user_id, rec in after.members.items():
        old = before.members.get(user_id)
        if old is None or (old.member == rec.member and not moved):
            continue
        was = allowed(old.member, before.stage, caps, policy, recording[0])
        now = allowed(rec.member, after.stage, caps, policy, recording[1])
        if now != was:
            events.append((ActionsChanged(actions=presenters.actions(now)), user_id))
    return Outcome(after, tuple(events))


def seats(stage: Mapping[str, Role], caps: Caps) -> tuple[bool, bool]:
    """Whether the speakers' and the co-hosts' seats are all taken."""
    speakers = rules.count(stage, Role.SPEAKER) >= caps.max_speakers
    return speakers, rules.count(stage, Role.COHOST) >= caps.max_cohosts

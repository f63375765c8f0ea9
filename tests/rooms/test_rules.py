"""The pure role rules and the room reducer: unit tests, and a Hypothesis state machine that
drives the reducer the Redis store applies, over whole rooms in memory."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import get_args

import pytest
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rooms.control import presenters
from rooms.control.actions import allowed
from rooms.control.events import (
    EVENT,
    MODERATORS,
    Actions,
    ActionsChanged,
    InviteReceived,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RoomEnded,
    RoomUpdated,
)
from rooms.control.messages import Targeted
from rooms.control.reducer import (
    Act,
    Disconnect,
    Env,
    Expire,
    Join,
    Outcome,
    RoomChange,
    Terms,
)
from rooms.control.rules import RANK, RULES, Caps, Member, Refused, Role, SpeakerPolicy, successor
from rooms.control.state import Meta, Record, RoomState

CAPS = Caps(max_cohosts=1, max_speakers=2)
TERMS = Terms(
    caps=CAPS,
    reconnect_grace=30.0,
    host_grace=60.0,
    announce_max=1000,
    expiry=3600.0,
    base_url="http://rooms.test",
)
# Every message naming another participant is moderation, and so is ending the room.
MODERATION = {*get_args(Targeted.model_fields["type"].annotation), "room.end", "recording.start"}
CODES = {
    "not_allowed",
    "participant_not_found",
    "self_reference",
    "cannot_moderate",
    "speakers_full",
    "cohosts_full",
    "already_on_stage",
    "not_on_stage",
    "no_raised_hand",
    "not_invited",
    "not_a_speaker",
    "hands_disabled",
    "host_cannot_step_down",
}
HOST = Member("h", Role.HOST)
ANYONE = SpeakerPolicy.ANYONE_CAN_REQUEST


def env(now: float = 1.0, caps: Caps = CAPS, announce_max: int = 1000) -> Env:
    return Env(replace(TERMS, caps=caps, announce_max=announce_max), now)


def room(*members: Member, policy: SpeakerPolicy = ANYONE) -> RoomState:
    meta = Meta("r", "Room", "", "en", "h", policy, "live", created_at=1.0, started_at=1.0)
    state = RoomState(meta)
    for m in members:
        state = state.put(Record(m, connected=True, conn=f"{m.user_id}-0", node="n"))
    return state


def outcome(r: RoomState, action: str, actor: str, target: str | None = None) -> Outcome:
    return Act(actor, action, target).apply(r, env())


def act(r: RoomState, action: str, actor: str, target: str | None = None) -> RoomState:
    return outcome(r, action, actor, target).state


def refused(r: RoomState, action: str, actor: str, target: str | None = None) -> str:
    with pytest.raises(Refused) as exc:
        outcome(r, action, actor, target)
    return exc.value.code


def member(r: RoomState, user: str) -> Member:
    return r.members[user].member


def test_hand_to_stage() -> None:
    r = act(room(HOST, Member("l")), "hand.raise", "l")
    assert member(r, "l").hand_raised
    r = act(r, "hand.accept", "h", "l")
    assert member(r, "l") == Member("l", Role.SPEAKER, since=1.0)
    assert refused(r, "hand.raise", "l") == "already_on_stage"


def test_listener_cannot_moderate() -> None:
    r = room(HOST, Member("s", Role.SPEAKER), Member("l"))
    for action in ("mute", "remove", "role.demote", "hand.accept", "invite.send"):
        assert refused(r, action, "l", "s") == "not_allowed", action
    assert refused(r, "room.end", "l") == "not_allowed"


def test_cohost_cannot_touch_host_or_cohost() -> None:
    r = room(HOST, Member("c", Role.COHOST), Member("d", Role.COHOST))
    assert refused(r, "remove", "c", "h") == "cannot_moderate"
    assert refused(r, "mute", "c", "d") == "cannot_moderate"
    assert refused(r, "role.cohost", "c", "d") == "not_allowed"
    assert refused(r, "room.end", "c") == "not_allowed"


def test_mute_only_self_unmutes() -> None:
    r = act(room(HOST, Member("s", Role.SPEAKER)), "mute", "h", "s")
    assert member(r, "s").muted and not member(r, "s").may_publish
    r = act(r, "unmute", "h")  # the host unmutes only themself: no effect on s
    assert member(r, "s").muted
    assert member(act(r, "unmute", "s"), "s").may_publish


def test_caps() -> None:
    r = room(HOST, Member("a", Role.SPEAKER), Member("b", Role.SPEAKER), Member("l"))
    r = act(r, "hand.raise", "l")
    assert refused(r, "hand.accept", "h", "l") == "speakers_full"
    assert refused(r, "invite.send", "h", "l") == "speakers_full"
    r = act(r, "role.cohost", "h", "a")
    assert refused(r, "role.cohost", "h", "b") == "cohosts_full"
    r = act(r, "hand.accept", "h", "l")
    assert refused(r, "role.demote", "h", "a") == "speakers_full"


def test_invitations() -> None:
    r = room(HOST, Member("l"), policy=SpeakerPolicy.INVITED_ONLY)
    assert refused(r, "hand.raise", "l") == "hands_disabled"
    assert refused(r, "invite.accept", "l") == "not_invited"
    sent = outcome(r, "invite.send", "h", "l")
    assert (InviteReceived(from_user="h"), "l") in sent.events
    r = act(sent.state, "invite.accept", "l")
    assert member(r, "l").role is Role.SPEAKER and not member(r, "l").invited


def test_removed_user_cannot_come_back() -> None:
    r = act(room(HOST, Member("l")), "remove", "h", "l")
    assert "l" not in r.members and "l" in r.removed
    with pytest.raises(Refused) as exc:
        Join("l", "l-1", "n").apply(r, env())
    assert exc.value.code == "removed"


def test_successor_is_the_longest_serving_cohost() -> None:
    members = [
        Member("late", Role.COHOST, since=5.0),
        Member("early", Role.COHOST, since=2.0),
        Member("s", Role.SPEAKER, since=1.0),
    ]
    heir = successor(members)
    assert heir is not None and heir.user_id == "early" and heir.role is Role.HOST
    assert successor([Member("s", Role.SPEAKER)]) is None


def test_host_gone_hands_the_room_on_with_its_events() -> None:
    r = room(HOST, Member("c", Role.COHOST, since=1.0), Member("l"))
    r = Disconnect("h", "h-0").apply(r, env()).state
    assert r.members["h"].grace_until == 1.0 + TERMS.host_grace
    gone = Expire("h", "h-0").apply(r, env(now=70.0))
    assert gone.state.meta is not None and gone.state.meta.host == "c"
    assert member(gone.state, "c").role is Role.HOST
    kinds = [(type(e).__name__, to) for e, to in gone.events]
    assert kinds == [
        ("ParticipantLeft", None),
        ("ParticipantUpdated", None),
        ("RoomUpdated", None),
        ("ActionsChanged", "c"),  # a host may end the room, name co-hosts...
    ]
    shown = next(e for e, _ in gone.events if isinstance(e, RoomUpdated)).room
    assert (shown.host, shown.listener_count, shown.speaker_count) == ("c", 1, 1)


# ---- actions ----


def actions_of(r: RoomState, user: str, caps: Caps = CAPS) -> Actions:
    meta = r.meta
    assert meta is not None
    mine = allowed(member(r, user), r.stage, caps, meta.speaker_policy, meta.recorded)
    return presenters.actions(mine)


def test_actions_of_a_listener_with_a_raised_hand() -> None:
    r = act(room(HOST, Member("l")), "hand.raise", "l")
    a = actions_of(r, "l")
    assert a.self == ["hand.lower"]
    assert set(a.targets) == {
        "listener",
        "listener:hand",
        "listener:invited",
        "listener:hand:invited",
        "speaker",
        "speaker:muted",
        "cohost",
        "cohost:muted",
        "host",
        "host:muted",
    }
    assert all(messages == [] for messages in a.targets.values())


def test_actions_of_the_host_and_a_cohost() -> None:
    r = room(HOST, Member("c", Role.COHOST), Member("s", Role.SPEAKER))
    host = actions_of(r, "h")
    assert host.self == ["mute", "room.end", "recording.start"]
    assert host.targets["listener"] == ["invite.send", "remove"]
    assert host.targets["listener:hand"] == ["hand.accept", "hand.dismiss", "invite.send", "remove"]
    assert host.targets["listener:invited"] == ["remove"]  # already invited: nothing to change
    assert host.targets["speaker"] == ["role.demote", "mute", "remove"]  # co-hosts full (1)
    assert host.targets["cohost"] == ["role.demote", "mute", "remove"]
    alone = actions_of(room(HOST, Member("s", Role.SPEAKER)), "h")
    assert alone.targets["speaker"] == ["role.cohost", "role.demote", "mute", "remove"]
    assert alone.targets["speaker:muted"] == ["role.cohost", "role.demote", "remove"]
    cohost = actions_of(r, "c")
    assert cohost.self == ["mute", "role.step_down", "recording.start"]
    assert cohost.targets["speaker"] == ["role.demote", "mute", "remove"]
    assert cohost.targets["cohost"] == [] and cohost.targets["host"] == []
    speaker = actions_of(act(r, "mute", "s", "s"), "s")
    assert speaker.self == ["unmute", "role.step_down"]


def test_actions_when_the_stage_is_full() -> None:
    r = room(HOST, Member("c", Role.COHOST), Member("a", Role.SPEAKER), Member("b", Role.SPEAKER))
    host = actions_of(r, "h")
    assert host.targets["listener:hand"] == ["hand.dismiss", "remove"]
    assert host.targets["listener"] == ["remove"]
    assert host.targets["speaker"] == ["role.demote", "mute", "remove"]  # co-hosts full too
    assert host.targets["cohost"] == ["mute", "remove"]  # no speaker seat to demote it to


def test_actions_in_an_invited_only_room() -> None:
    policy = SpeakerPolicy.INVITED_ONLY
    r = room(HOST, Member("l"), Member("i", invited=True), policy=policy)
    assert actions_of(r, "l").self == []
    assert actions_of(r, "i").self == ["invite.accept", "invite.decline"]
    full = room(HOST, Member("a", Role.SPEAKER), Member("b", Role.SPEAKER), policy=policy)
    full = full.put(Record(Member("i", invited=True), connected=True, conn="i-0"))
    assert actions_of(full, "i").self == ["invite.decline"]


def test_a_filled_seat_tells_whoever_it_concerns() -> None:
    r = room(
        HOST,
        Member("c", Role.COHOST),
        Member("a", Role.SPEAKER),
        Member("i", invited=True),
        Member("l", hand_raised=True),
    )
    accepted = outcome(r, "hand.accept", "c", "l")  # the last speaker seat
    told = {to: e.actions for e, to in accepted.events if isinstance(e, ActionsChanged)}
    assert set(told) == {"h", "c", "i", "l"}  # not a: a speaker's actions do not depend on seats
    assert told["i"].self == ["hand.raise", "invite.decline"]  # no seat to accept it for
    assert told["l"] == actions_of(accepted.state, "l")
    lowered = outcome(accepted.state, "mute", "a", "a")  # changes a's own actions only
    assert [to for e, to in lowered.events if isinstance(e, ActionsChanged)] == ["a"]
    assert outcome(lowered.state, "mute", "a", "a").events == ()  # nothing changed, nothing sent


# ---- the machine ----


USERS = ("h", "a", "b", "c", "d", "e")
# Every action but room.end (rarer), and more of those that fill the stage, so that caps
# are reached often.
ACTIONS = (
    sorted(RULES.keys() - {"room.end"})
    + ["hand.raise"] * 2
    + ["hand.accept"] * 4
    + ["invite.accept"] * 4
    + ["role.cohost"] * 4
)


class RoomMachine(RuleBasedStateMachine):
    """Random sequences of joins, disconnections, grace periods running out and every client
    action, by anyone, on anyone, applied with the reducer; a moderator's client that
    receives every event must always hold the room as it is, and each participant its own
    actions. Another participant's client holds it as it is too in a small room; past
    ``announce_max`` listeners, it holds the stage and every raised hand and invitation as
    they are, and maybe listeners that have left (it gets counts instead)."""

    def __init__(self) -> None:
        super().__init__()
        self.caps = CAPS
        self.policy = ANYONE
        self.rnd = random.Random(0)
        self.clock = 0.0
        self.announce_max = 1000
        self.fresh_room()

    def fresh_room(self) -> None:
        self.room = room(HOST, policy=self.policy)
        self.conns = {"h": "h-0"}
        self.view = {"h": presenters.participant(self.room.members["h"])}  # a moderator's
        self.crowd = dict(self.view)  # everyone else's
        self.told: dict[str, Actions] = {"h": self.actions_of("h")}

    @initialize(
        policy=st.sampled_from(list(SpeakerPolicy)),
        cohosts=st.integers(1, 2),
        speakers=st.integers(1, 3),
        seed=st.integers(0, 2**32 - 1),
        announce_max=st.sampled_from([1000, 0, 1, 2]),
    )
    def configure(
        self, policy: SpeakerPolicy, cohosts: int, speakers: int, seed: int, announce_max: int
    ) -> None:
        self.policy = policy
        self.announce_max = announce_max
        self.caps = Caps(cohosts, speakers)
        # Who acts on whom comes from a seeded Random: Hypothesis's own draws favour the
        # first option so strongly that the stage would rarely fill up.
        self.rnd = random.Random(seed)
        self.fresh_room()

    @property
    def live(self) -> bool:
        return self.room.meta is not None and self.room.meta.state == "live"

    @precondition(lambda self: not self.live)
    @rule()
    def next_room(self) -> None:
        """The room ended (nobody left in it); carry on with a fresh one."""
        assert not self.room.members and not self.view
        self.fresh_room()

    @precondition(lambda self: self.live)
    @rule()
    def steps(self) -> None:
        """A burst of events: someone joins, drops, leaves for good, or sends a message."""
        for _ in range(25):
            if not self.live:
                return
            roll = self.rnd.random()
            if roll < 0.01:
                self.act("room.end")
            elif roll < 0.2:
                self.join(self.rnd.choice(USERS))
            elif roll < 0.3:
                self.leave(self.rnd.choice(sorted(self.room.members)))
            else:
                self.act(self.rnd.choice(ACTIONS))
            self.check()

    def apply(self, change: RoomChange) -> Outcome:
        self.clock += 1
        done = change.apply(self.room, env(self.clock, self.caps, self.announce_max))
        self.room = done.state
        for event, to in done.events:
            assert EVENT.validate_python(event.wire()) == event  # what the hub reads back
            self.receive(event, to)
        return done

    def receive(self, event: object, to: str | None) -> None:
        """What clients do with an event: the observers' views, and each one's actions."""
        assert to != MODERATORS or self.announce_max < len(USERS)  # only in large rooms
        views = (self.view, self.crowd) if to is None else (self.view,)
        for view in views if to in (None, MODERATORS) else ():
            if isinstance(event, ParticipantJoined | ParticipantUpdated):
                view[event.participant.user_id] = event.participant
            elif isinstance(event, ParticipantLeft):
                view.pop(event.user_id, None)
            elif isinstance(event, RoomEnded):
                view.clear()
        if isinstance(event, ParticipantLeft):
            self.told.pop(event.user_id, None)
        elif isinstance(event, RoomEnded):
            self.told.clear()
        elif isinstance(event, ActionsChanged):
            assert to is not None and self.told[to] != event.actions  # only when they change
            self.told[to] = event.actions

    def join(self, user: str) -> None:
        note(f"{user} joins")
        conn = f"{user}-{self.clock}"
        try:
            self.apply(Join(user, conn, "n"))
        except Refused as exc:
            assert exc.code == "removed" and user in self.room.removed
            return
        assert user not in self.room.removed
        self.conns[user] = conn
        self.told[user] = self.actions_of(user)  # in the welcome

    def leave(self, user: str) -> None:
        """The socket closes; half the time its grace period runs out too."""
        note(f"{user} drops")
        self.apply(Disconnect(user, self.conns[user]))
        if self.rnd.random() < 0.5:
            note(f"{user} is gone")
            self.apply(Expire(user, self.conns[user]))

    def act(self, action: str) -> None:
        # Mostly the people the action is about, so that sequences fill the stage and reach
        # the caps; sometimes anyone, nobody or a stranger, so that refusals are exercised.
        present = sorted(self.room.members)
        actors, targets = self.favoured(action)
        actor = self.rnd.choice(actors if actors and self.rnd.random() < 0.7 else present)
        roll = self.rnd.random()
        if targets and roll < 0.6:
            other: str | None = self.rnd.choice(targets)
        elif roll < 0.9:
            other = self.rnd.choice(present)
        else:
            other = self.rnd.choice(["ghost", None])
        if action == "mute" and other is None:
            other = actor  # as the server reads {"type": "mute"}
        note(f"{actor}: {action} {other or ''}")
        role = self.room.members[actor].member.role
        target = self.room.members.get(other) if other is not None else None
        target_role = target.member.role if target is not None else None
        try:
            self.apply(Act(actor, action, other))
        except Refused as exc:
            assert exc.code in CODES, exc.code
            return
        if action in MODERATION:
            assert role in (Role.HOST, Role.COHOST), (action, role)
        if action in ("remove", "role.demote") or (action == "mute" and other != actor):
            assert target_role is not None
            assert RANK[role] > RANK[target_role], (action, role)

    def favoured(self, action: str) -> tuple[list[str], list[str]]:
        """(likely senders, likely targets) of ``action`` in the current room."""

        def who(role: Role | None = None, hand: bool = False, invited: bool = False) -> list[str]:
            return sorted(
                u
                for u, r in self.room.members.items()
                if (role is None or r.member.role is role)
                and (not hand or r.member.hand_raised)
                and (not invited or r.member.invited)
            )

        moderators = who(Role.HOST) + who(Role.COHOST)
        stage = moderators + who(Role.SPEAKER)
        return {
            "hand.raise": (who(Role.LISTENER), []),
            "hand.accept": (moderators, who(hand=True)),
            "hand.dismiss": (moderators, who(hand=True)),
            "invite.send": (moderators, who(Role.LISTENER)),
            "invite.accept": (who(invited=True), []),
            "invite.decline": (who(invited=True), []),
            "role.cohost": (who(Role.HOST), who(Role.SPEAKER)),
            "role.demote": (moderators, who(Role.COHOST) + who(Role.SPEAKER)),
            "role.step_down": (stage, []),
            "unmute": (stage, []),
        }.get(action, (moderators, stage))

    def actions_of(self, user: str) -> Actions:
        return actions_of(self.room, user, self.caps)

    @invariant()
    def check(self) -> None:
        members = [r.member for r in self.room.members.values()]
        roles = [m.role for m in members]
        # Exactly one host while live, and the metadata names them.
        assert roles.count(Role.HOST) == (1 if self.live else 0)
        if self.live:
            assert self.room.meta is not None
            assert member(self.room, self.room.meta.host).role is Role.HOST
        # Caps never exceeded.
        assert roles.count(Role.COHOST) <= self.caps.max_cohosts
        assert roles.count(Role.SPEAKER) <= self.caps.max_speakers
        # A removed user is never present.
        assert not (self.room.removed & set(self.room.members))
        # Hands and invitations belong to listeners; only people on stage are muted.
        for m in members:
            if m.hand_raised or m.invited:
                assert m.role is Role.LISTENER
            if m.muted:
                assert m.on_stage
        # The listener count kept with the state is the room's.
        assert self.room.listeners == sum(not m.on_stage for m in members)
        # Clients that got every event hold the room as it is, and their own actions.
        expected: dict[str, Participant] = {
            u: presenters.participant(r) for u, r in self.room.members.items()
        }
        assert self.view == expected
        if self.announce_max >= len(USERS):
            assert self.crowd == expected
        shown = {u: p for u, p in expected.items() if p.role is not Role.LISTENER or p.hand_raised}
        shown |= {u: p for u, p in expected.items() if p.invited}
        assert {u: p for u, p in self.crowd.items() if u in shown} == shown
        for u, p in self.crowd.items():
            if u not in shown:  # a listener without hand or invitation, maybe gone
                assert p.role is Role.LISTENER and not p.hand_raised and not p.invited
        assert self.told == {u: self.actions_of(u) for u in self.room.members}


# No shrinking: a step's choices come from the seeded Random, so shrinking mostly re-rolls
# whole runs and takes minutes; the notes of a failing run list every step instead.
RoomMachine.TestCase.settings = settings(
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    max_examples=200,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_room_machine = RoomMachine.TestCase


def test_a_moderator_starts_recording_once() -> None:
    r = room(HOST, Member("c", Role.COHOST), Member("l"))
    assert refused(r, "recording.start", "l") == "not_allowed"
    started = outcome(r, "recording.start", "c")
    assert started.state.meta is not None and started.state.meta.recorded
    kinds = [(type(e).__name__, to) for e, to in started.events]
    assert kinds[0] == ("RecordingStarted", None)
    # Host and co-host may no longer start it: their actions change, nobody else's.
    assert sorted(str(to) for k, to in kinds if k == "ActionsChanged") == ["c", "h"]
    assert "recording.start" not in actions_of(started.state, "h").self
    assert outcome(started.state, "recording.start", "h").events == ()

"""The pure role rules: unit tests and a Hypothesis state machine over whole rooms."""

from __future__ import annotations

import random

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

from rooms.control.rules import (
    RANK,
    RULES,
    Caps,
    Member,
    Refused,
    Role,
    Roster,
    SpeakerPolicy,
    admit,
    decide,
    successor,
)

CAPS = Caps(max_cohosts=1, max_speakers=2)
MODERATION = {
    "hand.accept",
    "hand.dismiss",
    "invite.send",
    "role.cohost",
    "role.demote",
    "remove",
    "room.end",
}
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


def roster(*members: Member, policy: SpeakerPolicy = SpeakerPolicy.ANYONE_CAN_REQUEST) -> Roster:
    r = Roster(CAPS, policy)
    for m in members:
        r.members[m.user_id] = m
    return r


def act(r: Roster, action: str, actor: str, target: str | None = None) -> None:
    r.apply(decide(action, r.situation(actor, target, now=1.0)))


def refused(r: Roster, action: str, actor: str, target: str | None = None) -> str:
    with pytest.raises(Refused) as exc:
        decide(action, r.situation(actor, target, now=1.0))
    return exc.value.code


HOST = Member("h", Role.HOST)


def test_hand_to_stage() -> None:
    r = roster(HOST, Member("l"))
    act(r, "hand.raise", "l")
    assert r.members["l"].hand_raised
    act(r, "hand.accept", "h", "l")
    assert r.members["l"] == Member("l", Role.SPEAKER, since=1.0)
    assert refused(r, "hand.raise", "l") == "already_on_stage"


def test_listener_cannot_moderate() -> None:
    r = roster(HOST, Member("s", Role.SPEAKER), Member("l"))
    for action in ("mute", "remove", "role.demote", "hand.accept", "invite.send"):
        assert refused(r, action, "l", "s") == "not_allowed", action
    assert refused(r, "room.end", "l") == "not_allowed"


def test_cohost_cannot_touch_host_or_cohost() -> None:
    r = roster(HOST, Member("c", Role.COHOST), Member("d", Role.COHOST))
    assert refused(r, "remove", "c", "h") == "cannot_moderate"
    assert refused(r, "mute", "c", "d") == "cannot_moderate"
    assert refused(r, "role.cohost", "c", "d") == "not_allowed"
    assert refused(r, "room.end", "c") == "not_allowed"


def test_mute_only_self_unmutes() -> None:
    r = roster(HOST, Member("s", Role.SPEAKER))
    act(r, "mute", "h", "s")
    assert r.members["s"].muted and not r.members["s"].may_publish
    act(r, "unmute", "h")  # the host unmutes only themself: no effect on s
    assert r.members["s"].muted
    act(r, "unmute", "s")
    assert r.members["s"].may_publish


def test_caps() -> None:
    r = roster(HOST, Member("a", Role.SPEAKER), Member("b", Role.SPEAKER), Member("l"))
    act(r, "hand.raise", "l")
    assert refused(r, "hand.accept", "h", "l") == "speakers_full"
    assert refused(r, "invite.send", "h", "l") == "speakers_full"
    act(r, "role.cohost", "h", "a")
    assert refused(r, "role.cohost", "h", "b") == "cohosts_full"
    act(r, "hand.accept", "h", "l")
    assert refused(r, "role.demote", "h", "a") == "speakers_full"


def test_invitations() -> None:
    r = roster(HOST, Member("l"), policy=SpeakerPolicy.INVITED_ONLY)
    assert refused(r, "hand.raise", "l") == "hands_disabled"
    assert refused(r, "invite.accept", "l") == "not_invited"
    change = decide("invite.send", r.situation("h", "l", 1.0))
    assert change.invited == "l"
    r.apply(change)
    act(r, "invite.accept", "l")
    assert r.members["l"].role is Role.SPEAKER and not r.members["l"].invited


def test_removed_user_cannot_come_back() -> None:
    r = roster(HOST, Member("l"))
    act(r, "remove", "h", "l")
    assert "l" not in r.members
    with pytest.raises(Refused) as exc:
        admit("l", None, removed=True)
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
    """Random sequences of joins, leaves and every client action, by anyone, on anyone."""

    def __init__(self) -> None:
        super().__init__()
        self.room = roster(HOST)
        self.clock = 0.0
        self.rnd = random.Random(0)

    @initialize(
        policy=st.sampled_from(list(SpeakerPolicy)),
        cohosts=st.integers(1, 2),
        speakers=st.integers(1, 3),
        seed=st.integers(0, 2**32 - 1),
    )
    def configure(self, policy: SpeakerPolicy, cohosts: int, speakers: int, seed: int) -> None:
        self.room.policy = policy
        self.room.caps = Caps(cohosts, speakers)
        # Who acts on whom comes from a seeded Random: Hypothesis's own draws favour the
        # first option so strongly that the stage would rarely fill up.
        self.rnd = random.Random(seed)

    @precondition(lambda self: not self.room.live)
    @rule()
    def next_room(self) -> None:
        """The room ended (nobody left in it); carry on with a fresh one."""
        assert not self.room.members
        self.room = Roster(self.room.caps, self.room.policy, {"h": HOST})

    @precondition(lambda self: self.room.live)
    @rule()
    def steps(self) -> None:
        """A burst of events: someone joins, leaves for good, or sends a message."""
        for _ in range(25):
            if not self.room.live:
                return
            roll = self.rnd.random()
            if roll < 0.01:
                self.act("room.end")
            elif roll < 0.25:
                absent = [u for u in USERS if u not in self.room.members]
                self.join(self.rnd.choice(absent or ["h"]))
            elif roll < 0.35:
                self.leave(self.rnd.choice(sorted(self.room.members)))
            else:
                self.act(self.rnd.choice(ACTIONS))
            self.check()

    def join(self, user: str) -> None:
        note(f"{user} joins")
        try:
            member = admit(user, self.room.members.get(user), removed=user in self.room.removed)
        except Refused as exc:
            assert exc.code == "removed" and user in self.room.removed
            return
        assert user not in self.room.removed
        self.room.members[user] = member

    def leave(self, user: str) -> None:
        note(f"{user} leaves")
        self.room.leave(user)

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
        self.clock += 1
        note(f"{actor}: {action} {other or ''}")
        before = self.snapshot()
        situation = self.room.situation(actor, other, self.clock)
        try:
            change = decide(action, situation)
        except Refused as exc:
            assert exc.code in CODES, exc.code
            assert self.snapshot() == before  # a refusal changes nothing
            return
        role = self.room.members[actor].role
        if action in MODERATION:
            assert role in (Role.HOST, Role.COHOST), (action, role)
        if action in ("remove", "role.demote") or (action == "mute" and other != actor):
            assert other is not None
            assert RANK[role] > RANK[self.room.members[other].role], (action, role)
        self.room.apply(change)

    def favoured(self, action: str) -> tuple[list[str], list[str]]:
        """(likely senders, likely targets) of ``action`` in the current room."""

        def who(role: Role | None = None, hand: bool = False, invited: bool = False) -> list[str]:
            return sorted(
                u
                for u, m in self.room.members.items()
                if (role is None or m.role is role)
                and (not hand or m.hand_raised)
                and (not invited or m.invited)
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

    def snapshot(self) -> tuple[dict[str, Member], set[str], bool]:
        return dict(self.room.members), set(self.room.removed), self.room.live

    @invariant()
    def check(self) -> None:
        members = self.room.members.values()
        roles = [m.role for m in members]
        # Exactly one host while live.
        assert roles.count(Role.HOST) == (1 if self.room.live else 0)
        # Caps never exceeded.
        assert roles.count(Role.COHOST) <= self.room.caps.max_cohosts
        assert roles.count(Role.SPEAKER) <= self.room.caps.max_speakers
        # A removed user is never present.
        assert not (self.room.removed & set(self.room.members))
        # Hands and invitations belong to listeners; only people on stage are muted.
        for m in members:
            if m.hand_raised or m.invited:
                assert m.role is Role.LISTENER
            if m.muted:
                assert m.on_stage


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

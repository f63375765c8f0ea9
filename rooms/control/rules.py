"""Who may do what in a room: roles, caps and guarded transitions. Plain code, no I/O.

Every rule takes the sender (``actor``), the participant the message names (``target``),
who is on stage, the caps and the room's speaker policy, and either returns the
``Change`` to apply or raises ``Refused`` with a stable code. Nothing is changed on a
refusal: callers apply a ``Change`` only after the rule returned it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from server.errors import Forbidden


class Role(StrEnum):
    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"
    LISTENER = "listener"


class SpeakerPolicy(StrEnum):
    ANYONE_CAN_REQUEST = "anyone_can_request"  # listeners may raise hands
    INVITED_ONLY = "invited_only"  # only people the host or a co-host invites may speak


# Moderation needs a strictly higher rank: a co-host cannot mute or remove another co-host.
RANK = {Role.HOST: 3, Role.COHOST: 2, Role.SPEAKER: 1, Role.LISTENER: 0}
STAGE = frozenset({Role.HOST, Role.COHOST, Role.SPEAKER})
MODERATORS = frozenset({Role.HOST, Role.COHOST})

# Emoji a participant may react with; listed in the welcome message.
REACTIONS = ("👏", "❤️", "😂", "💯", "🔥", "🙌", "👋", "😮", "😢", "✋")


class Refused(Forbidden):
    """An action the sender's current role does not allow; nothing was changed.

    A domain error (``server.errors``): the room socket answers it with an ``error`` event,
    HTTP (a refused join) with 403.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class Caps:
    max_cohosts: int
    max_speakers: int  # speakers besides the host and co-hosts


@dataclass(frozen=True)
class Member:
    user_id: str
    role: Role = Role.LISTENER
    muted: bool = False
    hand_raised: bool = False
    invited: bool = False
    # When the member reached their current role: the first co-host is the oldest one.
    since: float = 0.0

    @property
    def on_stage(self) -> bool:
        return self.role in STAGE

    @property
    def may_publish(self) -> bool:
        """Whether the relay forwards this member's audio."""
        return self.on_stage and not self.muted


@dataclass(frozen=True)
class Situation:
    """Everything a rule looks at."""

    actor: Member
    target: Member | None
    stage: Mapping[str, Role]  # user id -> role of everyone on stage
    caps: Caps
    policy: SpeakerPolicy
    now: float
    recorded: bool = False  # the room is being recorded


@dataclass(frozen=True)
class Change:
    updates: tuple[Member, ...] = ()
    removed: str | None = None  # this user is removed and may not rejoin
    invited: str | None = None  # this user receives an invitation to speak
    ended: bool = False
    record: bool = False  # the room starts being recorded

    @property
    def empty(self) -> bool:
        return not (self.updates or self.removed or self.invited or self.ended or self.record)


NOTHING = Change()


def count(stage: Mapping[str, Role], role: Role) -> int:
    return sum(1 for r in stage.values() if r is role)


def _moderator(actor: Member, what: str) -> None:
    if actor.role not in (Role.HOST, Role.COHOST):
        raise Refused("not_allowed", f"only the host or a co-host may {what}")


def _host(actor: Member, what: str) -> None:
    if actor.role is not Role.HOST:
        raise Refused("not_allowed", f"only the host may {what}")


def _other(s: Situation) -> Member:
    if s.target is None:
        raise Refused("participant_not_found", "that user is not in this room")
    if s.target.user_id == s.actor.user_id:
        raise Refused("self_reference", "you cannot do that to yourself")
    return s.target


def _outranks(actor: Member, target: Member) -> None:
    if RANK[actor.role] <= RANK[target.role]:
        raise Refused("cannot_moderate", f"a {actor.role.value} cannot do that to a {target.role}")


def _speaker_slot(s: Situation) -> None:
    if count(s.stage, Role.SPEAKER) >= s.caps.max_speakers:
        raise Refused("speakers_full", f"the room already has {s.caps.max_speakers} speakers")


def _listener(m: Member) -> None:
    if m.role is not Role.LISTENER:
        raise Refused("already_on_stage", f"{m.user_id} is already on stage")


def _on_stage(m: Member) -> None:
    if not m.on_stage:
        raise Refused("not_on_stage", f"{m.user_id} is not a speaker")


def to_role(m: Member, role: Role, now: float) -> Member:
    """``m`` in a new role: hands and invitations are settled, a new speaker starts unmuted."""
    return replace(m, role=role, muted=False, hand_raised=False, invited=False, since=now)


def raise_hand(s: Situation) -> Change:
    _listener(s.actor)
    if s.policy is SpeakerPolicy.INVITED_ONLY:
        raise Refused("hands_disabled", "in this room only invited people may speak")
    if s.actor.hand_raised:
        return NOTHING
    return Change(updates=(replace(s.actor, hand_raised=True),))


def lower_hand(s: Situation) -> Change:
    if not s.actor.hand_raised:
        return NOTHING
    return Change(updates=(replace(s.actor, hand_raised=False),))


def accept_hand(s: Situation) -> Change:
    _moderator(s.actor, "bring people on stage")
    target = _other(s)
    _listener(target)
    if not target.hand_raised:
        raise Refused("no_raised_hand", f"{target.user_id} has not raised a hand")
    _speaker_slot(s)
    return Change(updates=(to_role(target, Role.SPEAKER, s.now),))


def dismiss_hand(s: Situation) -> Change:
    _moderator(s.actor, "dismiss hands")
    target = _other(s)
    if not target.hand_raised:
        raise Refused("no_raised_hand", f"{target.user_id} has not raised a hand")
    return Change(updates=(replace(target, hand_raised=False),))


def send_invite(s: Situation) -> Change:
    _moderator(s.actor, "invite people to speak")
    target = _other(s)
    _listener(target)
    _speaker_slot(s)
    if target.invited:
        return NOTHING
    return Change(updates=(replace(target, invited=True),), invited=target.user_id)


def accept_invite(s: Situation) -> Change:
    if not s.actor.invited:
        raise Refused("not_invited", "you have no pending invitation to speak")
    _speaker_slot(s)
    return Change(updates=(to_role(s.actor, Role.SPEAKER, s.now),))


def decline_invite(s: Situation) -> Change:
    if not s.actor.invited:
        raise Refused("not_invited", "you have no pending invitation to speak")
    return Change(updates=(replace(s.actor, invited=False),))


def make_cohost(s: Situation) -> Change:
    _host(s.actor, "name co-hosts")
    target = _other(s)
    if target.role is Role.COHOST:
        return NOTHING
    if target.role is not Role.SPEAKER:
        raise Refused("not_a_speaker", "only a speaker can become a co-host")
    if count(s.stage, Role.COHOST) >= s.caps.max_cohosts:
        raise Refused("cohosts_full", f"the room already has {s.caps.max_cohosts} co-hosts")
    # A co-host keeps their microphone state.
    return Change(updates=(replace(target, role=Role.COHOST, since=s.now),))


def demote(s: Situation) -> Change:
    _moderator(s.actor, "demote speakers")
    target = _other(s)
    _on_stage(target)
    _outranks(s.actor, target)
    if target.role is Role.COHOST:
        _speaker_slot(s)
        return Change(updates=(replace(target, role=Role.SPEAKER, since=s.now),))
    return Change(updates=(to_role(target, Role.LISTENER, s.now),))


def step_down(s: Situation) -> Change:
    if s.actor.role is Role.HOST:
        raise Refused("host_cannot_step_down", "the host cannot step down; end the room instead")
    _on_stage(s.actor)
    return Change(updates=(to_role(s.actor, Role.LISTENER, s.now),))


def mute(s: Situation) -> Change:
    target = s.target
    if target is None:
        raise Refused("participant_not_found", "that user is not in this room")
    if target.user_id != s.actor.user_id:
        _moderator(s.actor, "mute others")
        _outranks(s.actor, target)
    _on_stage(target)
    if target.muted:
        return NOTHING
    return Change(updates=(replace(target, muted=True),))


def unmute(s: Situation) -> Change:
    _on_stage(s.actor)
    if not s.actor.muted:
        return NOTHING
    return Change(updates=(replace(s.actor, muted=False),))


def remove(s: Situation) -> Change:
    _moderator(s.actor, "remove people")
    target = _other(s)
    _outranks(s.actor, target)
    return Change(removed=target.user_id)


def end(s: Situation) -> Change:
    _host(s.actor, "end the room")
    return Change(ended=True)


def start_recording(s: Situation) -> Change:
    _moderator(s.actor, "start recording")
    if s.recorded:
        return NOTHING
    return Change(record=True)


def react(s: Situation) -> Change:
    """Anyone present may react; a reaction changes no state."""
    return NOTHING


Rule = Callable[[Situation], Change]

# Client message type -> rule. Messages naming a target carry ``user_id``.
RULES: dict[str, Rule] = {
    "hand.raise": raise_hand,
    "hand.lower": lower_hand,
    "hand.accept": accept_hand,
    "hand.dismiss": dismiss_hand,
    "invite.send": send_invite,
    "invite.accept": accept_invite,
    "invite.decline": decline_invite,
    "role.cohost": make_cohost,
    "role.demote": demote,
    "role.step_down": step_down,
    "mute": mute,
    "unmute": unmute,
    "remove": remove,
    "room.end": end,
    "recording.start": start_recording,
    "react": react,
}


def decide(action: str, s: Situation) -> Change:
    """Apply the rule for ``action``; raises ``Refused`` when the sender may not do it."""
    return RULES[action](s)


def admit(user_id: str, existing: Member | None, *, removed: bool) -> Member:
    """The member a joining user becomes: back in their old place, or a new listener."""
    if removed:
        raise Refused("removed", "you were removed from this room")
    return existing if existing is not None else Member(user_id=user_id)


def successor(stage_members: Iterable[Member]) -> Member | None:
    """The first co-host (longest in the role), who becomes host when the host is gone."""
    cohosts = sorted(
        (m for m in stage_members if m.role is Role.COHOST), key=lambda m: (m.since, m.user_id)
    )
    if not cohosts:
        return None
    return replace(cohosts[0], role=Role.HOST)

"""What a participant may send now, asked of the rules. Plain code, no I/O.

The server tells each participant which role-gated messages it would accept from them (the
``actions`` of docs/protocol.md), so that clients show only the controls that work instead
of restating the rules. ``own``: the messages about themselves; ``targets``: for each state
another participant can be in (its *target key*: ``listener:hand``, ``speaker:muted``...),
the messages naming such a participant. Each answer is the rule's own (``rules.decide`` on
the room's stage, caps and policy); a message the rule would refuse, or accept without
changing anything, is left out. The server still checks every message when it arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

from rooms.control.rules import Caps, Member, Refused, Role, Situation, SpeakerPolicy, count, decide

OWN = (
    "hand.raise",
    "hand.lower",
    "invite.accept",
    "invite.decline",
    "mute",
    "unmute",
    "role.step_down",
    "room.end",
    "recording.start",
)
ON_OTHERS = (
    "hand.accept",
    "hand.dismiss",
    "invite.send",
    "role.cohost",
    "role.demote",
    "mute",
    "remove",
)
_YOU, _OTHER = "\x00you", "\x00other"
# Every state another participant can be in: hands and invitations are listeners', only
# people on stage can be muted.
TARGETS = tuple(
    Member(_OTHER, Role.LISTENER, hand_raised=hand, invited=invited)
    for invited in (False, True)
    for hand in (False, True)
) + tuple(
    Member(_OTHER, role, muted=muted)
    for role in (Role.SPEAKER, Role.COHOST, Role.HOST)
    for muted in (False, True)
)


def target_key(m: Member) -> str:
    """``role[:hand][:invited][:muted]``, each flag only when set."""
    flags = [("hand", m.hand_raised), ("invited", m.invited), ("muted", m.muted)]
    return ":".join([m.role.value, *(name for name, on in flags if on)])


@dataclass(frozen=True)
class Allowed:
    own: tuple[str, ...]
    targets: tuple[tuple[str, tuple[str, ...]], ...]  # (target key, messages), every key


NOTHING = Allowed((), tuple((target_key(t), ()) for t in TARGETS))


def allowed(
    member: Member,
    stage: Mapping[str, Role],
    caps: Caps,
    policy: SpeakerPolicy,
    recorded: bool = False,
) -> Allowed:
    """What ``member`` may send now in a room with this stage, caps, policy and recording."""
    # The rules look at the stage only through its counts against the caps, so rooms in
    # the same situation share one answer.
    speakers = min(count(stage, Role.SPEAKER), caps.max_speakers)
    cohosts = min(count(stage, Role.COHOST), caps.max_cohosts)
    you = replace(member, user_id=_YOU, since=0.0)
    return _allowed(you, speakers, cohosts, caps, policy, recorded)


@lru_cache(maxsize=4096)
def _allowed(
    you: Member, speakers: int, cohosts: int, caps: Caps, policy: SpeakerPolicy, recorded: bool
) -> Allowed:
    stage = {f"s{i}": Role.SPEAKER for i in range(speakers)}
    stage.update({f"c{i}": Role.COHOST for i in range(cohosts)})

    def may(action: str, target: Member | None) -> bool:
        try:
            situation = Situation(you, target, stage, caps, policy, 0.0, recorded)
            return not decide(action, situation).empty
        except Refused:
            return False

    own = tuple(a for a in OWN if may(a, you if a == "mute" else None))
    targets = tuple((target_key(t), tuple(a for a in ON_OTHERS if may(a, t))) for t in TARGETS)
    return Allowed(own, targets)

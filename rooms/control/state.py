"""A room's state as the control plane holds it: its metadata, its participants' records,
and ``RoomState``, the part of a room one change reads. Plain data, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rooms.control.rules import Member, Role, SpeakerPolicy


@dataclass(frozen=True)
class Meta:
    id: str
    title: str
    description: str
    language: str
    host: str
    speaker_policy: SpeakerPolicy
    state: str  # scheduled, live, ended
    created_at: float
    scheduled_for: float = 0.0
    started_at: float = 0.0
    ended_at: float = 0.0
    ended_reason: str = ""
    recorded: bool = False  # the room's stage audio is recorded (rooms.recording)

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
            recorded=h.get("recorded") == "True",
        )


@dataclass(frozen=True)
class Record:
    """A participant as stored: the rules' Member plus where their socket is."""

    member: Member
    connected: bool = False
    conn: str = ""  # id of the participant's current connection
    node: str = ""  # the node holding that connection
    joined_at: float = 0.0
    grace_until: float = 0.0  # while not connected: when their place is given up

    @property
    def user_id(self) -> str:
        return self.member.user_id

    @property
    def listener(self) -> bool:
        return not self.member.on_stage

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
                "grace_until": self.grace_until,
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
        grace_until = d.get("grace_until", 0.0)
        return cls(member, d["connected"], d["conn"], d["node"], d["joined_at"], grace_until)


@dataclass(frozen=True)
class RoomState:
    """A room, or the part of it one change reads.

    The store reads what each change needs: the room's metadata, the participants the
    change names, and for changes that move people on or off stage everyone on stage and
    every invited listener (whose possible actions depend on free seats). ``removed`` holds
    the removed users among those read; ``listeners`` counts all the room's listeners. The
    property tests hold whole rooms.
    """

    meta: Meta | None
    members: Mapping[str, Record] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    listeners: int = 0

    @property
    def stage(self) -> dict[str, Role]:
        """Everyone on stage among ``members`` (all of them, when the change needs it)."""
        return {u: r.member.role for u, r in self.members.items() if r.member.on_stage}

    def put(self, rec: Record) -> RoomState:
        """With ``rec`` written (joined, or changed)."""
        old = self.members.get(rec.user_id)
        listeners = self.listeners + rec.listener - (old is not None and old.listener)
        return replace(self, members={**self.members, rec.user_id: rec}, listeners=listeners)

    def drop(self, user_id: str) -> RoomState:
        """Without ``user_id`` (gone for good, or removed)."""
        old = self.members.get(user_id)
        if old is None:
            return self
        members = {u: r for u, r in self.members.items() if u != user_id}
        return replace(self, members=members, listeners=self.listeners - old.listener)

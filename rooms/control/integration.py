"""Webhook events of a room change (docs/webhooks.md). Plain code, no I/O.

Read off the change itself, the room's state before and after, rather than off the socket
events: those leave out listeners' comings and goings in big rooms, while an integration
wants every one. A participant joins when their record appears (the host when the room goes
live), leaves when it goes (``removed`` when a moderator removed them); everyone still in a
room when it ends leaves with it, which ``room.ended`` says once. When a scheduled room
starts, everyone who asked for a reminder is named in ``room.reminder`` events of ``batch``
user ids each.
"""

from __future__ import annotations

from collections.abc import Sequence

from rooms.control.state import Meta, Record, RoomState
from server.webhooks import events as wh
from server.webhooks.events import Envelope, at


def room_data(meta: Meta) -> wh.RoomData:
    return wh.RoomData.model_validate(
        {
            "room_id": meta.id,
            "title": meta.title,
            "host": meta.host,
            "state": meta.state,
            "scheduled_for": at(meta.scheduled_for) if meta.scheduled_for else None,
            "started_at": at(meta.started_at) if meta.started_at else None,
            "ended_at": at(meta.ended_at) if meta.ended_at else None,
            "ended_reason": meta.ended_reason or None,
        }
    )


def room_events(was: Meta | None, now: Meta | None, t: float) -> list[Envelope]:
    if now is None or (was is not None and was.state == now.state):
        return []
    kinds: dict[str, type[Envelope]] = {"scheduled": wh.RoomScheduled, "live": wh.RoomStarted}
    kind = kinds.get(now.state, wh.RoomEnded)
    return [kind.model_validate({"timestamp": at(t), "data": room_data(now)})]


def participant_events(before: RoomState, after: RoomState, t: float) -> list[Envelope]:
    if after.meta is None or after.meta.state == "ended":
        return []
    room_id, when = after.meta.id, at(t)
    out: list[Envelope] = []
    for user_id in sorted(before.members.keys() - after.members.keys()):
        reason = "removed" if user_id in after.removed else "left"
        data = about(room_id, before.members[user_id], reason=reason)
        out.append(wh.ParticipantLeft.model_validate({"timestamp": when, "data": data}))
    for user_id, rec in after.members.items():
        old = before.members.get(user_id)
        if old is None:
            data = about(room_id, rec)
            out.append(wh.ParticipantJoined.model_validate({"timestamp": when, "data": data}))
        elif old.member.role != rec.member.role:
            data = about(room_id, rec, previous_role=old.member.role.value)
            out.append(wh.ParticipantRoleChanged.model_validate({"timestamp": when, "data": data}))
    return out


def about(room_id: str, rec: Record, **extra: str) -> dict[str, str]:
    return {"room_id": room_id, "user_id": rec.user_id, "role": rec.member.role.value, **extra}


def reminders(meta: Meta, subscribers: Sequence[str], batch: int, t: float) -> list[Envelope]:
    users = sorted(subscribers)
    chunks = [users[i : i + batch] for i in range(0, len(users), batch)]
    return [
        wh.RoomReminder(
            timestamp=at(t),
            data=wh.ReminderData(
                room_id=meta.id,
                title=meta.title,
                host=meta.host,
                started_at=at(meta.started_at or t),
                user_ids=chunk,
                batch=n,
                batches=len(chunks),
            ),
        )
        for n, chunk in enumerate(chunks, start=1)
    ]


def webhook_events(
    before: RoomState, after: RoomState, t: float, subscribers: Sequence[str], batch: int
) -> list[Envelope]:
    """The events of one committed change, in the order they happened."""
    was, now = before.meta, after.meta
    out = room_events(was, now, t)
    out += participant_events(before, after, t)
    started = now is not None and now.state == "live" and was is not None and was.state != "live"
    if started and subscribers:
        assert now is not None
        out += reminders(now, subscribers, batch, t)
    return out

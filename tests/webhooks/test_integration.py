"""The webhook events of room changes, read off the reducer's before and after (pure)."""

from __future__ import annotations

from dataclasses import replace

from rooms.control.integration import webhook_events
from rooms.control.reducer import Disconnect, Expire, Join
from rooms.control.rules import Member, Role
from rooms.control.state import Record, RoomState
from tests.rooms.test_rules import TERMS, env, room


def types(before: RoomState, after: RoomState, subscribers: tuple[str, ...] = ()) -> list[str]:
    return [e.type for e in webhook_events(before, after, 5.0, subscribers, batch=2)]


def test_every_listener_is_announced_even_where_the_socket_stops_announcing_them() -> None:
    quiet = replace(env(), terms=replace(TERMS, announce_max=0))
    before = replace(room(Member("h", Role.HOST)), listeners=10)
    outcome = Join("zoe", "c1", "n").apply(before, quiet)
    assert not any(to is None for _, to in outcome.events)  # no participant.joined on the socket
    assert types(before, outcome.state) == ["participant.joined"]


def test_a_reconnection_and_a_disconnection_are_not_joins_or_departures() -> None:
    before = room(Member("h", Role.HOST), Member("bob"))
    gone = Disconnect("bob", "bob-0").apply(before, env()).state
    assert types(before, gone) == []
    back = Join("bob", "c2", "n").apply(gone, env()).state
    assert types(gone, back) == []


def test_the_host_leaving_hands_over_to_the_cohost_departure_first() -> None:
    live = room(Member("h", Role.HOST), Member("c", Role.COHOST))
    host = replace(live.members["h"], connected=False, grace_until=2.0)
    before = live.put(host)
    after = Expire("h", host.conn).apply(before, env(now=3.0)).state
    events = webhook_events(before, after, 3.0, (), batch=2)
    assert [e.type for e in events] == ["participant.left", "participant.role_changed"]
    left, changed = (e.data.model_dump() for e in events)
    assert (left["user_id"], left["role"], left["reason"]) == ("h", "host", "left")
    assert (changed["user_id"], changed["previous_role"], changed["role"]) == (
        "c",
        "cohost",
        "host",
    )


def test_reminders_only_when_a_scheduled_room_starts() -> None:
    meta = room().meta
    assert meta is not None
    scheduled = RoomState(replace(meta, state="scheduled", started_at=0.0))
    live = scheduled.put(Record(Member("h", Role.HOST), conn="created"))
    live = replace(live, meta=replace(meta, state="live", started_at=5.0))
    subs = ("u3", "u1", "u2")
    assert types(scheduled, live, subs) == [
        "room.started",
        "participant.joined",
        "room.reminder",
        "room.reminder",
    ]
    events = webhook_events(scheduled, live, 5, subs, 2)
    batches = [e.data.model_dump()["user_ids"] for e in events if e.type == "room.reminder"]
    assert batches == [["u1", "u2"], ["u3"]]
    assert "room.reminder" not in types(live, live, subs)

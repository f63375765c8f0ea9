"""Pure rules of the graph that other features share: which user an action may name."""

from __future__ import annotations

from server.auth import valid_user_id
from server.errors import Conflict


def other_user(caller: str, user_id: str) -> str:
    """Another user's id from a URL: a valid id, not the caller's own (follow, block, mute,
    hide: nobody does these to themselves)."""
    valid_user_id(user_id)
    if user_id == caller:
        raise Conflict("you cannot do that to yourself", code="self_reference")
    return user_id

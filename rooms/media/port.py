"""The seam between the room control plane and the media relay.

The control plane (WebSocket handler, role rules) calls these methods on the process that
holds the participant's socket; the router (``rooms.media.router``) implements them there,
wherever the participant's media is served. Keeping the contract here lets either side
change its insides freely.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

# Sends one JSON message to this participant's WebSocket.
SendJson = Callable[[dict[str, Any]], Awaitable[None]]
# Publishes one event to every participant of a room (all server processes).
PublishEvent = Callable[[str, dict[str, Any]], Awaitable[None]]


class MediaService(Protocol):
    """A room's media, for the control plane: which node serves it is the media's business
    (clients use one socket URL on every process)."""

    async def signal(
        self, room_id: str, user_id: str, message: dict[str, Any], send: SendJson
    ) -> None:
        """Handle an ``rtc.*`` message from a participant whose socket is on this process;
        ``send`` reaches that socket."""
        ...

    async def set_publishing(self, room_id: str, user_id: str, allowed: bool) -> None:
        """Whether this participant's audio is forwarded (speaker role and not muted).

        Called on join and on every change of role or mute state, on the node that holds
        the participant's WebSocket. The relay enforces it on the server side.
        """
        ...

    async def leave(self, room_id: str, user_id: str) -> None:
        """The participant left or was removed: close their peer connection now."""
        ...

    async def end_room(self, room_id: str) -> None:
        """The room ended: close every peer connection of it, on every node."""
        ...

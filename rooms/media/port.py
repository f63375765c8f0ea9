"""The seam between the room control plane and the media relay.

The control plane (WebSocket handler, role rules) calls these methods; the relay
(``rooms.media.service``) implements them. Keeping the contract here lets either side change
its insides freely.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

# Sends one JSON message to this participant's WebSocket.
SendJson = Callable[[dict[str, Any]], Awaitable[None]]
# Publishes one event to every participant of a room (all server processes).
PublishEvent = Callable[[str, dict[str, Any]], Awaitable[None]]


class MediaService(Protocol):
    """Where a room's media is served is read from Redis (``rooms.media.nodes.RoomNodes``) by the
    control plane, without asking this service: reads never claim a room."""

    async def signal(
        self, room_id: str, user_id: str, message: dict[str, Any], send: SendJson
    ) -> None:
        """Handle a validated ``rtc.*`` message from a participant connected to this node."""
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
        """The room ended: close every peer connection of it on this node."""
        ...

"""Live audio rooms, in two parts.

* ``rooms.control``  the control plane: rooms, roles and moderation, presence, the room
  WebSocket and its events (state in Redis, shared by every server process)
* ``rooms.media``    the media relay: the aiortc SFU that forwards each speaker's Opus
  packets to the listeners, obeying the control plane through ``rooms.media.port``
"""

"""Live audio rooms, in two parts.

* ``rooms.control``  the control plane: rooms, roles and moderation, presence, the room
  WebSocket and its events (state in Redis, shared by every server process)
* the media relay (``rooms.media*``, ``rooms.relay``, ``rooms.rtp_hook``): the aiortc SFU
  that forwards each speaker's Opus packets to the listeners
"""

"""Audio rooms: lifecycle, roles, moderation events and the WebRTC media relay."""

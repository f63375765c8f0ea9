"""Public URLs of shareable things: the paths of room and story share links and room cards.

Share links are plain paths (no ``#``) so that link unfurlers, which never run JavaScript,
send the whole link to the server, and mobile apps can claim them (``server.share.wellknown``).
"""

from __future__ import annotations

from urllib.parse import quote


def absolute(base_url: str, path: str) -> str:
    """``path`` (starting with ``/``) under the deployment's public base URL."""
    return base_url.rstrip("/") + path


def room_path(room_id: str) -> str:
    return f"/rooms/{quote(room_id, safe='')}"


def room_card_path(room_id: str) -> str:
    return f"/v1/rooms/{quote(room_id, safe='')}/card.png"


def story_path(author: str, story_id: str) -> str:
    return f"/stories/{quote(author, safe='')}/{quote(story_id, safe='')}"

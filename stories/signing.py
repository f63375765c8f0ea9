"""Short-lived signed media URLs: HMAC-SHA256 over (story id, variant, expiry).

The key is derived from the server secret for this one purpose, so a media signature can
never be confused with a bearer token signed by the same secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from stories import rules
from stories.model import Story


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"ephemera/stories/media-url/v1", hashlib.sha256).digest()


def sign(secret: str, story_id: str, variant: str, exp: int) -> str:
    msg = f"{story_id}\n{variant}\n{exp}".encode()
    digest = hmac.new(_key(secret), msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(secret: str, story_id: str, variant: str, exp: int, sig: str) -> bool:
    # Compared as bytes: compare_digest refuses non-ASCII str, and a client may send any.
    expected = sign(secret, story_id, variant, exp).encode()
    return hmac.compare_digest(expected, sig.encode("utf-8", "replace"))


@dataclass(frozen=True)
class MediaLinks:
    """The signed URLs of stories' media as one deployment hands them out: under
    ``base_url``, or relative when it is empty."""

    secret: str
    ttl: int  # seconds, rounded up to a minute and capped at the story's expiry
    base_url: str = ""

    def url(self, story: Story, variant: str, at: float) -> str:
        """The URL of one variant (``full``, ``thumb``), issued at ``at``."""
        exp = rules.signed_url_expiry(at, story.expires_at, self.ttl)
        sig = sign(self.secret, story.id, variant, exp)
        path = f"/v1/stories/{story.id}/media/{variant}?exp={exp}&sig={sig}"
        return self.base_url.rstrip("/") + path

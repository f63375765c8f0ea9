"""Bearer JWTs naming the user (``sub``). HS256 only; ``exp`` required."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import jwt

from server.errors import Unauthorized, ValidationFailed

ALGORITHM = "HS256"
USER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Identity:
    user: str
    # A token minted for one room (e.g. handed out with a share link) is valid only for that
    # room's WebSocket, never for the HTTP API.
    room: str | None = None


def mint_token(secret: str, user_id: str, ttl_seconds: int, room: str | None = None) -> str:
    if not USER_ID.match(user_id):
        raise ValueError("user id must be 1-64 characters of letters, digits, '_', '.' or '-'")
    now = int(time.time())
    claims: dict[str, str | int] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    if room is not None:
        claims["room"] = room
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, leeway: int) -> str:
    """The user id of a valid, unscoped token (the HTTP API), or raise Unauthorized."""
    identity = verify_identity(secret, token, leeway)
    if identity.room is not None:
        raise Unauthorized("this token is only valid for one room", code="scoped_token")
    return identity.user


def verify_identity(secret: str, token: str, leeway: int) -> Identity:
    """Who a valid token names and what it is scoped to, or raise Unauthorized."""
    try:
        # `algorithms` pinned: a token claiming alg=none or RS256 is refused, not trusted.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=leeway,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired", code="token_expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token", code="invalid_token") from None
    sub, room = claims.get("sub"), claims.get("room")
    if not isinstance(sub, str) or not USER_ID.match(sub):
        raise Unauthorized("invalid token subject", code="invalid_token")
    if room is not None and not isinstance(room, str):
        raise Unauthorized("invalid room claim", code="invalid_token")
    return Identity(user=sub, room=room)


def bearer_from_header(value: str | None) -> str:
    if not value:
        raise Unauthorized("missing bearer token", code="missing_token")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="missing_token")
    return token.strip()


def valid_user_id(user_id: str) -> str:
    """A user id from a URL, or 422: ids are what tokens may name (``USER_ID``)."""
    if not USER_ID.match(user_id):
        raise ValidationFailed("user_id must be 1-64 characters of [A-Za-z0-9_.-]")
    return user_id

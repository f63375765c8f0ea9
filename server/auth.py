"""Bearer JWTs naming the user (``sub``). HS256 only; ``exp`` required."""

from __future__ import annotations

import re
import time

import jwt

from server.errors import Unauthorized

ALGORITHM = "HS256"
USER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def mint_token(secret: str, user_id: str, ttl_seconds: int) -> str:
    if not USER_ID.match(user_id):
        raise ValueError("user id must be 1-64 characters of letters, digits, '_', '.' or '-'")
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, leeway: int) -> str:
    """Return the user id of a valid token, or raise Unauthorized."""
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
    sub = claims.get("sub")
    if not isinstance(sub, str) or not USER_ID.match(sub):
        raise Unauthorized("invalid token subject", code="invalid_token")
    return sub


def bearer_from_header(value: str | None) -> str:
    if not value:
        raise Unauthorized("missing bearer token", code="missing_token")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="missing_token")
    return token.strip()

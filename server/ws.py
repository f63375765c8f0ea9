"""WebSocket authentication: checked before ``accept()``, refused with an HTTP error body."""

from __future__ import annotations

from starlette.websockets import WebSocket

from server.auth import bearer_from_header, verify_identity
from server.errors import DomainError, Forbidden
from server.http_errors import error_response
from server.settings import Settings


def _token(ws: WebSocket) -> str:
    # Browsers cannot set headers on a WebSocket, so a query parameter is accepted too.
    token = ws.query_params.get("token")
    if token:
        return token
    return bearer_from_header(ws.headers.get("authorization"))


async def authenticate_ws(ws: WebSocket) -> str | None:
    """The caller's user id, or None after refusing the handshake (401/403 with a JSON body)."""
    settings: Settings = ws.state.platform.settings
    try:
        origin = ws.headers.get("origin")
        if settings.allowed_origins and origin and origin not in settings.allowed_origins:
            raise Forbidden("origin not allowed", code="bad_origin")
        identity = verify_identity(settings.secret_key, _token(ws), settings.token_leeway_seconds)
        if identity.room is not None and identity.room != ws.path_params.get("room_id"):
            raise Forbidden("this token is for another room", code="wrong_room")
        return identity.user
    except DomainError as exc:
        await refuse(ws, exc)
        return None


async def refuse(ws: WebSocket, exc: DomainError) -> None:
    """Refuse a handshake that has not been accepted yet."""
    await ws.send_denial_response(error_response(exc))

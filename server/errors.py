"""The one error model: every failure a client can cause is an ApiError with a stable code."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    # WebSocket close codes: 1008 policy violation, 4xxx application codes mirroring HTTP.
    ws_close: ClassVar[int] = 4400

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.__class__.__doc__ or self.code
        if code is not None:
            self.code = code  # type: ignore[misc]
        super().__init__(self.message)

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(ApiError):
    """The request is malformed."""


class ValidationFailed(ApiError):
    """The request does not match the schema."""

    status = 422
    code = "validation_error"


class Unauthorized(ApiError):
    """A valid bearer token is required."""

    status = 401
    code = "unauthorized"
    ws_close = 4401


class Forbidden(ApiError):
    """You may not do that."""

    status = 403
    code = "forbidden"
    ws_close = 4403


class NotFound(ApiError):
    """No such object."""

    status = 404
    code = "not_found"
    ws_close = 4404


class Conflict(ApiError):
    """The object is not in a state that allows this."""

    status = 409
    code = "conflict"
    ws_close = 4409


class PayloadTooLarge(ApiError):
    """The request body is too large."""

    status = 413
    code = "payload_too_large"
    ws_close = 1009


class UnsupportedMedia(ApiError):
    """The uploaded content is not an accepted media type."""

    status = 415
    code = "unsupported_media"


class RateLimited(ApiError):
    """Too many requests; retry later."""

    status = 429
    code = "rate_limited"
    ws_close = 4429

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(ApiError):
    """The data store is unreachable; retry shortly."""

    status = 503
    code = "store_unavailable"
    ws_close = 1013

    def __init__(self, message: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}

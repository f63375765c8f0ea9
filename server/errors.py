"""Domain errors: every failure a client can cause, with a stable ``code``.

Domain and store code raise these; they know nothing of HTTP or WebSockets. The transports
map them to answers in one place each: ``server.http_errors`` (status, body, headers) and
the room socket's error events (``rooms``).
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.__class__.__doc__ or self.code
        if code is not None:
            self.code = code  # type: ignore[misc]
        super().__init__(self.message)


class BadRequest(DomainError):
    """The request is malformed."""


class ValidationFailed(DomainError):
    """The request does not match the schema."""

    code = "validation_error"


class Unauthorized(DomainError):
    """A valid bearer token is required."""

    code = "unauthorized"


class Forbidden(DomainError):
    """You may not do that."""

    code = "forbidden"


class NotFound(DomainError):
    """No such object."""

    code = "not_found"


class Conflict(DomainError):
    """The object is not in a state that allows this."""

    code = "conflict"


class PayloadTooLarge(DomainError):
    """The request body is too large."""

    code = "payload_too_large"


class UnsupportedMedia(DomainError):
    """The uploaded content is not an accepted media type."""

    code = "unsupported_media"


class RateLimited(DomainError):
    """Too many requests; retry later."""

    code = "rate_limited"

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(DomainError):
    """The data store is unreachable; retry shortly."""

    code = "store_unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after

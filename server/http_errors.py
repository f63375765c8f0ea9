"""The HTTP side of the error model: one status per domain error, one JSON body shape."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import JSONResponse

from server.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMedia,
    ValidationFailed,
)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


STATUS: dict[type[DomainError], int] = {
    BadRequest: 400,
    ValidationFailed: 422,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMedia: 415,
    RateLimited: 429,
    ServiceUnavailable: 503,
}


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_headers(exc: DomainError) -> dict[str, str]:
    if isinstance(exc, RateLimited | ServiceUnavailable):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def error_response(exc: DomainError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=status_of(exc), headers=error_headers(exc)
    )

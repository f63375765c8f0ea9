"""Multipart uploads with a hard size cap enforced while the body streams in.

Starlette's multipart parser does the parsing; it reads from our capped stream, so a body
is refused (413) as soon as it passes the cap, never after being buffered whole. The file
part spools to a temporary file past 1 MiB and is deleted when the upload is closed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import IO

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from server.errors import BadRequest, PayloadTooLarge, UnsupportedMedia, ValidationFailed

# Room for the text fields and the multipart framing around the file.
FIELDS_ALLOWANCE = 16 * 1024
MAX_FIELD_BYTES = 4 * 1024


@dataclass
class Upload:
    fields: dict[str, str]
    file: UploadFile

    @property
    def fp(self) -> IO[bytes]:
        return self.file.file

    async def close(self) -> None:
        await self.file.close()


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"upload larger than {limit} bytes", code="upload_too_large")
        yield chunk


async def read_upload(request: Request, max_file_bytes: int, file_field: str = "file") -> Upload:
    """Parse a multipart body with one file part named ``file_field`` and a few text fields."""
    form = await _parse(request, max_file_bytes)
    fields: dict[str, str] = {}
    file: UploadFile | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name == file_field:
                file = value
            else:
                await value.close()
        else:
            fields[name] = value
    if file is None:
        raise ValidationFailed(f"a file part named {file_field!r} is required", code="missing_file")
    upload = Upload(fields=fields, file=file)
    if (file.size or 0) > max_file_bytes:
        await upload.close()
        raise PayloadTooLarge(f"upload larger than {max_file_bytes} bytes", code="upload_too_large")
    if not file.size:
        await upload.close()
        raise ValidationFailed("the file is empty", code="empty_file")
    return upload


async def _parse(request: Request, max_file_bytes: int) -> FormData:
    """The form, read through the cap; a declared length past it is refused unread."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMedia("send the media as multipart/form-data", code="expected_multipart")
    limit = max_file_bytes + FIELDS_ALLOWANCE
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"upload larger than {max_file_bytes} bytes", code="upload_too_large")
    parser = MultiPartParser(
        request.headers,
        _capped(request, limit),
        max_files=1,
        max_fields=8,
        max_part_size=MAX_FIELD_BYTES,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(
            f"malformed multipart body: {exc.message}", code="malformed_multipart"
        ) from None
    except ClientDisconnect:
        raise BadRequest("the upload was interrupted", code="upload_interrupted") from None

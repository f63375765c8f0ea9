"""Blob storage for story media: a small interface and the local-disk implementation.

Blob keys look like ``<story id>/<variant>.<ext>``; a story's blobs share its id as a
prefix, so deleting a story is one ``delete_story`` call. Storage knows files, not HTTP: the
media route streams the file ``path`` names. An S3-compatible store would implement the
same methods, with the route redirecting to a presigned GET instead of streaming a file.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

BLOB_KEY = re.compile(r"^[A-Za-z0-9_-]{16}/[a-z][a-z0-9]*\.[a-z0-9]{2,4}$")
STORY_PREFIX = re.compile(r"^[A-Za-z0-9_-]{16}$")


class BlobStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (readers never see a partial blob)."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete_story(self, story_id: str) -> None:
        """Delete every blob of a story; deleting nothing is fine."""
        ...

    def path(self, key: str) -> Path:
        """Where the blob's bytes are, for the media route to stream."""
        ...


class LocalStorage:
    """Files under ``root`` (by default ``<data_dir>/media``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not BLOB_KEY.match(key):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def _put_sync(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: the rename is atomic on one filesystem.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put_sync, key, data)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def delete_story(self, story_id: str) -> None:
        if not STORY_PREFIX.match(story_id):
            raise ValueError(f"invalid story id {story_id!r}")
        await asyncio.to_thread(shutil.rmtree, self.root / story_id, True)

"""RecordingService: who may see or delete a recording, its signed files, and the runtime:
this node's recorders, the pump that feeds them and the expiry sweeper.

Recorders run on the node that serves a room's media (where the speakers' packets arrive):
every ``TICK_SECONDS`` the service looks at the rooms this node serves and starts a
recorder for each live recorded room (one node per room: a lease in Redis), and finishes
the recorders of rooms that ended: the VOD playlist, the download, the replay's expiry,
then :meth:`RecordingService.replay_ready`.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from rooms.control.state import Meta
from rooms.control.store import RoomStore
from rooms.media.service import RelayMediaService
from rooms.recording import playlist
from rooms.recording.recorder import Recorder
from rooms.recording.store import Recording, RecordingStore
from server import links
from server.background import check_cancelled
from server.clock import Clock
from server.errors import Conflict, Forbidden, NotFound
from server.graph.store import Graph
from server.settings import Settings
from server.webhooks.events import RoomRecordingReady, recording_ready
from stories import signing
from stories.storage import BlobStorage

log = structlog.get_logger(__name__)

TICK_SECONDS = 0.5
OWNER_LEASE_SECONDS = 10.0
SIGNED_SCOPE = "recording"  # one signature covers every file of one recording
FILE_NAME = re.compile(r"^(init\.mp4|index\.m3u8|replay\.m4a|s\d{5}\.m4s)$")
CONTENT_TYPES = {
    ".mp4": "audio/mp4",
    ".m4s": "audio/mp4",
    ".m4a": "audio/mp4",
    ".m3u8": "application/vnd.apple.mpegurl",
}
ReadyHook = Callable[[Recording], Awaitable[None]]


def not_found() -> NotFound:
    return NotFound("this room has no recording", code="recording_not_found")


@dataclass(frozen=True)
class Links:
    hls_url: str | None
    download_url: str | None


@dataclass(frozen=True)
class FileGrant:
    path: Path
    content_type: str
    cache_control: str
    text: str | None = None  # a playlist, its links signed


class RecordingService:
    def __init__(
        self,
        store: RecordingStore,
        storage: BlobStorage,
        rooms: RoomStore,
        graph: Graph,
        settings: Settings,
        clock: Clock,
        media: RelayMediaService | None,
        node_id: str,
    ) -> None:
        self.store = store
        self.storage = storage
        self.rooms = rooms
        self.graph = graph
        self.settings = settings
        self.clock = clock
        self.media = media
        self.node_id = node_id
        self.recorders: dict[str, Recorder] = {}
        # Called once per replay when it is ready (webhooks: ``room.recording_ready``).
        self.ready_hooks: list[ReadyHook] = []

    # ---- use cases ----

    async def recording(self, caller: str, room_id: str) -> tuple[Recording, str]:
        """The room's recording and its state now, if ``caller`` may see the room."""
        rec = await self.store.load(room_id)
        if rec is None:
            raise not_found()
        host = rec.meta.host
        if host != caller and await self.graph.has_blocked(host, caller):
            raise Forbidden("the host has blocked you", code="blocked")
        return rec, rec.live_at(self.clock.now())

    def links(self, rec: Recording, state: str, at: float) -> Links:
        """Signed URLs of the playlist and the download, issued at ``at``."""
        if state == "deleted":
            return Links(None, None)
        exp = math.ceil((at + self.settings.media_url_ttl_seconds) / 60) * 60
        if state == "ready":
            exp = min(exp, math.floor(rec.expires_at))
        sig = signing.sign(self.settings.secret_key, rec.meta.id, SIGNED_SCOPE, exp)
        base = f"{self.settings.public_base_url.rstrip('/')}/v1/rooms/{rec.meta.id}/recording"
        query = f"exp={exp}&sig={sig}"
        download = f"{base}/{playlist.DOWNLOAD}?{query}" if state == "ready" else None
        return Links(f"{base}/{playlist.PLAYLIST}?{query}", download)

    async def delete(self, caller: str, room_id: str) -> None:
        """The host deletes a replay now: unlisted, files gone, every URL 404."""
        rec = await self.store.load(room_id)
        if rec is None or rec.live_at(self.clock.now()) == "deleted":
            raise not_found()
        if rec.meta.host != caller:
            raise Forbidden("only the host may delete the recording", code="not_host")
        if rec.state == "live":
            raise Conflict("the room is still live", code="recording_live")
        await self.purge(rec)

    async def purge(self, rec: Recording) -> None:
        await self.store.mark_deleted(rec)
        await self.storage.delete_story(rec.meta.id)

    async def file(self, room_id: str, name: str, exp: int, sig: str) -> FileGrant:
        """A file of a recording by its signed URL; 404 for a wrong signature, a deleted or
        expired recording or a missing file, 403 ``url_expired`` when only the URL is old."""
        if not FILE_NAME.match(name):
            raise NotFound("no such file", code="file_not_found")
        if not signing.verify(self.settings.secret_key, room_id, SIGNED_SCOPE, exp, sig):
            raise NotFound("no such file", code="file_not_found")
        rec = await self.store.load(room_id)
        now = self.clock.now()
        state = rec.live_at(now) if rec is not None else "deleted"
        if rec is None or state == "deleted":
            raise not_found()
        if exp <= now:
            message = "this link has expired; ask for the recording again"
            raise Forbidden(message, code="url_expired")
        path = self.storage.path(f"{room_id}/{name}")
        if not await self.storage.exists(f"{room_id}/{name}"):
            raise NotFound("no such file", code="file_not_found")
        return await self._grant(path, name, state, min(exp, rec.expires_at or exp) - now, exp)

    async def _grant(self, path: Path, name: str, state: str, ttl: float, exp: int) -> FileGrant:
        kind = CONTENT_TYPES[path.suffix]
        age = max(0, int(ttl))
        if name != playlist.PLAYLIST:
            return FileGrant(path, kind, f"public, max-age={age}, immutable")
        text = await asyncio.to_thread(path.read_text)
        sig = signing.sign(self.settings.secret_key, path.parent.name, SIGNED_SCOPE, exp)
        signed = playlist.with_query(text, f"exp={exp}&sig={sig}")
        # A live playlist grows every segment: players and CDNs refetch it every second.
        cache = "public, max-age=1" if state == "live" else f"public, max-age={age}"
        return FileGrant(path, kind, cache, signed)

    async def replays(self, caller: str, limit: int, host: str | None = None) -> list[Meta]:
        """Ready replays, newest first: everyone's, or one host's (their profile); hosts who
        blocked the caller are left out."""
        index = self.store.ready_index if host is None else self.store.by_host(host)
        found = await self.store.listed(index, limit, self.clock.now())
        shown = []
        for rec in found:
            h = rec.meta.host
            if h == caller or not await self.graph.is_blocked_between(h, caller):
                shown.append(rec.meta)
        return shown

    # ---- runtime ----

    async def tick(self) -> None:
        """Start recorders for the recorded live rooms this node serves; finish those of
        rooms that ended."""
        media = self.media
        if media is None:
            return
        ids = set(self.recorders) | set(media.rooms)
        metas = {m.id: m for m in await self.rooms.metas(sorted(ids))}
        for room_id in sorted(ids):
            check_cancelled()
            meta = metas.get(room_id)
            recorder = self.recorders.get(room_id)
            live = meta is not None and meta.state == "live"
            if recorder is not None and not live:
                await self._finish(recorder, meta)
            elif recorder is None and meta is not None and live and meta.recorded:
                await self._begin(meta, media)
        if self.recorders:
            await self.store.owners.take(self.recorders, self.node_id, OWNER_LEASE_SECONDS)

    async def pump(self) -> None:
        """Mix and encode what every recorder received (every ``PUMP_SECONDS``)."""
        for recorder in list(self.recorders.values()):
            try:
                await recorder.pump()
            except OSError as exc:  # storage: the segment is retried on the next pump
                log.warning("recording.pump_failed", room=recorder.meta.id, error=repr(exc))

    async def _begin(self, meta: Meta, media: RelayMediaService) -> None:
        if not media.claimed(meta.id):
            return  # another node serves the room's media: it records it
        holders = await self.store.owners.take([meta.id], self.node_id, OWNER_LEASE_SECONDS)
        if holders != [self.node_id]:
            return  # another node records this room
        if await self.store.segment_count(meta.id):
            return  # recorded before by a node that is gone: that recording stays as it is
        now = self.clock.now()
        recorder = Recorder(meta, self.store, self.storage, now)
        await recorder.open()
        await self.store.begin(meta, now)
        self.recorders[meta.id] = recorder
        media.tap_room(meta.id, recorder.tap)
        log.info("recording.started", room=meta.id)

    async def _finish(self, recorder: Recorder, meta: Meta | None) -> None:
        room_id = recorder.meta.id
        if self.media is not None:
            self.media.tap_room(room_id, None)
        del self.recorders[room_id]
        now = self.clock.now()
        ended = meta or replace(recorder.meta, state="ended", ended_at=now)
        seconds = await recorder.finish(meta.ended_at if meta is not None else None)
        await self.store.owners.done(room_id)
        if not seconds:
            await self.purge(Recording(ended, "live"))
            return
        expires_at = now + self.settings.replay_ttl_seconds
        event = await self._ready_event(ended, seconds, now)
        await self.store.ready(ended, expires_at, recorder.durations, event)
        log.info("recording.ready", room=room_id, seconds=round(seconds, 1))
        await self.replay_ready(Recording(ended, "ready", tuple(recorder.durations), expires_at))

    async def _ready_event(self, meta: Meta, seconds: float, now: float) -> RoomRecordingReady:
        """The ``room.recording_ready`` webhook: the recording's API URL (it answers the
        short-lived signed file URLs) and what the download holds."""
        path = self.storage.path(f"{meta.id}/{playlist.DOWNLOAD}")
        size = await asyncio.to_thread(lambda: path.stat().st_size if path.exists() else 0)
        url = links.absolute(self.settings.public_base_url, f"/v1/rooms/{meta.id}/recording")
        return recording_ready(meta.id, meta.id, url, "audio/mp4", round(seconds, 3), size, now)

    async def replay_ready(self, rec: Recording) -> None:
        """The one place a replay becomes ready: every hook hears of it (webhooks emit
        ``room.recording_ready`` here)."""
        for hook in self.ready_hooks:
            try:
                await hook(rec)
            except Exception:  # one failing hook never stops the others or the recorder
                log.exception("recording.ready_hook_failed", room=rec.meta.id)

    async def sweep_once(self, lease: float = 120.0, batch: int = 100) -> int:
        """Purge the replays whose time is up (files and listing); returns how many."""
        done = 0
        while True:
            due = await self.store.expiry.take_due(self.node_id, lease, batch, self.clock.now())
            for room_id in due:
                check_cancelled()
                rec = await self.store.load(room_id)
                if rec is None:
                    await self.store.expiry.done(room_id)
                    await self.storage.delete_story(room_id)
                else:
                    await self.purge(rec)
                done += 1
            if len(due) < batch:
                return done

    async def stop(self) -> None:
        """Shutdown: every recording in progress is finished as it stands."""
        for recorder in list(self.recorders.values()):
            try:
                await self._finish(recorder, None)
            except Exception:
                log.exception("recording.finish_failed", room=recorder.meta.id)

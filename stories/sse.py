"""The live tray as Server-Sent Events: ``GET /v1/stories/tray/events`` (docs/stories.md).

The stream, in order:

* ``retry: 3000``: reconnect 3 s after a drop;
* ``event: tray``, the tray as ``GET /v1/stories/tray`` answers it: at once, and again after
  every change (changes arriving together are read once);
* ``event: story.published`` ``{"author", "story_id"}``, before the ``tray`` that shows the
  story (only stories that tray shows: a mute or block since the fan-out counts);
* ``: ping`` comment lines every ``stories_live_heartbeat_seconds``;
* ``event: expired`` when the token runs out; the stream then ends.

Nothing is replayed: a client that reconnects gets the whole tray as its first event, so it
needs no ``Last-Event-ID``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import structlog

from server.store import REDIS_DOWN, request_budget
from stories.live import Watcher
from stories.model import LiveEvent
from stories.presenters import tray_out
from stories.service import StoriesService

log = structlog.get_logger(__name__)

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def tray_frames(
    svc: StoriesService, watcher: Watcher, events: list[LiveEvent]
) -> tuple[list[str], float | None]:
    """The frames one change sends (the published stories the new tray shows, then it),
    and when the first story it shows expires."""
    viewer = watcher.viewer
    with request_budget(svc.settings.redis_request_timeout):  # each read its own time
        read = await svc.tray_read(viewer)
        await svc.live.follow_pulled(watcher, read.pulled)
    shown = {sid for entry in read.entries for sid in entry.story_ids}
    published = {
        e.story_id: e.author
        for e in events
        # Once, if told twice (a fan-out batch done again, an author being promoted).
        if e.type == "story.published" and e.story_id in shown - watcher.announced
    }
    watcher.announced = (watcher.announced & shown) | published.keys()
    frames = [sse("story.published", {"author": a, "story_id": i}) for i, a in published.items()]
    return [*frames, sse("tray", tray_out(read.entries).model_dump(mode="json"))], read.expires_next


async def tray_stream(svc: StoriesService, watcher: Watcher, until: float) -> AsyncIterator[str]:
    """The frames of one live tray until ``until`` (the token's expiry), the client leaves
    or Redis is lost (the client then reconnects and starts again with a fresh tray)."""
    heartbeat = svc.settings.stories_live_heartbeat_seconds
    yield "retry: 3000\n\n"
    try:
        frames, expiry = await tray_frames(svc, watcher, [])
        while True:
            for frame in frames:
                yield frame
            if (left := until - (now := svc.clock.now())) <= 0:
                break
            # Expiry tells nobody: the stream reads again when a story it shows expires.
            wait = min(heartbeat, left) if expiry is None else min(heartbeat, left, expiry - now)
            events = await watcher.next(wait)
            if events is None:  # this process is stopping
                return
            if events or (expiry is not None and svc.clock.now() >= expiry):
                frames, expiry = await tray_frames(svc, watcher, events)
            else:
                frames = [": ping\n\n"]
        yield sse("expired", {})
    except (TimeoutError, *REDIS_DOWN) as exc:
        log.warning("stories.live.stream_lost", error=repr(exc))

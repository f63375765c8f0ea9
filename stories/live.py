"""Live trays across processes: each viewer's events channel, and one subscriber per process.

A viewer's tray events travel on ``st:events:{<viewer>}``, a sharded pub/sub channel in the
viewer's own hash slot (SPUBLISH / SSUBSCRIBE: on a Cluster only that slot's node relays
it). The fan-out consumer publishes ``story.published`` there when it writes a ref (only to
viewers who may see the story); everything else that changes a tray publishes
``tray.changed`` (``model.LiveEvent``). Pulled authors (too many followers to fan out to)
announce on ``st:posts:{<author>}`` once instead, and a live tray also listens to the
pulled authors its reads ask about. Each server process keeps one pub/sub connection,
subscribed to the channels of the viewers connected to it, and hands each event to their
``Watcher``s. On a Cluster that is one connection per node holding a subscribed channel's slot
(redis-py's ``ClusterPubSub`` keeps them; it moves a channel whose slot moves), each with
its own reader task. Events are hints: the stream (``stories.sse``) reads the tray again after them,
so what it shows is decided by the read's checks, not by who was told.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub

from server.background import check_cancelled, stop
from server.errors import RateLimited
from server.store import REDIS_DOWN, budget_left
from stories.model import LiveEvent
from stories.store import StoryStore

log = structlog.get_logger(__name__)

# Live streams one user may hold open on one process (tabs, devices).
MAX_STREAMS_PER_USER = 8
# Events waiting for one stream; past this they are dropped (the next tray read shows them).
QUEUE_MAX = 64
LOST = LiveEvent("tray.changed")


class Watcher:
    """One live stream's inbox: a bounded queue of a viewer's events."""

    def __init__(self, viewer: str) -> None:
        self.viewer = viewer
        self.queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(QUEUE_MAX)
        self.channels: set[str] = set()  # the viewer's own, and pulled authors'
        self.announced: set[str] = set()  # stories told as ``story.published`` (still shown)

    def put(self, event: LiveEvent | None) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(event)

    async def next(self, wait: float) -> list[LiveEvent] | None:
        """The events that came (waiting up to ``wait`` seconds for the first; [] if none
        came); None once the stream must end (the process is stopping)."""
        try:
            first = await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            return []
        events = [first]
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        if None in events:
            return None
        return [e for e in events if e is not None]


class LiveTrays:
    """This process's subscriptions to the events channels of its connected viewers."""

    def __init__(self, redis: Redis, store: StoryStore, node: str) -> None:
        self.store = store
        self._pubsub = redis.pubsub()  # a ClusterPubSub on a Cluster
        self._own = store.events_channel("node-" + node)  # keeps the connection subscribed
        self._watchers: dict[str, set[Watcher]] = {}  # channel -> watchers
        self._lock = asyncio.Lock()
        self._confirms: dict[str, asyncio.Future[None]] = {}  # channel -> subscribed
        self._readers: dict[str, asyncio.Task[None]] = {}  # connection name -> its reader
        self._stopping = False

    async def start(self) -> None:
        await self._pubsub.ssubscribe(self._own)
        self._start_readers()

    async def stop(self) -> None:
        self._stopping = True
        for watcher in {w for watchers in self._watchers.values() for w in watchers}:
            watcher.put(None)
        for task in list(self._readers.values()):
            await stop(task)
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    async def attach(self, viewer: str) -> Watcher:
        """The viewer's events from now on: once this returns, no event published later is
        missed. ``RateLimited`` when the viewer has too many live trays open here."""
        watcher = Watcher(viewer)
        channel = self.store.events_channel(viewer)
        async with self._lock:
            if len(self._watchers.get(channel, ())) >= MAX_STREAMS_PER_USER:
                raise RateLimited("too many live trays open", retry_after=30)
            await self._listen(watcher, [channel])
        return watcher

    async def follow_pulled(self, watcher: Watcher, authors: list[str]) -> None:
        """Also deliver what the pulled authors the viewer's tray reads announce (their
        stories are fanned out to nobody: one message on the author's channel reaches
        every live follower). A story such an author published between the read and the
        subscription would go unannounced: a newly followed channel asks for a read."""
        wanted = {self.store.posts_channel(a) for a in authors}
        own = self.store.events_channel(watcher.viewer)
        async with self._lock:
            new = sorted(wanted - watcher.channels)
            await self._listen(watcher, new)
            await self._unlisten(watcher, sorted(watcher.channels - wanted - {own}))
        if new:
            watcher.put(LOST)

    async def detach(self, watcher: Watcher) -> None:
        """Stop delivering to ``watcher`` (repeating it is harmless)."""
        async with self._lock:
            await self._unlisten(watcher, sorted(watcher.channels))

    async def _listen(self, watcher: Watcher, channels: list[str]) -> None:
        new = [ch for ch in channels if ch not in self._watchers]
        if new:
            try:
                await self._subscribe(new)
            except BaseException:
                with contextlib.suppress(*REDIS_DOWN):
                    await self._pubsub.sunsubscribe(*new)
                raise
        for ch in channels:
            self._watchers.setdefault(ch, set()).add(watcher)
            watcher.channels.add(ch)

    async def _unlisten(self, watcher: Watcher, channels: list[str]) -> None:
        idle = []
        for ch in channels:
            watchers = self._watchers.get(ch, set())
            watchers.discard(watcher)
            watcher.channels.discard(ch)
            if not watchers and self._watchers.pop(ch, None) is not None:
                idle.append(ch)
        if idle:
            with contextlib.suppress(*REDIS_DOWN):
                await self._pubsub.sunsubscribe(*idle)

    @property
    def streams(self) -> int:
        return len({w for watchers in self._watchers.values() for w in watchers})

    # --- the pub/sub connections: one, or one per Cluster node -----------------------------

    def _connections(self) -> dict[str, PubSub]:
        if isinstance(self._pubsub, ClusterPubSub):
            return self._pubsub.node_pubsub_mapping
        return {"": self._pubsub}

    def _start_readers(self) -> None:
        for name in self._connections():
            task = self._readers.get(name)
            if not self._stopping and (task is None or task.done()):
                self._readers[name] = asyncio.create_task(self._run(name), name="stories-live")

    async def _get(self, name: str) -> dict[str, Any] | None:
        """The next message on connection ``name`` (subscription replies included, so a
        reconnection shows), None when none came within a second."""
        if isinstance(self._pubsub, ClusterPubSub):
            node = self._pubsub.cluster.get_node(node_name=name)
            if node is None:
                return None
            return await self._pubsub.get_sharded_message(timeout=1.0, target_node=node)
        return await self._pubsub.get_message(timeout=1.0)

    async def _subscribe(self, channels: list[str]) -> None:
        """Subscribe and wait for Redis to confirm each channel (from then on, what is
        published there reaches us)."""
        loop = asyncio.get_running_loop()
        confirmed = {ch: loop.create_future() for ch in channels}
        self._confirms.update(confirmed)
        try:
            await self._pubsub.ssubscribe(*channels)
            self._start_readers()
            async with asyncio.timeout(budget_left(5.0)):
                await asyncio.gather(*confirmed.values())
        finally:
            for ch in channels:
                self._confirms.pop(ch, None)

    async def _run(self, name: str) -> None:
        """Reads connection ``name`` until cancelled, or until redis-py let it go (a node
        none of our channels are on any more)."""
        lost = False
        while name in self._connections():
            check_cancelled()
            try:
                msg = await self._get(name)
            except (TimeoutError, *REDIS_DOWN) as exc:
                if not lost:
                    log.warning("stories.live.redis_lost", error=repr(exc))
                lost = True
                await asyncio.sleep(0.5)
                continue
            if lost and msg is not None:
                # Reconnected (redis-py subscribed again): events meanwhile are lost.
                lost = False
                self._broadcast(LOST)
            try:
                self._dispatch(msg)
            except Exception:  # one bad message must not stop every live tray here
                log.exception("stories.live.dispatch_failed")

    def _dispatch(self, msg: dict[str, Any] | None) -> None:
        if msg is None:
            return
        if msg["type"] == "ssubscribe":
            self._confirmed(msg["channel"])
        elif msg["type"] == "smessage":
            event = LiveEvent.decode(msg["data"])
            for watcher in list(self._watchers.get(msg["channel"], ())):
                watcher.put(event or LOST)

    def _confirmed(self, channel: str) -> None:
        confirmed = self._confirms.get(channel)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)

    def _broadcast(self, event: LiveEvent) -> None:
        for watcher in {w for watchers in self._watchers.values() for w in watchers}:
            watcher.put(event)

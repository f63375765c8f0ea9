"""Delivery: each endpoint's outbox stream read by a consumer group and POSTed, signed.

One process at a time delivers to an endpoint (a lease in ``webhooks:owners``, renewed
while it runs; another process takes over within ``webhook_lease_seconds`` if it dies).
The owner reads its stream with XREADGROUP (after taking over, first every entry still
pending, in stream order, with XAUTOCLAIM) and queues each entry by its order key; each
key's queue is sent one entry at a time, so one room's events arrive in order, while
different rooms go in parallel. An entry is acknowledged and deleted only once the
receiver answered 2xx, or after ``webhook_retry_window_seconds`` of failures, when it
moves to the dead-letter list: at least once, de-duplicated by ``webhook-id``.

Retries back off exponentially (``webhook_retry_base_seconds`` doubling up to
``webhook_retry_max_seconds``); the retry state is kept in Redis, so a new owner goes on
with the same schedule. Delivery runs on its own tasks and HTTP client: a slow or dead
receiver holds up only its own queue, never a request or a room.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from standardwebhooks import Webhook

from server.background import every, stop
from server.leases import LeaseTable
from server.store import REDIS_DOWN
from server.webhooks.outbox import Endpoint

log = structlog.get_logger(__name__)
GROUP = "delivery"

DELIVERED = Counter("ephemera_webhooks_delivered_total", "Webhooks answered 2xx", ["endpoint"])
RETRIED = Counter(
    "ephemera_webhooks_retried_total", "Failed attempts that will be retried", ["endpoint"]
)
FAILED = Counter(
    "ephemera_webhooks_failed_total", "Webhooks given up on (dead-lettered)", ["endpoint"]
)
LAG = Gauge("ephemera_webhooks_lag_seconds", "Age of the oldest undelivered webhook", ["endpoint"])
BACKLOG = Gauge("ephemera_webhooks_backlog", "Webhooks not yet delivered", ["endpoint"])


@dataclass(frozen=True)
class Entry:
    stream_id: str
    msg_id: str
    key: str
    body: str

    @classmethod
    def of(cls, stream_id: str, fields: dict[str, str]) -> Entry:
        return cls(stream_id, fields["id"], fields["key"], fields["body"])


@dataclass(frozen=True)
class Tries:
    """An entry's failures so far (kept in Redis while it is retried)."""

    attempts: int = 0
    first_at: float = 0.0
    next_at: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class Policy:
    base: float
    cap: float
    window: float

    def after_failure(self, tries: Tries, now: float, error: str) -> Tries | None:
        """The retry state after a failed attempt at ``now``; None: give up."""
        first = tries.first_at or now
        if now - first >= self.window:
            return None
        delay = min(self.cap, self.base * 2**tries.attempts)
        return Tries(tries.attempts + 1, first, min(now + delay, first + self.window), error)


class Sender:
    """Signs an entry the Standard Webhooks way and POSTs it."""

    def __init__(self, secret: str, timeout: float) -> None:
        self.signer = Webhook(secret)
        # Waiting for a free connection is not the receiver's fault: only the request counts.
        limits = httpx.Timeout(timeout, pool=None)
        self.client = httpx.AsyncClient(timeout=limits, follow_redirects=False)

    def headers(self, entry: Entry) -> dict[str, str]:
        # The timestamp is the attempt's: receivers reject signatures older than minutes.
        now = datetime.now(UTC)
        return {
            "content-type": "application/json",
            "user-agent": "Ephemera-Webhooks/1",
            "webhook-id": entry.msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(entry.msg_id, now, entry.body),
        }

    async def send(self, url: str, entry: Entry) -> str | None:
        """None when the receiver answered 2xx, else what went wrong."""
        try:
            r = await self.client.post(url, content=entry.body, headers=self.headers(entry))
        except Exception as exc:  # whatever stopped the request, the attempt failed
            return f"{type(exc).__name__}: {exc}"[:300]
        return None if r.is_success else f"HTTP {r.status_code}"

    async def close(self) -> None:
        await self.client.aclose()


class Ledger:
    """An endpoint's stream, retry states and dead letters in Redis."""

    def __init__(self, redis: Redis, endpoint: Endpoint, consumer: str) -> None:
        self.r = redis
        self.ep = endpoint
        self.consumer = consumer

    async def ensure_group(self) -> None:
        try:
            await self.r.xgroup_create(self.ep.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def pending(self, count: int = 200) -> list[Entry]:
        """Every entry read but not acknowledged (by anyone), now ours, in stream order."""
        out: list[Entry] = []
        start = "0-0"
        while True:
            reply = await self.r.xautoclaim(
                self.ep.stream, GROUP, self.consumer, 0, start_id=start, count=count
            )
            start, claimed = reply[0], reply[1]
            out += [Entry.of(sid, f) for sid, f in claimed if f]
            if start in ("0-0", b"0-0"):
                return out

    async def read(self, count: int, block_ms: int) -> list[Entry]:
        streams: dict[Any, Any] = {self.ep.stream: ">"}
        reply: Any = await self.r.xreadgroup(GROUP, self.consumer, streams, count, block_ms)
        return [Entry.of(sid, f) for _, items in reply or () for sid, f in items if f]

    async def tries(self, entry: Entry) -> Tries:
        raw = await self.r.hget(self.ep.tries, entry.stream_id)
        return Tries(**json.loads(raw)) if raw else Tries()

    async def failed(self, entry: Entry, tries: Tries) -> None:
        await self.r.hset(self.ep.tries, entry.stream_id, json.dumps(asdict(tries)))

    async def done(self, entry: Entry, dead: Tries | None = None) -> None:
        """Acknowledge and delete the entry (to the dead-letter list first if ``dead``)."""
        async with self.r.pipeline(transaction=True) as p:
            if dead is not None:
                letter = {**asdict(entry), **asdict(dead), "url_id": self.ep.id}
                p.rpush(self.ep.dead, json.dumps(letter))
            p.xack(self.ep.stream, GROUP, entry.stream_id)
            p.xdel(self.ep.stream, entry.stream_id)
            p.hdel(self.ep.tries, entry.stream_id)
            await p.execute()

    async def lag(self) -> tuple[int, float]:
        """(entries not yet delivered, age in seconds of the oldest)."""
        async with self.r.pipeline(transaction=False) as p:
            p.xlen(self.ep.stream)
            p.xrange(self.ep.stream, "-", "+", count=1)
            length, first = await p.execute()
        if not first:
            return int(length), 0.0
        born_ms = int(str(first[0][0]).split("-")[0])
        return int(length), max(0.0, time.time() - born_ms / 1000)


@dataclass(frozen=True)
class Knobs:
    policy: Policy
    inflight_max: int  # entries read and not yet delivered, per endpoint
    lease_seconds: float
    block_ms: int = 1000


class EndpointWorker:
    """Delivers one endpoint's stream while this process holds its lease."""

    def __init__(self, ledger: Ledger, sender: Sender, owners: LeaseTable, knobs: Knobs) -> None:
        self.ledger = ledger
        self.ep = ledger.ep
        self.sender = sender
        self.owners = owners
        self.knobs = knobs
        self.queues: dict[str, deque[Entry]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.owned = False

    @property
    def inflight(self) -> int:
        return sum(len(q) for q in self.queues.values())

    async def run(self) -> None:
        await every(0.05, self.step, "webhooks.delivery")

    async def step(self) -> None:
        """Hold the lease, then queue what is pending or new (waiting up to ``block_ms``)."""
        me = self.ledger.consumer
        holders = await self.owners.take([self.ep.id], me, self.knobs.lease_seconds)
        if holders != [me]:
            await self.let_go()
            await asyncio.sleep(min(1.0, self.knobs.lease_seconds / 3))
            return
        if not self.owned:
            await self.ledger.ensure_group()
            self.queue(await self.ledger.pending())
            self.owned = True
        free = self.knobs.inflight_max - self.inflight
        if free > 0:
            self.queue(await self.ledger.read(free, self.knobs.block_ms))
        else:
            await asyncio.sleep(self.knobs.block_ms / 1000)
        backlog, lag = await self.ledger.lag()
        BACKLOG.labels(self.ep.id).set(backlog)
        LAG.labels(self.ep.id).set(lag)

    def queue(self, entries: list[Entry]) -> None:
        for entry in entries:
            self.queues.setdefault(entry.key, deque()).append(entry)
            if entry.key not in self.tasks:
                name = f"webhook-{self.ep.id}-{entry.key}"
                self.tasks[entry.key] = asyncio.create_task(self.drain(entry.key), name=name)

    async def drain(self, key: str) -> None:
        """Send one key's entries in order, each until it is delivered or given up."""
        q = self.queues[key]
        try:
            while q:
                try:
                    await self.deliver(q[0])
                except Exception:  # a bug or an odd Redis reply: the same entry, later
                    log.exception("webhooks.deliver_failed", endpoint=self.ep.id)
                    await asyncio.sleep(1)
                    continue
                q.popleft()
        finally:
            if not q:
                self.queues.pop(key, None)
            self.tasks.pop(key, None)

    async def deliver(self, entry: Entry) -> None:
        tries = await retrying(lambda: self.ledger.tries(entry))
        while True:
            wait = tries.next_at - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            error = await self.sender.send(self.ep.url, entry)
            if error is None:
                await retrying(lambda: self.ledger.done(entry))
                DELIVERED.labels(self.ep.id).inc()
                return
            after = self.knobs.policy.after_failure(tries, time.time(), error)
            if after is None:
                dead = replace(tries, error=error)
                await retrying(lambda: self.ledger.done(entry, dead))  # noqa: B023 - awaited here
                FAILED.labels(self.ep.id).inc()
                log.warning("webhooks.dead_letter", endpoint=self.ep.id, webhook_id=entry.msg_id)
                return
            RETRIED.labels(self.ep.id).inc()
            tries = after
            await best_effort(self.ledger.failed(entry, tries))

    async def let_go(self) -> None:
        """Stop delivering (lease lost, or shutting down); what is pending stays pending."""
        for task in list(self.tasks.values()):
            await stop(task)
        self.tasks.clear()
        self.queues.clear()
        self.owned = False
        # Only the owner reports the endpoint's backlog (take the max over processes).
        BACKLOG.labels(self.ep.id).set(0)
        LAG.labels(self.ep.id).set(0)


async def retrying(call: Any, pause: float = 0.5) -> Any:
    """``call()`` until Redis answers (the entry stays pending meanwhile)."""
    while True:
        try:
            return await call()
        except (TimeoutError, *REDIS_DOWN) as exc:
            log.debug("webhooks.redis_unavailable", error=repr(exc))
            await asyncio.sleep(pause)


async def best_effort(call: Any) -> None:
    """The retry schedule is kept locally too: a write that fails only loses it for a new
    owner, who starts over with the first delay."""
    try:
        await call
    except (TimeoutError, *REDIS_DOWN):
        pass

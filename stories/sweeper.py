"""The expiry sweeper: removes the blobs, viewer sets and inbox items of expired stories.

Reads never need it (they filter on ``expires_at``) and Redis TTLs remove the keys anyway;
the sweeper is what deletes the files and cleans up promptly. It polls every
``sweep_interval_seconds``; no keyspace notifications are needed. Any number of server
processes may run it: each story is claimed with a lease in one Lua call, so only one
process purges it, and a process that dies mid-purge leaves it to be claimed again.
"""

from __future__ import annotations

import structlog
from prometheus_client import Counter

from server.background import check_cancelled, every
from stories.service import StoriesService

log = structlog.get_logger(__name__)

SWEPT = Counter("ephemera_stories_swept_total", "Expired stories purged by the sweeper")


class Sweeper:
    def __init__(
        self,
        service: StoriesService,
        interval: float,
        lease_seconds: float = 120.0,
        batch: int = 100,
    ) -> None:
        self.service = service
        self.interval = interval
        self.lease = lease_seconds
        self.batch = batch

    async def sweep_once(self) -> int:
        """Purge every story due by now (the service's clock); returns how many this process
        purged."""
        done = 0
        while True:
            ids = await self.service.store.claim_due(self.lease, self.batch)
            for sid in ids:
                check_cancelled()
                try:
                    await self.service.purge(sid, expired=True)
                except OSError as exc:  # the lease expires and the story is retried
                    log.warning("stories.sweep_failed", story_id=sid, error=repr(exc))
                    continue
                SWEPT.inc()
                done += 1
            if len(ids) < self.batch:
                await self.service.store.trim_gone()
                return done

    async def run(self) -> None:
        """Sweep every ``interval`` seconds until cancelled."""
        await every(self.interval, self._sweep_and_log, "stories.sweep")

    async def _sweep_and_log(self) -> None:
        swept = await self.sweep_once()
        if swept:
            log.info("stories.swept", count=swept)

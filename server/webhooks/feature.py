"""Wires webhooks into the app: the outbox the rooms and stories stores append to, and, when
``webhook_urls`` are set, this process's delivery workers (one per endpoint)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from standardwebhooks.webhooks import Webhook

from server.background import stop
from server.feature import ServiceFeature, Slot
from server.leases import LeaseTable
from server.platform import Platform
from server.settings import Settings
from server.webhooks.delivery import EndpointWorker, Knobs, Ledger, Policy, Sender
from server.webhooks.outbox import Outbox

log = structlog.get_logger(__name__)


class WebhookConfigError(RuntimeError):
    """The webhook settings cannot work; the message says why (start-up fails with it)."""


def checked_secret(settings: Settings) -> str:
    secret = settings.webhook_secret
    if not secret:
        raise WebhookConfigError("EPHEMERA_WEBHOOK_URLS is set but EPHEMERA_WEBHOOK_SECRET is not")
    try:
        Webhook(secret)
    except Exception as exc:
        raise WebhookConfigError(
            "EPHEMERA_WEBHOOK_SECRET must be base64, optionally prefixed whsec_"
        ) from exc
    return secret


def knobs(settings: Settings) -> Knobs:
    s = settings
    policy = Policy(
        s.webhook_retry_base_seconds, s.webhook_retry_max_seconds, s.webhook_retry_window_seconds
    )
    return Knobs(policy, s.webhook_inflight_max, s.webhook_lease_seconds)


class Webhooks:
    """The outbox, and the delivery workers of this process."""

    def __init__(self, outbox: Outbox, workers: list[EndpointWorker], sender: Sender | None):
        self.outbox = outbox
        self.workers = workers
        self.sender = sender
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for w in self.workers:
            self.tasks.append(asyncio.create_task(w.run(), name=f"webhooks-{w.ep.id}"))

    async def stop(self) -> None:
        for task in self.tasks:
            await stop(task)
        for w in self.workers:
            await w.let_go()
            with contextlib.suppress(Exception):  # else the lease runs out by itself
                await w.owners.release(w.ledger.consumer, w.ep.id)
        if self.sender is not None:
            await self.sender.close()


WEBHOOKS: Slot[Webhooks] = Slot("webhooks")


class WebhooksFeature(ServiceFeature[Webhooks]):
    slot: Slot[Webhooks] = WEBHOOKS

    async def start(self, platform: Platform) -> Webhooks:
        s, keys = platform.settings, platform.keys
        outbox = Outbox(keys, s.webhook_urls)
        if not outbox.enabled:
            return Webhooks(outbox, [], None)
        sender = Sender(checked_secret(s), s.webhook_timeout_seconds)
        owners = LeaseTable(
            platform.redis, keys("webhooks", "owners"), keys("webhooks", "owner_of")
        )
        workers = [
            EndpointWorker(Ledger(platform.redis, ep, platform.node.id), sender, owners, knobs(s))
            for ep in outbox.endpoints
        ]
        for ep in outbox.endpoints:
            log.info("webhooks.endpoint", endpoint=ep.id, url=ep.url.split("?")[0])
        service = Webhooks(outbox, workers, sender)
        service.start()
        return service

    async def stop(self, service: Webhooks) -> None:
        await service.stop()

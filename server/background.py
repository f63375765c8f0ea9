"""Background tasks that end when they are cancelled, whatever they were doing.

Python 3.11's ``asyncio.wait_for`` (used inside redis-py) returns normally when the
cancellation reaches it just as its inner operation finishes: the ``CancelledError`` is lost
and a loop that waits for one keeps running, so a lifespan awaiting it never unwinds. Every
loop here therefore also asks whether its task was asked to stop, and ``stop`` cancels again
until the task has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from server.store import REDIS_DOWN

log = structlog.get_logger(__name__)


def stop_requested() -> bool:
    """Whether the running task was asked to stop (even if a CancelledError was lost)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def check_cancelled() -> None:
    """Raise the cancellation that something below may have swallowed."""
    if stop_requested():
        raise asyncio.CancelledError


async def every(interval: float, step: Callable[[], Awaitable[object]], name: str) -> None:
    """Run ``step`` every ``interval`` seconds until cancelled; a failed step is logged and
    the next one runs on time (CancelledError is not an Exception: it always propagates)."""
    redis_down = False  # logged once per outage, not once per step
    while True:
        try:
            await step()
            redis_down = False
        except (TimeoutError, *REDIS_DOWN) as exc:
            if not redis_down:
                log.warning(f"{name}.redis_unavailable", error=repr(exc))
            redis_down = True
        except Exception:
            log.exception(f"{name}.failed")
        check_cancelled()
        await asyncio.sleep(interval)


async def stop(task: asyncio.Task[object] | None, within: float = 10.0) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again should it swallow a
    cancellation; gives up (with an error log) after ``within`` seconds."""
    if task is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=min(0.5, max(0.0, deadline - loop.time())))
        if loop.time() >= deadline and not task.done():
            log.error("task.did_not_stop", task=task.get_name())
            return
    if not task.cancelled() and task.exception() is not None:
        log.error("task.failed", task=task.get_name(), error=repr(task.exception()))

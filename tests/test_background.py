"""Background loops end when cancelled, even when something inside swallows the cancellation
(as Python 3.11's asyncio.wait_for, inside redis-py, can)."""

from __future__ import annotations

import asyncio
import contextlib

from server.background import every, stop


async def test_a_loop_ends_even_if_its_step_swallowed_the_cancellation() -> None:
    steps = 0

    async def step() -> None:
        nonlocal steps
        steps += 1
        # Lost, as wait_for can lose it when its operation completes meanwhile.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.3)

    task = asyncio.create_task(every(0.001, step, "test"))
    await asyncio.sleep(0.1)  # inside the first step
    task.cancel()
    await asyncio.wait({task}, timeout=2)
    assert task.done() and task.cancelled()
    assert steps == 1


async def test_stop_cancels_again_until_the_task_has_ended() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while swallowed < 3:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop(task), timeout=5)
    assert task.done() and swallowed == 3


async def test_stop_gives_up_on_a_task_that_never_ends() -> None:
    release = asyncio.Event()

    async def immortal() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop(task, within=1.0), timeout=5)  # returns: shutdown goes on
    assert not task.done()
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    assert task.done()

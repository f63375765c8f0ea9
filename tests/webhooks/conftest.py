from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import LiveServer
from tests.webhooks.receiver import Receiver

# Retries in a test run every fraction of a second, not every few seconds.
FAST = {
    "webhook_retry_base_seconds": 0.1,
    "webhook_retry_max_seconds": 0.5,
    "webhook_lease_seconds": 3.0,
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def hooked(make_server: Callable[..., LiveServer], receiver: Receiver) -> Callable[..., LiveServer]:
    """A server sending every webhook to ``receiver``."""

    def make(**overrides: Any) -> LiveServer:
        values: dict[str, Any] = {
            "webhook_urls": [receiver.url],
            "webhook_secret": receiver.secret,
            **FAST,
        }
        return make_server(**{**values, **overrides})

    return make

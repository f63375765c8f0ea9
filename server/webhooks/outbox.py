"""The outbox: webhook events appended to Redis Streams inside the caller's MULTI/EXEC.

A change and its events commit together or not at all: the rooms store calls ``append`` on
the pipeline of the transaction that writes the change, the stories store on its publish,
reply and reaction transactions and in the sweeper's purge (``script_args`` for the publish
Lua script). Each endpoint has a stream of its own (``webhooks:<endpoint>:outbox``), so one
endpoint's backlog or retries never hold up another, and a delivered entry is deleted.

One entry: ``id`` (the ``webhook-id``, the same for every endpoint), ``key`` (the order
key) and ``body`` (the JSON that is sent and signed). With no endpoints configured nothing
is written.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.store import Keys
from server.webhooks.events import Envelope


def endpoint_id(url: str) -> str:
    """A short stable name for an endpoint (key names, metric labels): never the URL itself,
    which may carry a token."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Endpoint:
    url: str
    id: str
    stream: str  # the outbox stream (consumer group "delivery")
    dead: str  # the dead-letter list
    tries: str  # hash: entry id -> its retry state

    @classmethod
    def of(cls, keys: Keys, url: str) -> Endpoint:
        eid = endpoint_id(url)
        return cls(
            url=url,
            id=eid,
            stream=keys("webhooks", eid, "outbox"),
            dead=keys("webhooks", eid, "dead"),
            tries=keys("webhooks", eid, "tries"),
        )


class Outbox:
    """Appends events for every configured endpoint (none: a no-op)."""

    def __init__(self, keys: Keys, urls: Sequence[str] = ()) -> None:
        self.endpoints = tuple(Endpoint.of(keys, url) for url in dict.fromkeys(urls))

    @property
    def enabled(self) -> bool:
        return bool(self.endpoints)

    def append(self, p: Any, *events: Envelope) -> None:
        """Queue the events' XADDs on ``p``, a pipeline inside MULTI (or a plain pipeline
        the caller runs as one transaction)."""
        for event in events:
            fields = {"id": message_id(), "key": event.key, "body": event.body()}
            for endpoint in self.endpoints:
                p.xadd(endpoint.stream, fields)

    def script_args(self, event: Envelope) -> tuple[list[str], list[str]]:
        """The streams (KEYS) and the entry (ARGV: id, key, body) for a Lua script that
        appends ``event`` itself: ``for i = first, #KEYS do XADD KEYS[i] * id .. key .. body``."""
        args = [message_id(), event.key, event.body()]
        return [e.stream for e in self.endpoints], args


# The XADDs of ``script_args`` in Lua: KEYS from ``first_key``, ARGV from ``first_arg``.
def lua_append(first_key: int, first_arg: int) -> str:
    a = first_arg
    return (
        f"for i = {first_key}, #KEYS do redis.call('XADD', KEYS[i], '*', "
        f"'id', ARGV[{a}], 'key', ARGV[{a + 1}], 'body', ARGV[{a + 2}]) end\n"
    )

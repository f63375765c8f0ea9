"""How a feature (graph, stories, media, rooms, share) plugs into the app.

The composition root (``server.app``) builds every feature, handing each the features it
depends on, and starts them in order with one :class:`Platform`. A feature's service is
created in ``start`` and passed on explicitly; the only lookup is a transport (an HTTP or
WebSocket handler) fetching its own feature's service through that feature's :class:`Slot`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Generic, Protocol, TypeVar, cast

from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from server.api import Api
from server.platform import Platform

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class Slot(Generic[S]):
    """A typed entry of one app instance's lifespan state, owned by one feature."""

    def __init__(self, name: str) -> None:
        self.name = name

    def of(self, conn: HTTPConnection) -> S:
        return cast(S, conn.scope["state"][self.name])


class Provides(Protocol[S_co]):
    """A feature whose service other features are built with (once it has started)."""

    @property
    def service(self) -> S_co: ...


class Feature(Protocol):
    """What the composition root needs of a feature."""

    @property
    def apis(self) -> Sequence[Api]: ...

    @property
    def routes(self) -> Sequence[BaseRoute]: ...

    def lifespan(
        self, platform: Platform
    ) -> contextlib.AbstractAsyncContextManager[dict[str, Any]]: ...


class ServiceFeature(Generic[S]):
    """A feature with one service: built in ``start``, stopped in ``stop``, reachable by its
    handlers through ``slot`` and by the features built after it through ``service``."""

    slot: Slot[S]
    apis: Sequence[Api] = ()
    routes: Sequence[BaseRoute] = ()

    def __init__(self) -> None:
        self._service: S | None = None

    @property
    def service(self) -> S:
        if self._service is None:
            raise RuntimeError(f"the {self.slot.name} feature has not started")
        return self._service

    async def start(self, platform: Platform) -> S:
        raise NotImplementedError

    async def stop(self, service: S) -> None:
        """Undo ``start``: every background task ends here, before Redis closes."""

    @contextlib.asynccontextmanager
    async def lifespan(self, platform: Platform) -> AsyncIterator[dict[str, Any]]:
        service = await self.start(platform)
        self._service = service
        try:
            yield {self.slot.name: service}
        finally:
            self._service = None
            await self.stop(service)

"""Wires the media relay into the app: this process's media node and the router that is
the media port for the control plane (started before it)."""

from __future__ import annotations

import functools
from typing import Any

from rooms.control import hub
from rooms.media.node import MediaNode
from rooms.media.router import MediaRouter
from server.feature import ServiceFeature, Slot
from server.platform import Platform

MEDIA: Slot[MediaRouter] = Slot("media")


class MediaFeature(ServiceFeature[MediaRouter]):
    slot = MEDIA

    async def start(self, platform: Platform) -> MediaRouter:
        # The platform's node registry: liveness is its lease; the media's load rides along.
        publish = functools.partial(hub.publish, platform.redis, platform.keys)
        node = MediaNode(platform.settings, platform.redis, platform.keys, platform.nodes, publish)
        router = MediaRouter(node)

        def dispatch(room_id: str | None, message: dict[str, Any]) -> None:
            if room_id is None and message.get("op") == "deliver":
                router.on_deliver(message)
            else:
                node.on_message(room_id, message)

        node.bus.handler = dispatch
        await node.start()
        await router.start()
        return router

    async def stop(self, router: MediaRouter) -> None:
        # Participants here are sent elsewhere, every peer connection closes and what this
        # node held in Redis goes, before Redis closes.
        await router.stop()
        await router.node.stop()

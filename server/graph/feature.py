"""Wires the social graph into the app: its endpoints and the ``Graph`` every feature asks."""

from __future__ import annotations

from server.feature import ServiceFeature, Slot
from server.graph import api
from server.graph.store import Graph
from server.platform import Platform


class GraphFeature(ServiceFeature[Graph]):
    slot: Slot[Graph] = api.GRAPH
    apis = (api.api,)

    async def start(self, platform: Platform) -> Graph:
        return Graph(platform.redis, platform.keys, platform.clock)

"""Wires sharing into the app: the client's pages, oEmbed and the ``/.well-known`` files,
built with the stories and rooms features whose links they unfurl."""

from __future__ import annotations

from rooms.control.service import RoomsService
from server.feature import Provides, ServiceFeature, Slot
from server.platform import Platform
from server.share import api, wellknown
from server.share.pages import Pages
from server.share.service import ShareService
from server.webclient import static_dir
from stories.service import StoriesService


class ShareFeature(ServiceFeature[ShareService]):
    slot: Slot[ShareService] = api.SHARE
    apis = (api.api,)

    def __init__(self, stories: Provides[StoriesService], rooms: Provides[RoomsService]) -> None:
        super().__init__()
        self.stories = stories
        self.rooms = rooms
        static = static_dir()
        # The client's own paths (share links among them) go before its files, which the
        # app mounts last; without a web client there are no pages to carry metadata.
        pages = Pages(static / "index.html").routes() if static is not None else []
        self.routes = [*wellknown.routes, *pages]

    async def start(self, platform: Platform) -> ShareService:
        rooms = self.rooms.service.store
        return ShareService(self.stories.service, rooms, platform.settings)

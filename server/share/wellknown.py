"""The files that let mobile apps open this server's share links (universal links / App
Links): ``/.well-known/apple-app-site-association`` from ``EPHEMERA_IOS_APP_IDS`` and
``/.well-known/assetlinks.json`` from ``EPHEMERA_ANDROID_APPS``.

Both are served as ``application/json`` straight from the route (Apple's fetcher follows
no redirects); with nothing configured they answer 404, which tells the platforms that no
app claims the links.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.errors import NotFound
from server.settings import AndroidApp, Settings

# The share links an app may claim: rooms and stories (``server.links``).
APP_PATHS = ("/rooms/*", "/stories/*")
CACHE = {"Cache-Control": "public, max-age=3600"}


def apple_app_site_association(app_ids: list[str]) -> dict[str, Any]:
    return {
        "applinks": {
            "details": [
                {"appIDs": list(app_ids), "components": [{"/": path} for path in APP_PATHS]}
            ]
        }
    }


def asset_links(apps: list[AndroidApp]) -> list[dict[str, Any]]:
    return [
        {
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": app.package_name,
                "sha256_cert_fingerprints": list(app.sha256_cert_fingerprints),
            },
        }
        for app in apps
    ]


async def aasa_endpoint(request: Request) -> Response:
    settings: Settings = request.state.platform.settings
    if not settings.ios_app_ids:
        raise NotFound("no iOS app is configured", code="not_configured")
    return JSONResponse(apple_app_site_association(settings.ios_app_ids), headers=CACHE)


async def assetlinks_endpoint(request: Request) -> Response:
    settings: Settings = request.state.platform.settings
    if not settings.android_apps:
        raise NotFound("no Android app is configured", code="not_configured")
    return JSONResponse(asset_links(settings.android_apps), headers=CACHE)


routes = [
    Route("/.well-known/apple-app-site-association", aasa_endpoint),
    Route("/.well-known/assetlinks.json", assetlinks_endpoint),
]

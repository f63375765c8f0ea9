"""Webhook settings that cannot work stop the start, with a reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from server.app import create_app
from server.settings import Settings
from server.webhooks.feature import WebhookConfigError


async def test_urls_without_a_secret_refuse_to_start(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(webhook_urls=["http://127.0.0.1:9/hooks"]))
    with pytest.raises(WebhookConfigError):
        async with app.router.lifespan_context(app):
            pass
    assert "EPHEMERA_WEBHOOK_SECRET" in app.state.startup_error


@pytest.mark.parametrize("url", ["ftp://x/y", "hooks.example.com", "http://", "http:// x"])
def test_an_endpoint_must_be_an_http_url(make_settings: Callable[..., Settings], url: str) -> None:
    with pytest.raises(ValidationError):
        make_settings(webhook_urls=[url])

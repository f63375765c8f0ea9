"""/.well-known files for mobile deep links, validated against Apple's and Google's formats."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from server.settings import Settings
from tests.support import LiveServer

FINGERPRINT = ":".join(["a1"] * 32)
APP_ID = re.compile(r"^[A-Z0-9]{10}\.[A-Za-z0-9.-]+$")
SHA256 = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){31}$")


def check_aasa(doc: object) -> None:
    """Apple's applinks format (iOS 13+): details with appIDs and components."""
    assert isinstance(doc, dict) and set(doc) == {"applinks"}
    details = doc["applinks"]["details"]
    assert isinstance(details, list) and details
    for entry in details:
        assert set(entry) == {"appIDs", "components"}
        assert entry["appIDs"] and all(APP_ID.match(a) for a in entry["appIDs"])
        for component in entry["components"]:
            assert set(component) <= {"/", "?", "#", "exclude", "comment"}
            assert component["/"].startswith("/")


def check_assetlinks(doc: object) -> None:
    """Google's Digital Asset Links statement list for Android App Links."""
    assert isinstance(doc, list) and doc
    for statement in doc:
        assert statement["relation"] == ["delegate_permission/common.handle_all_urls"]
        target = statement["target"]
        assert set(target) == {"namespace", "package_name", "sha256_cert_fingerprints"}
        assert target["namespace"] == "android_app"
        assert all(SHA256.match(f) for f in target["sha256_cert_fingerprints"])


async def test_files_are_served_from_settings(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(
        ios_app_ids=["ABCDE12345.com.example.ephemera", "ZYXWV98765.com.example.beta"],
        android_apps=[
            {"package_name": "com.example.ephemera", "sha256_cert_fingerprints": [FINGERPRINT]}
        ],
    )
    async with server.client(follow_redirects=False) as anon:
        r = await anon.get("/.well-known/apple-app-site-association")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == {
            "applinks": {
                "details": [
                    {
                        "appIDs": [
                            "ABCDE12345.com.example.ephemera",
                            "ZYXWV98765.com.example.beta",
                        ],
                        "components": [{"/": "/rooms/*"}, {"/": "/stories/*"}],
                    }
                ]
            }
        }
        check_aasa(r.json())
        r = await anon.get("/.well-known/assetlinks.json")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        check_assetlinks(r.json())
        target = r.json()[0]["target"]
        assert target["package_name"] == "com.example.ephemera"
        assert target["sha256_cert_fingerprints"] == [FINGERPRINT.upper()]


async def test_nothing_configured_is_a_404(server: LiveServer) -> None:
    async with server.client(follow_redirects=False) as anon:
        for path in ("/.well-known/apple-app-site-association", "/.well-known/assetlinks.json"):
            r = await anon.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_configured"


def test_settings_read_json_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPHEMERA_IOS_APP_IDS", '["ABCDE12345.com.example.app"]')
    monkeypatch.setenv(
        "EPHEMERA_ANDROID_APPS",
        f'[{{"package_name": "com.example.app", "sha256_cert_fingerprints": ["{FINGERPRINT}"]}}]',
    )
    s = Settings()
    assert s.ios_app_ids == ["ABCDE12345.com.example.app"]
    assert s.android_apps[0].sha256_cert_fingerprints == [FINGERPRINT.upper()]


@pytest.mark.parametrize(
    "values",
    [
        {"ios_app_ids": ["com.example.app"]},  # no team id
        {"ios_app_ids": ["abcde12345.com.example.app"]},  # team ids are upper case
        {"ios_app_ids": ["ABCDE12345."]},
        {"ios_app_ids": "ABCDE12345.com.example.app"},  # not a list
        {"android_apps": [{"package_name": "app", "sha256_cert_fingerprints": [FINGERPRINT]}]},
        {"android_apps": [{"package_name": "com.x", "sha256_cert_fingerprints": []}]},
        {"android_apps": [{"package_name": "com.x", "sha256_cert_fingerprints": ["A1:B2"]}]},
        {
            "android_apps": [
                {"package_name": "com.x", "sha256_cert_fingerprints": [FINGERPRINT[:-1] + "g"]}
            ]
        },
        {
            "android_apps": [
                {
                    "package_name": "com.x",
                    "sha256_cert_fingerprints": [FINGERPRINT.replace(":", "")],
                }
            ]
        },
        {"android_apps": [{"package_name": "com.x", "sha256_cert_fingerprints": [7]}]},
        {"android_apps": [{"package_name": "com.x", "fingerprints": [FINGERPRINT]}]},
    ],
)
def test_bad_settings_are_refused_at_startup(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)  # type: ignore[arg-type]

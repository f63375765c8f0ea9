from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.feature import Feature
from server.settings import Settings
from server.store import connect
from server.valkey import EmbeddedValkey, ValkeyCluster
from tests.support import CLUSTER, SECRET, LiveServer, free_port


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey | ValkeyCluster]:
    """One real Valkey per test session; tests isolate themselves by key prefix. With
    EPHEMERA_TEST_REDIS=cluster it is a three-primary Valkey Cluster."""
    server: EmbeddedValkey | ValkeyCluster
    if CLUSTER:
        server = ValkeyCluster(tmp_path_factory.mktemp("cluster"), ValkeyCluster.free_ports(3))
    else:
        server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_settings(
    valkey: EmbeddedValkey | ValkeyCluster, tmp_path: Path
) -> Callable[..., Settings]:
    prefix = f"t{uuid.uuid4().hex[:10]}:"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": valkey.url,
            "redis_cluster": CLUSTER,
            "secret_key": SECRET,
            "data_dir": tmp_path / "data",
            "key_prefix": prefix,
            "log_json": True,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def redis(make_settings: Callable[..., Settings]) -> AsyncIterator[Redis]:
    """A client of the tests' Redis made as the app makes its own (standalone or cluster)."""
    settings = make_settings()
    assert settings.redis_url is not None
    client = connect(settings.redis_url, settings)
    yield client
    await client.aclose()


@pytest.fixture
def make_server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def make(features: Callable[[], list[Feature]] | None = None, **overrides: Any) -> LiveServer:
        port = free_port()
        overrides.setdefault("public_base_url", f"http://127.0.0.1:{port}")
        server = LiveServer(make_settings(**overrides), port=port, features=features).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    return make_server()


@pytest.fixture
async def anon(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as c:
        yield c


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the cluster pass, only tests that use the session's Valkey run (the pure ones ran
    on the single-node pass already)."""
    if not CLUSTER:
        return
    keep = [i for i in items if "valkey" in getattr(i, "fixturenames", ())]
    dropped = [i for i in items if "valkey" not in getattr(i, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep

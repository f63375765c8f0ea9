"""The Redis client, built so that a dead or hung Redis is a fast failure (503), not a wait.

Two mechanisms, both below every caller (commands, pipelines, scripts, the rate limiter):

* A **circuit**: the app's watchdog pings Redis on a client of its own and opens the circuit
  while Redis does not answer; while open, taking a connection from the pool fails at once.
* A **time budget per request**: ``request_budget`` gives the current request (an HTTP
  request, one WebSocket message) a total time it may spend waiting on Redis, whatever the
  number of commands, retries, health checks and reconnections; every connection attempt
  and every reply waited for draws on it, and fails with a Redis ``TimeoutError`` when it
  runs out. Work outside a request (background tasks) is bounded by the socket timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Coroutine, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import NodesManager
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.settings import Settings

# What an unreachable or dead Redis looks like to callers; turned into 503 by the app.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
T = TypeVar("T")


class CircuitOpen(RedisConnectionError):
    """Redis is not answering the watchdog: fail without trying."""


class Circuit:
    """Open while the watchdog cannot reach Redis (set by ``server.app.watch_redis``)."""

    def __init__(self) -> None:
        self.open = False


class Budget:
    """How long the current request may still wait on Redis, all its commands together.

    Tasks started during the request share it until the request ends; after that (a task
    that outlives its request) their commands are bounded by the socket timeouts only.
    """

    def __init__(self, seconds: float) -> None:
        self.left = seconds
        self.closed = False


_budget: ContextVar[Budget | None] = ContextVar("redis_budget", default=None)
# Set while a network wait is already being charged (a health check inside a command, a
# handshake inside a connect): nested waits are not charged twice.
_charging: ContextVar[bool] = ContextVar("redis_charging", default=False)


@contextlib.contextmanager
def request_budget(seconds: float) -> Iterator[Budget]:
    """Give the code inside (and the tasks it starts) ``seconds`` of Redis waiting in all."""
    budget = Budget(seconds)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        budget.closed = True
        _budget.reset(token)


def _current() -> Budget | None:
    budget = _budget.get()
    return None if budget is None or budget.closed else budget


def budget_left(default: float) -> float:
    """The current request's remaining Redis time, or ``default`` outside a request."""
    budget = _current()
    return default if budget is None else max(0.0, budget.left)


async def _charged(call: Coroutine[Any, Any, T]) -> T:
    """Await ``call`` (a network wait) within the current request's budget, if any."""
    budget = _current()
    if budget is None or _charging.get():
        return await call
    if budget.left <= 0:
        call.close()
        raise RedisTimeoutError("the request ran out of time for Redis")
    token = _charging.set(True)
    start = time.monotonic()
    try:
        async with asyncio.timeout(budget.left):
            return await call
    except TimeoutError:
        raise RedisTimeoutError("the request ran out of time for Redis") from None
    finally:
        budget.left -= time.monotonic() - start
        _charging.reset(token)


class _Budgeted(AbstractConnection):
    """The network waits of a connection (connecting, and every reply, health checks
    included) draw on the current request's budget. A reply's wait is capped through the
    connection's own read timeout (no extra timer on the hot path); writes are not charged:
    they only wait when the socket buffer is full, bounded by the socket timeout."""

    async def connect(self) -> None:
        if not self.is_connected:  # the pool calls this for every command
            await _charged(super().connect())

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        budget = _current()
        if budget is None or _charging.get():
            return await super().read_response(*args, **kwargs)
        if budget.left <= 0:
            raise RedisTimeoutError("the request ran out of time for Redis")
        configured = self.socket_timeout
        self.socket_timeout = min(configured or budget.left, budget.left)
        start = time.monotonic()
        try:
            return await super().read_response(*args, **kwargs)
        finally:
            self.socket_timeout = configured
            budget.left -= time.monotonic() - start


class _TcpConnection(_Budgeted, Connection):
    pass


class _SslConnection(_Budgeted, SSLConnection):
    pass


class _UnixConnection(_Budgeted, UnixDomainSocketConnection):
    pass


_BUDGETED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _TcpConnection,
    SSLConnection: _SslConnection,
    UnixDomainSocketConnection: _UnixConnection,
}


class CircuitPool(ConnectionPool):
    """A connection pool that refuses at once while its circuit is open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.circuit = Circuit()
        self.connection_class = _BUDGETED.get(self.connection_class, self.connection_class)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.circuit.open:
            raise CircuitOpen("Redis is not answering")
        return await super().get_connection(*args, **kwargs)


class _CircuitConnection(AbstractConnection):
    """A cluster node's connection refuses while its client's circuit is open (a cluster
    has one pool per node, so the circuit sits on the connections)."""

    circuit: Circuit

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        if self.circuit.open:
            raise CircuitOpen("Redis is not answering")
        await super().send_packed_command(*args, **kwargs)


class ClusterUnreachable(RedisConnectionError):
    """No node of the cluster answered while redis-py looked for its slots again."""


class _NodesManager(NodesManager):
    """redis-py re-reads a cluster's slots after a connection error or timeout and, when no
    node answers, raises a bare ``RedisClusterException``: that is Redis being down (503),
    so it is raised as a connection error like every other outage."""

    __slots__ = ()

    async def initialize(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise ClusterUnreachable(str(exc)) from exc


# The circuit of each cluster client made by ``connect`` (RedisCluster has no pool to hold it).
_cluster_circuits: weakref.WeakKeyDictionary[Any, Circuit] = weakref.WeakKeyDictionary()


def connect(url: str, settings: Settings) -> Redis:
    """The app's client: standalone, or redis-py's cluster client when ``redis_cluster``."""
    if settings.redis_cluster:
        return _connect_cluster(url, settings)
    options = _options(settings)
    pool = CircuitPool.from_url(
        url, retry_on_error=[RedisConnectionError, RedisTimeoutError], **options
    )
    return Redis.from_pool(pool)


def _options(settings: Settings) -> dict[str, Any]:
    """What every client of the app is made with, standalone or cluster."""
    return {
        "decode_responses": True,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        "health_check_interval": settings.redis_health_check_interval,
        # One quick retry covers a connection the server closed while idle; a request's
        # budget bounds the retry like everything else.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
        "max_connections": 200,
    }


def _connect_cluster(url: str, settings: Settings) -> Redis:
    breaker = Circuit()
    client = RedisCluster.from_url(url, **_options(settings))
    # redis-py fixes the connection class of a cluster's nodes (TCP or TLS); ours adds the
    # budget and the circuit. Nodes found later are made from these same keyword arguments.
    plain = client.connection_kwargs["connection_class"]
    bases = (_CircuitConnection, _BUDGETED[plain])
    connection = type("ClusterConnection", bases, {"circuit": breaker})
    client.connection_kwargs["connection_class"] = connection
    client.nodes_manager.connection_kwargs["connection_class"] = connection
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = connection
    client.nodes_manager.__class__ = _NodesManager
    _cluster_circuits[client] = breaker
    # The cluster client answers the same commands; every transaction, script and
    # pipeline keeps its keys in one hash slot (docs/architecture.md, "Keys and hash slots").
    return cast(Redis, client)


def circuit(redis: Redis) -> Circuit:
    """The circuit of a client made by ``connect``."""
    if isinstance(redis, RedisCluster):
        return _cluster_circuits[redis]
    pool = redis.connection_pool
    assert isinstance(pool, CircuitPool)
    return pool.circuit


def connect_probe(url: str, settings: Settings) -> Redis:
    """A small client for the watchdog: no circuit, no retry."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        "retry": Retry(NoBackoff(), retries=0),
        "max_connections": 2,
    }
    if settings.redis_cluster:
        return cast(Redis, RedisCluster.from_url(url, **options))
    return Redis.from_url(url, **options)


def display_url(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


async def first_ping(redis: Redis, attempts: int = 3) -> None:
    """Start-up's first contact. A cluster client reads the slots and connects to each node
    on it, every step within the connect timeout, so a busy machine may miss one: a timeout
    is tried again a few times (on one node, a refused connection fails at once)."""
    for attempt in range(attempts):
        try:
            await redis.ping()
            return
        except (RedisTimeoutError, ClusterUnreachable):
            if attempt == attempts - 1:
                raise


async def check_server(redis: Redis, cluster: bool) -> None:
    """Refuse to start on a server this app cannot use (raises ``RuntimeError``): a
    cluster node unless ``cluster`` (EPHEMERA_REDIS_CLUSTER), and the other way round."""
    if cluster:
        return  # redis-py's cluster client has already read the cluster's slots
    try:
        info = await redis.info("cluster")
    except ResponseError:  # INFO not allowed here: the first real command will tell
        return
    if int(info.get("cluster_enabled", 0)):
        raise RuntimeError(
            "it is a Redis Cluster node (cluster_enabled:1): set EPHEMERA_REDIS_CLUSTER=true "
            "to use the cluster client"
        )


class Keys:
    """Every Redis key name in one place, under the configured prefix.

    On a cluster, the keys one transaction, Lua script or multi-key command uses must share
    a hash tag (``{...}``): per room the room id, per story the story id, per-author lists
    the author id, per-viewer lists the viewer id. The table: docs/architecture.md."""

    def __init__(self, prefix: str) -> None:
        self.p = prefix

    def __call__(self, *parts: str) -> str:
        return self.p + ":".join(parts)

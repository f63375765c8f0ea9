"""One settings object, read from the environment (``EPHEMERA_*``, plus ``REDIS_URL``)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict

# "TEAMID.bundle.id": Apple's 10-character team id, then the app's bundle id.
IosAppId = Annotated[
    str, StringConstraints(pattern=r"^[A-Z0-9]{10}\.[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
]


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


# SHA-256 of the app's signing certificate as Android prints it: 32 hex pairs joined by ":"
# (lower case is accepted and served in upper case, the form Android compares).
CertFingerprint = Annotated[
    str,
    BeforeValidator(_upper),
    StringConstraints(pattern=r"^[0-9A-F]{2}(:[0-9A-F]{2}){31}$"),
]


class AndroidApp(BaseModel):
    """One Android app allowed to open this server's links (Digital Asset Links)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package_name: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
    ]
    sha256_cert_fingerprints: Annotated[list[CertFingerprint], Field(min_length=1)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EPHEMERA_", extra="ignore", frozen=True)

    # None means: start a private embedded Valkey under data_dir.
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "EPHEMERA_REDIS_URL")
    )
    # REDIS_URL names any node of a Redis / Valkey Cluster: use redis-py's cluster client.
    redis_cluster: bool = False
    data_dir: Path = Path("./data")
    # A random secret per process is safe but makes tokens useless across restarts and
    # processes; production sets EPHEMERA_SECRET_KEY.
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    public_base_url: str = "http://127.0.0.1:8000"
    key_prefix: str = "eph:"
    node_id: str = Field(default_factory=lambda: secrets.token_hex(4))

    # Redis client behaviour: fail fast so requests answer 503 instead of hanging.
    redis_connect_timeout: float = 0.5
    redis_socket_timeout: float = 2.0
    redis_health_check_interval: int = 10
    redis_retry_after: int = 2
    # All the time one request (or one room WebSocket message) may wait on Redis, in total.
    redis_request_timeout: float = 0.5
    # How often the watchdog pings Redis; while pings fail, requests fail at once (503).
    redis_watchdog_interval: float = 0.5

    # Auth
    token_leeway_seconds: int = 10
    token_default_ttl_seconds: int = 3600

    # Limits
    max_body_bytes: int = 64 * 1024
    max_upload_bytes: int = 25 * 1024 * 1024
    ws_max_message_bytes: int = 64 * 1024
    # Slow clients (``ephemera serve``, server/http_protocol.py): a request head must arrive
    # within this long, and a request body may not pause for longer than this between reads.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    # Browser WebSockets: allowed Origin values (empty = any origin; auth is by token, not cookie).
    allowed_origins: list[str] = []

    # Stories
    story_ttl_seconds: int = 24 * 3600
    replay_ttl_seconds: int = 30 * 24 * 3600  # how long a room's replay is kept
    story_grace_seconds: int = 3600
    sweep_interval_seconds: float = 30.0
    max_active_stories: int = 100
    max_story_text: int = 500
    max_video_seconds: float = 60.0
    max_image_pixels: int = 40_000_000
    # Lifetime of the signed media URLs handed out with a story (capped at its expiry).
    media_url_ttl_seconds: int = 600
    # The tray at scale (docs/stories.md, "The tray"): a story is fanned out into its
    # followers' tray indexes in batches of ``stories_fanout_batch`` followers, unless its
    # author has more than ``stories_fanout_max_followers`` (then followers pull it, and one
    # tray read asks at most ``stories_tray_pull_max`` such authors); a batch left pending
    # this long by a process that died is taken over by another. The live tray (SSE) sends
    # a heartbeat this often.
    stories_fanout_max_followers: int = Field(default=100_000, ge=0)
    stories_fanout_batch: int = Field(default=1000, ge=1, le=10_000)
    stories_fanout_claim_seconds: float = Field(default=30.0, gt=0)
    stories_tray_pull_max: int = Field(default=20, ge=1, le=27)
    stories_live_heartbeat_seconds: float = Field(default=15.0, gt=0)

    # Rooms
    max_cohosts: int = 2
    max_speakers: int = 10
    reconnect_grace_seconds: float = 30.0
    host_grace_seconds: float = 60.0
    # Above this many listeners, listeners' joins/leaves go to the host and co-hosts only,
    # everyone else gets counts (``listeners``, each tick), and the welcome of anyone but
    # the host and co-hosts lists only the first listeners.
    room_listener_events_max: int = 100
    room_ended_ttl_seconds: int = 24 * 3600
    # A scheduled room not started this long after its start time is cancelled.
    scheduled_room_expiry_seconds: float = 3600.0
    # How often each process claims due grace deadlines, reaps dead nodes and refreshes counts.
    room_tick_seconds: float = 1.0
    # Messages waiting for one slow socket before it is closed (1013).
    room_ws_queue_max: int = 1000
    # permessage-deflate on WebSockets (under ``ephemera serve``): off, because room events
    # are small and each is written as one prebuilt frame to every socket (server/wsframes.py).
    ws_per_message_deflate: bool = False

    # WebRTC: STUN/TURN URLs handed to clients (JSON list of RTCIceServer objects).
    ice_servers: list[dict[str, str | list[str]]] = []
    # Media relay: how a packet reaches listeners ("fast": one pass per packet, see
    # docs/relay.md; "stock": aiortc's own sender per listener; "reencode": decode and
    # re-encode per listener, aiortc MediaRelay's cost model; the last two are benchmark
    # baselines), the per-listener queue of the stock path (20 ms packets), and how long a
    # connected listener may send nothing at all (ICE consent answers, RTCP, media) before
    # it counts as gone and its connection is closed.
    relay_mode: Literal["fast", "stock", "reencode"] = "fast"
    relay_queue_packets: int = 16
    relay_silence_seconds: float = 4.0
    # Media nodes (every server process is one; docs/relay.md, "One room on many nodes"):
    # this process's URL in the node registry (a restarted process at the same URL replaces
    # its earlier run at once; default public_base_url), how often a node renews its
    # registry lease and how long the lease runs (a node that stops renewing is dead, and
    # so is its claim on the rooms it originates), the most listeners a node takes, the CPU
    # (fraction of one core) below which a node serving a room takes more of its listeners
    # (above it they go to the least loaded node, an edge), the address other nodes send
    # this node's trunk packets to (a room's audio from its origin; set it to this
    # machine's address when nodes run on several machines) and where the trunk sockets
    # listen (default: that address), and how long routed signaling waits for the node
    # serving a participant's media.
    media_node_url: str | None = None
    node_heartbeat_seconds: float = 1.0
    node_ttl_seconds: float = 3.0
    media_node_max_listeners: int = 500
    media_busy_cpu: float = 0.6
    media_trunk_host: str = "127.0.0.1"
    media_trunk_bind: str | None = None
    media_rpc_timeout_seconds: float = 5.0

    # Mobile deep links: apps that may open /rooms/... and /stories/... links
    # (served as /.well-known/apple-app-site-association and /.well-known/assetlinks.json).
    ios_app_ids: list[IosAppId] = []
    android_apps: list[AndroidApp] = []

    # Rate limits (the `limits` library's notation)
    rate_publish: str = "30/hour"
    rate_reply: str = "60/minute"
    rate_react: str = "30/minute"
    rate_room_create: str = "20/hour"
    rate_room_join: str = "60/minute"
    rate_ws_message: str = "20/second"
    rate_room_reaction: str = "3/second"

    # Webhooks (docs/webhooks.md): endpoints receiving every event, signed with the secret
    # (Standard Webhooks: base64, optionally prefixed whsec_). Failed deliveries are retried
    # after base, 2*base, 4*base... seconds (each delay at most retry_max) for retry_window,
    # then dead-lettered. An endpoint's answer may take up to timeout; one process at a time
    # delivers to an endpoint, holding a lease of lease_seconds; at most inflight_max events
    # per endpoint are read ahead. Reminders go out in batches of reminder_batch user ids.
    webhook_urls: list[Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+\S*$")]] = []
    webhook_secret: str | None = None
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_retry_window_seconds: float = 24 * 3600.0
    webhook_lease_seconds: float = 15.0
    webhook_inflight_max: int = 1000
    webhook_reminder_batch: int = 500

    # Unset: readable lines when stderr is a terminal, JSON lines otherwise.
    log_json: bool | None = None
    log_level: str = "INFO"

"""Load test: the stories API and room joins/events at growing concurrency on loopback.

The server runs in its own process; load comes from another process (``loadgen`` for HTTP,
``joingen`` for rooms), closed loop, each step bounded in time. For every step the report
gives throughput, p50/p99 latency and errors, plus throughput as a ratio to ``GET /healthz``
measured at the same concurrency in the same run.

Run: ``ephemera bench --only load`` (about 2 minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import Settings
from tests.support import ROOT, ServerProcess, auth, settings_env

STEP_SECONDS = int(os.environ.get("EPHEMERA_BENCH_STEP_SECONDS", "5"))
LEVELS = (1, 4, 16, 64)
ROOM_LEVELS = (1, 8, 32, 64)
UNLIMITED = {
    "rate_publish": "1000000/hour",
    "rate_reply": "1000000/minute",
    "rate_react": "1000000/minute",
    "rate_room_create": "1000000/hour",
    "rate_room_join": "1000000/minute",
    "rate_ws_message": "1000000/second",
    "max_active_stories": 1_000_000,
    # The load's room has no host connection; keep it live for the whole run.
    "host_grace_seconds": 3600,
}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(module: str, spec: dict[str, Any], server_pid: int) -> dict[str, Any]:
    """One load step; adds the server's CPU use (cores) so saturation is visible: on two
    cores, past ~16 workers the Python load generator, not the server, is the limit."""
    cpu0, t0 = _cpu_seconds(server_pid), time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", module, json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=STEP_SECONDS + 120,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu"] = (_cpu_seconds(server_pid) - cpu0) / (time.monotonic() - t0)
    return result


def _row(name: str, r: dict[str, Any], base_rps: float) -> str:
    errors = sum(r["errors"].values())
    return (
        f"{name:<22}{r['concurrency']:>5}{r['rps']:>10.0f}{r['rps'] / base_rps:>8.2f}"
        f"{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{errors:>8}{r['server_cpu']:>9.2f}"
    )


@pytest.mark.bench
def test_load_stories_and_rooms(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(**UNLIMITED, log_level="WARNING")
    server = ServerProcess(settings_env(settings)).start()
    assert server.proc is not None
    pid = server.proc.pid
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for author in ("author0", "author1", "author2"):
                c.put(f"/v1/users/{author}/follow", headers=auth("reader"))
                for n in range(5):
                    c.post("/v1/stories", json={"text": f"{author} {n}"}, headers=auth(author))
            room = c.post("/v1/rooms", json={"title": "load"}, headers=auth("loadhost"))
            room_id = room.json()["id"]

        mixes: dict[str, list[dict[str, Any]]] = {
            "healthz (baseline)": [{"method": "GET", "path": "/healthz", "user": "reader"}],
            "stories read mix": [
                {"method": "GET", "path": "/v1/stories/tray", "user": "reader"},
                {"method": "GET", "path": "/v1/users/author1/stories", "user": "reader"},
                {"method": "GET", "path": "/v1/me", "user": "reader"},
            ],
            "publish text story": [
                {
                    "method": "POST",
                    "path": "/v1/stories",
                    "json": {"text": "load"},
                    "user": "writer",
                },
            ],
        }
        print(f"\nHTTP load (closed loop, {STEP_SECONDS} s per step)")
        print(
            f"{'workload':<22}{'conc':>5}{'req/s':>10}{'xbase':>8}{'p50 ms':>10}"
            f"{'p99 ms':>10}{'errors':>8}{'srv cpu':>9}"
        )
        failures = []
        for level in LEVELS:
            base = _run(
                "tests.benchmarks.loadgen",
                {
                    "base_url": server.url,
                    "concurrency": level,
                    "seconds": STEP_SECONDS,
                    "requests": mixes["healthz (baseline)"],
                },
                pid,
            )
            print(_row("healthz (baseline)", base, base["rps"]))
            for name in ("stories read mix", "publish text story"):
                r = _run(
                    "tests.benchmarks.loadgen",
                    {
                        "base_url": server.url,
                        "concurrency": level,
                        "seconds": STEP_SECONDS,
                        "requests": mixes[name],
                    },
                    pid,
                )
                print(_row(name, r, base["rps"]))
                if r["errors"]:
                    failures.append((name, level, r["errors"]))

        print(f"\nRoom joins + hand event (closed loop, {STEP_SECONDS} s per step)")
        print(
            f"{'conc':>5}{'joins/s':>10}{'join p50':>10}{'join p99':>10}{'event p50':>11}"
            f"{'event p99':>11}{'errors':>8}{'srv cpu':>9}"
        )
        for level in ROOM_LEVELS:
            r = _run(
                "tests.benchmarks.joingen",
                {
                    "ws_url": server.ws_url,
                    "room_id": room_id,
                    "concurrency": level,
                    "seconds": STEP_SECONDS,
                    "prefix": f"j{level}u",
                },
                pid,
            )
            print(
                f"{level:>5}{r['joins_per_s']:>10.1f}{r['join_p50_ms']:>10.1f}"
                f"{r['join_p99_ms']:>10.1f}{r['event_p50_ms']:>11.1f}{r['event_p99_ms']:>11.1f}"
                f"{sum(r['errors'].values()):>8}{r['server_cpu']:>9.2f}"
            )
            if r["errors"]:
                failures.append(("room joins", level, r["errors"]))
        assert not failures, f"errors below saturation: {failures}"
    finally:
        server.stop()

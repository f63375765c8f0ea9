"""A closed-loop HTTP load generator, run as its own process so it never shares the server's CPU
accounting: ``python -m tests.benchmarks.loadgen SPEC_JSON`` prints one JSON result line.

SPEC: {"base_url", "concurrency", "seconds", "requests": [{"method", "path", "json"?, "user"}]}
Each worker cycles through the request list; latencies are per request.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx

from tests.support import token


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    tokens = {r["user"]: token(r["user"], ttl=3600) for r in spec["requests"]}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + spec["seconds"]

    async def worker(offset: int) -> None:
        # One client (one keep-alive connection) per worker: a shared httpx pool serialises
        # its workers on the pool lock and becomes the bottleneck long before the server.
        i = offset
        async with httpx.AsyncClient(base_url=spec["base_url"], timeout=30) as client:
            while time.monotonic() < deadline:
                req = spec["requests"][i % len(spec["requests"])]
                i += 1
                headers = {"Authorization": f"Bearer {tokens[req['user']]}"}
                start = time.perf_counter()
                try:
                    r = await client.request(
                        req["method"], req["path"], json=req.get("json"), headers=headers
                    )
                    status: int | str = r.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - start)
                if not (isinstance(status, int) and status < 400):
                    errors[str(status)] = errors.get(str(status), 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(spec["concurrency"])))
    elapsed = time.monotonic() - started
    return {
        "concurrency": spec["concurrency"],
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))

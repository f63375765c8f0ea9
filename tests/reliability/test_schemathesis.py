"""Property-based fuzzing of every endpoint in /openapi.json: no 5xx, no schema violation."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from server.settings import Settings
from tests.support import ServerProcess, settings_env, token

ST = Path(sys.executable).with_name("schemathesis")
# An upload's bytes are "binary" to the schema; whether they are a decodable JPEG or MP4 under
# the size cap is decided by sniffing and decoding, which no schema can express.
# Multipart fields are text on the wire, so a "number" the fuzzer puts in the caption arrives
# as a valid string: its negative cases for this operation cannot be told from valid ones
# (tests/stories/test_media_api.py refuses malformed form fields itself). Every other check
# runs everywhere (the default; `--checks all` on the command line would override this).
# The live tray is a stream that stays open until its token expires: tests/stories/test_live.py
# checks its refusals and its events instead.
CONFIG = """
[[operations]]
include-path = "/v1/stories/media"
checks.positive_data_acceptance.expected-statuses = ["2XX", 401, 403, 404, 409, 413, 415, 422, 429]
checks.negative_data_rejection.enabled = false

[[operations]]
include-path = "/v1/stories/tray/events"
enabled = false

# A room exists without a recording: its /recording answers 404 (docs/recording.md), which
# is not a "created resource not found" after POST /v1/rooms.
[[operations]]
include-path-regex = "/recording"
checks.ensure_resource_availability.enabled = false
"""


def test_openapi_fuzzing_finds_no_errors(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # Generous rate limits: the fuzzer should reach the handlers, not the limiter.
    settings = make_settings(
        rate_publish="100000/hour",
        rate_reply="100000/minute",
        rate_react="100000/minute",
        rate_room_create="100000/hour",
    )
    server = ServerProcess(settings_env(settings)).start()
    try:
        budget = os.environ.get("EPHEMERA_FUZZ_SECONDS", "60")
        (tmp_path / "schemathesis.toml").write_text(CONFIG)
        result = subprocess.run(
            [
                str(ST),
                "run",
                f"{server.url}/openapi.json",
                "-H",
                f"Authorization: Bearer {token('fuzzer')}",
                "--max-time",
                budget,
                "-w",
                "1",
                "--seed",
                "20261122",
                "--request-timeout",
                "10",
                "--suppress-health-check",
                "all",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=int(budget) + 120,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    finally:
        server.stop()

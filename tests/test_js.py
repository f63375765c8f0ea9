"""The web client's JavaScript: its unit tests (``node --test tests/js/``) and ESLint.

ESLint is pinned in ``tests/js/package-lock.json`` and installed with
``npm ci --prefix tests/js`` (the README's test command does it). Without Node.js or
without ESLint installed these tests fail with a message saying so: they never skip.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support import ROOT

JS_TESTS = ROOT / "tests" / "js"
ESLINT = JS_TESTS / "node_modules" / "eslint" / "bin" / "eslint.js"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is missing: the web client's tests need Node.js 20 or newer and npm")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node(), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_js_unit_tests_pass() -> None:
    result = run("--test", "tests/js/")
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    assert "# fail 0" in result.stdout
    assert "# pass 0" not in result.stdout  # the runner found the tests


def test_eslint_finds_nothing() -> None:
    if not ESLINT.exists():
        pytest.fail("ESLint is not installed: run `npm ci --prefix tests/js` (README, Quick start)")
    config = "tests/js/eslint.config.js"
    result = run(str(ESLINT), "--max-warnings", "0", "-c", config, "static/js", "tests/js")
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]

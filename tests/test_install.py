"""A plain (non-editable) install: the wheel carries the web client, and serves `/` and
`/docs` from another folder than the checkout; `ephemera bench` says what it needs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx

from server.settings import Settings
from tests.support import ROOT

RUN_CLI = "import sys; from server.cli import main; sys.argv[0] = 'ephemera'; main()"


def build_and_unpack(tmp_path: Path) -> Path:
    """``pip wheel .`` then the wheel's files installed into a folder of their own. Built from
    a copy: setuptools leaves a build/ folder behind, and would reuse it."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("server", "stories", "rooms", "static"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("ephemera-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    checkout = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "static").rglob("*") if p.is_file())
    shipped = sorted(n.removeprefix("server/") for n in zipfile.ZipFile(wheel).namelist())
    assert checkout and set(checkout) <= set(shipped), set(checkout) - set(shipped)
    return site


def test_a_plain_install_serves_the_web_client_and_explains_bench(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    site = build_and_unpack(tmp_path)
    elsewhere = tmp_path / "elsewhere"  # not the checkout: it must not be on sys.path
    elsewhere.mkdir()
    settings = make_settings()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "REDIS_URL": settings.redis_url or "",
        "EPHEMERA_KEY_PREFIX": settings.key_prefix,
        "EPHEMERA_DATA_DIR": str(tmp_path / "data"),
        "EPHEMERA_SECRET_KEY": settings.secret_key,
    }
    where = subprocess.run(
        [sys.executable, "-c", "import server; print(server.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(site / "server" / "__init__.py")

    bench = subprocess.run(
        [sys.executable, "-c", RUN_CLI, "bench"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bench.returncode == 2
    assert "source checkout" in bench.stderr and "no tests/benchmarks/" in bench.stderr

    serve = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "serve", "--port", "0"],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        match = re.match(r"Ephemera running on (\S+) ", line)
        assert match, line
        url = match.group(1)
        home = httpx.get(url + "/")
        assert home.status_code == 200 and "text/html" in home.headers["content-type"]
        # The client's index.html, with the page's link-preview metadata rendered in.
        assert '<script type="module" src="/js/app.js"></script>' in home.text
        assert 'property="og:title"' in home.text
        docs = httpx.get(url + "/docs")
        assert docs.status_code == 200 and "openapi.json" in docs.text
        assert httpx.get(url + "/js/app.js").status_code == 200
    finally:
        serve.send_signal(signal.SIGINT)  # Ctrl-C
        code = serve.wait(timeout=30)
        if serve.stdout is not None:
            serve.stdout.close()
    assert code == 0

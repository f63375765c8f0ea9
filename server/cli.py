"""The ``ephemera`` command: serve, mint tokens, run benchmarks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from server.settings import Settings

cli = typer.Typer(help="Ephemera: ephemeral stories and live audio rooms.", no_args_is_help=True)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Server processes sharing the port, each a media node (default: one per "
            "core; one with --reload)",
        ),
    ] = None,
) -> None:
    """Run the HTTP/WebSocket server (embedded Valkey when REDIS_URL is unset)."""
    import structlog

    from server import serving
    from server.logs import configure_logging
    from server.workers import Supervisor, default_workers

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json, stdlib=True)
    if settings.redis_url is None:
        structlog.get_logger(__name__).info(
            "REDIS_URL unset: starting the embedded Valkey", directory=str(settings.data_dir)
        )
    _share_secret(settings)
    os.environ.setdefault("EPHEMERA_PUBLIC_BASE_URL", f"http://{host}:{port}")
    count = 1 if reload else workers or default_workers()
    if count > 1:
        why = Supervisor(settings, host, port, count).run()
    else:
        why = serving.run(settings, host, port, reload)
    if why is not None:
        typer.echo(f"ephemera: could not start: {why}", err=True)
        raise typer.Exit(3)  # uvicorn's exit status for a server that could not start


def _share_secret(settings: Settings) -> None:
    """One secret for every process of this server (reloader, workers) and for `ephemera
    token`: the environment's, or the one kept in the data folder."""
    if "EPHEMERA_SECRET_KEY" in os.environ:
        return
    secret_file = settings.data_dir / "secret_key"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not secret_file.exists():
        secret_file.write_text(settings.secret_key)
        secret_file.chmod(0o600)
    os.environ["EPHEMERA_SECRET_KEY"] = secret_file.read_text().strip()


def _secret(settings: Settings) -> str:
    if "EPHEMERA_SECRET_KEY" in os.environ:
        return settings.secret_key
    secret_file = settings.data_dir / "secret_key"
    if secret_file.exists():
        return secret_file.read_text().strip()
    typer.echo(
        "no EPHEMERA_SECRET_KEY and no data/secret_key yet: run `ephemera serve` once", err=True
    )
    raise typer.Exit(2)


@cli.command()
def token(
    user: Annotated[str, typer.Argument(help="User id the token names")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
    room: Annotated[
        str | None, typer.Option(help="Scope the token to one room's WebSocket")
    ] = None,
) -> None:
    """Mint a bearer token for USER, as an app's own backend would."""
    from server.auth import mint_token

    settings = Settings()
    try:
        typer.echo(mint_token(_secret(settings), user, ttl, room=room))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _benchmarks_root() -> Path | None:
    """The source checkout holding tests/benchmarks: this package's, or the current folder."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "tests" / "benchmarks").is_dir() and (root / "pyproject.toml").is_file():
            return root
    return None


BENCH_NEEDS = """ephemera bench runs the benchmarks in tests/benchmarks/ of a source checkout,
with the test dependencies installed; this installation has {missing}. To run them:

  git clone <the Ephemera repository> && cd ephemera
  python3 -m venv .venv && .venv/bin/pip install -e '.[test]'
  .venv/bin/ephemera bench
"""


@cli.command()
def bench(
    only: Annotated[
        str,
        typer.Option(help="One benchmark: load, recording, relay, rooms or stories (its file)"),
    ] = "",
) -> None:
    """Run the benchmarks in tests/benchmarks of a source checkout and print their figures."""
    root = _benchmarks_root()
    missing = []
    if root is None:
        missing.append("no tests/benchmarks/ (neither in the package's folder nor here)")
    if importlib.util.find_spec("pytest") is None:
        missing.append("no pytest (the [test] extra)")
    if root is None or missing:
        typer.echo(BENCH_NEEDS.format(missing=" and ".join(missing)), err=True)
        raise typer.Exit(2)
    where = root / "tests" / "benchmarks"
    target = where / f"bench_{only}.py" if only else where
    if not target.exists():
        names = sorted(p.stem.removeprefix("bench_") for p in where.glob("bench_*.py"))
        typer.echo(f"no benchmark {only!r}; there are: {', '.join(names)}", err=True)
        raise typer.Exit(2)
    args = [
        sys.executable,
        "-m",
        "pytest",
        str(target),
        "-m",
        "bench",
        "-s",
        "-p",
        "no:cacheprovider",
        "--timeout",
        "1800",
    ]
    raise typer.Exit(subprocess.call(args, cwd=root))


def main() -> None:
    cli()

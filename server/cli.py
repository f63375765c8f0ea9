"""The ``ephemera`` command: serve, mint tokens, run benchmarks."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from server.settings import Settings

cli = typer.Typer(help="Ephemera: ephemeral stories and live audio rooms.", no_args_is_help=True)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
) -> None:
    """Run the HTTP/WebSocket server (embedded Valkey when REDIS_URL is unset)."""
    import uvicorn

    settings = Settings()
    from server.logs import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    if settings.redis_url is None:
        typer.echo(
            f"REDIS_URL unset: starting embedded Valkey under {settings.data_dir}/valkey", err=True
        )
    if "EPHEMERA_SECRET_KEY" not in os.environ:
        # Keep one secret for the reloader's child processes and for `ephemera token`.
        secret_file = settings.data_dir / "secret_key"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not secret_file.exists():
            secret_file.write_text(settings.secret_key)
            secret_file.chmod(0o600)
        os.environ["EPHEMERA_SECRET_KEY"] = secret_file.read_text().strip()
    os.environ.setdefault("EPHEMERA_PUBLIC_BASE_URL", f"http://{host}:{port}")
    from server.app import create_app

    # The reloader needs an import string; otherwise the app object is ours, so a failed
    # start can be reported with its reason.
    app: Any = "server.app:create_app" if reload else create_app()
    try:
        # uvicorn re-raises the SIGINT it handled after a graceful shutdown: not an error.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.run(
                app,
                factory=reload,
                host=host,
                port=port,
                reload=reload,
                log_config=None,
                access_log=False,
                ws_max_size=settings.ws_max_message_bytes,
                ws_ping_interval=20,
                ws_ping_timeout=20,
                timeout_graceful_shutdown=10,
            )
    except SystemExit as exc:
        if exc.code:  # uvicorn exits 3 when the app's start-up failed
            why = getattr(getattr(app, "state", None), "startup_error", "see the log above")
            typer.echo(f"ephemera: could not start: {why}", err=True)
        raise


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


@cli.command()
def bench(
    only: Annotated[str, typer.Option(help="Substring of the benchmark names to run")] = "",
) -> None:
    """Run the benchmarks in tests/benchmarks and print their figures."""
    root = Path(__file__).resolve().parent.parent
    args = [
        sys.executable,
        "-m",
        "pytest",
        str(root / "tests" / "benchmarks"),
        "-m",
        "bench",
        "-s",
        "-p",
        "no:cacheprovider",
        "--timeout",
        "1800",
    ]
    if only:
        args += ["-k", only]
    raise typer.Exit(subprocess.call(args, cwd=root))


def main() -> None:
    cli()

"""Where the web client's files are (``/`` and the ``/docs`` page).

In a source checkout they are the top-level ``static/`` folder; a wheel ships the same files
inside the package as ``server/static/`` (pyproject.toml maps the one onto the other).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def static_dir() -> Path | None:
    """The installed copy first, then the checkout's; None when neither exists."""
    for candidate in (PACKAGE / "static", PACKAGE.parent / "static"):
        if (candidate / "index.html").is_file():
            return candidate
    return None

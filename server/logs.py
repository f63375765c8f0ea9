"""Structured logs with the request id bound per request: readable lines on a terminal, JSON
lines otherwise (``EPHEMERA_LOG_JSON`` forces either)."""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.types import Processor

SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def wants_json(json: bool | None) -> bool:
    """``None`` (unset): JSON unless stderr, where logs go, is a terminal."""
    return json if json is not None else not sys.stderr.isatty()


def _renderers(json: bool) -> list[Processor]:
    if json:
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    # The console renderer prints exceptions itself (format_exc_info would flatten them).
    return [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]


def configure_logging(level: str = "INFO", json: bool | None = None, stdlib: bool = False) -> None:
    """Configure structlog; with ``stdlib``, also render the standard library's records (e.g.
    uvicorn's warnings) the same way, on the same stream (done by ``ephemera serve``, which
    owns its process; an embedding application keeps its own logging setup)."""
    renderers = _renderers(wants_json(json))
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*SHARED, *renderers],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # One write per line: the workers of `ephemera serve` share stderr, and a line
        # written in two parts (print's text, then its newline) can be split by another's.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    if not stdlib:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *SHARED],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    # Libraries' warnings and errors only: their info lines (uvicorn's start-up chatter,
    # which `ephemera serve` says in one line, the reloader's file changes) are noise here.
    root.setLevel(max(numeric_level, logging.WARNING))

"""How a process logs: today's text on stderr, or one JSON object per line on stdout.

``AI_TRADER_LOG_FORMAT=json`` makes every line a process writes to stdout or stderr one JSON
object: ``time`` (UTC, ISO 8601 with milliseconds and ``Z``), ``level`` (``debug``, ``info``,
``warning``, ``error``, ``critical``), ``service`` (the command: ``fetch``, ``serve``, ``run``,
...; the entrypoint's own lines say ``entrypoint``), ``logger``, ``event`` (the message), and
``signature``, ``day`` and ``tool``, always present and null when the line belongs to no
book, day or tool call. A traceback is one more field, ``exception``; the end of a run adds
``summary``. Third-party loggers (uvicorn, the MCP SDK, httpx), Python's warnings and an
uncaught exception come out the same way. Unset or ``text``: the text lines as before.

Standard library only: the lowest floor, so every module may tag what it logs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

VARIABLE = "AI_TRADER_LOG_FORMAT"
TEXT, JSON = "text", "json"
FORMATS = (TEXT, JSON)
# What a line is about, when known: set for a stretch of work (``bound``) or passed with one
# call (``extra={"day": ...}``); the call's own value wins.
FIELDS = ("signature", "day", "tool")
# More structured fields a call may pass in ``extra`` (only these are written).
EXTRA_FIELDS = ("summary",)

_current: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"ai_trader_log_{name}", default=None) for name in FIELDS
}
_json_mode = False


def format_from(environ: Mapping[str, str]) -> str:
    """The log format the environment asks for; ValueError (one line) for anything else."""
    value = environ.get(VARIABLE, "")
    if value in ("", TEXT):
        return TEXT
    if value == JSON:
        return JSON
    raise ValueError(f"{VARIABLE}={value}: give text (the default) or json")


def is_json() -> bool:
    """Whether this process logs JSON lines (``install`` was given json)."""
    return _json_mode


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Tag every line logged in this block (in this task or thread) with ``fields``."""
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []
    for name, value in fields.items():
        var = _current[name]  # KeyError: not a field of the line
        tokens.append((var, var.set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def timestamp(created: float) -> str:
    """``2026-01-02T03:04:05.678Z`` for a time.time() value."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (ASCII only, so any stream can carry it)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name in FIELDS:
            given = getattr(record, name, None)
            entry[name] = given if given is not None else _current[name].get()
        for name in EXTRA_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def install(log_format: str, service: str, *, verbose: bool = False) -> None:
    """Send this process's logging to where ``log_format`` says, at the levels the CLI uses:
    our own progress at INFO; libraries (HTTP clients, the MCP SDK, uvicorn) only speak up
    for warnings unless ``verbose``."""
    global _json_mode
    level = logging.DEBUG if verbose else logging.WARNING
    _json_mode = log_format == JSON
    if log_format == TEXT:
        logging.basicConfig(
            level=level,
            format="%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    else:
        handler = logging.StreamHandler(_stdout())
        handler.setFormatter(JsonFormatter(service))
        root = logging.getLogger()
        for old in root.handlers[:]:
            root.removeHandler(old)
            old.close()
        root.addHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread
    logging.getLogger("ai_trader").setLevel(logging.DEBUG if verbose else logging.INFO)


def _stdout() -> TextIO:
    # Looked up when installed, so pytest's capture and redirections are honoured.
    return sys.stdout


def _log_uncaught(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    """A bug's traceback as one JSON line (level critical) instead of Python's text."""
    logging.getLogger("ai_trader").critical(
        "uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, tb)
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return  # as threading's own hook: a thread's exit is no error
    _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)

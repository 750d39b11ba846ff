"""Structured logs with the standard library: a JSON or text formatter and a bound context.

Standard logging rather than structlog: uvicorn, redis-py, httpx and the vendor SDKs already
log through it, so one handler and one formatter cover every line the process writes, with
no second pipeline to bridge. What structlog would add, a context carried along, is a
ContextVar here (``bound``): every line written inside ``with bound(thread_id=...)``, in this
task or in tasks it starts, carries those fields.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

LogFormat = Literal["json", "text"]

# The fields a line about a thread carries (thread_id, agent, request_id, call_id, channel,
# worker) come from ``bound``, or from a call's ``extra=``.
_context: ContextVar[Mapping[str, str]] = ContextVar(
    "switchboard_log_context", default=MappingProxyType({})
)
# Fields bound anywhere inside ``collecting`` (an HTTP request), for a line written after.
_collected: ContextVar[dict[str, str] | None] = ContextVar(
    "switchboard_log_collected", default=None
)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` (but for
# uvicorn's copy of its message with terminal colours).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# Clients that log every request at INFO: the model calls already have a line of their own.
_CHATTY = ("httpx", "httpx2", "httpcore")


class _Bound:
    """``bound``'s context manager: a class, not a ``@contextmanager`` generator, which cost
    twice as much (a run enters about 18 of these)."""

    __slots__ = ("_given", "_token")

    def __init__(self, given: dict[str, str]) -> None:
        self._given = given
        self._token: Token[Mapping[str, str]] | None = None

    def __enter__(self) -> None:
        given = self._given
        collected = _collected.get()
        if collected is not None:
            collected.update(given)
        self._token = _context.set({**_context.get(), **given})

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _context.reset(self._token)
            self._token = None


def bound(**fields: str | None) -> AbstractContextManager[None]:
    """Add fields (None is skipped) to every line logged inside, in this task and its children."""
    return _Bound({k: v for k, v in fields.items() if v})


@contextmanager
def collecting() -> Iterator[dict[str, str]]:
    """Gather what is bound inside (the thread a request touched) for its access line."""
    collected: dict[str, str] = {}
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)


def touch(**fields: str | None) -> None:
    """Note fields for the enclosing ``collecting`` only (a request's access line)."""
    collected = _collected.get()
    if collected is not None:
        collected.update({k: v for k, v in fields.items() if v})


def current() -> Mapping[str, str]:
    """The fields bound here (the tracer reads the thread id from them too)."""
    return _context.get()


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The bound context plus whatever the call passed as ``extra`` (None left out)."""
    out: dict[str, Any] = dict(_context.get())
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_") and value is not None:
            out[key] = value
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, then the fields as key=value (for a person at a terminal)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = record_fields(record)
        if not fields:
            return text
        head, sep, tail = text.partition("\n")  # keep a traceback below the fields
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{head} [{pairs}]{sep}{tail}"


def default_format() -> LogFormat:
    """Text for a person at a terminal, JSON for whatever collects the output."""
    return "text" if sys.stderr.isatty() else "json"


def setup(fmt: LogFormat | None = None, level: str = "INFO") -> None:
    """Send every logger's lines to stderr in one format (replaces earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if (fmt or default_format()) == "json" else TextFormatter()
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))

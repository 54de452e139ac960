"""JSON-lines logs of long-running sessions (paper, live): one object per line on stderr and in a file.

Each line: ``ts`` (UTC ISO, ms), ``level``, ``logger``, ``event`` and the record's ``fields`` (passed as
``logger.log(level, event, extra={"fields": {...}})``), plus ``exc`` for exceptions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``redact`` (optional) is applied to the finished line (secrets)."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        line = json.dumps(out, default=str)
        return self.redact(line) if self.redact is not None else line


def setup_json_logging(loggers: Iterable[str], path: Path | None = None, *, level: int = logging.INFO,
                       redact: Callable[[str], str] | None = None) -> None:
    """Send the named loggers' records as JSON lines to stderr and, if given, to ``path`` (appended).

    Replaces their handlers and stops propagation, so calling it again (a restart) does not double lines.
    """
    for name in loggers:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = False
        for h in list(logger.handlers):
            logger.removeHandler(h)
        handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(path))
        for h in handlers:
            h.setFormatter(JsonFormatter(redact))
            logger.addHandler(h)

"""The paper session's structured log events (logger ``nautilus_app.paper``, written as JSON lines by
:func:`nautilus_app.jsonlog.setup_json_logging` into ``paper.log.jsonl``)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("nautilus_app.paper")


def event(level: int, name: str, **fields: Any) -> None:
    """Log ``name`` with ``fields`` (the JSON formatter puts them beside the message)."""
    log.log(level, name, extra={"fields": fields})

"""Logging for the daemon: one line per event, human-readable or JSON (``--log-format json``)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(fmt: str = "human", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               datefmt="%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger("seriesfeed")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # APScheduler's own warnings in the same format (not Python's bare last-resort output),
    # less the skip notice for a periodic job whose previous run is still going: that is
    # how the outbox job is meant to behave while it drains a large digest
    # (a handler filter: a logger's own filters do not see its children's records)
    sched_handler = logging.StreamHandler(sys.stderr)
    sched_handler.setFormatter(handler.formatter)
    sched_handler.addFilter(_still_running)
    sched = logging.getLogger("apscheduler")
    sched.handlers[:] = [sched_handler]
    sched.setLevel(logging.WARNING)
    sched.propagate = False


def _still_running(record: logging.LogRecord) -> bool:
    return "maximum number of running instances reached" not in record.getMessage()

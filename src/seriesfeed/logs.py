"""Logging for the daemon: one line per event, human-readable or JSON (``--log-format json``),
stamped in the site's time zone with its offset, to the second (as `status` and every JSON
output are)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, tzinfo

__all__ = ["HumanFormatter", "JsonFormatter", "mask_address", "setup_logging"]


def mask_address(address: str) -> str:
    """``l***@example.org``: enough for an operator to follow one person through the log
    (with the subscriber number beside it), not enough to harvest addresses from it."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"


class _ZoneMixin:
    zone: tzinfo = UTC

    def stamp(self, record: logging.LogRecord) -> str:
        return datetime.fromtimestamp(record.created, self.zone).isoformat(timespec="seconds")


class HumanFormatter(_ZoneMixin, logging.Formatter):
    def __init__(self, zone: tzinfo) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.stamp(record)


class JsonFormatter(_ZoneMixin, logging.Formatter):
    def __init__(self, zone: tzinfo = UTC) -> None:
        super().__init__()
        self.zone = zone

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": self.stamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(fmt: str = "human", level: int = logging.INFO, zone: tzinfo = UTC) -> None:
    """Log lines to standard error, their times in ``zone`` (the daemon passes the site's)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(zone))
    else:
        handler.setFormatter(HumanFormatter(zone))
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

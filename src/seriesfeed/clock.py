"""The one clock: every "now" in seriesfeed is this aware UTC time (tests move it with
time-machine, which patches the standard library under it), and the one way a time is
written for people and scripts (the site's zone, with its offset)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

__all__ = ["local_time", "now_utc"]


def now_utc() -> datetime:
    return datetime.now(UTC)


def local_time(value: datetime | None, zone: tzinfo) -> str | None:
    """One way to write a time everywhere (logs, status, JSON): the site's time zone, with
    its offset, to the second."""
    if value is None:
        return None
    return value.astimezone(zone).isoformat(timespec="seconds")

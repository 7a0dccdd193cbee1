"""The one clock: every "now" in seriesfeed is this aware UTC time (tests move it with
time-machine, which patches the standard library under it)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["now_utc"]


def now_utc() -> datetime:
    return datetime.now(UTC)

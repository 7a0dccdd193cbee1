"""Scheduled entries: publish the ones whose time has come, and say when the next is due.

Apart from the entry verbs because every feed build and digest run calls ``release_due``
and needs nothing else of theirs: the entry verbs import the importers, the HTML cleaner
and babel, which a build from a new process would load for one indexed read.
"""

from __future__ import annotations

from datetime import datetime

from seriesfeed.clock import now_utc
from seriesfeed.store import Store
from seriesfeed.store import entries as q

__all__ = ["next_release", "release_due"]


def release_due(store: Store, now: datetime | None = None) -> int:
    """Publish the scheduled entries whose time has come; return how many."""
    now = now or now_utc()
    with store.read() as conn:
        due = q.next_release(conn)
    if due is None or due > now:
        return 0  # the common case costs one indexed read, no write transaction
    with store.write() as conn:
        return len(q.release_due(conn, now))


def next_release(store: Store) -> datetime | None:
    """When the next scheduled entry is due (None: nothing is scheduled)."""
    with store.read() as conn:
        return q.next_release(conn)

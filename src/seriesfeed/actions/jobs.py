"""Job-run records for the scheduler: when each job last ran and how it ended."""

from __future__ import annotations

from datetime import datetime

from seriesfeed.store import Store, ops
from seriesfeed.store import jobs as jq

__all__ = ["finish_run", "first_start", "last_success", "start_run"]


def start_run(store: Store, name: str, now: datetime) -> int:
    with store.write() as conn:
        return jq.start_run(conn, name, now)


def finish_run(store: Store, run_id: int, now: datetime, ok: bool, summary: str) -> None:
    with store.write() as conn:
        jq.finish_run(conn, run_id, now, ok, summary)


def last_success(store: Store, name: str) -> datetime | None:
    with store.read() as conn:
        return jq.last_success(conn, name)


def first_start(store: Store) -> bool:
    """No job has ever run on this store (a daemon's first start on a new store)."""
    with store.read() as conn:
        return not ops.has_rows(conn)

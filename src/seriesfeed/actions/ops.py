"""Operator verbs: the outbox and digest records, retries, backups, bounce processing, the
store check and the single-runner lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from seriesfeed.bounces import BounceRun
from seriesfeed.bounces import process as process_bounces
from seriesfeed.checkup import check as check_store
from seriesfeed.checkup import verdict
from seriesfeed.operations import (
    backup_store,
    list_digests,
    list_outbox,
    local_time,
    restore_store,
    retry_outbox,
    show_digest,
)
from seriesfeed.outbox import DrainReport, drain_outbox
from seriesfeed.store import Store, open_store
from seriesfeed.store.locks import RunnerLock

__all__ = [
    "BounceRun", "DrainReport", "Store", "backup_store", "check_store", "drain_outbox",
    "list_digests", "list_outbox", "local_time", "migrate", "open_store", "process_bounces",
    "restore_store", "retry_outbox", "runner_lock", "show_digest", "verdict",
]


@contextmanager
def runner_lock(store: Store) -> Iterator[None]:
    """One daemon per store (a flock on SQLite, an advisory lock on PostgreSQL)."""
    with RunnerLock(store):
        yield


def migrate(store: Store) -> tuple[list[str], str | None]:
    """Bring the schema up to date: the revisions applied, and the one now current."""
    applied = store.migrate()
    return applied, store.schema_revision()

"""Open the configured store: refuse a missing one to a read-only command, bring the
schema up to date for the rest.

Apart from the operator verbs (``actions.ops``) because every command that touches the
store opens it here, and the operator verbs import the outbox's, the subscribers' and the
backup's SQL, which a feed build or an entry edit never runs.
"""

from __future__ import annotations

from seriesfeed.config import Config
from seriesfeed.errors import StoreError
from seriesfeed.store import Store
from seriesfeed.store import open_store as _open

__all__ = ["Store", "migrate", "open_store", "refuse_missing"]


def open_store(config: Config, *, migrate: bool = True, create: bool = True) -> Store:
    """The configured store (``[database] url``; a relative SQLite path is read from the
    config file's folder), upgraded to the newest schema unless ``migrate`` is False.
    ``create=False`` (the read-only commands) refuses a SQLite file that is not there
    rather than make a new empty one: a deleted store must not read as an empty, healthy
    one, and the new file would hide where the real one went. On PostgreSQL the same goes
    for a database with no schema (a typo in its name, one dropped and made again): it is
    refused, not migrated."""
    if not create:
        probe = Store(config.database.url, base_dir=config.base_dir, make_folder=False)
        try:
            refuse_missing(probe)
        finally:
            probe.close()
    return _open(config.database.url, config.base_dir, migrate=migrate)


def refuse_missing(store: Store) -> None:
    """The one-line error for a store that is not there (no SQLite file, no schema)."""
    if store.sqlite_path is not None and str(store.sqlite_path) not in ("", ":memory:") and \
            not store.sqlite_path.exists():  # connecting would create an empty file
        raise StoreError(f"there is no store at {store.sqlite_path}: run `seriesfeed init` "
                         "(or restore a backup there)")
    if store.sqlite_path is None and store.schema_revision() is None:
        raise StoreError(f"there is no store in {store.describe()} (the database has no "
                         "seriesfeed schema): run `seriesfeed init` (or restore a dump there)")


def migrate(store: Store) -> tuple[list[str], str | None]:
    """Bring the schema up to date: the revisions applied, and the one now current."""
    applied = store.migrate()
    return applied, store.schema_revision()

"""The ``check`` verb: open the store without migrating it and say what is wrong."""

from __future__ import annotations

from seriesfeed.config import Config
from seriesfeed.errors import StoreDamagedError, StoreError
from seriesfeed.store import Store
from seriesfeed.store.check import CheckReport, check_store

__all__ = ["check", "verdict"]


def check(config: Config) -> CheckReport:
    """What is wrong with the store, without changing it (no migration); the caller prints
    it, then :func:`verdict` turns problems into the one-line error."""
    store = Store(config.database.url, base_dir=config.base_dir)
    if store.sqlite_path is not None and str(store.sqlite_path) != ":memory:" and \
            not store.sqlite_path.exists():  # connecting would create an empty file
        store.close()
        raise StoreError(f"there is no store at {store.sqlite_path}: run `seriesfeed init` "
                         "(or restore a backup there)")
    try:
        return check_store(store)
    finally:
        store.close()


def verdict(config: Config, report: CheckReport) -> None:
    """Raise the one-line error for a report with problems."""
    if not report.problems:
        return
    store = Store(config.database.url, base_dir=config.base_dir)
    try:
        where = store.describe()
    finally:
        store.close()
    more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
    raise StoreDamagedError(f"the store {where} is damaged: {report.problems[0]}{more}: "
                            "restore it from a backup (see the lines above)")

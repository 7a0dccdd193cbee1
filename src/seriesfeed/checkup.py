"""The ``check`` verb: open the store without migrating it and say what is wrong."""

from __future__ import annotations

from seriesfeed.config import Config
from seriesfeed.errors import StoreDamagedError
from seriesfeed.store import Store
from seriesfeed.store.check import CheckReport, check_store


def check(config: Config) -> CheckReport:
    """The report; raises StoreDamagedError (after the caller could print nothing) only
    through :func:`verdict`."""
    store = Store(config.database.url, base_dir=config.base_dir)
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

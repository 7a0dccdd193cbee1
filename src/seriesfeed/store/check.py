"""Is the store whole? ``seriesfeed check``: SQLite's ``PRAGMA integrity_check`` and
``foreign_key_check``, on every backend the schema revision and a full read of every table;
``quick_check``: the cheap check health runs at start and on a schedule."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from seriesfeed.errors import StoreError
from seriesfeed.store import Store, _reason
from seriesfeed.store.tables import metadata

__all__ = ["MAX_LISTED", "CheckReport", "check_store", "quick_check", "sqlite_findings"]

MAX_LISTED = 20  # integrity_check can list thousands of lines for one bad page


@dataclass
class CheckReport:
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_store(store: Store) -> CheckReport:
    """What is wrong with the store, if anything. A schema newer than this code raises
    StoreTooNewError (nothing else can be judged); a store that cannot be opened raises."""
    report = CheckReport()
    revision = store.schema_revision()
    head = store.head_revision()
    if revision is None:
        report.problems.append("no schema: run `seriesfeed init`")
        return report
    if revision not in store.known_revisions():
        raise store.too_new(revision)
    if revision != head:
        report.problems.append(f"schema revision {revision} is older than {head}: run "
                               "`seriesfeed init`")
    else:
        report.passed.append(f"schema revision {revision} (the newest)")
    if store.dialect == "sqlite":
        _sqlite_pragmas(store, report)
    for table in metadata.sorted_tables:
        try:
            with store.read() as conn:
                # count(*) over a column of every row reads each page of the table
                first = next(iter(table.columns))
                conn.execute(select(func.count(first)).select_from(table)).scalar()
        except StoreError as exc:
            cause = exc.__cause__
            reason = _reason(cause) if isinstance(cause, DBAPIError) else str(exc)
            report.problems.append(f"table {table.name}: cannot be read ({reason})")
    if not any(p.startswith("table ") for p in report.problems):
        report.passed.append(f"{len(metadata.sorted_tables)} tables read in full")
    return report


def _sqlite_pragmas(store: Store, report: CheckReport) -> None:
    try:
        with store.read() as conn:
            rows = [str(r[0]) for r in conn.execute(text("PRAGMA integrity_check"))]
            fk = conn.execute(text("PRAGMA foreign_key_check")).all()
    except StoreError as exc:
        cause = exc.__cause__
        reason = _reason(cause) if isinstance(cause, DBAPIError) else str(exc)
        report.problems.append(f"integrity_check: could not run ({reason})")
        return
    if rows == ["ok"]:
        report.passed.append("integrity_check: ok")
    else:
        report.problems += [f"integrity_check: {r}" for r in rows[:MAX_LISTED]]
        if len(rows) > MAX_LISTED:
            report.problems.append(f"integrity_check: … {len(rows) - MAX_LISTED} more")
    if fk:
        report.problems.append(f"foreign_key_check: {len(fk)} rows point at missing rows "
                               f"(first: table {fk[0][0]}, row {fk[0][1]})")
    else:
        report.passed.append("foreign_key_check: ok")


def quick_check(store: Store) -> list[str]:
    """What the cheap check finds wrong (empty: nothing). SQLite: ``PRAGMA quick_check``
    (every page's b-tree structure, without integrity_check's index cross-checks) on a
    connection of its own, so no pooled connection's page cache can hide damage on disk.
    PostgreSQL keeps its own pages sound (checksums, WAL): one row of each table is read,
    which finds a table that is missing or cannot be read."""
    if store.dialect == "sqlite":
        return _sqlite_quick_check(store)
    problems: list[str] = []
    for table in metadata.sorted_tables:
        try:
            with store.read() as conn:
                conn.execute(select(text("1")).select_from(table).limit(1)).all()
        except StoreError as exc:
            cause = exc.__cause__
            reason = _reason(cause) if isinstance(cause, DBAPIError) else str(exc)
            problems.append(f"table {table.name}: cannot be read ({reason})")
    return problems


def _sqlite_quick_check(store: Store) -> list[str]:
    path = store.sqlite_path
    if path is None or str(path) == ":memory:":
        return []  # nothing on disk to damage
    if not path.exists():
        return [f"there is no store at {path}"]
    try:
        # as a URI, escaped: a `#` or `?` in a folder's name would end the path early
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
        try:
            rows = [str(r[0]) for r in conn.execute(f"PRAGMA quick_check({MAX_LISTED})")]
        finally:
            conn.close()
    except sqlite3.Error as exc:  # "file is not a database", "disk image is malformed"
        return [f"quick_check: {exc}"]
    return [] if rows == ["ok"] else [f"quick_check: {r}" for r in sqlite_findings(rows)]


def sqlite_findings(rows: list[str]) -> list[str]:
    """integrity_check's or quick_check's rows as one-line findings: a row may hold
    several lines, headed by "*** in database main ***", which says nothing."""
    lines = [line.strip() for row in rows for line in row.splitlines()]
    return [line for line in lines if line and not line.startswith("*** in database")]

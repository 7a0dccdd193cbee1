"""``seriesfeed check``: is the store whole? SQLite's ``PRAGMA integrity_check`` and
``foreign_key_check``; on every backend the schema revision and a full read of every table."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from seriesfeed.errors import StoreError
from seriesfeed.store import Store, _reason
from seriesfeed.store.tables import metadata

__all__ = ["MAX_LISTED", "CheckReport", "check_store"]

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

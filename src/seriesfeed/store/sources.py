"""Queries for the sources the daemon polls: their state, and which entries each one gave."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from seriesfeed.store.tables import entries, series, source_entries, source_polls, sources

__all__ = [
    "KEEP_POLLS", "PollRow", "SourceState", "add_entries_count", "all_states", "claim",
    "ensure_state", "entry_ids", "forget_entries", "forget_validators", "get_state",
    "listed_elsewhere", "listing",
    "poll_history", "record", "record_poll", "remember_entries",
    "series_by_entry", "series_of_entries",
]

# a source polled every 15 minutes keeps about ten days of history; the console's chart
# and `sources history` need no more, and the table stays bounded however long it runs
KEEP_POLLS = 1000


@dataclass(frozen=True)
class SourceState:
    name: str
    config_url: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    entries_added: int = 0
    failures: int = 0
    not_before: datetime | None = None
    stopped: bool = False
    lease_until: datetime | None = None


def _state(row: object) -> SourceState:
    m = row._mapping  # type: ignore[attr-defined]
    return SourceState(**{k: m[k] for k in SourceState.__dataclass_fields__})


def get_state(conn: Connection, name: str) -> SourceState | None:
    row = conn.execute(select(sources).where(sources.c.name == name)).first()
    return _state(row) if row is not None else None


def all_states(conn: Connection) -> dict[str, SourceState]:
    return {r.name: _state(r) for r in conn.execute(select(sources))}


def ensure_state(conn: Connection, name: str, config_url: str) -> SourceState:
    """The source's row, created (or reset, when config.toml names another URL) as needed."""
    current = get_state(conn, name)
    if current is None:
        conn.execute(insert(sources).values(name=name, config_url=config_url, url=config_url,
                                            entries_added=0, failures=0, stopped=False))
    elif current.config_url != config_url:
        # the operator pointed it elsewhere: a new start (and a 410 is forgotten)
        conn.execute(update(sources).where(sources.c.name == name).values(
            config_url=config_url, url=config_url, etag=None, last_modified=None,
            failures=0, not_before=None, stopped=False, last_error=None, last_status=None))
    else:
        return current
    state = get_state(conn, name)
    assert state is not None
    return state


def claim(conn: Connection, name: str, now: datetime, lease_until: datetime) -> bool:
    """Take the poll lease; False when a poll of this source is already in flight."""
    result = conn.execute(update(sources).where(
        sources.c.name == name,
        or_(sources.c.lease_until.is_(None), sources.c.lease_until < now))
        .values(lease_until=lease_until))
    return bool(result.rowcount)


def record(conn: Connection, name: str, **values: object) -> None:
    """Store the outcome of a poll (and give the lease back)."""
    conn.execute(update(sources).where(sources.c.name == name)
                 .values(lease_until=None, **values))


def add_entries_count(conn: Connection, name: str, added: int) -> None:
    conn.execute(update(sources).where(sources.c.name == name)
                 .values(entries_added=sources.c.entries_added + added))


def remember_entries(conn: Connection, name: str, entry_ids: list[str]) -> None:
    known = set(conn.execute(select(source_entries.c.entry_id)
                             .where(source_entries.c.source == name)).scalars())
    rows = [{"source": name, "entry_id": i} for i in dict.fromkeys(entry_ids) if i not in known]
    if rows:
        conn.execute(insert(source_entries), rows)


def entry_ids(conn: Connection, name: str) -> set[str]:
    return set(conn.execute(select(source_entries.c.entry_id)
                            .where(source_entries.c.source == name)).scalars())


def listed_elsewhere(conn: Connection, name: str, ids: set[str]) -> set[str]:
    """Which of ``ids`` another source than ``name`` still lists."""
    found: set[str] = set()
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):  # bounded IN lists on every backend
        found.update(conn.execute(select(source_entries.c.entry_id).where(
            source_entries.c.source != name,
            source_entries.c.entry_id.in_(ordered[start:start + 500]))).scalars())
    return found


def listing(conn: Connection, entry_id: str) -> list[str]:
    """The sources that list the entry ``entry_id``."""
    return sorted(conn.execute(select(source_entries.c.source).where(
        source_entries.c.entry_id == entry_id)).scalars())


def forget_validators(conn: Connection, names: list[str]) -> None:
    """Drop these sources' ETag and Last-Modified, so their next poll reads the whole
    document again instead of a 304."""
    if names:
        conn.execute(update(sources).where(sources.c.name.in_(names))
                     .values(etag=None, last_modified=None))


def series_of_entries(conn: Connection, name: str) -> str | None:
    """The series (slug) most of the entries source ``name`` gave are stored in."""
    row = conn.execute(
        select(series.c.slug, func.count().label("n"))
        .select_from(source_entries.join(entries, entries.c.id == source_entries.c.entry_id)
                     .join(series, series.c.id == entries.c.series_id))
        .where(source_entries.c.source == name)
        .group_by(series.c.slug).order_by(func.count().desc(), series.c.slug).limit(1)).first()
    return row.slug if row is not None else None


def series_by_entry(conn: Connection, ids: list[str]) -> dict[str, str]:
    """The series (slug) each stored entry among ``ids`` is in."""
    out: dict[str, str] = {}
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), 500):  # bounded IN lists on every backend
        out.update((str(i), str(slug)) for i, slug in conn.execute(
            select(entries.c.id, series.c.slug)
            .select_from(entries.join(series, series.c.id == entries.c.series_id))
            .where(entries.c.id.in_(ordered[start:start + 500]))))
    return out


def forget_entries(conn: Connection, name: str, ids: set[str]) -> None:
    if ids:
        conn.execute(delete(source_entries).where(source_entries.c.source == name,
                                                  source_entries.c.entry_id.in_(ids)))


@dataclass(frozen=True)
class PollRow:
    id: int
    source: str
    at: datetime
    result: str
    status: str | None
    added: int
    updated: int
    error: str | None


def record_poll(conn: Connection, name: str, *, at: datetime, result: str,
                status: str | None, added: int = 0, updated: int = 0,
                error: str | None = None, keep: int = KEEP_POLLS) -> None:
    """One row of the source's history, and the rows past the newest ``keep`` dropped in
    the same transaction (so the history never outgrows its bound, even for a moment)."""
    conn.execute(insert(source_polls).values(
        source=name, at=at, result=result, status=(status or "")[:64] or None,
        added=added, updated=updated, error=error))
    # the id of the oldest row to keep: ids grow with every insert, so "newest" is by id
    oldest_kept = conn.execute(
        select(source_polls.c.id).where(source_polls.c.source == name)
        .order_by(source_polls.c.id.desc()).offset(keep - 1).limit(1)).scalar()
    if oldest_kept is not None:
        conn.execute(delete(source_polls).where(source_polls.c.source == name,
                                                source_polls.c.id < oldest_kept))


def poll_history(conn: Connection, name: str, *, limit: int,
                 offset: int = 0) -> tuple[list[PollRow], int]:
    """The source's polls, newest first, and how many it has in all."""
    rows = conn.execute(select(source_polls).where(source_polls.c.source == name)
                        .order_by(source_polls.c.id.desc()).limit(limit).offset(offset))
    found = [PollRow(r.id, r.source, r.at, r.result, r.status, int(r.added),
                     int(r.updated), r.error) for r in rows]
    total = conn.execute(select(func.count()).select_from(source_polls)
                         .where(source_polls.c.source == name)).scalar_one()
    return found, int(total)

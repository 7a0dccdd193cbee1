"""Queries for the console's login state: its sessions and the wrong-password counts.

Both live in the store, not in a process, so every node agrees: a logout ends the session
wherever the next request lands, and five wrong passwords lock the client out of every
node at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from seriesfeed.store.tables import admin_login_failures, admin_sessions

__all__ = ["Failures", "Session", "add_failure", "clear_failures", "end_session", "failures",
           "get_session", "new_session", "prune"]


@dataclass(frozen=True)
class Session:
    id: str
    account: str
    created_at: datetime
    seen_at: datetime
    expires_at: datetime
    address: str | None
    ended_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.ended_at is None and now < self.expires_at


@dataclass(frozen=True)
class Failures:
    key: str
    failures: int
    first_at: datetime
    locked_until: datetime | None


def new_session(conn: Connection, *, id: str, account: str, now: datetime,
                expires_at: datetime, address: str | None) -> None:
    conn.execute(insert(admin_sessions).values(
        id=id, account=account, created_at=now, seen_at=now, expires_at=expires_at,
        address=address))


def get_session(conn: Connection, id: str) -> Session | None:
    row = conn.execute(select(admin_sessions).where(admin_sessions.c.id == id)).first()
    if row is None:
        return None
    return Session(row.id, row.account, row.created_at, row.seen_at, row.expires_at,
                   row.address, row.ended_at)


def end_session(conn: Connection, id: str, now: datetime) -> bool:
    done = conn.execute(update(admin_sessions).where(
        admin_sessions.c.id == id, admin_sessions.c.ended_at.is_(None)).values(ended_at=now))
    return bool(done.rowcount)


def failures(conn: Connection, keys: list[str]) -> dict[str, Failures]:
    rows = conn.execute(select(admin_login_failures).where(
        admin_login_failures.c.key.in_(keys)))
    return {r.key: Failures(r.key, r.failures, r.first_at, r.locked_until) for r in rows}


def add_failure(conn: Connection, key: str, now: datetime, *, window_start: datetime,
                limit: int, locked_until: datetime) -> Failures:
    """One more wrong password for ``key``: a count older than the window starts again;
    reaching ``limit`` locks the key until ``locked_until``."""
    row = failures(conn, [key]).get(key)
    if row is None or row.first_at < window_start:
        count, first = 1, now
    else:
        count, first = row.failures + 1, row.first_at
    lock = locked_until if count >= limit else None
    if row is None:
        conn.execute(insert(admin_login_failures).values(
            key=key, failures=count, first_at=first, locked_until=lock))
    else:
        conn.execute(update(admin_login_failures).where(admin_login_failures.c.key == key)
                     .values(failures=count, first_at=first, locked_until=lock))
    return Failures(key, count, first, lock)


def clear_failures(conn: Connection, key: str) -> None:
    conn.execute(delete(admin_login_failures).where(admin_login_failures.c.key == key))


def prune(conn: Connection, now: datetime, *, window_start: datetime) -> None:
    """Forget counts that can no longer lock anyone, and sessions long over."""
    conn.execute(delete(admin_login_failures).where(
        admin_login_failures.c.first_at < window_start,
        (admin_login_failures.c.locked_until.is_(None))
        | (admin_login_failures.c.locked_until < now)))
    conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at < window_start))

"""Queries for the audit trail (``admin_audit``): what an operator did, who, from where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from seriesfeed.store.tables import admin_audit

__all__ = ["AuditRow", "count", "insert_row", "page"]


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    account: str
    session: str | None
    address: str | None
    action: str
    target: str | None
    detail: str | None  # JSON text, as stored
    ok: bool


def insert_row(conn: Connection, *, at: datetime, account: str, session: str | None,
               address: str | None, action: str, target: str | None, detail: str | None,
               ok: bool) -> int:
    # the columns' lengths are the caller's to respect: PostgreSQL refuses longer values
    return int(conn.execute(insert(admin_audit).values(
        at=at, account=account, session=session, address=address, action=action,
        target=target, detail=detail, ok=ok).returning(admin_audit.c.id)).scalar_one())


def page(conn: Connection, *, limit: int, offset: int = 0,
         action: str | None = None) -> list[AuditRow]:
    """Newest first (by id: rows are inserted in time order, and an id never repeats)."""
    query = select(admin_audit)
    if action is not None:
        query = query.where(admin_audit.c.action == action)
    query = query.order_by(admin_audit.c.id.desc()).limit(limit).offset(offset)
    return [AuditRow(r.id, r.at, r.account, r.session, r.address, r.action, r.target,
                     r.detail, bool(r.ok)) for r in conn.execute(query)]


def count(conn: Connection, *, action: str | None = None) -> int:
    query = select(func.count()).select_from(admin_audit)
    if action is not None:
        query = query.where(admin_audit.c.action == action)
    return int(conn.execute(query).scalar_one())

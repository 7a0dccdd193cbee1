"""Queries for subscribers, the series they follow, suppressed (removed) addresses and the
rate-limit counters of the subscribe form."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from seriesfeed.errors import NotFoundError
from seriesfeed.models import Frequency, Start, Subscriber, SubscriberStatus
from seriesfeed.store import entries as eq
from seriesfeed.store.tables import (
    series,
    subscriber_series,
    subscribers,
    suppressions,
)

__all__ = [
    "Filters", "add", "confirm", "confirm_sent_at", "counts", "email_hash", "email_key",
    "get", "is_suppressed", "iterate", "lift_suppression", "record_of", "remove",
    "resubscribe", "search", "set_series", "suppression", "undo_unsubscribe", "unsubscribe",
    "unsubscribed_from", "update_fields",
]


def email_key(email: str) -> str:
    """One subscription per mailbox whatever the case typed (callers pass the address
    email-validator normalised)."""
    return email.strip().lower()


def email_hash(email: str) -> str:
    """What a removed address leaves behind: sha256 of its key, enough to refuse it again."""
    return hashlib.sha256(email_key(email).encode("utf-8")).hexdigest()


def _series_of(conn: Connection, ids: list[int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(subscriber_series.c.subscriber_id, series.c.slug)
            .join(series, series.c.id == subscriber_series.c.series_id)
            .where(subscriber_series.c.subscriber_id.in_(ids[start:start + 500]))
            .order_by(series.c.slug))
        for sid, slug in rows:
            out.setdefault(sid, []).append(slug)
    return {k: tuple(v) for k, v in out.items()}


def _model(row: Row[tuple[object, ...]], followed: tuple[str, ...]) -> Subscriber:
    m = row._mapping
    return Subscriber(
        id=m["id"], email=m["email"], name=m["name"], language=m["language"],
        frequency=Frequency(m["frequency"]), status=SubscriberStatus(m["status"]),
        series=followed, created_at=m["created_at"], confirmed_at=m["confirmed_at"],
        unsubscribed_at=m["unsubscribed_at"], consent_at=m["consent_at"],
        consent_ip=m["consent_ip"], consent_source=m["consent_source"], last_seq=m["last_seq"],
        start=Start(m["start"]))


def get(conn: Connection, *, email: str | None = None, id: int | None = None,
        for_update: bool = False) -> Subscriber | None:
    """By address (any case) or by id. ``for_update`` locks the row on PostgreSQL (SQLite's
    write transactions already hold the whole database)."""
    query = select(subscribers)
    query = query.where(subscribers.c.email_key == email_key(email)) if email is not None \
        else query.where(subscribers.c.id == id)
    if for_update and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    return _model(row, _series_of(conn, [row.id]).get(row.id, ()))


def confirm_sent_at(conn: Connection, subscriber_id: int) -> datetime | None:
    value = conn.execute(select(subscribers.c.confirm_sent_at)
                         .where(subscribers.c.id == subscriber_id)).scalar()
    return value if isinstance(value, datetime) else None


@dataclass(frozen=True)
class Filters:
    """Which subscribers a listing shows; None (or empty) is "any"."""

    search: str | None = None  # a substring of the address, in any case
    status: SubscriberStatus | None = None
    language: str | None = None
    frequency: Frequency | None = None

    def where(self) -> list[Any]:
        conds: list[Any] = []
        if self.search:
            # email_key is the lower-cased address; autoescape: % and _ match themselves
            conds.append(subscribers.c.email_key.contains(self.search.strip().lower(),
                                                          autoescape=True))
        if self.status is not None:
            conds.append(subscribers.c.status == self.status.value)
        if self.language:
            conds.append(subscribers.c.language == self.language)
        if self.frequency is not None:
            conds.append(subscribers.c.frequency == self.frequency.value)
        return conds


def iterate(conn: Connection, status: SubscriberStatus | None = None,
            batch: int = 1000, filters: Filters | None = None) -> Iterator[Subscriber]:
    """All subscribers (or those with ``status``, or matching ``filters``) by id, streamed
    in batches of ``batch`` (keyset pagination: memory stays flat however long the list)."""
    last = 0
    conds = (filters or Filters(status=status)).where()
    while True:
        query = select(subscribers).where(subscribers.c.id > last, *conds)
        rows = conn.execute(query.order_by(subscribers.c.id).limit(batch)).all()
        if not rows:
            return
        followed = _series_of(conn, [r.id for r in rows])
        for row in rows:
            yield _model(row, followed.get(row.id, ()))
        last = rows[-1].id


def is_suppressed(conn: Connection, email: str) -> bool:
    return conn.execute(select(suppressions.c.email_hash)
                        .where(suppressions.c.email_hash == email_hash(email))).first() is not None


def add(conn: Connection, sub: Subscriber, now: datetime) -> int | None:
    """Insert ``sub`` with its status; a confirmed one starts its digests from now. None
    when the address is stored already. On SQLite writers take turns (BEGIN IMMEDIATE), so
    a caller's look before is what is there. On PostgreSQL another writer may commit the
    same address between that look and this insert: the unique key waits for it and then
    refuses, inside a savepoint, and this transaction goes on (it now sees that row)."""
    if conn.dialect.name == "sqlite":
        sid = _insert(conn, sub, now)
    else:
        try:
            with conn.begin_nested():
                sid = _insert(conn, sub, now)
        except IntegrityError:
            if get(conn, email=sub.email) is None:  # another constraint: not ours to hide
                raise
            return None
    set_series(conn, sid, sub.series)
    return sid


def _insert(conn: Connection, sub: Subscriber, now: datetime) -> int:
    confirmed = sub.status is SubscriberStatus.CONFIRMED
    sid = conn.execute(insert(subscribers).values(
        email=sub.email, email_key=email_key(sub.email), name=sub.name, language=sub.language,
        frequency=sub.frequency.value, status=sub.status.value, created_at=now,
        confirmed_at=now if confirmed else None,
        unsubscribed_at=now if sub.status is SubscriberStatus.UNSUBSCRIBED else None,
        consent_at=sub.consent_at or now, consent_ip=sub.consent_ip,
        consent_source=sub.consent_source,
        last_seq=eq.max_seq(conn) if confirmed else 0, hard_bounces=0, start=sub.start.value,
    ).returning(subscribers.c.id)).scalar_one()
    return int(sid)


def set_series(conn: Connection, subscriber_id: int, slugs: tuple[str, ...]) -> None:
    """Follow exactly ``slugs`` (none: every series)."""
    conn.execute(delete(subscriber_series).where(
        subscriber_series.c.subscriber_id == subscriber_id))
    for slug in sorted(set(slugs)):
        sid = eq.series_id(conn, slug)
        if sid is None:
            raise NotFoundError(f"no series '{slug}'")
        conn.execute(insert(subscriber_series).values(subscriber_id=subscriber_id,
                                                      series_id=sid))


def update_fields(conn: Connection, subscriber_id: int, **values: object) -> None:
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))


def resubscribe(conn: Connection, subscriber_id: int, *, language: str, frequency: Frequency,
                series_slugs: tuple[str, ...], ip: str | None, source: str,
                now: datetime, start: Start = Start.NEW) -> None:
    """An unsubscribed person asked again: pending, with a fresh consent record. The
    unsubscribe's time stays (the confirmation limit reads it); its undo is gone."""
    update_fields(conn, subscriber_id, status=SubscriberStatus.PENDING.value,
                  language=language, frequency=frequency.value, consent_at=now,
                  consent_ip=ip, consent_source=source, unsubscribed_from=None,
                  start=start.value)
    set_series(conn, subscriber_id, series_slugs)


def confirm(conn: Connection, subscriber_id: int, now: datetime) -> None:
    """Confirmed from now on: the first digest holds entries stored after this moment."""
    update_fields(conn, subscriber_id, status=SubscriberStatus.CONFIRMED.value,
                  confirmed_at=now, unsubscribed_at=None, last_seq=eq.max_seq(conn))


def unsubscribe(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    """True when this call changed the status (False: it was unsubscribed already). The
    status it ended is kept for the undo (SET reads the row as it was)."""
    result = conn.execute(update(subscribers).where(
        subscribers.c.id == subscriber_id,
        subscribers.c.status != SubscriberStatus.UNSUBSCRIBED.value,
    ).values(status=SubscriberStatus.UNSUBSCRIBED.value, unsubscribed_at=now,
             unsubscribed_from=subscribers.c.status))
    return bool(result.rowcount)


def unsubscribed_from(conn: Connection, subscriber_id: int) -> SubscriberStatus | None:
    """The status the subscriber's standing unsubscribe ended, when an undo may put it back
    (confirmed or pending); None otherwise."""
    value = conn.execute(select(subscribers.c.unsubscribed_from).where(
        subscribers.c.id == subscriber_id,
        subscribers.c.status == SubscriberStatus.UNSUBSCRIBED.value)).scalar()
    if value in (SubscriberStatus.CONFIRMED.value, SubscriberStatus.PENDING.value):
        return SubscriberStatus(value)
    return None


def undo_unsubscribe(conn: Connection, subscriber_id: int, status: SubscriberStatus) -> None:
    """Back to ``status`` with language, frequency, series and cursor untouched (an
    unsubscribe changes none of them), so the next digest takes up where it stopped."""
    update_fields(conn, subscriber_id, status=status.value, unsubscribed_at=None,
                  unsubscribed_from=None)


def remove(conn: Connection, email: str, now: datetime, reason: str = "removed") -> Subscriber:
    """Erase the subscriber's personal data; keep a one-way hash so the address stays
    suppressed (an import or a form cannot bring it back)."""
    sub = get(conn, email=email)
    if sub is None:
        raise NotFoundError(f"no subscriber '{email}'")
    conn.execute(delete(subscriber_series).where(subscriber_series.c.subscriber_id == sub.id))
    conn.execute(delete(subscribers).where(subscribers.c.id == sub.id))
    if not is_suppressed(conn, email):
        conn.execute(insert(suppressions).values(email_hash=email_hash(email), reason=reason,
                                                 created_at=now))
    return sub


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(subscribers.c.status, func.count())
                        .group_by(subscribers.c.status))
    return {s: int(n) for s, n in rows}


def search(conn: Connection, filters: Filters, *, limit: int,
           offset: int = 0) -> tuple[list[Subscriber], int]:
    """One page of the subscribers matching ``filters`` (by id) and how many match in all."""
    conds = filters.where()
    rows = conn.execute(select(subscribers).where(*conds).order_by(subscribers.c.id)
                        .limit(limit).offset(offset)).all()
    followed = _series_of(conn, [r.id for r in rows])
    total = conn.execute(select(func.count()).select_from(subscribers)
                         .where(*conds)).scalar_one()
    return [_model(r, followed.get(r.id, ())) for r in rows], int(total)


def record_of(conn: Connection, subscriber_id: int) -> dict[str, Any] | None:
    """Every column the store keeps for one subscriber, as stored."""
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    return dict(row._mapping) if row is not None else None


def suppression(conn: Connection, email: str) -> tuple[str, datetime] | None:
    """(reason, since) when the address is suppressed."""
    row = conn.execute(select(suppressions.c.reason, suppressions.c.created_at)
                       .where(suppressions.c.email_hash == email_hash(email))).first()
    return (str(row.reason), row.created_at) if row is not None else None


def lift_suppression(conn: Connection, email: str) -> tuple[str, datetime] | None:
    """Delete the address's suppression; what it was (reason, since), None if none."""
    found = suppression(conn, email)
    if found is not None:
        conn.execute(delete(suppressions).where(suppressions.c.email_hash == email_hash(email)))
    return found

"""Queries for the outbox: claim due rows with a lease, then mark what happened to them.

Order (RELIABILITY invariant 1): claim and commit, then SMTP, then mark and commit — never a
transaction held across SMTP. On PostgreSQL claims use FOR UPDATE SKIP LOCKED, so several
senders share the outbox without claiming a row twice; a row found ``sending`` with an
expired lease (its sender crashed) is claimed again and re-sent with the same Message-ID.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, or_, select, update

from seriesfeed.models import OutboxKind, OutboxState, SubscriberStatus
from seriesfeed.store.tables import outbox, subscriber_series, subscribers

LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: OutboxKind
    digest_id: int | None
    subscriber_id: int | None
    recipient: str
    name: str | None
    language: str
    message_id: str
    from_seq: int
    to_seq: int
    attempts: int
    series_ids: tuple[int, ...]


@dataclass(frozen=True)
class Outcome:
    id: int
    subscriber_id: int | None
    state: OutboxState  # SENT, RETRY or FAILED as the sender saw it
    attempts: int
    error: str | None = None
    code: int | None = None
    uncertain: bool = False


def _due(now: datetime):  # type: ignore[no-untyped-def]
    return or_(outbox.c.state == OutboxState.QUEUED.value,
               and_(outbox.c.state == OutboxState.RETRY.value, outbox.c.next_at <= now),
               and_(outbox.c.state == OutboxState.SENDING.value, outbox.c.lease_until < now))


def _due_ids(conn: Connection, now: datetime, limit: int) -> list[int]:
    """The first ``limit`` due digest rows by id (the rows ``_due`` describes), read as four
    index ranges of at most ``limit`` rows each. One query with the OR made both SQLite and
    PostgreSQL collect and sort every due row on each claim: a send of 100,000 paid for
    its remaining rows 500 times over. ``queued`` rows have no ``next_at``, so the first
    range comes out of the (state, next_at) index already in id order."""
    kind = outbox.c.kind == OutboxKind.DIGEST.value
    ranges = [
        and_(outbox.c.state == OutboxState.QUEUED.value, outbox.c.next_at.is_(None)),
        and_(outbox.c.state == OutboxState.QUEUED.value, outbox.c.next_at.isnot(None)),
        and_(outbox.c.state == OutboxState.RETRY.value, outbox.c.next_at <= now),
        and_(outbox.c.state == OutboxState.SENDING.value, outbox.c.lease_until < now),
    ]
    ids: list[int] = []
    for where in ranges:
        query = select(outbox.c.id).where(where, kind).order_by(outbox.c.id).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=outbox)
        ids += (int(i) for i in conn.execute(query).scalars())
    return sorted(ids)[:limit]


def claim(conn: Connection, now: datetime, limit: int) -> list[Claimed]:
    ids = _due_ids(conn, now, limit)
    if not ids:
        return []
    rows = conn.execute(
        select(outbox, subscribers.c.status, subscribers.c.name, subscribers.c.language)
        .select_from(outbox.outerjoin(subscribers, subscribers.c.id == outbox.c.subscriber_id))
        .where(outbox.c.id.in_(ids)).order_by(outbox.c.id)).all()
    # the subscription is checked now, at claim time: an unsubscribe stops later sends
    gone = [r.id for r in rows if r.status != SubscriberStatus.CONFIRMED.value]
    if gone:
        conn.execute(update(outbox).where(outbox.c.id.in_(gone)).values(
            state=OutboxState.FAILED.value, last_error="not subscribed at send time",
            lease_until=None))
    live = [r for r in rows if r.status == SubscriberStatus.CONFIRMED.value]
    if not live:
        return []
    conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in live])).values(
        state=OutboxState.SENDING.value, attempts=outbox.c.attempts + 1,
        lease_until=now + LEASE))
    follows: dict[int, list[int]] = {}
    for sid, series_id in conn.execute(select(subscriber_series).where(
            subscriber_series.c.subscriber_id.in_([r.subscriber_id for r in live]))):
        follows.setdefault(sid, []).append(series_id)
    return [Claimed(r.id, OutboxKind(r.kind), r.digest_id, r.subscriber_id, r.recipient, r.name,
                    r.language, r.message_id, r.from_seq or 0, r.to_seq or 0, r.attempts + 1,
                    tuple(sorted(follows.get(r.subscriber_id, []))))
            for r in live]


def release_orphans(conn: Connection, now: datetime) -> int:
    """Rows left ``sending`` by a dead sender become due now (only the exclusive sender may
    call this: on SQLite, the holder of the sender lock)."""
    result = conn.execute(update(outbox).where(outbox.c.state == OutboxState.SENDING.value)
                          .values(lease_until=now))
    return int(result.rowcount)


def backoff(attempts: int, first: float = 60.0, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: ~first, 2×, 4× … seconds, capped at 6 hours."""
    base = min(first * 2 ** max(attempts - 1, 0), 6 * 3600)
    return timedelta(seconds=base * (rng or random).uniform(0.5, 1.5))


def mark(conn: Connection, outcomes: list[Outcome], now: datetime, *, max_attempts: int,
         bounce_limit: int, retry_seconds: float = 60.0) -> None:
    sent = [o.id for o in outcomes if o.state is OutboxState.SENT]
    if sent:
        conn.execute(update(outbox).where(outbox.c.id.in_(sent)).values(
            state=OutboxState.SENT.value, sent_at=now, lease_until=None))
    for o in outcomes:
        if o.state is OutboxState.SENT:
            continue
        final = o.state is OutboxState.FAILED or o.attempts >= max_attempts
        values: dict[str, object] = {
            "state": (OutboxState.FAILED if final else OutboxState.RETRY).value,
            "last_error": (o.error or "")[:1000], "smtp_code": o.code, "lease_until": None,
            "next_at": None if final else now + backoff(o.attempts, retry_seconds)}
        if o.uncertain:
            values["uncertain"] = True
        conn.execute(update(outbox).where(outbox.c.id == o.id).values(**values))
        if o.state is OutboxState.FAILED and o.subscriber_id is not None and o.code and \
                o.code >= 500:
            conn.execute(update(subscribers).where(subscribers.c.id == o.subscriber_id).values(
                hard_bounces=subscribers.c.hard_bounces + 1))
            conn.execute(update(subscribers).where(
                subscribers.c.id == o.subscriber_id,
                subscribers.c.hard_bounces >= bounce_limit).values(
                status=SubscriberStatus.BOUNCED.value))


def pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(outbox).where(
        outbox.c.state.in_([OutboxState.QUEUED.value, OutboxState.RETRY.value,
                            OutboxState.SENDING.value]))).scalar_one())

"""Grouped counts for the console's charts: every query groups in SQL by a time bucket,
so a chart costs one scan and returns at most buckets × series rows, never the rows
themselves.

Buckets are given as their edges (aware instants, ascending: bucket ``i`` is
``edges[i] <= t < edges[i + 1]``), computed by the caller in the site's zone; a CASE over
the edges puts each row in its bucket the same way on SQLite and PostgreSQL, whatever the
zone's offsets and DST (neither database needs to know the zone)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, select

from seriesfeed.store.tables import digests, outbox, source_polls, subscribers

__all__ = ["BEFORE", "bounce_counts", "message_counts", "poll_counts", "subscriber_groups"]

BEFORE = -1  # the bucket of a time before the first edge


def _bucket(column: Any, edges: Sequence[datetime]) -> ColumnElement[int]:
    """The bucket index of ``column``: BEFORE before the first edge, ``len(edges) - 1``
    when NULL or at/after the last edge."""
    n = len(edges) - 1
    whens: list[tuple[Any, int]] = [(column.is_(None), n), (column < edges[0], BEFORE)]
    whens += [(column < edges[i + 1], i) for i in range(n)]
    return case(*whens, else_=n)


def _grouped(conn: Connection, inner: Any) -> list[tuple[Any, ...]]:
    # grouped in an outer query by the inner one's labels: PostgreSQL does not see two
    # renderings of one CASE with bound edges as the same expression in GROUP BY
    sub = inner.subquery()
    cols = list(sub.c)
    rows = conn.execute(select(*cols, func.count()).group_by(*cols))
    return [tuple(r) for r in rows]


def message_counts(conn: Connection, edges: Sequence[datetime]) -> list[tuple[int, str, int]]:
    """(bucket, language, messages) of every message sent in the range, by ``sent_at``;
    the language is the digest's, else the subscriber's ("" when neither is left)."""
    inner = (select(_bucket(outbox.c.sent_at, edges).label("b"),
                    func.coalesce(digests.c.language, subscribers.c.language, literal(""))
                    .label("language"))
             .select_from(outbox.outerjoin(digests, digests.c.id == outbox.c.digest_id)
                          .outerjoin(subscribers, subscribers.c.id == outbox.c.subscriber_id))
             .where(outbox.c.sent_at >= edges[0], outbox.c.sent_at < edges[-1]))
    return [(int(b), str(lang), int(n)) for b, lang, n in _grouped(conn, inner)]


def bounce_counts(conn: Connection, edges: Sequence[datetime]) -> list[tuple[int, str, int]]:
    """(bucket, kind, messages) of the hard bounces and complaints recorded on messages
    (by ``bounced_at``: at send time, or when a report came back)."""
    inner = (select(_bucket(outbox.c.bounced_at, edges).label("b"),
                    outbox.c.bounce.label("kind"))
             .where(outbox.c.bounce.in_(["hard", "complaint"]),
                    outbox.c.bounced_at >= edges[0], outbox.c.bounced_at < edges[-1]))
    return [(int(b), str(kind), int(n)) for b, kind, n in _grouped(conn, inner)]


def poll_counts(conn: Connection, edges: Sequence[datetime],
                source: str | None = None) -> list[tuple[int, str, int]]:
    """(bucket, result, polls) from the sources' poll history."""
    inner = (select(_bucket(source_polls.c.at, edges).label("b"),
                    source_polls.c.result.label("result"))
             .where(source_polls.c.at >= edges[0], source_polls.c.at < edges[-1]))
    if source is not None:
        inner = inner.where(source_polls.c.source == source)
    return [(int(b), str(r), int(n)) for b, r, n in _grouped(conn, inner)]


def subscriber_groups(conn: Connection, edges: Sequence[datetime],
                      ) -> list[tuple[str, str, int, int, int, bool, int]]:
    """(language, status now, created bucket, confirmed bucket, unsubscribed bucket,
    unsubscribed after confirming, subscribers) of every subscriber created before the
    last edge: enough to tell each one's status at the end of every bucket."""
    c = subscribers.c
    after = case((and_(c.unsubscribed_at.isnot(None), c.confirmed_at.isnot(None),
                       c.unsubscribed_at >= c.confirmed_at), 1), else_=0)
    inner = (select(c.language.label("language"), c.status.label("status"),
                    _bucket(c.created_at, edges).label("cb"),
                    _bucket(c.confirmed_at, edges).label("fb"),
                    _bucket(c.unsubscribed_at, edges).label("ub"), after.label("ua"))
             .where(c.created_at < edges[-1]))
    return [(str(lang), str(status), int(cb), int(fb), int(ub), bool(ua), int(n))
            for lang, status, cb, fb, ub, ua, n in _grouped(conn, inner)]

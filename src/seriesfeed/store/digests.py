"""The digest queries: who is due, the cursor range, and recording one group's digest with
its outbox rows in the caller's transaction (an insert-from-select, one statement for every
recipient)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Connection,
    String,
    and_,
    cast,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    update,
)

from seriesfeed import crashpoints
from seriesfeed.models import Entry, Frequency, OutboxKind, OutboxState, Series, SubscriberStatus
from seriesfeed.store import entries as eq
from seriesfeed.store.tables import (
    digests,
    entries,
    held_entries,
    outbox,
    subscriber_series,
    subscribers,
)

__all__ = ["DigestContent", "RecordedDigest", "StoredDigest", "count_due", "digest_content",
           "get_digest", "list_digests", "lock_entries", "next_range", "queue_group",
           "record_group"]


@dataclass(frozen=True)
class StoredDigest:
    id: int
    language: str
    frequency: str
    period: str
    from_seq: int
    to_seq: int
    created_at: datetime


def get_digest(conn: Connection, digest_id: int) -> StoredDigest | None:
    row = conn.execute(select(digests).where(digests.c.id == digest_id)).first()
    return StoredDigest(**row._mapping) if row is not None else None


def list_digests(conn: Connection, language: str, limit: int = 200) -> list[StoredDigest]:
    """The language's digests that went to somebody, newest first."""
    sent = exists().where(outbox.c.digest_id == digests.c.id)
    rows = conn.execute(select(digests).where(digests.c.language == language, sent)
                        .order_by(digests.c.id.desc()).limit(limit))
    return [StoredDigest(**r._mapping) for r in rows]


@dataclass(frozen=True)
class RecordedDigest:
    id: int
    language: str
    frequency: Frequency
    period: str
    recipients: int
    to_seq: int
    fallback: bool  # the "original" digest fallback the recipients were chosen with


def _due(language: str, frequency: Frequency, upto: int):  # type: ignore[no-untyped-def]
    """Confirmed subscribers of the group whose cursor is behind ``upto``."""
    return and_(subscribers.c.status == SubscriberStatus.CONFIRMED.value,
                subscribers.c.language == language,
                subscribers.c.frequency == frequency.value,
                subscribers.c.last_seq < upto)


def _in_digest(language: str, fallback: bool):  # type: ignore[no-untyped-def]
    """An entry of the language; with the "original" digest fallback, also an original in
    another language that no entry of this one translates (``digest_content``)."""
    own = entries.c.language == language
    if not fallback:
        return own
    other = entries.alias("translation")
    translated = exists().where(other.c.translation_of == entries.c.seq,
                                other.c.language == language)
    return or_(own, and_(entries.c.translation_of.is_(None), not_(translated)))


def _has_news(language: str, upto: int, fallback: bool = False):  # type: ignore[no-untyped-def]
    """An entry of the language, after the subscriber's cursor, in a series they follow."""
    follows_none = not_(exists().where(subscriber_series.c.subscriber_id == subscribers.c.id))
    follows_it = exists().where(subscriber_series.c.subscriber_id == subscribers.c.id,
                                subscriber_series.c.series_id == entries.c.series_id)
    return exists().where(_in_digest(language, fallback),
                          entries.c.seq > subscribers.c.last_seq,
                          entries.c.seq <= upto, or_(follows_none, follows_it),
                          entries.c.seq.notin_(select(held_entries.c.entry_seq)))


def count_due(conn: Connection, language: str, frequency: Frequency,
              fallback: bool = False) -> int:
    upto = eq.max_seq(conn)
    return int(conn.execute(select(func.count()).select_from(subscribers).where(
        _due(language, frequency, upto), _has_news(language, upto, fallback))).scalar_one())


def next_range(conn: Connection, language: str, frequency: Frequency,
               fallback: bool = False) -> tuple[int, int] | None:
    """The cursor range of the largest digest the group would get now (from the furthest
    behind of its due subscribers), or None when nobody would get one."""
    upto = eq.max_seq(conn)
    lowest = conn.execute(select(func.min(subscribers.c.last_seq)).where(
        _due(language, frequency, upto), _has_news(language, upto, fallback))).scalar()
    return None if lowest is None else (int(lowest), upto)


def _period_free(conn: Connection, language: str, frequency: Frequency, period: str) -> bool:
    return conn.execute(select(digests.c.id).where(
        digests.c.language == language, digests.c.frequency == frequency.value,
        digests.c.period == period)).first() is None


def record_group(conn: Connection, language: str, frequency: Frequency, period: str,
                 now: datetime, fallback: bool = False, *,
                 scheduled: bool) -> RecordedDigest | None:
    """Record the group's digest for ``period`` (the schedule's slot); None when nobody in
    the group has news (their cursors move on) or the slot already has its digest. The
    caller queues its rows with ``queue_group`` in the same transaction: recording, rows
    and cursors commit together or not at all (invariant 2)."""
    upto = eq.max_seq(conn)
    due = _due(language, frequency, upto)
    news = _has_news(language, upto, fallback)
    recipients = int(conn.execute(select(func.count()).select_from(subscribers)
                                  .where(due, news)).scalar_one())
    if recipients == 0:
        # nothing of theirs among the new entries: move the cursors on all the same
        conn.execute(update(subscribers).where(due).values(last_seq=upto))
        return None
    if not _period_free(conn, language, frequency, period):
        if scheduled:
            return None  # this slot's digest exists: never two for one slot
        period = f"{period}+{upto}"
        if not _period_free(conn, language, frequency, period):
            return None
    from_seq = int(conn.execute(select(func.min(subscribers.c.last_seq)).where(due, news))
                   .scalar_one())
    digest_id = int(conn.execute(insert(digests).values(
        language=language, frequency=frequency.value, period=period, from_seq=from_seq,
        to_seq=upto, created_at=now).returning(digests.c.id)).scalar_one())
    crashpoints.hit("mid_record")
    return RecordedDigest(digest_id, language, frequency, period, recipients, upto, fallback)


def queue_group(conn: Connection, digest: RecordedDigest, now: datetime,
                message_id: tuple[str, str]) -> None:
    """Queue one outbox row per recipient of a digest ``record_group`` just recorded, in
    the same transaction (one insert-from-select), and move the group's cursors past it.
    The recipients are chosen with the fallback the digest was recorded with, so a cursor
    never moves past news that got no row. Each row's Message-ID is ``message_id``'s two
    ends around the subscriber's id."""
    due = _due(digest.language, digest.frequency, digest.to_seq)
    news = _has_news(digest.language, digest.to_seq, digest.fallback)
    prefix, suffix = message_id
    row_message_id = (literal(prefix, String) + cast(subscribers.c.id, String)
                      + literal(suffix, String))
    conn.execute(insert(outbox).from_select(
        ["kind", "digest_id", "subscriber_id", "recipient", "message_id", "from_seq", "to_seq",
         "state", "attempts", "uncertain", "created_at"],
        select(literal(OutboxKind.DIGEST.value, String), literal(digest.id),
               subscribers.c.id, subscribers.c.email, row_message_id, subscribers.c.last_seq,
               literal(digest.to_seq), literal(OutboxState.QUEUED.value, String), literal(0),
               literal(False), literal(now)).where(due, news).order_by(subscribers.c.id)))
    conn.execute(update(subscribers).where(due).values(last_seq=digest.to_seq))


def lock_entries(conn: Connection) -> None:
    """On PostgreSQL, entries inserted by transactions still open must not be skipped by a
    cursor: recording waits for them (SQLite's writer lock already serialises)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE entries IN SHARE ROW EXCLUSIVE MODE"))


@dataclass(frozen=True)
class DigestContent:
    """What one group's digest shows: its entries in digest order, every series by slug,
    and each entry's translations (language, url and that language's name) by entry id."""

    entries: list[Entry]
    series: dict[str, Series]
    translations: dict[str, list[dict[str, str]]]


def digest_content(conn: Connection, language: str, from_seq: int, to_seq: int,
                   series_ids: tuple[int, ...], *, originals: bool,
                   language_names: dict[str, str]) -> DigestContent:
    """The entries in (from_seq, to_seq] of a digest in ``language`` (of ``series_ids``
    only, when given): its own, and with ``originals`` (the "original" digest fallback),
    originals in other languages that have no translation into it. Translations are
    listed into the configured languages (``language_names``) only."""
    found = _digest_entries(conn, language, from_seq, to_seq, originals)
    all_series = {s.slug: s for s in eq.list_series(conn)}
    if series_ids:
        wanted = {slug for slug in all_series if eq.series_id(conn, slug) in series_ids}
        found = [e for e in found if e.series in wanted]
    return DigestContent(found, all_series, _translations(conn, found, language_names))


def _digest_entries(conn: Connection, language: str, from_seq: int, to_seq: int,
                    originals: bool) -> list[Entry]:
    if not originals:
        return eq.list_entries(conn, language=language, after_seq=from_seq, upto_seq=to_seq,
                               newest_first=False)
    found = eq.list_entries(conn, after_seq=from_seq, upto_seq=to_seq, newest_first=False)
    others = [e for e in found if e.language != language and e.translation_of is None]
    links = eq.translations_of(conn, [e.seq for e in others if e.seq is not None])
    translated = {seq for seq, linked in links.items()
                  if any(eq.get_entry(conn, str(o)).language == language for o in linked)}
    return [e for e in found if e.language == language
            or (e.translation_of is None and e.seq not in translated)]


def _translations(conn: Connection, found: list[Entry],
                  language_names: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    links = eq.translations_of(conn, [e.seq for e in found if e.seq is not None])
    out: dict[str, list[dict[str, str]]] = {}
    for e in found:
        for other_seq in links.get(e.seq or -1, []):
            other = eq.get_entry(conn, str(other_seq))
            if other.url and other.language in language_names and e.id:
                out.setdefault(e.id, []).append({
                    "language": other.language, "url": other.url,
                    "path": other.page_path or "", "name": language_names[other.language]})
    return out

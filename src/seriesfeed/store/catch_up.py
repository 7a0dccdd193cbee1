"""The catch-up queries: start a reader on part 1 of the series they follow, and record one
slot's back-catalogue parts as outbox rows in the caller's transaction (invariant 18).

A reader's cursor (``catch_ups.next_part``) moves in the transaction that queues the part's
outbox row, and each row's Message-ID is fixed per (reader, series, part): a crash before
the commit leaves neither, a crash after leaves both, so a part is never skipped; a re-run
of the slot finds ``last_period`` equal and adds nothing, and a row already queued under
that Message-ID is never queued twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from seriesfeed import crashpoints
from seriesfeed.models import Entry, Frequency, OutboxKind, OutboxState, SubscriberStatus
from seriesfeed.store import entries as eq
from seriesfeed.store.tables import (
    catch_ups,
    outbox,
    series,
    subscriber_series,
    subscribers,
)

__all__ = ["CatchUpRecorded", "begin", "catching_up", "parts_after", "pending_parts",
           "record_slot", "series_lengths", "stop"]


@dataclass(frozen=True)
class CatchUpRecorded:
    queued: int  # outbox rows (parts) queued in this slot
    finished: int  # readers whose back catalogue is now all queued


def begin(conn: Connection, subscriber_id: int, upto_seq: int) -> int:
    """Start the reader on part 1 of every series they follow (every series, when they
    follow none in particular) that has entries up to ``upto_seq``; how many series."""
    followed = [sid for (sid,) in conn.execute(select(subscriber_series.c.series_id).where(
        subscriber_series.c.subscriber_id == subscriber_id))]
    if not followed:
        followed = [sid for (sid,) in conn.execute(select(series.c.id))]
    stop(conn, subscriber_id)
    for sid in sorted(followed):
        conn.execute(insert(catch_ups).values(subscriber_id=subscriber_id, series_id=sid,
                                              next_part=1, upto_seq=upto_seq,
                                              last_period=None))
    return len(followed)


def catching_up(conn: Connection) -> set[int]:
    """The subscribers who still have back-catalogue parts to come."""
    return {int(sid) for (sid,) in conn.execute(
        select(catch_ups.c.subscriber_id).distinct())}


def series_lengths(conn: Connection) -> dict[str, int]:
    """slug -> how many parts the series has (published ones)."""
    out: dict[str, int] = {}
    for e in eq.list_entries(conn):
        if e.parts:
            out[e.series] = max(out.get(e.series, 0), e.parts)
    return out


def stop(conn: Connection, subscriber_id: int) -> None:
    """No more back-catalogue parts for the reader (they chose "only new parts")."""
    conn.execute(delete(catch_ups).where(catch_ups.c.subscriber_id == subscriber_id))


def _choose(found: list[Entry], language: str, originals: bool) -> dict[int, Entry]:
    """part -> the entry the reader gets for it: theirs, or with the "original" fallback
    the original when nobody translated that part into their language."""
    chosen: dict[int, Entry] = {}
    for e in found:
        if e.part is None:
            continue
        own = e.language == language
        if own or (originals and e.translation_of is None and e.part not in chosen):
            chosen[e.part] = e
    return chosen


def parts_after(conn: Connection, series_slug: str, language: str, originals: bool,
                part: int) -> int:
    """How many parts after ``part`` a reader of ``language`` gets from the series: theirs,
    and the originals nobody translated when the fallback sends originals."""
    found = eq.list_entries(conn, series_slug=series_slug, newest_first=False)
    return sum(1 for p in _choose(found, language, originals) if p > part)


def pending_parts(conn: Connection, subscriber_id: int, language: str,
                  originals: bool) -> list[tuple[str, int, Entry]]:
    """(series slug, part, entry) of every part still to send the reader, in order."""
    out: list[tuple[str, int, Entry]] = []
    rows = conn.execute(select(catch_ups, series.c.slug).join(
        series, series.c.id == catch_ups.c.series_id).where(
        catch_ups.c.subscriber_id == subscriber_id).order_by(catch_ups.c.series_id)).all()
    for row in rows:
        found = eq.list_entries(conn, series_slug=row.slug, upto_seq=row.upto_seq,
                                newest_first=False)
        chosen = _choose(found, language, originals)
        out += [(row.slug, part, chosen[part]) for part in sorted(chosen)
                if part >= row.next_part]
    return out


def record_slot(conn: Connection, frequency: Frequency, period: str, now: datetime, *,
                per_digest: int, originals: dict[str, bool],
                message_id: tuple[str, str]) -> CatchUpRecorded:
    """Queue this slot's parts for every confirmed reader of ``frequency`` catching up
    (``per_digest`` each per series), and move their cursors past them, in the caller's
    transaction. ``originals``: per language, whether the digest fallback is "original".
    Message-IDs are ``message_id``'s two ends around ``subscriber.series.part``."""
    prefix, suffix = message_id
    rows = conn.execute(
        select(catch_ups, subscribers.c.email, subscribers.c.language, series.c.slug)
        .join(subscribers, subscribers.c.id == catch_ups.c.subscriber_id)
        .join(series, series.c.id == catch_ups.c.series_id)
        .where(subscribers.c.status == SubscriberStatus.CONFIRMED.value,
               subscribers.c.frequency == frequency.value,
               (catch_ups.c.last_period.is_(None)) | (catch_ups.c.last_period != period))
        .order_by(catch_ups.c.subscriber_id, catch_ups.c.series_id)).all()
    queued = finished = 0
    cache: dict[tuple[str, int, str], dict[int, Entry]] = {}
    for row in rows:
        key = (row.slug, row.upto_seq, row.language)
        if key not in cache:
            found = eq.list_entries(conn, series_slug=row.slug, upto_seq=row.upto_seq,
                                    newest_first=False)
            cache[key] = _choose(found, row.language, originals.get(row.language, False))
        chosen = cache[key]
        parts = [p for p in sorted(chosen) if p >= row.next_part][:per_digest]
        for part in parts:
            entry = chosen[part]
            assert entry.seq is not None
            mid = f"{prefix}{row.subscriber_id}.{row.series_id}.{part}{suffix}"
            if conn.execute(select(outbox.c.id).where(outbox.c.message_id == mid)).first():
                continue  # queued by an earlier run whose cursor move this one repeats
            conn.execute(insert(outbox).values(
                kind=OutboxKind.CATCH_UP.value, subscriber_id=row.subscriber_id,
                recipient=row.email, message_id=mid, from_seq=entry.seq - 1,
                to_seq=entry.seq, state=OutboxState.QUEUED.value, attempts=0,
                uncertain=False, created_at=now))
            queued += 1
        crashpoints.hit("mid_catch_up")
        where = (catch_ups.c.subscriber_id == row.subscriber_id) & \
            (catch_ups.c.series_id == row.series_id)
        if not parts or not [p for p in chosen if p > parts[-1]]:
            # the whole back catalogue is queued: new parts come with the digests
            conn.execute(delete(catch_ups).where(where))
            finished += 1
        else:
            conn.execute(update(catch_ups).where(where).values(
                next_part=parts[-1] + 1, last_period=period))
    return CatchUpRecorded(queued, finished)

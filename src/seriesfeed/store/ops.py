"""Queries for operating a list: outbox rows and digests on the command line, operator
retries, the figures `status` (and so /metrics) reports, and the marks bounce and complaint
reports leave on rows and subscribers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, case, func, insert, select, update

from seriesfeed.errors import NotFoundError, ValidationError
from seriesfeed.models import OutboxState, Subscriber, SubscriberStatus
from seriesfeed.store.tables import digests, job_runs, outbox, subscribers, suppressions

__all__ = [
    "BounceResult", "DigestSummary", "OutboxRow", "count_outbox_of", "digest_summaries",
    "digests_by_language_frequency", "failed_ids", "get_outbox", "hard_bounce_counts",
    "has_rows",    "last_successes", "list_outbox", "mark_bounce", "newest_row_of", "oldest_due",
    "outbox_by_state_kind", "outbox_totals", "reset_hard_bounces", "restore_subscriber",
    "retry_failed", "subscribers_by_status_language", "suppression_reasons",
]


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    digest_id: int | None
    subscriber_id: int | None
    recipient: str
    message_id: str
    state: str
    attempts: int
    next_at: datetime | None
    uncertain: bool
    last_error: str | None
    smtp_code: int | None
    created_at: datetime
    sent_at: datetime | None
    note: str | None
    operator_retries: int
    bounce: str | None
    bounced_at: datetime | None


def _row(r: object) -> OutboxRow:
    m = r._mapping  # type: ignore[attr-defined]
    return OutboxRow(m["id"], m["kind"], m["digest_id"], m["subscriber_id"], m["recipient"],
                     m["message_id"], m["state"], m["attempts"], m["next_at"],
                     bool(m["uncertain"]), m["last_error"], m["smtp_code"], m["created_at"],
                     m["sent_at"], m["note"], int(m["operator_retries"] or 0), m["bounce"],
                     m["bounced_at"])


def list_outbox(conn: Connection, *, state: str | None = None, digest_id: int | None = None,
                email_key: str | None = None, limit: int | None = None,
                subscriber_id: int | None = None, newest_first: bool = False,
                offset: int = 0) -> list[OutboxRow]:
    query = select(outbox)
    if subscriber_id is not None:
        query = query.where(outbox.c.subscriber_id == subscriber_id)
    if state is not None:
        query = query.where(outbox.c.state == state)
    if digest_id is not None:
        query = query.where(outbox.c.digest_id == digest_id)
    if email_key is not None:
        query = query.where(func.lower(outbox.c.recipient) == email_key)
    query = query.order_by(outbox.c.id.desc() if newest_first else outbox.c.id)
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return [_row(r) for r in conn.execute(query)]


def count_outbox_of(conn: Connection, subscriber_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(outbox)
                            .where(outbox.c.subscriber_id == subscriber_id)).scalar_one())


def get_outbox(conn: Connection, row_id: int) -> OutboxRow | None:
    r = conn.execute(select(outbox).where(outbox.c.id == row_id)).first()
    return _row(r) if r is not None else None


def retry_failed(conn: Connection, ids: list[int] | None, *, digest_id: int | None,
                 now: datetime, check_only: bool = False, named: bool = True) -> list[int]:
    """Failed rows back to ``queued`` with the same Message-ID and a fresh set of attempts;
    the note of each row counts the operator's retries. ``ids`` None: every failed row
    (of ``digest_id`` when given). A named row that is missing or not failed is an error
    and nothing changes (the caller's transaction); ``named`` False: ``ids`` is a list the
    caller read as failed a moment ago, and a row another retry put back since is skipped.
    Returns the rows put back."""
    if ids is not None and named:
        for row_id in ids:
            row = get_outbox(conn, row_id)
            if row is None:
                raise NotFoundError(f"no outbox row {row_id}")
            if row.state != OutboxState.FAILED.value:
                raise ValidationError(f"outbox row {row_id} is {row.state}, not failed: only "
                                      "failed rows are retried", field="ID")
            if digest_id is not None and row.digest_id != digest_id:
                raise ValidationError(f"outbox row {row_id} is not of digest {digest_id}",
                                      field="ID")
        chosen = list(dict.fromkeys(ids))
        if check_only:  # the named rows are all retriable: the caller's other checks next
            return chosen
    elif ids is not None:
        chosen = list(dict.fromkeys(ids))
    else:
        query = select(outbox.c.id).where(outbox.c.state == OutboxState.FAILED.value)
        if digest_id is not None:
            query = query.where(outbox.c.digest_id == digest_id)
        chosen = [int(i) for i in conn.execute(query.order_by(outbox.c.id)).scalars()]
    done = []
    for row_id in chosen:
        row = get_outbox(conn, row_id)
        if row is None:  # gone since the caller read it (its digest was removed)
            continue
        n = row.operator_retries + 1
        note = f"operator retry {n} at {now.isoformat(timespec='seconds')} (was: " \
               f"{row.last_error or 'failed'})"
        # only while it is still failed: a second retry beside this one (PostgreSQL
        # re-reads the row after waiting for the first) must not reset a row that the
        # first put back and a drain has claimed since, or it would be sent twice
        if conn.execute(update(outbox).where(
                outbox.c.id == row_id, outbox.c.state == OutboxState.FAILED.value).values(
                state=OutboxState.QUEUED.value, attempts=0, next_at=None, lease_until=None,
                operator_retries=n, note=note[:1000])).rowcount:
            done.append(row_id)
    return done


def failed_ids(conn: Connection, digest_id: int | None = None) -> list[int]:
    """The failed rows (of ``digest_id`` when given), oldest first."""
    query = select(outbox.c.id).where(outbox.c.state == OutboxState.FAILED.value)
    if digest_id is not None:
        query = query.where(outbox.c.digest_id == digest_id)
    return [int(i) for i in conn.execute(query.order_by(outbox.c.id)).scalars()]


@dataclass(frozen=True)
class DigestSummary:
    id: int
    language: str
    frequency: str
    period: str
    from_seq: int
    to_seq: int
    created_at: datetime
    recipients: int
    sent: int
    failed: int
    pending: int
    first_sent_at: datetime | None
    last_sent_at: datetime | None


def digest_summaries(conn: Connection, digest_id: int | None = None) -> list[DigestSummary]:
    done = OutboxState.SENT.value
    failed = OutboxState.FAILED.value
    query = (select(digests,
                    func.count(outbox.c.id).label("recipients"),
                    func.coalesce(func.sum(case((outbox.c.state == done, 1), else_=0)), 0)
                    .label("sent"),
                    func.coalesce(func.sum(case((outbox.c.state == failed, 1), else_=0)), 0)
                    .label("failed"),
                    func.min(outbox.c.sent_at).label("first_sent_at"),
                    func.max(outbox.c.sent_at).label("last_sent_at"))
             .select_from(digests.outerjoin(outbox, outbox.c.digest_id == digests.c.id))
             .group_by(digests.c.id).order_by(digests.c.id))
    if digest_id is not None:
        query = query.where(digests.c.id == digest_id)
    out = []
    for r in conn.execute(query):
        m = r._mapping
        first, last = m["first_sent_at"], m["last_sent_at"]
        out.append(DigestSummary(
            m["id"], m["language"], m["frequency"], m["period"], m["from_seq"], m["to_seq"],
            m["created_at"], int(m["recipients"]), int(m["sent"]), int(m["failed"]),
            int(m["recipients"]) - int(m["sent"]) - int(m["failed"]),
            _aware(first), _aware(last)))
    return out


def _aware(value: object) -> datetime | None:
    # min()/max() over a UTCDateTime column come back without the type's processing
    if value is None:
        return None
    from datetime import UTC
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- the figures `status` reports (and /metrics exposes) ------------------------------------

def outbox_by_state_kind(conn: Connection) -> list[tuple[str, str, int]]:
    rows = conn.execute(select(outbox.c.state, outbox.c.kind, func.count())
                        .group_by(outbox.c.state, outbox.c.kind))
    return [(s, k, int(n)) for s, k, n in rows]


def outbox_totals(conn: Connection) -> dict[str, int]:
    """Totals over every row kept: messages sent, failed, uncertain, and retries (attempts
    after each row's first); they only grow while rows are kept."""
    r = conn.execute(select(
        # sent_at stays when a later bounce report fails the row: the count only grows
        func.coalesce(func.sum(case((outbox.c.sent_at.isnot(None), 1), else_=0)), 0),
        func.coalesce(func.sum(case((outbox.c.state == OutboxState.FAILED.value, 1),
                                    else_=0)), 0),
        func.coalesce(func.sum(case((outbox.c.uncertain.is_(True), 1), else_=0)), 0),
        func.coalesce(func.sum(case((outbox.c.attempts > 1, outbox.c.attempts - 1),
                                    else_=0)), 0),
        func.coalesce(func.sum(case((outbox.c.bounce == "hard", 1), else_=0)), 0),
        func.coalesce(func.sum(case((outbox.c.bounce == "complaint", 1), else_=0)), 0),
    )).one()
    return {"sent": int(r[0]), "failed": int(r[1]), "uncertain": int(r[2]),
            "retried": int(r[3]), "bounced": int(r[4]), "complaints": int(r[5])}


def digests_by_language_frequency(conn: Connection) -> list[tuple[str, str, int]]:
    rows = conn.execute(select(digests.c.language, digests.c.frequency, func.count())
                        .group_by(digests.c.language, digests.c.frequency))
    return [(lang, freq, int(n)) for lang, freq, n in rows]


def subscribers_by_status_language(conn: Connection) -> list[tuple[str, str, int]]:
    rows = conn.execute(select(subscribers.c.status, subscribers.c.language, func.count())
                        .group_by(subscribers.c.status, subscribers.c.language))
    return [(s, lang, int(n)) for s, lang, n in rows]


def last_successes(conn: Connection) -> dict[str, tuple[datetime, datetime | None]]:
    """Each job's newest successful run: (started, finished)."""
    newest = (select(job_runs.c.job, func.max(job_runs.c.id).label("id"))
              .where(job_runs.c.ok.is_(True)).group_by(job_runs.c.job).subquery())
    rows = conn.execute(select(job_runs).join(newest, newest.c.id == job_runs.c.id))
    return {r.job: (r.started_at, r.finished_at) for r in rows}


def oldest_due(conn: Connection) -> datetime | None:
    """When the oldest queued row was recorded (an outbox that does not move grows this)."""
    value = conn.execute(select(func.min(outbox.c.created_at))
                         .where(outbox.c.state == OutboxState.QUEUED.value)).scalar()
    return _aware(value)


def has_rows(conn: Connection) -> bool:
    return conn.execute(select(job_runs.c.id).limit(1)).first() is not None


# -- bounces and complaints -----------------------------------------------------------------

@dataclass(frozen=True)
class BounceResult:
    row_id: int
    subscriber_id: int | None
    changed: bool
    what: str


def mark_bounce(conn: Connection, row_id: int, kind: str, detail: str, now: datetime, *,
                bounce_limit: int, suppress_hash: str | None = None) -> BounceResult:
    """Record a report that came back after the relay's 250 on outbox row ``row_id``.

    ``hard``: the row fails and the subscriber's hard-bounce count grows (bounced at
    ``bounce_limit``, whatever the status, so an unsubscribed address cannot be undone back
    into the list); ``soft``: counted on the subscriber; ``complaint``: the subscriber is
    unsubscribed and the address suppressed at once (``suppress_hash`` is its hash). A row
    already marked with the same (or a stronger) report changes nothing, so processing the
    same mailbox twice counts once."""
    row = get_outbox(conn, row_id)
    if row is None:
        return BounceResult(row_id, None, False, "no such outbox row")
    rank = {None: 0, "soft": 1, "hard": 2, "complaint": 3}
    if rank[row.bounce] >= rank[kind]:
        return BounceResult(row_id, row.subscriber_id, False, f"already marked {row.bounce}")
    note = f"{kind} bounce at {now.isoformat(timespec='seconds')}: {detail}" \
        if kind != "complaint" else f"complaint at {now.isoformat(timespec='seconds')}"
    values: dict[str, object] = {"bounce": kind, "bounced_at": now, "note": note[:1000]}
    if kind == "hard":
        values.update(state=OutboxState.FAILED.value,
                      last_error=f"bounced after delivery: {detail}"[:1000])
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))
    sid = row.subscriber_id
    if sid is not None:
        if kind == "hard":
            conn.execute(update(subscribers).where(subscribers.c.id == sid).values(
                hard_bounces=subscribers.c.hard_bounces + 1))
            # whatever the status: a report on a digest sent before an unsubscribe still
            # says the mailbox is gone, and an undo must not bring the address back
            conn.execute(update(subscribers).where(
                subscribers.c.id == sid, subscribers.c.hard_bounces >= bounce_limit,
                subscribers.c.status != SubscriberStatus.BOUNCED.value).values(
                status=SubscriberStatus.BOUNCED.value))
        elif kind == "soft":
            conn.execute(update(subscribers).where(subscribers.c.id == sid).values(
                soft_bounces=subscribers.c.soft_bounces + 1))
        else:
            conn.execute(update(subscribers).where(
                subscribers.c.id == sid,
                subscribers.c.status != SubscriberStatus.UNSUBSCRIBED.value).values(
                status=SubscriberStatus.UNSUBSCRIBED.value, unsubscribed_at=now))
            if suppress_hash is not None and conn.execute(
                    select(suppressions.c.email_hash)
                    .where(suppressions.c.email_hash == suppress_hash)).first() is None:
                conn.execute(insert(suppressions).values(email_hash=suppress_hash,
                                                         reason="complaint", created_at=now))
    return BounceResult(row_id, sid, True, kind)


def reset_hard_bounces(conn: Connection, subscriber_ids: list[int]) -> None:
    """A delivery succeeded: the subscriber's hard-bounce count starts again from 0."""
    ids = sorted({i for i in subscriber_ids if i is not None})
    for start in range(0, len(ids), 500):
        conn.execute(_RESET_BOUNCES, {"ids": ids[start:start + 500]})


# run after every group of marks: built once, the ids an expanding parameter
_RESET_BOUNCES = update(subscribers).where(
    subscribers.c.id.in_(bindparam("ids", expanding=True)),
    subscribers.c.hard_bounces > 0).values(hard_bounces=0)


def suppression_reasons(conn: Connection) -> dict[str, str]:
    return {h: r for h, r in conn.execute(select(suppressions.c.email_hash,
                                                 suppressions.c.reason))}


# -- subscriber round trips -----------------------------------------------------------------

def restore_subscriber(conn: Connection, sub: Subscriber, now: datetime, *,
                       hard_bounces: int = 0, suppressed: str | None = None) -> int:
    """Insert an exported subscriber as it was: status, dates, consent record, series
    followed; a confirmed one starts its digests from now (the cursor is not exported);
    ``suppressed`` also keeps the address's suppression (a complaint, say)."""
    from seriesfeed.store import entries as eq
    from seriesfeed.store import subscribers as sq

    confirmed = sub.status is SubscriberStatus.CONFIRMED
    sid = int(conn.execute(insert(subscribers).values(
        email=sub.email, email_key=sq.email_key(sub.email), name=sub.name,
        language=sub.language, frequency=sub.frequency.value, status=sub.status.value,
        created_at=sub.created_at or now,
        confirmed_at=sub.confirmed_at or (now if confirmed else None),
        unsubscribed_at=sub.unsubscribed_at or (
            now if sub.status is SubscriberStatus.UNSUBSCRIBED else None),
        consent_at=sub.consent_at or now, consent_ip=sub.consent_ip,
        consent_source=sub.consent_source,
        last_seq=eq.max_seq(conn) if confirmed else 0, hard_bounces=hard_bounces,
        start=sub.start.value,
    ).returning(subscribers.c.id)).scalar_one())
    sq.set_series(conn, sid, sub.series)
    if suppressed and not sq.is_suppressed(conn, sub.email):
        conn.execute(insert(suppressions).values(email_hash=sq.email_hash(sub.email),
                                                 reason=suppressed, created_at=now))
    return sid


def hard_bounce_counts(conn: Connection) -> dict[int, int]:
    return {int(i): int(n) for i, n in conn.execute(
        select(subscribers.c.id, subscribers.c.hard_bounces)
        .where(subscribers.c.hard_bounces > 0))}


def newest_row_of(conn: Connection, subscriber_id: int) -> int | None:
    value = conn.execute(select(func.max(outbox.c.id))
                         .where(outbox.c.subscriber_id == subscriber_id)).scalar()
    return int(value) if value is not None else None

"""Queries for the outbox: claim due rows with a lease, then mark what happened to them.

Order (RELIABILITY invariant 1): claim and commit, then SMTP, then mark and commit — never a
transaction held across SMTP. On PostgreSQL claims use FOR UPDATE SKIP LOCKED, so several
senders share the outbox without claiming a row twice; a row found ``sending`` with an
expired lease (its sender crashed) is claimed again and re-sent with the same Message-ID.
A sender renews the leases of the rows it holds while they are in flight (invariant 12),
and hands back what it did not send when it stops.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from seriesfeed.models import OutboxKind, OutboxState, SubscriberStatus
from seriesfeed.store.ops import reset_hard_bounces
from seriesfeed.store.subscribers import email_hash
from seriesfeed.store.tables import outbox, subscriber_series, subscribers, suppressions

__all__ = [
    "LEASE",
    "RELAY_NOTE",
    "Claimed",
    "Outcome",
    "backoff",
    "claim",
    "detach_subscriber",
    "hand_back",
    "hurry",
    "is_bounce",
    "mark",
    "queue",
    "queued_since",
    "release_orphans",
    "renew",
    "retry_blockers",
    "waiting",
]

LEASE = timedelta(minutes=5)
RELAY_NOTE = " (the relay's or the configuration's problem: not counted against the subscriber)"


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
    confirm_sent_at: datetime | None = None  # what a confirmation link is bound to


@dataclass(frozen=True)
class Outcome:
    id: int
    subscriber_id: int | None
    state: OutboxState  # SENT, RETRY or FAILED as the sender saw it
    attempts: int
    error: str | None = None
    code: int | None = None
    uncertain: bool = False
    # the sender's problem (relay down, wrong password, refused MAIL FROM, the same refusal
    # for everyone): retried later, the attempt not counted, nothing against the subscriber
    sender_fault: bool = False
    bounce: bool = True  # a 5xx here counts against the subscriber (it names the address)


def _due(now: datetime):  # type: ignore[no-untyped-def]
    return or_(outbox.c.state == OutboxState.QUEUED.value,
               and_(outbox.c.state == OutboxState.RETRY.value, outbox.c.next_at <= now),
               and_(outbox.c.state == OutboxState.SENDING.value, outbox.c.lease_until < now))


def queue(conn: Connection, kind: OutboxKind, subscriber_id: int, recipient: str,
          message_id: str, now: datetime) -> None:
    """One message for one subscriber outside any digest (a confirmation, a welcome)."""
    conn.execute(insert(outbox).values(
        kind=kind.value, subscriber_id=subscriber_id, recipient=recipient,
        message_id=message_id, state=OutboxState.QUEUED.value, attempts=0, uncertain=False,
        created_at=now))


def waiting(conn: Connection, kind: OutboxKind, subscriber_id: int) -> set[OutboxState]:
    """The states of the subscriber's messages of ``kind`` still to be sent (queued,
    waiting to retry, or in flight); empty when none is."""
    return {OutboxState(s) for (s,) in conn.execute(select(outbox.c.state).where(
        outbox.c.kind == kind.value, outbox.c.subscriber_id == subscriber_id,
        outbox.c.state.in_([OutboxState.QUEUED.value, OutboxState.RETRY.value,
                            OutboxState.SENDING.value])).distinct())}


def queued_since(conn: Connection, kind: OutboxKind, subscriber_id: int,
                 since: datetime) -> bool:
    """Whether a message of ``kind`` was queued for the subscriber at or after ``since``."""
    return conn.execute(select(outbox.c.id).where(
        outbox.c.kind == kind.value, outbox.c.subscriber_id == subscriber_id,
        outbox.c.created_at >= since).limit(1)).first() is not None


def hurry(conn: Connection, kind: OutboxKind, subscriber_id: int, now: datetime) -> int:
    """Make a subscriber's waiting (retry) message of ``kind`` due now; how many."""
    return int(conn.execute(update(outbox).where(
        outbox.c.kind == kind.value, outbox.c.subscriber_id == subscriber_id,
        outbox.c.state == OutboxState.RETRY.value).values(next_at=now)).rowcount)


# the subscriber status a message kind is for: checked when the row is claimed
_WANTS = {OutboxKind.DIGEST: SubscriberStatus.CONFIRMED,
          OutboxKind.CONFIRM: SubscriberStatus.PENDING,
          OutboxKind.CATCH_UP: SubscriberStatus.CONFIRMED,
          OutboxKind.WELCOME: SubscriberStatus.CONFIRMED,
          OutboxKind.MANAGE: SubscriberStatus.CONFIRMED}


def retry_blockers(conn: Connection, ids: Collection[int]) -> dict[int, str]:
    """Why each of the rows ``ids`` must not be sent again (rows missing here may be):
    the subscriber was erased, is no longer in the status its kind of message is for
    (unsubscribed, bounced, or a confirmation for someone who confirmed meanwhile), or
    the address is suppressed. The claim checks the status again at send time; an
    operator's retry is told at once instead of failing again later."""
    out: dict[int, str] = {}
    for chunk in _chunks(sorted(set(ids))):
        rows = conn.execute(
            select(outbox.c.id, outbox.c.kind, outbox.c.recipient, outbox.c.subscriber_id,
                   subscribers.c.status)
            .select_from(outbox.outerjoin(subscribers,
                                          subscribers.c.id == outbox.c.subscriber_id))
            .where(outbox.c.id.in_(chunk))).all()
        hashes = {r.id: email_hash(r.recipient) for r in rows}
        suppressed = set(conn.execute(select(suppressions.c.email_hash).where(
            suppressions.c.email_hash.in_(sorted(set(hashes.values()))))).scalars()) \
            if hashes else set()
        for r in rows:
            if r.subscriber_id is None:
                out[r.id] = "the subscriber was erased"
            elif hashes[r.id] in suppressed:
                out[r.id] = "the address is suppressed"
            elif r.status != _WANTS[OutboxKind(r.kind)].value:
                out[r.id] = f"the subscriber is {r.status}"
    return out


@functools.lru_cache(maxsize=8)
def _due_queries(dialect: str, excluding: bool) -> tuple[Select[Any], ...]:
    """The four range queries of :func:`_due_rows`, built once per dialect (their values
    are parameters: now, the kinds, the limit and the rows this process holds)."""
    now = bindparam("now", type_=outbox.c.next_at.type)
    ranges = [
        and_(outbox.c.state == OutboxState.QUEUED.value, outbox.c.next_at.is_(None)),
        and_(outbox.c.state == OutboxState.QUEUED.value, outbox.c.next_at.isnot(None)),
        and_(outbox.c.state == OutboxState.RETRY.value, outbox.c.next_at <= now),
        and_(outbox.c.state == OutboxState.SENDING.value, outbox.c.lease_until < now),
    ]
    queries = []
    for where in ranges:
        query = select(outbox.c.id, outbox.c.attempts, outbox.c.kind).where(
            where, outbox.c.kind.in_(bindparam("kinds", expanding=True)))
        if excluding:
            query = query.where(outbox.c.id.not_in(bindparam("exclude", expanding=True)))
        query = query.order_by(outbox.c.id).limit(bindparam("limit", type_=Integer))
        if dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=outbox)
        queries.append(query)
    return tuple(queries)  # shared by every caller (cached): not to be changed


# The statements a send runs per batch and per group of marks, built once with their id
# lists as expanding parameters: built each time with the ids as literals, SQLAlchemy
# coerced every id and made a cache key of the list on every call, more CPU than SQLite
# spent running them (a third of the claim and of each mark)
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
# what a claimed row is sent with, in Claimed's order, then the subscriber's status (only
# these columns: every date column read is a parse per row)
_CLAIMED = (select(outbox.c.id, outbox.c.kind, outbox.c.digest_id, outbox.c.subscriber_id,
                   outbox.c.recipient, subscribers.c.name, subscribers.c.language,
                   outbox.c.message_id, outbox.c.from_seq, outbox.c.to_seq, outbox.c.attempts,
                   subscribers.c.confirm_sent_at, subscribers.c.status)
            .select_from(outbox.outerjoin(subscribers, subscribers.c.id == outbox.c.subscriber_id))
            .where(outbox.c.id.in_(_IDS)).order_by(outbox.c.id))
_TAKE = update(outbox).where(outbox.c.id.in_(_IDS)).values(
    state=OutboxState.SENDING.value, attempts=outbox.c.attempts + 1,
    lease_until=bindparam("until", type_=outbox.c.lease_until.type))
_FOLLOWS = select(subscriber_series.c.subscriber_id, subscriber_series.c.series_id).where(
    subscriber_series.c.subscriber_id.in_(_IDS))
_SENT = update(outbox).where(outbox.c.id.in_(_IDS)).values(
    state=OutboxState.SENT.value, sent_at=bindparam("now", type_=outbox.c.sent_at.type),
    lease_until=None)


def _due_rows(conn: Connection, now: datetime, limit: int, kinds: Collection[OutboxKind],
              exclude: Collection[int]) -> list[Row[Any]]:
    """The first ``limit`` due rows of ``kinds`` read as four index ranges of at most
    ``limit`` rows each (by id), confirmations first among those (a subscribe sends its
    confirmation at once by a drain of that kind alone, so it never waits behind a
    digest). One query with the OR made both SQLite and PostgreSQL collect and sort every
    due row on each claim: a send of 100,000 paid for its remaining rows 500 times over."""
    found: list[Row[Any]] = []  # rows of (id, attempts, kind)
    values = {"now": now, "kinds": [k.value for k in kinds], "limit": limit,
              "exclude": list(exclude)}
    for query in _due_queries(conn.dialect.name, bool(exclude)):
        found.extend(conn.execute(query, values).all())
    # a confirmation first: someone is waiting for it, while a digest is never urgent
    found.sort(key=lambda r: (r.kind != OutboxKind.CONFIRM.value, r.id))
    return found[:limit]


def claim(conn: Connection, now: datetime, limit: int, *, max_attempts: int | None = None,
          lease: timedelta = LEASE, exclude: Collection[int] = (),
          kinds: Collection[OutboxKind] = tuple(OutboxKind)) -> list[Claimed]:
    """Claim up to ``limit`` due rows of ``kinds`` for ``lease``. Rows in ``exclude`` (those
    this process already holds) are never claimed again, whatever their lease says; a due
    row that has used up ``max_attempts`` ends ``failed`` instead of being tried again."""
    found = _due_rows(conn, now, limit, kinds, exclude)
    if max_attempts is not None:
        spent = [int(r.id) for r in found if r.attempts >= max_attempts]
        if spent:
            conn.execute(update(outbox).where(outbox.c.id.in_(spent)).values(
                state=OutboxState.FAILED.value, lease_until=None, next_at=None,
                last_error=func.coalesce(outbox.c.last_error, "") +
                f" (gave up after {max_attempts} attempts)"))
        found = [r for r in found if r.attempts < max_attempts]
    ids = [int(r.id) for r in found]
    if not ids:
        return []
    rows = [tuple(r) for r in conn.execute(_CLAIMED, {"ids": ids})]
    # the subscription is checked now, at claim time: an unsubscribe stops later sends
    # (and a confirmation is not sent to someone who confirmed or left meanwhile)
    wants = {k.value: status.value for k, status in _WANTS.items()}
    live = [r for r in rows if r[-1] == wants.get(r[1])]
    gone = sorted({r[0] for r in rows} - {r[0] for r in live})
    if gone:
        conn.execute(update(outbox).where(outbox.c.id.in_(gone)).values(
            state=OutboxState.FAILED.value, last_error="not subscribed at send time",
            lease_until=None))
    if not live:
        return []
    conn.execute(_TAKE, {"ids": [r[0] for r in live], "until": now + lease})
    follows: dict[int, list[int]] = {}
    for sid, series_id in conn.execute(_FOLLOWS, {"ids": [r[3] for r in live]}):
        follows.setdefault(sid, []).append(series_id)
    by_value: dict[str, OutboxKind] = {str(k.value): k for k in OutboxKind}
    return [Claimed(row_id, by_value[kind], digest_id, subscriber_id, recipient, name, language,
                    message_id, from_seq or 0, to_seq or 0, attempts + 1,
                    tuple(sorted(follows.get(subscriber_id, ()))), confirm_sent_at)
            for (row_id, kind, digest_id, subscriber_id, recipient, name, language, message_id,
                 from_seq, to_seq, attempts, confirm_sent_at, _status) in live]


def renew(conn: Connection, ids: Collection[int], until: datetime) -> int:
    """Extend the lease of rows still in flight (only those still ``sending``)."""
    total = 0
    for chunk in _chunks(list(ids)):
        total += int(conn.execute(update(outbox).where(
            outbox.c.id.in_(chunk), outbox.c.state == OutboxState.SENDING.value)
            .values(lease_until=until)).rowcount)
    return total


def hand_back(conn: Connection, ids: Collection[int]) -> int:
    """Rows claimed but not sent (a stop, a pause): queued again, the attempt not counted,
    the same Message-ID."""
    total = 0
    for chunk in _chunks(list(ids)):
        total += int(conn.execute(update(outbox).where(
            outbox.c.id.in_(chunk), outbox.c.state == OutboxState.SENDING.value).values(
            state=OutboxState.QUEUED.value, lease_until=None,
            attempts=func.max(outbox.c.attempts - 1, 0) if conn.dialect.name == "sqlite"
            else func.greatest(outbox.c.attempts - 1, 0))).rowcount)
    return total


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


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
    """Record what the sender saw. Only a 5xx naming the recipient counts as a bounce, and a
    subscriber is marked bounced only after bounces on two different digests at least
    (invariant 11); a sender-side failure is not counted at all and gets no wait of its
    own: the relay's pause (one clock for every row, ``store.relay``) decides when it goes."""
    sent = [o.id for o in outcomes if o.state is OutboxState.SENT]
    if sent:
        conn.execute(_SENT, {"ids": sent, "now": now})
        # a successful delivery starts the hard-bounce count again
        reset_hard_bounces(conn, [o.subscriber_id for o in outcomes
                                  if o.state is OutboxState.SENT and o.subscriber_id])
    for o in outcomes:
        if o.state is OutboxState.SENT:
            continue
        values: dict[str, object]
        # a message perhaps delivered (lost after the dot) always counts its attempt, even
        # in a run the relay is blamed for: given back, it would go to the same person
        # again on every pass and never reach max_attempts (invariants 3 and 10)
        if o.sender_fault and not o.uncertain:
            values = {"state": OutboxState.RETRY.value, "lease_until": None,
                      "last_error": f"{o.error or ''}{RELAY_NOTE}"[:1000], "smtp_code": o.code,
                      "next_at": now,
                      "attempts": func.max(outbox.c.attempts - 1, 0)
                      if conn.dialect.name == "sqlite"
                      else func.greatest(outbox.c.attempts - 1, 0)}
            conn.execute(update(outbox).where(outbox.c.id == o.id).values(**values))
            continue
        final = o.state is OutboxState.FAILED or o.attempts >= max_attempts
        values = {
            "state": (OutboxState.FAILED if final else OutboxState.RETRY).value,
            "last_error": (o.error or "")[:1000], "smtp_code": o.code, "lease_until": None,
            "next_at": None if final else now + backoff(o.attempts, retry_seconds)}
        if o.uncertain:
            values["uncertain"] = True
        conn.execute(update(outbox).where(outbox.c.id == o.id).values(**values))
        if o.subscriber_id is None or not final:
            continue
        if is_bounce(o):
            conn.execute(update(outbox).where(outbox.c.id == o.id).values(
                bounce="hard", bounced_at=now))
            _count_bounce(conn, o.subscriber_id, bounce_limit)
        else:
            # a confirmation that surely never arrived (no attempt was lost after the dot),
            # through no fault of the address (a relay refusing everyone, an outage past
            # max_attempts): its day's slot is given back, so asking again once the relay
            # is fixed sends one
            conn.execute(update(subscribers).where(
                subscribers.c.id == o.subscriber_id,
                exists().where(outbox.c.id == o.id, outbox.c.kind == OutboxKind.CONFIRM.value,
                               outbox.c.uncertain.is_(False))).values(confirm_sent_at=None))


def is_bounce(o: Outcome) -> bool:
    """A permanent refusal that names the recipient: counted against the subscriber."""
    return o.state is OutboxState.FAILED and bool(o.code and o.code >= 500 and o.bounce)


def _count_bounce(conn: Connection, subscriber_id: int, bounce_limit: int) -> None:
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(
        hard_bounces=subscribers.c.hard_bounces + 1))
    digests_bounced = conn.execute(
        select(func.count(func.distinct(outbox.c.digest_id))).where(
            outbox.c.subscriber_id == subscriber_id, outbox.c.bounce == "hard")).scalar_one()
    if digests_bounced >= 2:
        conn.execute(update(subscribers).where(
            subscribers.c.id == subscriber_id,
            # whatever the status (an unsubscribe's undo must not restore a dead mailbox)
            subscribers.c.status != SubscriberStatus.BOUNCED.value,
            subscribers.c.hard_bounces >= bounce_limit).values(
            status=SubscriberStatus.BOUNCED.value))


def detach_subscriber(conn: Connection, subscriber_id: int | None) -> None:
    """An erased subscriber's queued and past messages no longer point at them."""
    conn.execute(update(outbox).where(outbox.c.subscriber_id == subscriber_id)
                 .values(subscriber_id=None))


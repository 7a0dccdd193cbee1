"""The outbox claim, row by row, on SQLite and PostgreSQL: which due rows it takes (every
range: queued, queued for later, retries due, expired leases; confirmations first; only
the kinds asked; never a row this process holds), what each claimed row carries (the
subscriber's name, language, series and confirmation time), and what it fails instead
(a subscriber no longer subscribed, a row past max_attempts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from seriesfeed.models import OutboxKind, OutboxState
from seriesfeed.store import Store
from seriesfeed.store import outbox as oq
from seriesfeed.store.tables import outbox, series, subscriber_series, subscribers

NOW = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _world(store: Store) -> dict[str, int]:
    """Subscribers and one outbox row per case; returns the row id of each case."""
    with store.write() as conn:
        conn.execute(insert(series), [{"id": 7, "slug": "s7", "created_at": NOW},
                                      {"id": 9, "slug": "s9", "created_at": NOW}])
        people = [("ann", "confirmed", "en", "Ann Lee", None),
                  ("bea", "confirmed", "es", None, None),
                  ("cai", "pending", "en", None, NOW - timedelta(hours=1)),
                  ("dan", "unsubscribed", "en", None, None)]
        ids = {}
        for name, status, lang, display, asked in people:
            ids[name] = conn.execute(insert(subscribers).values(
                email=f"{name}@example.org", email_key=f"{name}@example.org",
                language=lang, frequency="daily", status=status, created_at=NOW,
                confirmed_at=NOW if status == "confirmed" else None, last_seq=0,
                hard_bounces=0, name=display, confirm_sent_at=asked)).inserted_primary_key[0]
        conn.execute(insert(subscriber_series), [
            {"subscriber_id": ids["ann"], "series_id": 9},
            {"subscriber_id": ids["ann"], "series_id": 7}])
        cases = {
            "queued": ("ann", OutboxKind.DIGEST, OutboxState.QUEUED, None, None, 0),
            "queued-dated": ("bea", OutboxKind.DIGEST, OutboxState.QUEUED,
                             NOW + timedelta(hours=1), None, 0),
            "retry-due": ("ann", OutboxKind.MANAGE, OutboxState.RETRY,
                          NOW - timedelta(seconds=1), None, 1),
            "retry-later": ("ann", OutboxKind.WELCOME, OutboxState.RETRY,
                            NOW + timedelta(minutes=1), None, 1),
            "lease-expired": ("bea", OutboxKind.CATCH_UP, OutboxState.SENDING, None,
                              NOW - timedelta(seconds=1), 1),
            "lease-held": ("bea", OutboxKind.WELCOME, OutboxState.SENDING, None,
                           NOW + timedelta(minutes=1), 1),
            "confirm": ("cai", OutboxKind.CONFIRM, OutboxState.QUEUED, None, None, 0),
            "unsubscribed": ("dan", OutboxKind.DIGEST, OutboxState.QUEUED, None, None, 0),
            "spent": ("ann", OutboxKind.CATCH_UP, OutboxState.RETRY,
                      NOW - timedelta(seconds=1), None, 3),
            "held": ("ann", OutboxKind.MANAGE, OutboxState.QUEUED, None, None, 0),
            "sent": ("ann", OutboxKind.MANAGE, OutboxState.SENT, None, None, 1),
        }
        rows = {}
        for case, (who, kind, state, next_at, lease, attempts) in cases.items():
            rows[case] = conn.execute(insert(outbox).values(
                kind=kind.value, subscriber_id=ids[who], recipient=f"{who}@example.org",
                message_id=f"<{case}@example.org>", from_seq=3, to_seq=5, state=state.value,
                attempts=attempts, next_at=next_at, lease_until=lease,
                created_at=NOW)).inserted_primary_key[0]
    return rows


def test_the_claim_takes_exactly_the_due_rows_and_carries_what_they_are_sent_with(
        store: Store) -> None:
    rows = _world(store)
    with store.write() as conn:
        claimed = oq.claim(conn, NOW, 50, max_attempts=3, lease=LEASE,
                           exclude={rows["held"]}, kinds=tuple(OutboxKind))
    by_id = {r: case for case, r in rows.items()}
    # in id order (a queued row is due whatever its next_at); nothing held, later,
    # leased, spent or gone
    assert [by_id[c.id] for c in claimed] == ["queued", "queued-dated", "retry-due",
                                              "lease-expired", "confirm"]
    first = next(c for c in claimed if by_id[c.id] == "queued")
    assert (first.kind, first.recipient, first.name, first.language, first.series_ids,
            first.from_seq, first.to_seq, first.attempts, first.message_id) == (
        OutboxKind.DIGEST, "ann@example.org", "Ann Lee", "en", (7, 9), 3, 5, 1,
        "<queued@example.org>")
    confirm = next(c for c in claimed if by_id[c.id] == "confirm")
    assert confirm.confirm_sent_at == NOW - timedelta(hours=1) and confirm.name is None
    assert next(c for c in claimed if by_id[c.id] == "lease-expired").attempts == 2
    with store.read() as conn:
        state = {by_id[r.id]: (r.state, r.attempts, r.last_error) for r in conn.execute(
            select(outbox.c.id, outbox.c.state, outbox.c.attempts, outbox.c.last_error))}
        leases = {by_id[r.id]: r.lease_until for r in conn.execute(
            select(outbox.c.id, outbox.c.lease_until))}
    for case in ("confirm", "queued", "queued-dated", "retry-due", "lease-expired"):
        assert state[case][0] == "sending" and leases[case] == NOW + LEASE
    assert state["unsubscribed"][:2] == ("failed", 0)
    assert state["unsubscribed"][2] == "not subscribed at send time"
    assert state["spent"][0] == "failed" and "gave up after 3 attempts" in state["spent"][2]
    for case in ("retry-later", "held", "sent"):
        assert state[case][0] == {"retry-later": "retry", "held": "queued",
                                  "sent": "sent"}[case]
    assert state["lease-held"][0] == "sending"
    with store.write() as conn:  # what is left due: only the held row, and only unheld
        assert oq.claim(conn, NOW, 50, max_attempts=3, lease=LEASE,
                        exclude={rows["held"]}) == []
        again = oq.claim(conn, NOW, 50, max_attempts=3, lease=LEASE)
    assert [by_id[c.id] for c in again] == ["held"]


def test_the_claim_keeps_to_its_kinds_and_its_limit(store: Store) -> None:
    rows = _world(store)
    by_id = {r: case for case, r in rows.items()}
    with store.write() as conn:
        manage = oq.claim(conn, NOW, 50, max_attempts=3, lease=LEASE,
                          kinds=(OutboxKind.MANAGE,))
        two = oq.claim(conn, NOW, 2, max_attempts=3, lease=LEASE)
        rest = oq.claim(conn, NOW, 50, max_attempts=3, lease=LEASE)
    assert sorted(by_id[c.id] for c in manage) == ["held", "retry-due"]
    # each range offers its first rows by id (queued, confirm; queued-dated; retry-due;
    # lease-expired) and a confirmation among them goes first
    assert [by_id[c.id] for c in two] == ["queued", "confirm"]
    assert [by_id[c.id] for c in rest] == ["queued-dated", "lease-expired"]

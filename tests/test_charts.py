"""The dashboard's chart data: known rows at known times, exact counts per local day (or
week) in the site's zone (America/New_York, across the 2026 spring DST change), with the
empty days present, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from seriesfeed.actions import charts
from seriesfeed.config import Config
from seriesfeed.errors import ValidationError
from seriesfeed.store import Store
from seriesfeed.store import sources as sq
from seriesfeed.store.tables import digests, outbox, subscribers
from tests.conftest import CliResult

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tuesday; DST began on Sunday 8 March


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def _subscriber(conn: object, n: int, language: str, status: str, created: datetime,
                confirmed: datetime | None = None,
                unsubscribed: datetime | None = None) -> int:
    return int(conn.execute(insert(subscribers).values(  # type: ignore[attr-defined]
        email=f"s{n}@example.org", email_key=f"s{n}@example.org", language=language,
        frequency="daily", status=status, created_at=created, confirmed_at=confirmed,
        unsubscribed_at=unsubscribed, last_seq=0, hard_bounces=0, soft_bounces=0,
        start="new").returning(subscribers.c.id)).scalar_one())


def _message(conn: object, n: int, *, digest: int | None, sub: int | None,
             sent: datetime | None, bounce: str | None = None,
             bounced: datetime | None = None) -> None:
    conn.execute(insert(outbox).values(  # type: ignore[attr-defined]
        kind="digest" if digest else "confirm", digest_id=digest, subscriber_id=sub,
        recipient=f"r{n}@example.org", message_id=f"<m{n}@example.org>",
        state="sent" if sent else "queued", attempts=1, uncertain=False,
        created_at=utc(3, 1, 0), sent_at=sent, operator_retries=0, bounce=bounce,
        bounced_at=bounced))


def _digest(conn: object, language: str) -> int:
    return int(conn.execute(insert(digests).values(  # type: ignore[attr-defined]
        language=language, frequency="daily", period=f"p-{language}", from_seq=0, to_seq=1,
        created_at=utc(3, 1, 0)).returning(digests.c.id)).scalar_one())


def test_messages_per_day_by_language_in_the_sites_zone(store: Store, config: Config) -> None:
    assert config.site.time_zone == "America/New_York"
    with store.write() as conn:
        en, es = _digest(conn, "en"), _digest(conn, "es")
        reader = _subscriber(conn, 1, "es", "pending", utc(3, 1, 0))
        _message(conn, 1, digest=en, sub=None, sent=utc(3, 10, 4, 30))  # 00:30 EDT 10th
        _message(conn, 2, digest=en, sub=None, sent=utc(3, 10, 3, 30))  # 23:30 EDT 9th
        _message(conn, 3, digest=es, sub=None, sent=utc(3, 8, 5, 30))  # 00:30 EST 8th
        _message(conn, 4, digest=es, sub=None, sent=utc(3, 8, 4, 30))  # 23:30 EST 7th
        _message(conn, 5, digest=None, sub=reader, sent=utc(3, 6, 12))  # the reader's es
        _message(conn, 6, digest=en, sub=None, sent=utc(3, 6, 4))  # 23:00 EST 5th: before
        _message(conn, 7, digest=en, sub=None, sent=None)  # never sent
    chart = charts.messages_per_day(store, config, days=5, now=NOW)
    assert chart.unit == "day"
    assert chart.starts == [date(2026, 3, d) for d in range(6, 11)]
    assert chart.series == {"en": [0, 0, 0, 1, 1], "es": [1, 1, 1, 0, 0]}
    assert chart.to_json()["starts"][0] == "2026-03-06"
    empty = charts.messages_per_day(store, config, days=3, now=NOW + timedelta(days=30))
    assert empty.series == {"en": [0, 0, 0], "es": [0, 0, 0]}  # every day, even empty


def test_bounces_and_complaints_per_week(store: Store, config: Config) -> None:
    with store.write() as conn:
        en = _digest(conn, "en")
        _message(conn, 1, digest=en, sub=None, sent=utc(3, 9, 1), bounce="hard",
                 bounced=utc(3, 9, 4, 30))  # Monday 9th, 00:30 EDT: this week
        _message(conn, 2, digest=en, sub=None, sent=utc(3, 8, 1), bounce="complaint",
                 bounced=utc(3, 9, 3, 30))  # Sunday 8th, 23:30 EDT: last week
        _message(conn, 3, digest=en, sub=None, sent=utc(2, 25, 1), bounce="hard",
                 bounced=utc(2, 25, 12))
        _message(conn, 4, digest=en, sub=None, sent=utc(3, 9, 1), bounce="soft",
                 bounced=utc(3, 9, 12))  # not a hard bounce
        _message(conn, 5, digest=en, sub=None, sent=utc(2, 1, 1), bounce="hard",
                 bounced=utc(2, 1, 12))  # before the range
    chart = charts.bounces_per_week(store, config, weeks=3, now=NOW)
    assert chart.unit == "week"
    assert chart.starts == [date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9)]
    assert chart.series == {"hard": [1, 0, 1], "complaint": [0, 1, 0]}


def test_polls_per_day_by_result(store: Store, config: Config) -> None:
    with store.write() as conn:
        sq.record_poll(conn, "en", at=utc(3, 10, 4, 30), result="ok", status="200", added=3)
        sq.record_poll(conn, "en", at=utc(3, 10, 3, 30), result="error", status="500")
        sq.record_poll(conn, "en", at=utc(3, 8, 5, 30), result="unchanged", status="304")
        sq.record_poll(conn, "es", at=utc(3, 8, 6), result="unchanged", status="304")
    chart = charts.polls_per_day(store, config, days=5, now=NOW)
    assert chart.series == {"ok": [0, 0, 0, 0, 1], "partial": [0] * 5,
                            "unchanged": [0, 0, 2, 0, 0], "error": [0, 0, 0, 1, 0],
                            "gone": [0] * 5}
    only_es = charts.polls_per_day(store, config, days=5, now=NOW, source="es")
    assert only_es.series["unchanged"] == [0, 0, 1, 0, 0] and sum(only_es.series["ok"]) == 0


def test_subscribers_over_time_by_status_and_language(store: Store, config: Config) -> None:
    with store.write() as conn:
        _subscriber(conn, 1, "en", "confirmed", utc(3, 5, 12), utc(3, 5, 13))
        _subscriber(conn, 2, "en", "unsubscribed", utc(3, 7, 12), utc(3, 8, 15),
                    utc(3, 9, 15))
        _subscriber(conn, 3, "es", "pending", utc(3, 6, 12))
        _subscriber(conn, 4, "en", "bounced", utc(3, 6, 12), utc(3, 6, 13))
        _subscriber(conn, 5, "en", "confirmed", utc(3, 10, 14), utc(3, 10, 14))
        # confirmed and unsubscribed the same day, then asked again: pending now
        _subscriber(conn, 6, "en", "pending", utc(3, 7, 12), utc(3, 7, 13), utc(3, 7, 14))
        _subscriber(conn, 7, "en", "confirmed", utc(3, 11, 12), utc(3, 11, 12))  # future
    found = charts.subscribers_over_time(store, config, days=5, now=NOW)
    assert set(found) == {"en", "es"}
    assert found["en"].series == {"pending": [0, 1, 0, 0, 1], "confirmed": [2, 2, 3, 2, 2],
                                  "unsubscribed": [0, 1, 1, 2, 1], "bounced": [0, 0, 0, 0, 1]}
    assert found["es"].series == {"pending": [1, 1, 1, 1, 1], "confirmed": [0] * 5,
                                  "unsubscribed": [0] * 5, "bounced": [0] * 5}
    assert found["en"].starts[-1] == date(2026, 3, 10)


def test_ranges_are_bounded(store: Store, config: Config) -> None:
    with pytest.raises(ValidationError, match="days"):
        charts.messages_per_day(store, config, days=0)
    with pytest.raises(ValidationError, match="weeks"):
        charts.bounces_per_week(store, config, weeks=charts.MAX_WEEKS + 1)


def test_charts_command(store: Store, config_path: Path,
                        run_cli: Callable[..., CliResult]) -> None:
    with store.write() as conn:
        _subscriber(conn, 1, "es", "pending", datetime.now(UTC) - timedelta(days=3))
    out = run_cli("--config", config_path, "charts", "--days", "4", "--weeks", "2", "--json")
    assert out.code == 0, out
    data = json.loads(out.out)
    assert set(data) == {"messages_per_day", "bounces_per_week", "polls_per_day",
                         "subscribers_over_time"}
    assert data["messages_per_day"]["series"] == {"en": [0] * 4, "es": [0] * 4}
    assert len(data["bounces_per_week"]["starts"]) == 2
    assert data["subscribers_over_time"]["es"]["series"]["pending"][-1] == 1
    text = run_cli("--config", config_path, "charts", "--days", "4")
    assert text.code == 0 and "subscribers (es), per day from" in text.out
    assert "pending       0 1 1 1  (now 1)" in text.out or \
        "pending       1 1 1 1  (now 1)" in text.out
    assert run_cli("--config", config_path, "charts", "--days", "0").code == 2

"""The dashboard's chart data, read from the store (SQLite and PostgreSQL alike) in the
site's zone (``[site] time_zone``): messages sent per day by language, subscribers over
time by status and language, hard bounces and complaints per week, source polls per day
by result. Each chart is one grouped query (``store/charts.py``); every day (or week) of
the range is present, with zeros where nothing happened. Pure reads: nothing is written.

Subscribers over time are derived from each subscriber's dates (created, confirmed,
unsubscribed): the store keeps a subscriber's present state and when it last changed, not
every change, so a past day shows what those dates say. Erased subscribers are gone from
every day (erasure keeps no dates about a person); a bounced subscriber counts as bounced
on the last day only (the store keeps no time for it), and as the dates say before it; on
the last day every subscriber counts in their status now, so it agrees with ``status``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import ValidationError
from seriesfeed.models import CHART_MAX_DAYS, CHART_MAX_WEEKS, SubscriberStatus
from seriesfeed.store import Store
from seriesfeed.store import charts as chq

__all__ = [
    "MAX_DAYS", "MAX_WEEKS", "POLL_RESULTS", "Chart", "bounces_per_week", "messages_per_day",
    "polls_per_day", "subscribers_over_time",
]

MAX_DAYS = CHART_MAX_DAYS
MAX_WEEKS = CHART_MAX_WEEKS
POLL_RESULTS = ("ok", "partial", "unchanged", "error", "gone")  # actions.sources writes these
BOUNCE_KINDS = ("hard", "complaint")


@dataclass(frozen=True)
class Chart:
    """Counts per bucket: ``starts[i]`` is the local date bucket ``i`` begins (a day, or a
    week from Monday); every series has one count per bucket, oldest first."""

    unit: str  # "day" or "week"
    starts: list[date]
    series: dict[str, list[int]]

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "starts": [d.isoformat() for d in self.starts],
                "series": self.series}


def _check(n: int, most: int, field: str) -> None:
    if not 1 <= n <= most:
        raise ValidationError(f"must be between 1 and {most}", field=field)


def _edges(config: Config, starts: list[date], step: timedelta) -> list[datetime]:
    """Local midnight of every bucket's start, and of the day after the last bucket."""
    zone = config.zone
    days = [*starts, starts[-1] + step]
    return [datetime.combine(d, time(0), tzinfo=zone) for d in days]


def _days(config: Config, days: int, now: datetime | None) -> list[date]:
    today = (now or now_utc()).astimezone(config.zone).date()
    return [today - timedelta(days=days - 1 - i) for i in range(days)]


def _fill(starts: list[date], keys: list[str],
          counts: list[tuple[int, str, int]]) -> dict[str, list[int]]:
    series = {k: [0] * len(starts) for k in keys}
    for bucket, key, n in counts:
        if 0 <= bucket < len(starts):
            series.setdefault(key, [0] * len(starts))[bucket] += n
    return series


def messages_per_day(store: Store, config: Config, *, days: int = 30,
                     now: datetime | None = None) -> Chart:
    """Messages sent per local day (by send time) for the last ``days`` days, today
    included, one series per language (every configured one, and "" for messages whose
    digest and subscriber are both gone)."""
    _check(days, MAX_DAYS, "days")
    starts = _days(config, days, now)
    with store.read() as conn:
        counts = chq.message_counts(conn, _edges(config, starts, timedelta(days=1)))
    return Chart("day", starts, _fill(starts, list(config.languages), counts))


def bounces_per_week(store: Store, config: Config, *, weeks: int = 12,
                     now: datetime | None = None) -> Chart:
    """Hard bounces and complaints per week (Monday to Sunday, local), the current week
    last: series ``hard`` and ``complaint``, counted on the messages they came back on."""
    _check(weeks, MAX_WEEKS, "weeks")
    today = (now or now_utc()).astimezone(config.zone).date()
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    with store.read() as conn:
        counts = chq.bounce_counts(conn, _edges(config, starts, timedelta(weeks=1)))
    return Chart("week", starts, _fill(starts, list(BOUNCE_KINDS), counts))


def polls_per_day(store: Store, config: Config, *, days: int = 30, source: str | None = None,
                  now: datetime | None = None) -> Chart:
    """Source polls per local day by result (ok, partial, unchanged, error, gone), of
    every source or of ``source``; only polls that asked the source are recorded."""
    _check(days, MAX_DAYS, "days")
    starts = _days(config, days, now)
    with store.read() as conn:
        counts = chq.poll_counts(conn, _edges(config, starts, timedelta(days=1)), source)
    return Chart("day", starts, _fill(starts, list(POLL_RESULTS), counts))


def _state_at(day: int, cb: int, fb: int, ub: int, after: bool) -> str | None:
    """A subscriber's status at the end of bucket ``day`` from its dates' buckets."""
    if cb > day:
        return None  # not created yet
    confirmed, left = fb <= day, ub <= day
    if left and (not confirmed or ub > fb or (ub == fb and after)):
        return SubscriberStatus.UNSUBSCRIBED.value
    return SubscriberStatus.CONFIRMED.value if confirmed else SubscriberStatus.PENDING.value


def subscribers_over_time(store: Store, config: Config, *, days: int = 30,
                          now: datetime | None = None) -> dict[str, Chart]:
    """Subscribers at the end of each local day, by status, one chart per language (every
    configured one, and any other a subscriber has): see the module's note on what the
    store's dates can tell."""
    _check(days, MAX_DAYS, "days")
    starts = _days(config, days, now)
    statuses = [s.value for s in SubscriberStatus]
    with store.read() as conn:
        groups = chq.subscriber_groups(conn, _edges(config, starts, timedelta(days=1)))
    out = {lang: Chart("day", starts, {s: [0] * days for s in statuses})
           for lang in config.languages}
    last = days - 1
    for lang, status, cb, fb, ub, after, n in groups:
        chart = out.setdefault(lang, Chart("day", starts, {s: [0] * days for s in statuses}))
        for day in range(last):
            state = _state_at(day, cb, fb, ub, after)
            if state is not None:
                chart.series[state][day] += n
        chart.series.setdefault(status, [0] * days)[last] += n  # today: as it is now
    return out

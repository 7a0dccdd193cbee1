"""Schedules: the cron triggers every job runs on and the alarm clock that fires them (the
one module that imports APScheduler).

A trigger fires once per wall-clock time (see ``WallClockCronTrigger``); ``fire_times`` and
``previous_fire_time`` step through a schedule in UTC so a fold is never lost. The verbs use
these to say when a job runs next (``seriesfeed status``, a source's next poll); the daemon
shell hands the same triggers to its ``AlarmClock``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, TypeAlias

from apscheduler.triggers.cron import CronTrigger

from seriesfeed.config import Config
from seriesfeed.errors import ConfigError

__all__ = [
    "FIRE_LIMIT",
    "AlarmClock",
    "Trigger",
    "WallClockCronTrigger",
    "fire_times",
    "make_trigger",
    "next_fire",
    "previous_fire_time",
]

Trigger: TypeAlias = CronTrigger
Fire = Callable[..., Coroutine[Any, Any, None]]


class AlarmClock:
    """The daemon's alarm clock, by job name: fires coalesce, one instance per job, and a
    late fire is never dropped (whether a digest is due is the store's decision, not the
    clock's). The only user of APScheduler's scheduler API, so a new APScheduler changes
    this class, not the daemon."""

    def __init__(self, zone: tzinfo) -> None:
        # here, not at the top: `seriesfeed status` reads the triggers and never runs the
        # clock, whose scheduler brings the executors and tzlocal
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._clock = AsyncIOScheduler(timezone=zone, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})

    def on(self, name: str, trigger: Trigger, fire: Fire, *args: object) -> None:
        """``fire(*args)`` at each of ``trigger``'s times."""
        self._clock.add_job(fire, trigger, args=list(args), id=name)

    def every(self, name: str, seconds: float, fire: Fire, *args: object) -> None:
        self._clock.add_job(fire, "interval", seconds=seconds, args=list(args), id=name)

    def at(self, name: str, when: datetime | None, fire: Fire, *args: object) -> None:
        """``fire(*args)`` once at ``when``, replacing the job's earlier wake-up (None: no
        wake-up at all)."""
        if when is None:
            if self._clock.get_job(name) is not None:
                self._clock.remove_job(name)
            return
        self._clock.add_job(fire, "date", run_date=when, args=list(args), id=name,
                            replace_existing=True)

    def next_run(self, name: str) -> datetime | None:
        found = self._clock.get_job(name)
        when: datetime | None = found.next_run_time if found is not None else None
        return when

    def start(self) -> None:
        self._clock.start()

    def stop(self) -> None:
        self._clock.shutdown(wait=False)


def next_fire(trigger: Trigger, after: datetime) -> datetime | None:
    """The trigger's first time at or after ``after``."""
    fire: datetime | None = trigger.get_next_fire_time(None, after)
    return fire


class WallClockCronTrigger(CronTrigger):  # type: ignore[misc]
    """A cron trigger that fires once per wall-clock time.

    APScheduler 3.11's CronTrigger fires twice when the clock falls back and the time
    exists twice (02:30 on the night Europe/Madrid leaves summer time: fold 0, then
    fold 1): two daily digests on one local day. The second occurrence is skipped."""

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime | None:
        for _ in range(4):  # at most one skip per transition; bounded anyway
            fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
            if fire is None or not _second_occurrence(fire):
                return fire
            previous_fire_time = fire
            now = (fire.astimezone(UTC) + timedelta(microseconds=1)).astimezone(fire.tzinfo)
        return None


def _second_occurrence(moment: datetime) -> bool:
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def make_trigger(expression: str, config: Config, key: str) -> CronTrigger:
    """The trigger of ``expression``; ``key`` names it in errors: a ``[schedule]`` key
    ("daily"), or the full key of a source's ("sources.<name>.schedule")."""
    name = key if key.startswith("sources.") else f"schedule.{key}"
    fields = expression.split()
    try:
        if len(fields) == 6:  # a leading seconds field, for tests and tight schedules
            second, minute, hour, day, month, dow = fields
            return WallClockCronTrigger(second=second, minute=minute, hour=hour, day=day,
                                        month=month, day_of_week=dow, timezone=config.zone)
        minute, hour, day, month, dow = fields
        return WallClockCronTrigger(minute=minute, hour=hour, day=day, month=month,
                                    day_of_week=dow, timezone=config.zone)
    except ValueError as exc:
        raise ConfigError(f"{name}: '{expression}' is not a valid cron expression "
                          f"({exc})", key=name) from exc


FIRE_LIMIT = 10_000


def fire_times(trigger: CronTrigger, start: datetime, end: datetime,
               limit: int = FIRE_LIMIT) -> list[datetime]:
    """Every fire time in [start, end), bounded by ``limit``."""
    out: list[datetime] = []
    previous: datetime | None = None
    current = trigger.get_next_fire_time(None, start)
    while current is not None and current < end and len(out) < limit:
        out.append(current)
        previous = current
        # step in UTC: wall-clock arithmetic would drop ``fold`` and go back an hour
        after = (previous.astimezone(UTC) + timedelta(microseconds=1)).astimezone(
            previous.tzinfo)
        current = trigger.get_next_fire_time(previous, after)
    return out


def previous_fire_time(trigger: CronTrigger, now: datetime,
                       lookback: timedelta = timedelta(days=32)) -> datetime | None:
    """The latest fire time at or before ``now`` (within ``lookback``).

    Searched in widening windows: one window of 32 days holds more fires than ``fire_times``
    returns for a schedule of every minute (or every few seconds), and the last of a
    truncated list is weeks old."""
    end = now + timedelta(microseconds=1)
    for window in (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1),
                   timedelta(days=8), lookback):
        window = min(window, lookback)
        times = fire_times(trigger, now - window, end, limit=FIRE_LIMIT)
        if times and len(times) < FIRE_LIMIT:
            return times[-1]
        if window == lookback:
            break
    return None

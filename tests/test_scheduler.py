"""Schedules across daylight-saving changes, catch-up after downtime, the single-runner lock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from seriesfeed.config import Config
from seriesfeed.errors import ConfigError, LockError
from seriesfeed.scheduler import Daemon, Job
from seriesfeed.schedules import fire_times, make_trigger, previous_fire_time
from seriesfeed.store import Store
from seriesfeed.store import jobs as jq
from seriesfeed.store.locks import RunnerLock


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Madrid", "America/Mexico_City"])
@pytest.mark.parametrize("expression", ["0 7 * * *", "30 2 * * *", "0 1 * * *"])
def test_daily_schedule_fires_once_per_local_day_for_two_years(config: Config, zone: str,
                                                               expression: str) -> None:
    import dataclasses

    from seriesfeed.config import SiteConfig

    cfg = dataclasses.replace(config, site=dataclasses.replace(config.site, time_zone=zone))
    assert isinstance(cfg.site, SiteConfig)
    trigger = make_trigger(expression, cfg, "daily")
    tz = ZoneInfo(zone)
    start = datetime(2026, 1, 1, tzinfo=tz)
    end = datetime(2028, 1, 1, tzinfo=tz)
    fires = fire_times(trigger, start, end)
    per_day = Counter(f.astimezone(tz).date() for f in fires)
    days = (end.date() - start.date()).days
    assert len(per_day) == days, "a local day without a fire"
    assert max(per_day.values()) == 1, "a local day with two fires"
    # instants strictly increase (no repeated fire when the clock falls back)
    utc = [f.astimezone(UTC) for f in fires]
    assert utc == sorted(set(utc))


def test_new_york_dst_transitions_keep_local_time(config: Config) -> None:
    trigger = make_trigger("0 7 * * *", config, "daily")
    tz = ZoneInfo("America/New_York")
    spring = fire_times(trigger, datetime(2026, 3, 7, tzinfo=tz), datetime(2026, 3, 10, tzinfo=tz))
    fall = fire_times(trigger, datetime(2026, 10, 31, tzinfo=tz), datetime(2026, 11, 3, tzinfo=tz))
    assert [f.astimezone(tz).hour for f in spring + fall] == [7] * 6
    assert [f.utcoffset() for f in spring] == [timedelta(hours=-5), timedelta(hours=-4),
                                               timedelta(hours=-4)]
    assert [f.utcoffset() for f in fall] == [timedelta(hours=-4), timedelta(hours=-5),
                                             timedelta(hours=-5)]
    weekly = make_trigger("0 7 * * mon", config, "weekly")
    mondays = fire_times(weekly, datetime(2026, 1, 1, tzinfo=tz), datetime(2027, 1, 1, tzinfo=tz))
    assert len(mondays) == 52
    assert all(f.astimezone(tz).weekday() == 0 for f in mondays)


def test_previous_fire_time(config: Config) -> None:
    trigger = make_trigger("0 7 * * *", config, "daily")
    tz = config.zone
    now = datetime(2026, 11, 24, 9, 30, tzinfo=tz)
    assert previous_fire_time(trigger, now) == datetime(2026, 11, 24, 7, 0, tzinfo=tz)
    early = datetime(2026, 11, 24, 6, 59, tzinfo=tz)
    assert previous_fire_time(trigger, early) == datetime(2026, 11, 23, 7, 0, tzinfo=tz)


def test_bad_cron_expression_names_the_key(config: Config) -> None:
    with pytest.raises(ConfigError, match=r"schedule.daily: '61 7 \* \* \*'"):
        make_trigger("61 7 * * *", config, "daily")


def test_catch_up_runs_a_missed_slot_once(config: Config, store: Store) -> None:
    """Down across a due digest (and across three of them): one run at start, not three,
    and none when the latest slot already succeeded."""
    calls: list[str] = []

    def work(stopping: asyncio.Event) -> str:
        calls.append("ran")
        return "sent"

    job = Job("digest-daily", work, trigger=make_trigger("0 7 * * *", config, "daily"),
              catch_up=True)
    daemon = Daemon(config, store, [job])
    tz = config.zone
    now = datetime(2026, 11, 24, 9, 0, tzinfo=tz)
    assert daemon.due_at_start(job, now)  # never ran
    with store.write() as conn:
        run = jq.start_run(conn, "digest-daily", datetime(2026, 11, 21, 7, 0, tzinfo=tz))
        jq.finish_run(conn, run, datetime(2026, 11, 21, 7, 1, tzinfo=tz), True, "sent")
    assert daemon.due_at_start(job, now)  # three slots missed: due (once)
    asyncio.run(daemon.run_job(job))
    assert calls == ["ran"]
    assert not daemon.due_at_start(job, datetime.now(tz) + timedelta(minutes=1)) or \
        previous_fire_time(job.trigger, datetime.now(tz)) is None  # type: ignore[arg-type]
    with store.read() as conn:
        last = jq.last_runs(conn)["digest-daily"]
    assert last.ok is True and last.summary == "sent"


def test_a_failed_run_is_recorded_and_due_again(config: Config, store: Store) -> None:
    from seriesfeed.errors import StoreError

    def broken(stopping: asyncio.Event) -> str:
        raise StoreError("database unreachable")

    job = Job("digest-weekly", broken, trigger=make_trigger("0 7 * * mon", config, "weekly"),
              catch_up=True)
    daemon = Daemon(config, store, [job])
    asyncio.run(daemon.run_job(job))
    with store.read() as conn:
        last = jq.last_runs(conn)["digest-weekly"]
    assert last.ok is False and "database unreachable" in (last.summary or "")
    assert daemon.due_at_start(job, datetime.now(config.zone) + timedelta(days=8))


def test_second_lock_on_the_same_store_is_refused(store: Store) -> None:
    first = RunnerLock(store)
    first.acquire()
    try:
        with pytest.raises(LockError, match="another seriesfeed daemon"):
            RunnerLock(store).acquire()
    finally:
        first.release()
    again = RunnerLock(store)
    again.acquire()
    again.release()


def test_a_killed_holder_leaves_no_stale_lock(store: Store, tmp_path: Path) -> None:
    script = tmp_path / "hold.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from seriesfeed.store import Store
        from seriesfeed.store.locks import RunnerLock
        lock = RunnerLock(Store({store.url!r}))
        lock.acquire()
        print("held", flush=True)
        time.sleep(60)
    """), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockError):
            RunnerLock(store).acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while True:
            try:
                lock = RunnerLock(store)
                lock.acquire()
                lock.release()
                break
            except LockError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_fire_times_is_bounded(config: Config) -> None:
    trigger = make_trigger("* * * * * *", config, "feeds")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert len(fire_times(trigger, start, start + timedelta(days=1), limit=50)) == 50
    assert date(2026, 1, 1) == start.date()


@pytest.mark.parametrize("expression", ["* * * * *", "*/4 * * * * *", "0 7 * * *",
                                        "0 7 * * mon"])
def test_previous_fire_time_of_frequent_schedules_is_recent(config: Config,
                                                            expression: str) -> None:
    """A 32-day look-back holds 46,080 fires of an every-minute schedule: the latest one,
    not the 10,000th from the start of the window, is the previous fire."""
    trigger = make_trigger(expression, config, "daily")
    now = datetime(2026, 11, 24, 9, 30, 30, tzinfo=config.zone)
    slot = previous_fire_time(trigger, now)
    assert slot is not None and slot <= now
    nxt = trigger.get_next_fire_time(None, slot + timedelta(microseconds=1))
    assert nxt > now  # nothing fires between the previous fire and now

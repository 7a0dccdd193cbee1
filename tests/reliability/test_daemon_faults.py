"""Daemon-level fault tests of ../shared/RELIABILITY.md: F4 (SMTP down mid-send), F7 (a hung
server), F8 (one daemon per store), F10 (DST and clock steps), F11 (SIGTERM during a send),
F13 (one-click unsubscribes during a send)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from seriesfeed import actions, tokens
from seriesfeed.actions.digests import record_digests
from seriesfeed.config import Config
from seriesfeed.models import Frequency
from seriesfeed.schedules import fire_times, make_trigger
from seriesfeed.store import open_store
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer
from tests.harness.procs import Processes, seriesfeed_args
from tests.smtp_server import free_port


def _daemon(config: Config, procs: Processes | None = None) -> subprocess.Popen[str]:
    """``seriesfeed run`` in its own process group; reaped by ``procs`` when given (and by
    the reaper under every test in any case)."""
    assert config.path is not None
    args = seriesfeed_args(config.path, "run")
    kwargs: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
                              "text": True, "env": {**os.environ, "PYTHONUNBUFFERED": "1"}}
    if procs is not None:
        return procs.start(args, **kwargs)
    return subprocess.Popen(args, start_new_session=True, **kwargs)


def _healthz(port: int) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _daemon_world(make_config: Callable[..., Path], tmp_path: Path, smtp_port: int, n: int,
                  database_url: str | None = None, **extra: object) -> tuple[Config, int]:
    web_port = free_port()
    config = kill.world(make_config, smtp_port, n,
                        database_url or f"sqlite:///{tmp_path / 'd.sqlite3'}",
                        extra={"web": {"host": "127.0.0.1", "port": web_port,
                                       "base_url": "https://feeds.example.org"},
                               "schedule": {"feeds": "0 */6 * * *", "daily": "0 7 * * *",
                                            "weekly": "0 7 * * mon", "drain_seconds": 0.5,
                                            "watch_seconds": 0.3, "shutdown_timeout": 5},
                               **extra})
    return config, web_port


def _queue(config: Config) -> int:
    """Record the daily digest now (as the 07:00 job would), without sending it."""
    store = open_store(config.database.url, config.base_dir)
    try:
        recorded = record_digests(store, config, Frequency.DAILY, datetime.now(UTC),
                                  scheduled=False)
        return sum(r.recipients for r in recorded)
    finally:
        store.close()


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
@pytest.mark.catalogue("F8")
def test_one_daemon_per_store(make_config: Callable[..., Path], tmp_path: Path,
                              fault: Callable[..., FaultServer],
                              figures: Callable[..., None]) -> None:
    smtp = fault()
    config, web = _daemon_world(make_config, tmp_path, smtp.port, 0)
    # every daemon below is reaped (group killed, waited, pipes closed) on the way out,
    # whatever fails: a failure here used to leave ten daemons holding the store
    with Processes() as procs:
        first = _daemon(config, procs)
        _wait(lambda: _healthz(web)[0] == 200, 30, "the first daemon")
        started = time.monotonic()
        second = _daemon(config, procs)
        _, err = second.communicate(timeout=10)
        refused_in = time.monotonic() - started
        assert second.returncode != 0 and "is running on this store" in err, err
        assert refused_in < 2.0 + 1.5  # interpreter start-up is ~1 s of it
        # ten at once while the first still holds the lock: all ten refused
        crowd = [_daemon(config, procs) for _ in range(10)]
        codes = [p.wait(timeout=30) for p in crowd]
        assert all(c != 0 for c in codes) and first.poll() is None
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    # the SIGKILLed holder leaves no stale lock; then ten start at once and one remains
    with Processes() as procs:
        crowd = [_daemon(config, procs) for _ in range(10)]
        _wait(lambda: sum(p.poll() is not None for p in crowd) >= 9, 40, "nine to give up")
        time.sleep(1.0)
        alive = [p for p in crowd if p.poll() is None]
        assert len(alive) == 1, [p.returncode for p in crowd]
        _wait(lambda: _healthz(web)[0] == 200, 30, "the survivor to serve")
        code, err = _stop(alive[0])
        assert code == 0, err[-3000:]
    figures(**{"second refused within s": round(refused_in, 2), "of ten at once running": 1,
               "stale lock after SIGKILL": "none"})


@pytest.mark.catalogue("F10")
def test_dst_one_fire_per_local_day_and_a_clock_step_back_sends_nothing_twice(
        figures: Callable[..., None], make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    import dataclasses

    smtp = fault()
    world = kill.world(make_config, smtp.port, 50, f"sqlite:///{tmp_path / 'f10.sqlite3'}")
    config = world
    days_checked = 0
    for zone in ("America/New_York", "Europe/Madrid", "America/Mexico_City"):
        cfg = dataclasses.replace(config, site=dataclasses.replace(config.site, time_zone=zone))
        for expression in ("0 7 * * *", "30 2 * * *", "0 1 * * *"):
            tz = ZoneInfo(zone)
            start, end = datetime(2026, 1, 1, tzinfo=tz), datetime(2028, 1, 1, tzinfo=tz)
            fires = fire_times(make_trigger(expression, cfg, "daily"), start, end)
            per_day = Counter(f.astimezone(tz).date() for f in fires)
            assert len(per_day) == (end.date() - start.date()).days
            assert max(per_day.values()) == 1
            days_checked += len(per_day)
    # the wall clock steps back an hour after a scheduled send: the slot is taken
    store = open_store(world.database.url, world.base_dir)
    try:
        at = datetime(2026, 11, 1, 7, 0, tzinfo=ZoneInfo("America/New_York"))  # fall-back day
        first = record_digests(store, world, Frequency.DAILY, at, scheduled=True)
        actions.import_entries(store, world, _extra_entry(tmp_path))  # news arrives meanwhile
        again = record_digests(store, world, Frequency.DAILY, at - timedelta(hours=1),
                               scheduled=True)
        later = record_digests(store, world, Frequency.DAILY, at + timedelta(hours=3),
                               scheduled=True)
    finally:
        store.close()
    assert sum(d.recipients for d in first) == 50
    assert again == [] and later == []  # one digest per slot, whatever the clock says
    figures(**{"local days checked": days_checked, "days with 0 or 2 fires": 0,
               "digests after a 1 h step back": 0})


def _extra_entry(tmp_path: Path) -> Path:
    path = tmp_path / "extra.json"
    path.write_text('{"format": "seriesfeed/1", "series": [], "entries": [{"series": '
                    '"reflections-on-the-iso-crisis", "language": "en", "title": "Late news", '
                    '"summary": "s", "published": "2019-04-30T10:00:00-04:00", '
                    '"url": "https://e.example/late"}]}', encoding="utf-8")
    return path


@pytest.mark.catalogue("F4")
@pytest.mark.full
def test_smtp_down_mid_send_then_back(make_config: Callable[..., Path], tmp_path: Path,
                                      fault: Callable[..., FaultServer],
                                      figures: Callable[..., None]) -> None:
    n, down_s = 3000, 60
    smtp = fault(tarpit=0.002)
    config, web = _daemon_world(make_config, tmp_path, smtp.port, n,
                                mail={"retry_seconds": 2, "max_attempts": 12})
    queued = _queue(config)
    proc = _daemon(config)
    try:
        _wait(lambda: len(smtp.handler.deliveries()) > n // 10, 60, "the send to start")
        smtp.stop()
        stopped_at = time.monotonic()
        connections_before = smtp.handler.connections
        degraded = _wait(lambda: b'"degraded"' in _healthz(web)[1], 30, "healthz degraded")
        time.sleep(max(0.0, down_s - (time.monotonic() - stopped_at)))
        assert proc.poll() is None, "the daemon died while SMTP was down"
        smtp.restart()
        _wait(lambda: len(smtp.handler.deliveries()) >= n, 180, "all delivered")
        _wait(lambda: b'"up"' in _healthz(web)[1], 30, "healthz ok again")
    finally:
        code, err = _stop(proc)
    assert code == 0, err[-2000:]
    got = kill.account(smtp.handler.deliveries(), kill.recipients(n))
    states = kill.outbox_states(config)
    assert got.lost == 0 and states == {"sent": n} and queued == n
    figures(recipients=n, **{"down s": down_s, "permanent failures": 0, "lost": got.lost,
                             "duplicates": got.duplicates,
                             "healthz degraded after s": round(degraded, 1),
                             "connections after restart": smtp.handler.connections -
                             connections_before})


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
@pytest.mark.catalogue("F11")
def test_sigterm_during_a_send(make_config: Callable[..., Path], tmp_path: Path,
                               fault: Callable[..., FaultServer],
                               figures: Callable[..., None]) -> None:
    n = 2000
    smtp = fault(tarpit=0.01)
    config, _web = _daemon_world(make_config, tmp_path, smtp.port, n)
    _queue(config)
    proc = _daemon(config)
    _wait(lambda: len(smtp.handler.deliveries()) > 50, 60, "the send to start")
    started = time.monotonic()
    code, err = _stop(proc)
    took = time.monotonic() - started
    assert code == 0, err[-2000:]
    assert took < 10
    states = kill.outbox_states(config)
    assert "sending" not in states, states
    smtp.handler.tarpit = 0  # the rest only to count what arrived: no reason to crawl
    kill.drain(config)
    got = kill.account(smtp.handler.deliveries(), kill.recipients(n))
    assert got.lost == 0 and got.duplicates == 0
    figures(recipients=n, **{"exit code": code, "exit within s": round(took, 2),
                             "sending rows left": 0, "lost after restart": got.lost})


@pytest.mark.catalogue("F17")
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_sigterm_with_a_tarpit_relay_hands_rows_back(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], backend: str, request: pytest.FixtureRequest) -> None:
    """A relay that takes 1.5 s per message: at SIGTERM most claimed rows are still
    waiting for a connection. They are handed back queued (same Message-ID) before the
    exit, and the log carries no traceback."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    n = 60
    smtp = fault(tarpit=1.5)
    config, _web = _daemon_world(make_config, tmp_path, smtp.port, n, url)
    _queue(config)
    proc = _daemon(config)
    _wait(lambda: len(smtp.handler.deliveries()) >= 2, 60, "the send to start")
    started = time.monotonic()
    code, err = _stop(proc)
    took = time.monotonic() - started
    assert code == 0, err[-2000:]
    assert "Traceback" not in err and "CancelledError" not in err, err[-3000:]
    states = kill.outbox_states(config)
    assert "sending" not in states, states
    assert states.get("queued", 0) >= n // 2, states  # handed back, not left for a lease
    smtp.handler.tarpit = 0
    kill.drain(config)
    got = kill.account(smtp.handler.deliveries(), kill.recipients(n))
    assert got.lost == 0 and got.ids_consistent
    assert got.duplicates <= config.smtp.connections  # only what was in flight at the stop
    figures(**{"backend": backend, "recipients": n, "exit code": code,
               "exit within s": round(took, 2), "sending rows left": 0,
               "handed back": states.get("queued", 0), "lost after restart": got.lost,
               "duplicates": got.duplicates})


@pytest.mark.catalogue("F13")
def test_one_click_unsubscribes_during_a_send(make_config: Callable[..., Path], tmp_path: Path,
                                              fault: Callable[..., FaultServer],
                                              figures: Callable[..., None]) -> None:
    n = 1200
    smtp = fault(tarpit=0.01)
    config, web = _daemon_world(make_config, tmp_path, smtp.port, n)
    _queue(config)
    key = tokens.ensure_secret_key(config)
    victims = list(range(n - 400, n, 2))  # subscriber ids near the end of the queue
    proc = _daemon(config)
    committed: dict[str, float] = {}
    try:
        _wait(lambda: len(smtp.handler.deliveries()) > 20, 60, "the send to start")
        for sub_id in victims:
            path = tokens.unsubscribe_link(config, key, sub_id).split(".org", 1)[1]
            request = urllib.request.Request(f"http://127.0.0.1:{web}{path}",
                                             data=b"List-Unsubscribe=One-Click", method="POST",
                                             headers={"Content-Type":
                                                      "application/x-www-form-urlencoded"})
            with urllib.request.urlopen(request, timeout=10) as reply:
                assert reply.status == 200
            committed[f"r{sub_id - 1}@example.org"] = time.time()
        _wait(lambda: kill.outbox_states(config).keys() <= {"sent", "failed"}, 120,
              "the send to finish")
    finally:
        code, err = _stop(proc)
    assert code == 0, err[-2000:]
    batch = config.mail.batch_size  # what one claim takes (config.toml's [mail] batch_size)
    late = [d for d in smtp.handler.deliveries() for r in d.recipients
            if r in committed and d.at > committed[r]]
    # only rows already claimed when the unsubscribe committed may still go: one batch
    assert len(late) <= batch, f"{len(late)} mailed after their unsubscribe committed"
    never = sum(1 for a in committed if a not in
                {r for d in smtp.handler.deliveries() for r in d.recipients})
    figures(unsubscribes=len(victims), **{"mailed after commit (in flight)": len(late),
                                          "bound (one claimed batch)": batch,
                                          "not mailed": never})


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
@pytest.mark.catalogue("F7")
def test_a_hung_server_aborts_within_the_timeout(make_config: Callable[..., Path],
                                                 tmp_path: Path,
                                                 fault: Callable[..., FaultServer],
                                                 figures: Callable[..., None]) -> None:
    smtp = fault(tarpit=30)
    config = kill.world(make_config, smtp.port, 4, f"sqlite:///{tmp_path / 'f7.sqlite3'}",
                        extra={"mail": {"retry_seconds": 60, "max_attempts": 8}})
    import dataclasses

    config = dataclasses.replace(config, smtp=dataclasses.replace(config.smtp, timeout=2.0))
    store = open_store(config.database.url, config.base_dir)
    started = time.monotonic()
    try:
        summary = asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                                   scheduled=False))
    finally:
        store.close()
    took = time.monotonic() - started
    assert "4 to retry" in summary, summary
    assert took < 2.0 * 2 + 3, took  # each connection's attempt is bounded by the timeout
    states = kill.outbox_states(config)
    assert states == {"retry": 4}
    figures(**{"timeout s": 2.0, "send returned after s": round(took, 1), "rows to retry": 4})


@pytest.mark.catalogue("F9")
def test_down_three_periods_and_a_stall_at_fire_time(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None]) -> None:
    """The real digest job under the real scheduler, with second-scale periods: after three
    missed periods one catch-up digest; a 2 s stall of the event loop at a fire time delays
    the run, never drops or doubles it; each period records at most one digest."""
    from seriesfeed.scheduler import Daemon, Job
    from seriesfeed.store import jobs as jq

    smtp = fault()
    config = kill.world(make_config, smtp.port, 20, f"sqlite:///{tmp_path / 'f9.sqlite3'}")
    store = open_store(config.database.url, config.base_dir)
    period = 4  # seconds
    trigger = make_trigger(f"*/{period} * * * * *", config, "daily")
    runs: list[float] = []

    async def digest(stopping: asyncio.Event) -> str:
        runs.append(time.monotonic())
        return await actions.send_digests(store, config, frequency=Frequency.DAILY,
                                          stopping=stopping, scheduled=True)

    try:
        # start just after a fire time, so that the catch-up run and the next cron fire
        # are one period apart (starting 0.2 s before a fire would see both in 0.5 s)
        upcoming = trigger.get_next_fire_time(None, datetime.now(config.zone))
        assert upcoming is not None
        time.sleep(max(0.0, (upcoming - datetime.now(config.zone)).total_seconds()) + 0.1)
        now = datetime.now(config.zone)
        with store.write() as conn:  # the last success was three periods ago
            run = jq.start_run(conn, "digest-daily", now - timedelta(seconds=3 * period + 1))
            jq.finish_run(conn, run, now - timedelta(seconds=3 * period), True, "sent")
        job = Job("digest-daily", digest, trigger=trigger, catch_up=True)
        d = Daemon(config, store, [job])
        stalls: list[float] = []

        async def scenario() -> None:
            task = asyncio.create_task(d.run())
            await asyncio.sleep(0.5)
            caught_up = len(runs)
            # stall the loop across the next fire time
            nxt = trigger.get_next_fire_time(None, datetime.now(config.zone))
            assert nxt is not None
            await asyncio.sleep(max(0.0, (nxt - datetime.now(config.zone)).total_seconds()
                                    - 0.5))
            started = time.monotonic()
            time.sleep(2.0)  # the whole event loop is stuck
            stalls.append(started)
            await asyncio.sleep(1.5)
            d.stopping.set()
            await task
            assert caught_up == 1, runs

        asyncio.run(scenario())
        after_stall = [r for r in runs if r > stalls[0]]
        assert len(after_stall) == 1, runs  # the stalled fire ran once, late
        with store.read() as conn:
            from sqlalchemy import func, select

            from seriesfeed.store.tables import digests

            per_period = conn.execute(select(digests.c.period, func.count())
                                      .group_by(digests.c.period)).all()
    finally:
        store.close()
    assert all(c == 1 for _, c in per_period)
    delivered = kill.account(smtp.handler.deliveries(), kill.recipients(20))
    assert delivered.lost == 0 and delivered.duplicates == 0
    figures(**{"catch-up runs after 3 missed periods": 1, "runs for the stalled fire": 1,
               "late by s": round(after_stall[0] - stalls[0], 2),
               "digests per period max": max(c for _, c in per_period)})


def _sent_ids(config: Config) -> dict[str, str]:
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.read() as conn:
            from sqlalchemy import select

            from seriesfeed.store.tables import outbox

            return {str(m): str(s) for m, s in
                    conn.execute(select(outbox.c.message_id, outbox.c.state))}
    finally:
        store.close()


def _check_no_send_ahead(config: Config, smtp: FaultServer, n: int) -> kill.Accounting:
    """Every delivered Message-ID belongs to an outbox row that is marked sent."""
    rows = _sent_ids(config)
    delivered = smtp.handler.deliveries()
    assert all(rows.get(d.message_id) == "sent" for d in delivered)
    got = kill.account(delivered, kill.recipients(n))
    assert got.lost == 0 and got.ids_consistent
    from seriesfeed.actions.delivery import duplicate_bound

    assert got.duplicates <= duplicate_bound(config)
    return got


@pytest.mark.catalogue("F12")
def test_a_writer_holding_the_lock_pauses_sends_then_they_resume(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None]) -> None:
    import sqlite3

    n = 3000
    smtp = fault(tarpit=0.003, fsync=False, keep_messages=False)
    config, web = _daemon_world(make_config, tmp_path, smtp.port, n)
    _queue(config)
    proc = _daemon(config)
    try:
        _wait(lambda: len(smtp.handler.deliveries()) > 200, 60, "the send to start")
        holder = sqlite3.connect(config.database.url.removeprefix("sqlite:///"),
                                 isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        held_at = len(smtp.handler.deliveries())
        time.sleep(8)
        during = len(smtp.handler.deliveries()) - held_at
        health = _healthz(web)[0]
        holder.execute("ROLLBACK")
        holder.close()
        assert proc.poll() is None
        _wait(lambda: kill.outbox_states(config).keys() <= {"sent"}, 120, "the send to end")
    finally:
        code, err = _stop(proc)
    assert code == 0, err[-2000:]
    assert "database is locked" not in err
    got = _check_no_send_ahead(config, smtp, n)
    assert during <= 4 * 200  # at most the batches already claimed went out while held
    figures(part="writer holds the lock 8 s", **{
        "sent while held (already claimed)": during, "healthz while held": health,
        "lost": got.lost, "duplicates": got.duplicates, "'database is locked'": 0})


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill or make read-only "
                    f"({made.stderr.strip() or 'not root'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.catalogue("F12")
@pytest.mark.full
@pytest.mark.parametrize("fault_kind", ["disk full"])
def test_disk_full_or_read_only_store_mid_send(
        make_config: Callable[..., Path], tmp_path: Path, small_disk: Path,
        fault: Callable[..., FaultServer], figures: Callable[..., None],
        fault_kind: str) -> None:
    n = 3000
    smtp = fault(tarpit=0.003, fsync=False, keep_messages=False)
    web_port = free_port()
    config = kill.world(make_config, smtp.port, n, f"sqlite:///{small_disk / 'store.sqlite3'}",
                        extra={"web": {"host": "127.0.0.1", "port": web_port,
                                       "base_url": "https://feeds.example.org"},
                               "schedule": {"feeds": "0 */6 * * *", "daily": "0 7 * * *",
                                            "weekly": "0 7 * * mon", "drain_seconds": 0.5,
                                            "watch_seconds": 0.3, "shutdown_timeout": 5},
                               "mail": {"retry_seconds": 1, "max_attempts": 8}})
    _queue(config)
    proc = _daemon(config)
    filler = small_disk / "filler"
    try:
        _wait(lambda: len(smtp.handler.deliveries()) > 200, 60, "the send to start")
        if fault_kind == "disk full":
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        stalled_at = len(smtp.handler.deliveries())
        time.sleep(6)
        alive = proc.poll() is None
        health = _healthz(web_port)[0]
        sent_during = len(smtp.handler.deliveries()) - stalled_at
        if fault_kind == "disk full":
            filler.unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        assert alive, proc.communicate()[1][-2000:]
        try:
            _wait(lambda: kill.outbox_states(config).keys() <= {"sent"}, 180,
                  "the send to end")
        except AssertionError:
            raise AssertionError(f"stuck at {kill.outbox_states(config)}") from None
    finally:
        if filler.exists():
            filler.unlink()
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], capture_output=True)
        code, err = _stop(proc)
    assert code == 0, err[-2000:]
    assert "Traceback" not in err or "crashed" in err
    got = _check_no_send_ahead(config, smtp, n)
    figures(part=fault_kind, **{"daemon stayed up": alive, "healthz during": health,
                                "sent during fault (already claimed)": sent_during,
                                "lost": got.lost, "duplicates": got.duplicates})

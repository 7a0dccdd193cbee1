"""F19 (issue 11, item 5): a damaged or a newer store. A real SQLite file whose table pages
are overwritten, and a store whose schema revision this code does not know: every command
run as a subprocess prints one ``Error:`` line that says what is wrong and what to do, and
exits 1, never a traceback; ``seriesfeed check`` finds the damage; a daemon on a damaged
store says so on /healthz instead of "ok"."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from seriesfeed.actions.digests import record_digests
from seriesfeed.config import Config
from seriesfeed.errors import StoreDamagedError, StoreError
from seriesfeed.models import Frequency
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import series
from tests.conftest import EXAMPLE_JSON
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer
from tests.harness.procs import Processes, seriesfeed_args
from tests.smtp_server import free_port

SLUG = "reflections-on-the-iso-crisis"
COMMANDS = [("entries", "list"), ("feeds", "build"), ("digest", "send"),
            ("import", str(EXAMPLE_JSON)), ("status",)]


def _cli(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    assert config.path is not None
    return subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                           *args], capture_output=True, text=True, timeout=120)


def _world(make_config: Callable[..., Path], tmp_path: Path, smtp: FaultServer,
           url: str, **schedule: float) -> Config:
    web = free_port()
    config = kill.world(make_config, smtp.port, 30, url, extra={
        "web": {"host": "127.0.0.1", "port": web, "base_url": "https://feeds.example.org"},
        "schedule": {"feeds": "*/10 * * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
                     "drain_seconds": 0.5, "watch_seconds": 0.3, "shutdown_timeout": 5,
                     **schedule}})
    store = open_store(config.database.url, config.base_dir)
    try:  # a recorded digest, so the digests and outbox tables hold rows
        record_digests(store, config, Frequency.DAILY, datetime.now(UTC), scheduled=False)
    finally:
        store.close()
    return config


def _damage(config: Config, table: str) -> None:
    """Overwrite the root page of ``table`` (and the next one) with garbage, as a bad disk
    or a half-copied file would, after folding the WAL into the file."""
    path = config.database.url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE type='table' AND "
                            "name=?", (table,)).fetchone()[0]
    finally:
        conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write((b"\x05\xde\xad\xbe\xef" * page_size)[:page_size])
        f.flush()
        os.fsync(f.fileno())


def _one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.catalogue("F19")
@pytest.mark.parametrize("table", ["entries", "digests"])
def test_a_damaged_sqlite_store_gives_one_error_line(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], table: str) -> None:
    config = _world(make_config, tmp_path, fault(fsync=False), f"sqlite:///{tmp_path / 'd.db'}")
    healthy = _cli(config, "check")
    assert healthy.returncode == 0, healthy.stderr
    _damage(config, table)
    failed = 0
    for args in COMMANDS:
        result = _cli(config, *args)
        if args[0] == "status" or table == "digests":
            # these may not touch the damaged pages (status counts through indexes; sending
            # the queued outbox and recording through the unique index never read a
            # digests page): they may succeed, they must not crash, and `check` finds it
            assert "Traceback" not in result.stderr, (args, result.stderr[-3000:])
            if result.returncode != 0:
                _one_error_line(result, "damaged")
            continue
        _one_error_line(result, "damaged", "backup", "seriesfeed check")
        failed += 1
    check = _cli(config, "check")
    line = _one_error_line(check, "damaged", "backup")
    assert "integrity" in (check.stdout + line).lower()
    figures(part=f"{table} page overwritten", **{"commands with one Error line": failed,
                                                 "tracebacks": 0, "check exit": 1})


@pytest.mark.catalogue("F19")
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql",
                                                             marks=pytest.mark.postgres)])
def test_a_newer_store_asks_for_an_upgrade(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], database: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url") if database == "postgresql" else \
        f"sqlite:///{tmp_path / 'n.db'}"
    config = _world(make_config, tmp_path, fault(fsync=False), url)
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.write() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
        for args in [*COMMANDS, ("init",), ("check",)]:
            _one_error_line(_cli(config, *args), "0099_from_the_future", "newer",
                            "upgrade seriesfeed")
    finally:
        with store.write() as conn:  # the session's PostgreSQL database is shared
            conn.execute(text("UPDATE alembic_version SET version_num = :head"),
                         {"head": store.head_revision()})
        store.close()
    figures(part=database, **{"commands with one Error line": len(COMMANDS) + 2,
                              "tracebacks": 0})


@pytest.mark.catalogue("F19")
@pytest.mark.postgres
def test_check_on_postgresql(make_config: Callable[..., Path], tmp_path: Path, pg_url: str,
                             fault: Callable[..., FaultServer]) -> None:
    config = _world(make_config, tmp_path, fault(fsync=False), pg_url)
    ok = _cli(config, "check")
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.write() as conn:
            conn.execute(text("ALTER TABLE job_runs RENAME TO job_runs_moved"))
        bad = _cli(config, "check")
        _one_error_line(bad, "job_runs")
    finally:
        with store.write() as conn:
            conn.execute(text("ALTER TABLE job_runs_moved RENAME TO job_runs"))
        store.close()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.mark.catalogue("F19")
def test_healthz_reports_a_damaged_store(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], procs: Processes) -> None:
    config = _world(make_config, tmp_path, fault(fsync=False), f"sqlite:///{tmp_path / 'h.db'}")
    _damage(config, "entries")
    assert config.path is not None
    proc = procs.start(seriesfeed_args(config.path, "run"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = config.public_url.replace("https://feeds.example.org",
                                     f"http://127.0.0.1:{config.web.port}")
    try:
        deadline = time.monotonic() + 30
        while _get(f"{base}/healthz")[0] == 0:
            assert proc.poll() is None and time.monotonic() < deadline, "no daemon"
            time.sleep(0.2)
        feed_status, feed_body = _get(f"{base}/feeds/en/{SLUG}/atom.xml")
        status, body = _get(f"{base}/healthz")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert feed_status == 503, feed_status
    assert str(tmp_path).encode() not in feed_body and b"malformed" not in feed_body
    health = json.loads(body)
    assert status == 503 and health["status"] == "down", health
    assert any("damaged" in p for p in health["reasons"]), health
    assert str(tmp_path) not in body.decode()
    figures(part="daemon on a damaged entries page", **{
        "feed GET": feed_status, "/healthz": f"{status} {health['status']}",
        "problems reported": len(health["reasons"])})


def _first_health(config: Config, proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    """The first /healthz answer of the server in ``proc`` (no other request before it)."""
    deadline = time.monotonic() + 60
    while True:
        status, body = _get(f"http://127.0.0.1:{config.web.port}/healthz")
        if status:
            return status, json.loads(body)
        assert proc.poll() is None and time.monotonic() < deadline, "no server"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return str(err)


@pytest.mark.catalogue("F19")
@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_damaged_store_is_down_from_start(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], procs: Processes, command: str) -> None:
    """The first /healthz, before any request has met the damage, says ``down`` and why,
    and the log says it too."""
    config = _world(make_config, tmp_path, fault(fsync=False), f"sqlite:///{tmp_path / 's.db'}")
    _damage(config, "entries")
    _damage(config, "subscribers")
    proc = procs.start(seriesfeed_args(config.path, command), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    status, health = _first_health(config, proc)
    err = _stop(proc)
    assert status == 503 and health["status"] == "down", health
    assert any("damaged" in r for r in health["reasons"]), health
    assert str(tmp_path) not in json.dumps(health)
    assert "damaged" in err, err[-3000:]  # the log, from start
    figures(part=f"{command} on entries and subscribers pages overwritten",
            **{"first /healthz": f"{status} {health['status']}"})


@pytest.mark.catalogue("F19")
def test_damage_found_by_the_scheduled_check_while_the_daemon_runs(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], procs: Processes) -> None:
    """Pages no job reads are damaged under a running daemon: /healthz goes down within
    [schedule] check_seconds, with no request or job meeting the damage."""
    config = _world(make_config, tmp_path, fault(fsync=False), f"sqlite:///{tmp_path / 'c.db'}",
                    check_seconds=0.5)
    proc = procs.start(seriesfeed_args(config.path, "run"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    while _first_health(config, proc)[0] != 200:
        assert time.monotonic() < deadline, "never up"
        time.sleep(0.2)
    _damage(config, "source_entries")  # only a source poll reads it; none is configured
    lines: list[str] = []
    assert proc.stderr is not None
    stderr = proc.stderr

    def read() -> None:  # ends when the daemon's stderr closes
        for line in stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    damaged_at = time.monotonic()

    def logged() -> list[str]:
        return [line for line in list(lines) if "damaged" in line]

    # no request meanwhile: only the schedule can find it; polled (bounded), since two
    # loaded cores may stretch the 0.5 s interval
    deadline = damaged_at + 20
    while len(logged()) < 2:
        assert time.monotonic() < deadline, "".join(lines)[-3000:]
        time.sleep(0.1)
    found_in = time.monotonic() - damaged_at
    by_schedule = len(logged())
    status, health = _first_health(config, proc)  # one request: at most one check of its own
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    reader.join(timeout=10)
    assert status == 503 and health["status"] == "down", health
    assert any("damaged" in r for r in health["reasons"]), health
    assert by_schedule >= 2 and len(logged()) >= by_schedule
    figures(**{"s until the schedule logged the damage twice (check_seconds 0.5)":
               round(found_in, 2)})


@pytest.mark.catalogue("F19")
def test_status_and_backup_refuse_a_damaged_store(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    config = _world(make_config, tmp_path, fault(fsync=False), f"sqlite:///{tmp_path / 'b.db'}")
    healthy = _cli(config, "status")
    assert healthy.returncode == 0 and "store check: ok" in healthy.stdout, healthy
    _damage(config, "entries")
    _damage(config, "subscribers")
    status = _cli(config, "status")
    _one_error_line(status, "damaged", "backup")
    as_json = _cli(config, "status", "--json")
    _one_error_line(as_json, "damaged")
    assert json.loads(as_json.stdout)["store_check"]["ok"] is False
    folder = tmp_path / "backups"
    folder.mkdir()
    result = _cli(config, "backup", str(folder / "copy.db"))
    _one_error_line(result, "damaged")
    assert list(folder.iterdir()) == []  # no copy, no temporary file


@pytest.mark.postgres
def test_the_quick_check_on_postgresql_reads_each_table(
        make_config: Callable[..., Path], tmp_path: Path, pg_url: str,
        fault: Callable[..., FaultServer]) -> None:
    from seriesfeed.actions.status import check_health, health

    config = _world(make_config, tmp_path, fault(fsync=False), pg_url)
    store = open_store(config.database.url, config.base_dir)
    try:
        assert check_health(config, store) == []
        with store.write() as conn:
            conn.execute(text("ALTER TABLE job_runs RENAME TO job_runs_moved"))
        try:
            problems = check_health(config, store)
            judged = health(config, store)
        finally:
            with store.write() as conn:
                conn.execute(text("ALTER TABLE job_runs_moved RENAME TO job_runs"))
        assert [p for p in problems if "job_runs" in p] == problems and problems
        assert judged.down and any("job_runs" in r for r in judged.reasons)
    finally:
        store.close()


def test_constraint_violations_still_reach_their_callers(store: Store) -> None:
    """Translating the database's failures must not hide IntegrityError: callers (digest
    recording, imports) rely on it to detect a row that is already there."""
    now = datetime.now(UTC)
    with store.write() as conn:
        conn.execute(insert(series).values(slug="twice", created_at=now))
    with pytest.raises(IntegrityError), store.write() as conn:
        conn.execute(insert(series).values(slug="twice", created_at=now))
    with pytest.raises(StoreError) as caught, store.read() as conn:  # not damage: a mistake
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not isinstance(caught.value, StoreDamagedError)


def test_the_quick_check_reads_the_store_whatever_its_folder_is_called(tmp_path: Path) -> None:
    """`#` and `?` are a URI's fragment and query: the check must read the store's own file,
    not a shorter path beside it (a folder `site` there made a healthy store "damaged"; no
    such folder made a damaged one "ok" and left an empty database behind)."""
    from sqlalchemy.engine import URL

    from seriesfeed.store.check import quick_check

    folder = tmp_path / "site#2?x"
    folder.mkdir()
    (tmp_path / "site").mkdir()  # what the unescaped URI pointed at
    path = folder / "s.sqlite3"
    store = open_store(URL.create("sqlite", database=str(path)).render_as_string())
    try:
        assert store.sqlite_path == path
        assert quick_check(store) == []
        store.engine.dispose()
        (tmp_path / "site").rmdir()
        data = bytearray(path.read_bytes())
        data[100:4096 * 2] = b"\xff" * (4096 * 2 - 100)  # the schema page and the next
        path.write_bytes(bytes(data))
        problems = quick_check(store)
        assert problems and all(p.startswith("quick_check") for p in problems), problems
        assert not (tmp_path / "site").exists()  # nothing created beside the store
    finally:
        store.close()


def _delete_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_status_on_a_deleted_store_says_so_and_makes_no_new_one(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    db = tmp_path / "gone.db"
    config = _world(make_config, tmp_path, fault(fsync=False), f"sqlite:///{db}")
    _delete_sqlite(db)  # an operator's slip, a cleanup script, a volume not mounted
    result = _cli(config, "status")
    # not "store check: ok" over an empty store: the subscribers are gone, say it
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    assert not db.exists(), "a new empty store was created where the real one was"


@pytest.mark.parametrize("command", ["run"])
def test_a_store_deleted_under_the_daemon_is_down_within_check_seconds(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        procs: Processes, command: str) -> None:
    db = tmp_path / "d.db"
    config = _world(make_config, tmp_path, fault(fsync=False), f"sqlite:///{db}",
                    check_seconds=0.5)
    assert config.path is not None
    proc = procs.start(seriesfeed_args(config.path, command), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    health: dict[str, Any] = {}
    try:
        status, health = _first_health(config, proc)
        assert status == 200, health
        _delete_sqlite(db)
        # the daemon writes on into a file nobody can open again: lost at the next restart
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, body = _get(f"http://127.0.0.1:{config.web.port}/healthz")
            health = json.loads(body) if body else {}
            if status == 503:
                break
            time.sleep(0.3)
    finally:
        _stop(proc)
    assert status == 503 and health.get("status") == "down", health


@pytest.mark.parametrize("command", [("backup", "copy.db"), ("entries", "list")],
                         ids=["backup", "entries-list"])
def test_read_only_commands_on_a_deleted_store_name_it_and_make_no_new_one(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer], command: tuple[str, ...]) -> None:
    db = tmp_path / "gone.db"
    config = _world(make_config, tmp_path, fault(fsync=False), f"sqlite:///{db}")
    _delete_sqlite(db)
    result = _cli(config, *(str(tmp_path / a) if a.endswith(".db") else a for a in command))
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip().splitlines() == [
        f"Error: there is no store at {db}: run `seriesfeed init` (or restore a backup there)"]
    assert not db.exists()
    # init is the command that makes it again
    assert _cli(config, "init").returncode == 0
    assert db.exists()

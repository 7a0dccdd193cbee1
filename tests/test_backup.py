"""Backups: a consistent copy of a SQLite store taken mid-send; restoring it, refused while
a daemon holds the store; the next drain sends exactly what the backup had not sent."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from seriesfeed import actions
from seriesfeed.actions import subscribers
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.actions.digests import record_digests
from seriesfeed.config import load_config
from seriesfeed.models import Frequency
from seriesfeed.store import open_store
from seriesfeed.store.locks import RunnerLock
from tests.conftest import SEED_PAGE, CliResult
from tests.harness.fault_smtp import FaultServer


def _states(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT message_id, state FROM outbox").fetchall())
    finally:
        conn.close()


def test_a_backup_taken_mid_send_restores_and_the_next_drain_sends_only_the_rest(
        make_config: Callable[..., Path], tmp_path: Path,
        run_cli: Callable[..., CliResult]) -> None:
    smtp = FaultServer.start(tmp_path / "smtp.log", tarpit=0.03)
    db = tmp_path / "live.sqlite3"
    site = make_config(database={"url": f"sqlite:///{db}"},
                       smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none",
                             "connections": 1},
                       security={"secret_key": "k" * 32})
    config = load_config(site, env={})
    store = open_store(config.database.url, config.base_dir)
    n = 40
    try:
        for i in range(n):
            subscribers.add_subscriber(store, config, f"r{i:02d}@example.org",
                                         frequency="daily", confirmed=True)
        actions.import_entries(store, config, SEED_PAGE)
        record_digests(store, config, Frequency.DAILY, datetime.now(UTC), scheduled=False)
        sending = threading.Thread(target=lambda: asyncio.run(
            drain_outbox(store, config, batch=4)))
        sending.start()
        deadline = time.monotonic() + 30
        while len(smtp.handler.deliveries()) < n // 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        backup = tmp_path / "mid-send.sqlite3"
        taken = run_cli("--config", site, "backup", backup)  # while the send goes on
        assert taken.code == 0, taken
        sending.join(timeout=60)
        assert len(smtp.handler.deliveries()) == n
        in_backup = _states(backup)
        not_sent = {mid for mid, state in in_backup.items() if state != "sent"}
        assert len(in_backup) == n and 0 < len(not_sent) < n, in_backup

        # a daemon holds the store: restore refuses and changes nothing
        with RunnerLock(store):
            refused = run_cli("--config", site, "restore", backup)
        assert refused.code == 1 and "refusing to restore" in refused.err, refused
        assert set(_states(db).values()) == {"sent"}

        restored = run_cli("--config", site, "restore", backup)
        assert restored.code == 0, restored
        assert _states(db) == in_backup
        first_run = [d.message_id for d in smtp.handler.deliveries()]
        asyncio.run(drain_outbox(store, config))
        again = [d.message_id for d in smtp.handler.deliveries()][len(first_run):]
        # exactly what the backup had not sent, each with the Message-ID it went out with
        assert sorted(again) == sorted(not_sent)
        assert set(again) <= set(first_run)
        assert set(_states(db).values()) == {"sent"}
    finally:
        store.close()
        smtp.stop()


def test_backup_and_restore_refuse_what_they_cannot_do(
        make_config: Callable[..., Path], tmp_path: Path,
        run_cli: Callable[..., CliResult]) -> None:
    site = make_config(database={"url": f"sqlite:///{tmp_path / 's.sqlite3'}"})
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    result = run_cli("--config", site, "restore", junk)
    assert result.code == 1 and result.err.startswith("Error: ") and "FILE" in result.err
    missing = run_cli("--config", site, "restore", tmp_path / "none.sqlite3")
    assert missing.code == 1 and "no such file" in missing.err
    pg = make_config(database={"url": "postgresql://nobody@127.0.0.1:1/none"})
    from seriesfeed.errors import SeriesfeedError
    from seriesfeed.store import Store
    from seriesfeed.store.backup import backup

    store = Store(load_config(pg, env={}).database.url)
    try:
        try:
            backup(store, tmp_path / "x")
        except SeriesfeedError as exc:
            assert "pg_dump" in str(exc)
        else:
            raise AssertionError("a PostgreSQL backup was not refused")
    finally:
        store.close()


def test_restore_refuses_a_backup_of_an_unknown_schema(
        make_config: Callable[..., Path], tmp_path: Path,
        run_cli: Callable[..., CliResult]) -> None:
    site = make_config(database={"url": f"sqlite:///{tmp_path / 'u.sqlite3'}"})
    assert run_cli("--config", site, "subscribers", "add", "ann@example.org",
                   "--confirmed").code == 0
    newer = tmp_path / "newer.sqlite3"
    assert run_cli("--config", site, "backup", newer).code == 0
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE alembic_version SET version_num = 'from_the_future'")
    conn.commit()
    conn.close()
    refused = run_cli("--config", site, "restore", newer)
    assert refused.code == 1 and "does not know" in refused.err, refused
    assert "Traceback" not in refused.err
    assert "ann@example.org" in run_cli("--config", site, "subscribers", "list").out
    bad_dir = run_cli("--config", site, "backup", tmp_path / "no" / "such" / "dir.sqlite3")
    assert bad_dir.code == 1 and bad_dir.err.startswith("Error: backup to")

"""S13 (issue 11, item 6): after ``subscribers remove``, nothing in the store holds the
address. A real relay (the scripted aiosmtpd) rejects it with a 550 that quotes it, as
relays do; the digest goes out; the address is removed; then a dump of the whole store
(sqlite3's iterdump and the file's bytes; on PostgreSQL every text column of every table)
is searched for it in any case, and ``status`` must not print it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from seriesfeed.config import Config
from seriesfeed.store import Store, open_store
from seriesfeed.store import jobs as jq
from seriesfeed.web import create_app
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer, Rule

# as the operator typed it; the relay quotes it lowercased
VICTIM = "Ana.Erased@Gone.Example.com"
NEIGHBOUR = "xana.erased@gone.example.com"  # contains the victim's address: must survive


def _cli(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    assert config.path is not None
    return subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                           *args], capture_output=True, text=True, timeout=120)


def _dump(config: Config) -> str:
    """Everything the store holds, as text."""
    url = config.database.url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path)
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    store = open_store(url, config.base_dir, migrate=False)
    out: list[str] = []
    try:
        with store.read() as conn:
            columns = conn.execute(text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type IN "
                "('text', 'character varying', 'character')")).all()
            for table, column in columns:
                values = conn.execute(text(f'SELECT "{column}" FROM "{table}" '
                                           f'WHERE "{column}" IS NOT NULL')).scalars()
                out += [f"{table}.{column}: {v}" for v in values]
    finally:
        store.close()
    return "\n".join(out)


def _file_bytes(config: Config) -> bytes:
    url = config.database.url
    if not url.startswith("sqlite"):
        return b""
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"))
                    if p.exists())


@pytest.mark.catalogue("S13")
def test_removal_leaves_no_copy_of_the_address(
        make_config: Callable[..., Path], tmp_path: Path, database_url: str,
        fault: Callable[..., FaultServer], figures: Callable[..., None]) -> None:
    quoted = f"550 5.1.1 <{VICTIM.lower()}>: Recipient address rejected: User unknown"
    smtp = fault(rules={"gone.example.com": [Rule("rcpt", quoted)]})
    addresses = [f"r{i}@example.org" for i in range(5)] + [VICTIM]
    config = kill.world(make_config, smtp.port, len(addresses), database_url,
                        addresses=addresses)
    sent = _cli(config, "digest", "send", "--frequency", "daily")
    assert sent.returncode == 0, sent.stderr[-2000:]
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.write() as conn:  # a job whose failure quoted the relay, and a neighbour
            run = jq.start_run(conn, "digest-daily", datetime.now(UTC))
            jq.finish_run(conn, run, datetime.now(UTC), False, f"send failed: {quoted}")
            conn.execute(text("INSERT INTO outbox (kind, recipient, message_id, state, "
                              "attempts, uncertain, last_error, created_at) VALUES ('digest', "
                              ":r, '<n@x>', 'failed', 1, false, :e, :t)"),
                         {"r": NEIGHBOUR, "e": f"550 <{NEIGHBOUR}>", "t": datetime.now(UTC)})
    finally:
        store.close()
    before = _dump(config).lower().count(VICTIM.lower())
    assert before >= 3  # recipient, the relay's error and the job summary: the test can fail
    assert VICTIM.lower() in _cli(config, "status").stdout.lower()

    removed = _cli(config, "subscribers", "remove", VICTIM)
    assert removed.returncode == 0, removed.stderr
    dump = _dump(config).lower()
    # the neighbour's own address contains the victim's: count whole addresses only
    hits = dump.replace(NEIGHBOUR, "").count(VICTIM.lower())
    status = _cli(config, "status")
    assert status.returncode == 0, status.stderr
    assert hits == 0, [line for line in dump.splitlines() if VICTIM.lower() in
                       line.replace(NEIGHBOUR, "")]
    assert VICTIM.lower() not in status.stdout.lower().replace(NEIGHBOUR, "")
    assert dump.count(NEIGHBOUR) == 2  # another person's rows are untouched
    raw = _file_bytes(config).lower().replace(NEIGHBOUR.encode(), b"")
    raw_hits = raw.count(VICTIM.lower().encode())
    if config.database.url.startswith("sqlite"):
        assert raw_hits == 0  # secure_delete and an emptied WAL: not even in free pages
    # removing again is a clear error, and the address stays suppressed
    again = _cli(config, "subscribers", "add", VICTIM, "--confirmed")
    assert again.returncode == 0 and "suppressed" in again.stdout
    figures(part=config.database.url.split(":")[0],
            **{"copies before removal": before, "copies after (dump)": hits,
               "copies in the SQLite file bytes": raw_hits if raw else "n/a",
               "status prints it": False})


def test_healthz_never_shows_an_address(store: Store, config: Config) -> None:
    """/healthz may be reachable from outside: the relay's words are shown without the
    recipient they quote, and without the store's path."""
    now = datetime.now(UTC)
    with store.write() as conn:
        conn.execute(text("INSERT INTO outbox (kind, recipient, message_id, state, attempts, "
                          "uncertain, last_error, created_at) VALUES ('digest', :r, '<h@x>', "
                          "'retry', 1, false, :e, :t)"),
                     {"r": "ann@example.org", "e": "450 4.2.0 <ann@example.org>: busy",
                      "t": now})
        run = jq.start_run(conn, "feeds", now)
        jq.finish_run(conn, run, now, False, f"failed for ann@example.org in {store.url}")
    body = TestClient(create_app(config, store)).get("/healthz").text
    assert "ann@example.org" not in body and store.describe() not in body, body
    assert '"degraded"' in body

"""F18 (issue 11, item 4): another process holds the store's write lock while the daemon's
web app gets a subscribe, /healthz and feed GETs at once. The event loop never waits on the
store: /healthz and feeds keep answering fast, and the subscribe gets a 503 page with
Retry-After in the visitor's language, never a path or the database's message."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seriesfeed.config import Config
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer
from tests.harness.web import LiveServer, Reply, wait_until_healthy
from tests.smtp_server import free_port

SLUG = "reflections-on-the-iso-crisis"

# Holds the lock until its stdin closes; prints "held" once it has it.
HOLD_SQLITE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""
# PostgreSQL: EXCLUSIVE blocks every write to subscribers and lets plain reads through,
# the way a long import or a CLI command's transaction would
HOLD_POSTGRES = """
import psycopg, sys
conn = psycopg.connect(sys.argv[1])
conn.execute("LOCK TABLE subscribers IN EXCLUSIVE MODE")
print("held", flush=True)
sys.stdin.read()
conn.rollback()
"""


def _daemon(config: Config) -> subprocess.Popen[str]:
    assert config.path is not None
    return subprocess.Popen([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                             "run"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _holder(url: str) -> subprocess.Popen[str]:
    if url.startswith("sqlite"):
        script, target = HOLD_SQLITE, url.removeprefix("sqlite:///")
    else:
        script, target = HOLD_POSTGRES, url.replace("postgresql+psycopg://", "postgresql://")
    proc = subprocess.Popen([sys.executable, "-c", script, target], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def daemon_site(make_config: Callable[..., Path], tmp_path: Path,
                fault: Callable[..., FaultServer], request: pytest.FixtureRequest
                ) -> Iterator[tuple[Config, LiveServer, subprocess.Popen[str]]]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else \
        f"sqlite:///{tmp_path / 'busy.sqlite3'}"
    smtp = fault(fsync=False, keep_messages=False)
    web = free_port()
    config = kill.world(make_config, smtp.port, 3, url, extra={
        "web": {"host": "127.0.0.1", "port": web, "base_url": "https://feeds.example.org"},
        "schedule": {"feeds": "0 */6 * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
                     "drain_seconds": 0.5, "watch_seconds": 0.3, "shutdown_timeout": 5}})
    proc = _daemon(config)
    client = LiveServer(web)
    wait_until_healthy(client, proc, "the daemon")
    try:
        yield config, client, proc
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
@pytest.mark.catalogue("F18")
@pytest.mark.parametrize("daemon_site", ["sqlite", pytest.param(
    "postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_writer_holding_the_lock_never_freezes_the_web(
        daemon_site: tuple[Config, LiveServer, subprocess.Popen[str]], tmp_path: Path,
        figures: Callable[..., None]) -> None:
    config, client, proc = daemon_site
    health: list[Reply] = []
    feeds: list[Reply] = []
    stop = threading.Event()

    def poll(path: str, into: list[Reply]) -> None:
        while not stop.is_set():
            try:
                into.append(client.request("GET", path, timeout=40))
            except OSError as exc:  # a refused or timed-out poll is a finding too
                into.append(Reply(0, {}, str(exc), 40.0))
            time.sleep(0.05)

    holder = _holder(config.database.url)
    try:
        pollers = [threading.Thread(target=poll, args=("/healthz", health)),
                   threading.Thread(target=poll, args=(f"/feeds/en/{SLUG}/atom.xml", feeds)),
                   threading.Thread(target=poll, args=(f"/es/{SLUG}/", feeds))]
        for t in pollers:
            t.start()
        time.sleep(0.3)
        reply = client.request("POST", "/subscribe", timeout=40, form={
            "email": "busy@example.org", "language": "es", "frequency": "weekly"})
        time.sleep(0.5)
        stop.set()
        for t in pollers:
            t.join()
    finally:
        holder.communicate(timeout=10)  # closing its stdin releases the lock
    after = client.request("POST", "/subscribe", form={
        "email": "busy@example.org", "language": "es", "frequency": "weekly"})
    assert proc.poll() is None
    assert reply.status == 503, (reply.status, reply.body[:500])
    assert reply.headers.get("retry-after", "").isdigit()
    assert "Inténtalo de nuevo dentro de unos segundos" in reply.body and 'lang="es"' in reply.body
    for leak in (str(tmp_path), "sqlite", "postgres", "locked", "lock timeout", "database"):
        assert leak not in reply.body.lower(), leak
    assert reply.seconds < config.web.store_timeout + 2
    worst_health = max(r.seconds for r in health)
    worst_feed = max(r.seconds for r in feeds)
    assert health and all(r.status == 200 for r in health), [r.status for r in health]
    assert feeds and all(r.status == 200 for r in feeds), [r.status for r in feeds]
    assert worst_health < 1.0, worst_health
    assert worst_feed < 1.0, worst_feed
    assert after.status == 200  # once the lock is gone, the same form goes through
    figures(part=config.database.url.split(":")[0],
            **{"worst /healthz s while held": round(worst_health, 3),
               "worst feed GET s": round(worst_feed, 3), "healthz polls": len(health),
               "subscribe status": reply.status,
               "subscribe answered after s": round(reply.seconds, 2)})

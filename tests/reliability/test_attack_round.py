"""Attacks from outside the suite on what the last round fixed: each test states a
behaviour the invariants promise and that a hostile user, an odd relay or a damaged store
broke. The fault server's fsynced log decides what was delivered."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from seriesfeed import actions
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.models import Frequency
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import outbox, relay_state, subscribers
from seriesfeed.templating import PACKAGE_TEMPLATES
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer, Rule


def _rows(store: Store) -> dict[str, dict[str, Any]]:
    with store.read() as conn:
        return {str(r.recipient): dict(r._mapping) for r in conn.execute(
            select(outbox.c.recipient, outbox.c.state, outbox.c.attempts, outbox.c.next_at,
                   outbox.c.last_error))}


def _delivered(server: FaultServer) -> set[str]:
    return {r for d in server.handler.deliveries() for r in d.recipients}


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _run_out_the_pause(store: Store) -> None:
    with store.write() as conn:
        conn.execute(update(relay_state).values(paused_until=datetime(2000, 1, 1, tzinfo=UTC)))


def test_a_template_broken_for_one_language_delays_nobody_in_another(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    server = fault()
    addresses = [f"r{i}@example.org" for i in range(20)]
    config = kill.world(make_config, server.port, 20, f"sqlite:///{tmp_path / 't.sqlite3'}",
                        addresses=addresses,
                        extra={"mail": {"retry_seconds": 600, "max_attempts": 8}})
    spanish = set(addresses[::2])
    # the operator's own templates, with a Spanish digest that fails to render
    folder = config.base_dir / "templates"
    shutil.copytree(PACKAGE_TEMPLATES, folder)
    (folder / "email" / "es").mkdir()
    (folder / "email" / "es" / "digest.html.j2").write_text(
        "{{ entries[0].missing.attribute }}", encoding="utf-8")
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.write() as conn:
            conn.execute(update(subscribers).where(subscribers.c.email.in_(spanish))
                         .values(language="es"))
        try:
            asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                             scheduled=False))
        finally:
            rows = _rows(store)
    finally:
        store.close()
    # English readers get their digest; the Spanish rows wait with the reason, uncounted
    # against anyone, and nothing is left claimed
    assert _delivered(server) == set(addresses) - spanish
    assert {rows[a]["state"] for a in spanish} <= {"retry", "queued", "failed"}
    assert all("digest" in str(rows[a]["last_error"]) or "Undefined" in
               str(rows[a]["last_error"]) for a in spanish), rows


@pytest.mark.parametrize("reply", ["550 no such user here",
                                   "554 5.7.1 Relay access denied"],
                         ids=["no-enhanced-code", "policy-5.7.1"])
def test_one_refused_domain_never_stops_mail_to_everyone_else(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer], reply: str) -> None:
    # five colleagues at a domain the relay will not take, imported together (so their rows
    # are next to each other), then 25 ordinary readers
    server = fault(rules={"dead.test": [Rule("rcpt", reply)]})
    addresses = [f"c{i}@dead.test" for i in range(5)] + \
        [f"r{i}@example.org" for i in range(25)]
    config = kill.world(make_config, server.port, 30, f"sqlite:///{tmp_path / 'd.sqlite3'}",
                        addresses=addresses,
                        extra={"mail": {"retry_seconds": 600, "max_attempts": 8}})
    store = open_store(config.database.url, config.base_dir)
    try:
        asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                         scheduled=False))
        # even granting a pause, once it runs out the next drain must get the rest through
        for _ in range(3):
            _run_out_the_pause(store)
            asyncio.run(drain_outbox(store, config))
        rows = _rows(store)
    finally:
        store.close()
    missing = set(addresses[5:]) - _delivered(server)
    assert not missing, (len(missing), {a: (rows[a]["state"], rows[a]["attempts"])
                                        for a in addresses[:5]})
    assert all(rows[a]["state"] == "failed" for a in addresses[:5]), rows


def test_mail_goes_soon_after_the_operator_fixes_a_wrong_relay_password(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    from seriesfeed.config import load_config

    server = fault(password="right-password")
    url = f"sqlite:///{tmp_path / 'p.sqlite3'}"
    kill.world(make_config, server.port, 10, url)  # the store, its seed and its readers

    def configured(password: str) -> Any:
        return load_config(make_config(
            database={"url": url},
            smtp={"host": "127.0.0.1", "port": server.port, "security": "none",
                  "username": "digest", "password": password, "timeout": 10},
            security={"secret_key": "c" * 32},
            mail={"retry_seconds": 1, "max_attempts": 8}), env={})

    wrong = configured("wrong-password")
    store = open_store(url, wrong.base_dir)
    try:
        summary = asyncio.run(actions.send_digests(store, wrong, frequency=Frequency.DAILY,
                                                   scheduled=False))
        assert "paused" in summary, summary
        # a weekend of refused probes: the pause has doubled up to minutes
        for _ in range(8):
            _run_out_the_pause(store)
            report = asyncio.run(drain_outbox(store, wrong))
            assert report.paused and report.sent == 0, report
        assert server.handler.events["auth refused"] >= 8
        with store.read() as conn:  # the pause names its settings by a hash, never the password
            row = conn.execute(select(relay_state)).one()
        assert row.relay and "password" not in " ".join(map(str, row)), row
        # Monday: the operator puts the right password in config.toml and sends again
        fixed = configured("right-password")
        started = datetime.now(UTC)
        while (datetime.now(UTC) - started).total_seconds() < 3 and \
                len(_delivered(server)) < 10:
            asyncio.run(drain_outbox(store, fixed))
            asyncio.run(asyncio.sleep(0.2))
    finally:
        store.close()
    # within retry_seconds (1 s) and a drain of the fix, not the pause's hour
    assert _delivered(server) == kill.recipients(10)


@pytest.mark.postgres
@pytest.mark.full  # a daemon and a loop of processes: about 40 s on a loaded machine
@pytest.mark.serial  # asserts a time bound
def test_a_daemon_and_digest_send_on_postgresql_send_everything_soon_after_a_421_outage(
        make_config: Callable[..., Path], pg_url: str,
        fault: Callable[..., FaultServer], procs: Any) -> None:
    """A daemon and an operator's ``digest send`` loop on one PostgreSQL store, the relay
    answering 421 at the greeting for a few seconds: every row goes within one pause and
    one drain of its return, once."""
    import os
    import subprocess
    import time
    from collections import Counter

    from tests.harness.procs import seriesfeed_args
    from tests.smtp_server import free_port

    retry, drain, outage, n = 1.0, 0.3, 3.0, 120
    server = fault(greeting_failures=10 ** 9, fsync=False)
    config = kill.world(make_config, server.port, n, pg_url, extra={
        "mail": {"retry_seconds": retry, "max_attempts": 8},
        "schedule": {"feeds": "*/10 * * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
                     "drain_seconds": drain, "watch_seconds": 5, "shutdown_timeout": 5},
        "web": {"host": "127.0.0.1", "port": free_port()}})
    store = open_store(pg_url, config.base_dir)
    try:
        summary = asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                                   scheduled=False))
        assert "paused" in summary, summary
    finally:
        store.close()
    assert config.path is not None
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = config.path.parent / "daemon.log"
    with log.open("wb") as err:
        procs.start(seriesfeed_args(config.path, "run"), stdout=subprocess.DEVNULL,
                    stderr=err, env=env)
    deadline = time.monotonic() + 60
    while not _answers(f"http://127.0.0.1:{config.web.port}/healthz"):
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.2)

    def digest_send() -> subprocess.Popen[bytes]:
        return procs.start(seriesfeed_args(config.path, "digest", "send", "--frequency",
                                           "daily"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env)

    recovered = 0.0
    started = time.monotonic()
    sender = digest_send()
    while len(server.handler.deliveries()) < n and time.monotonic() - started < outage + 30:
        if not recovered and time.monotonic() - started >= outage:
            server.handler.greeting_failures = 0
            recovered = time.monotonic()
        if sender.poll() is not None:
            sender = digest_send()  # the operator's loop: one send after another
        time.sleep(0.05)
    late = time.monotonic() - recovered
    got = server.handler.deliveries()
    procs.close()
    delivered = Counter(r for d in got for r in d.recipients)
    assert set(delivered) == kill.recipients(n), n - len(delivered)
    assert max(delivered.values()) == 1, delivered.most_common(3)
    # one pause and one drain, with room for a loaded machine
    assert late <= retry + drain + 3.0, late

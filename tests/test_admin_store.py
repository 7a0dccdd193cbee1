"""The console's login state on every store (SQLite, and PostgreSQL where it answers): a
session lives in the store until logout or expiry, the lockout counts are shared, every
attempt is audited, and the dashboard's one read works on both."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from sqlalchemy import select

from seriesfeed import actions, passwords, tokens
from seriesfeed.actions import audit
from seriesfeed.clock import now_utc
from seriesfeed.config import AdminConfig, Config
from seriesfeed.store import Store
from seriesfeed.store.tables import admin_audit, admin_sessions
from tests.test_admin import HASH, PASSWORD


def _console(config: Config) -> Config:
    return dataclasses.replace(config, admin=AdminConfig(enabled=True, password_hash=HASH,
                                                         session_hours=1.0))


def test_a_session_lives_in_the_store_until_logout(store: Store, config: Config) -> None:
    config = _console(config)
    done = actions.console.login(store, config, account="admin", password=PASSWORD,
                                 address="10.0.0.7")
    assert done.ok and done.cookie and done.retry_after is None
    operator = actions.console.operator_for(store, config, done.cookie)
    assert operator is not None and operator.account == "admin"
    assert operator.address == "10.0.0.7" and len(operator.session) == 64
    # the cookie is the signed id: another key, or one changed byte, names nobody
    assert actions.console.operator_for(store, config, done.cookie[:-2] + "xx") is None
    other = dataclasses.replace(config, security=dataclasses.replace(
        config.security, secret_key="k" * 32))
    assert actions.console.operator_for(store, other, done.cookie) is None
    actions.console.logout(store, operator, "10.0.0.7")
    assert actions.console.operator_for(store, config, done.cookie) is None
    assert [(r.action, r.ok) for r in audit.log(store, limit=5)] == [("logout", True),
                                                                     ("login", True)]


def test_a_session_ends_when_its_hours_are_up(store: Store, config: Config) -> None:
    config = _console(config)
    with time_machine.travel(now_utc(), tick=False) as clock:
        done = actions.console.login(store, config, account="admin", password=PASSWORD,
                                     address=None)
        assert actions.console.operator_for(store, config, done.cookie) is not None
        clock.shift(3601)
        assert actions.console.operator_for(store, config, done.cookie) is None


def test_the_lockout_is_in_the_store_and_lifts_after_its_time(store: Store,
                                                              config: Config) -> None:
    config = _console(config)
    with time_machine.travel(now_utc(), tick=False) as clock:
        for n in range(5):
            tried = actions.console.login(store, config, account="admin", password="wrong!",
                                          address="10.0.0.9")
            assert not tried.ok and (tried.retry_after is None) == (n < 4)
        locked = actions.console.login(store, config, account="admin", password=PASSWORD,
                                       address="10.0.0.8")  # the account is locked too
        assert not locked.ok and locked.retry_after == 15 * 60
        clock.shift(15 * 60 + 1)
        assert actions.console.login(store, config, account="admin", password=PASSWORD,
                                     address="10.0.0.9").ok
    reasons = [r.detail.get("reason") for r in audit.log(store, limit=10)]
    assert reasons == [None, "locked out", *["wrong account or password"] * 5]
    fifth = audit.log(store, limit=10)[2]
    assert fifth.detail["locked_for_s"] == 15 * 60


def test_the_dashboard_reads_on_every_store(store: Store, config: Config) -> None:
    shown = actions.console.dashboard(_console(config), store)
    assert shown["health"]["state"] in ("up", "degraded")
    assert shown["report"]["outbox"] == actions.status_report(config, store)["outbox"]
    assert set(shown["charts"]) == {"messages", "subscribers", "bounces", "polls"}
    assert len(shown["charts"]["messages"].starts) == 30


def _counting_scrypt(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count (and watch the overlap of) the console's scrypt runs; each still runs."""
    real = passwords.verify
    runs: list[int] = []
    inside = [0]
    lock = threading.Lock()

    def counted(password: str, stored: str | None) -> bool:
        with lock:
            inside[0] += 1
            runs.append(inside[0])
        try:
            return real(password, stored)
        finally:
            with lock:
                inside[0] -= 1
    monkeypatch.setattr(passwords, "verify", counted)
    return runs


def test_a_locked_client_or_account_is_answered_without_scrypt(
        store: Store, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 429 says the lockout anyway, so an equal cost buys nothing there: scrypt's
    32 MiB and 0.1 s per locked attempt would only be a stranger's free drain."""
    config = _console(config)
    runs = _counting_scrypt(monkeypatch)
    for _ in range(actions.console.LOCK_AFTER):
        assert not actions.console.login(store, config, account="admin",
                                         password="wrong password!", address="10.0.0.9").ok
    assert len(runs) == actions.console.LOCK_AFTER
    for address in ("10.0.0.9", "10.0.0.10"):  # the client, then the account, locked
        locked = actions.console.login(store, config, account="admin", password=PASSWORD,
                                       address=address)
        assert not locked.ok and locked.retry_after and locked.retry_after > 0
    assert len(runs) == actions.console.LOCK_AFTER  # no scrypt for either
    rows = audit.log(store, limit=2)
    assert all(r.detail == {"reason": "locked out"} and not r.ok for r in rows)


def test_at_most_two_scrypt_runs_at_once_and_the_third_is_told_to_come_back(
        store: Store, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _console(config)
    slots = actions.console.SCRYPT_SLOTS
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)
    try:
        busy = actions.console.login(store, config, account="admin", password=PASSWORD,
                                     address="10.0.0.11")
        assert busy.busy and not busy.ok and busy.retry_after is None
    finally:
        slots.release()
        slots.release()
    row = audit.log(store, limit=1)[0]
    assert (row.action, row.ok, row.detail) == ("login", False, {"reason": "busy"})
    # refused for the machine's sake, not the client's: it counts towards no lockout
    for _ in range(actions.console.LOCK_AFTER):
        slots.acquire()
        slots.acquire()
        try:
            actions.console.login(store, config, account="admin", password="wrong password!",
                                  address="10.0.0.11")
        finally:
            slots.release()
            slots.release()
    assert actions.console.login(store, config, account="admin", password=PASSWORD,
                                 address="10.0.0.11").ok
    # eight at once: never more than two scrypt runs side by side
    runs = _counting_scrypt(monkeypatch)
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda n: actions.console.login(
            store, config, account="admin", password=PASSWORD, address=f"10.0.1.{n}"),
            range(8)))
    assert all(d.ok or d.busy for d in done) and any(d.ok for d in done)
    assert runs and max(runs) <= 2, runs


def test_the_store_keeps_no_session_id_that_makes_a_cookie(store: Store,
                                                           config: Config) -> None:
    """A dump of the store plus the key file must not mint a live cookie: the store keeps
    a hash of the session id, never the id the cookie holds."""
    config = _console(config)
    done = actions.console.login(store, config, account="admin", password=PASSWORD,
                                 address="10.0.0.12")
    assert done.cookie
    key = tokens.ensure_secret_key(config)
    raw = tokens.read_bound(key, tokens.Purpose.ADMIN_SESSION, done.cookie)
    assert raw
    with store.read() as conn:
        kept = [r.id for r in conn.execute(select(admin_sessions.c.id))]
        trail = [r.session for r in conn.execute(select(admin_audit.c.session))
                 if r.session]
    assert kept and trail == kept and raw not in kept
    for stolen in kept:  # what a dump gives, signed with the stolen key
        minted = tokens.bound_token(key, tokens.Purpose.ADMIN_SESSION, stolen)
        assert actions.console.operator_for(store, config, minted) is None
    operator = actions.console.operator_for(store, config, done.cookie)
    assert operator is not None and operator.session == kept[0]
    shown = audit.log(store, limit=1)[0].to_json(config.zone)
    assert shown["session"] == kept[0] and raw not in str(shown)


def test_a_new_password_hash_ends_every_session(store: Store, config: Config) -> None:
    config = _console(config)
    done = actions.console.login(store, config, account="admin", password=PASSWORD,
                                 address="10.0.0.13")
    assert actions.console.operator_for(store, config, done.cookie) is not None
    changed = dataclasses.replace(config, admin=dataclasses.replace(
        config.admin, password_hash=passwords.hash_password("another long password")))
    assert actions.console.operator_for(store, changed, done.cookie) is None
    fresh = actions.console.login(store, changed, account="admin",
                                  password="another long password", address="10.0.0.13")
    assert actions.console.operator_for(store, changed, fresh.cookie) is not None

"""The console's login state on every store (SQLite, and PostgreSQL where it answers): a
session lives in the store until logout or expiry, the lockout counts are shared, every
attempt is audited, and the dashboard's one read works on both."""

from __future__ import annotations

import dataclasses

import time_machine

from seriesfeed import actions
from seriesfeed.actions import audit
from seriesfeed.clock import now_utc
from seriesfeed.config import AdminConfig, Config
from seriesfeed.store import Store
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

"""The operator's subscriber verbs (search, show, set, unsuppress) and their commands, on
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from seriesfeed import actions
from seriesfeed.actions import audit, subscriber_admin
from seriesfeed.actions.subscribers import add_subscriber, queue_confirmation
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import NotFoundError, ValidationError
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import admin_audit, subscribers
from tests.conftest import CliResult

Run = Callable[..., CliResult]


@pytest.fixture
def world(config: Config) -> Iterator[tuple[Config, Store]]:
    store = open_store(config.database.url, config.base_dir)
    for email, lang, freq, confirmed in (
            ("Ann@example.org", "en", "weekly", True),
            ("ann.b@example.net", "es", "daily", False),
            ("bob@example.org", "en", "daily", True),
            ("100%_x@example.org", "en", "weekly", False),
            ("cara@example.com", "es", "weekly", True)):
        add_subscriber(store, config, email, language=lang, frequency=freq, confirmed=confirmed)
    yield config, store
    store.close()


def _emails(page: subscriber_admin.SubscriberPage) -> list[str]:
    return [s.email for s in page.subscribers]


def test_search_filters_pages_and_total(world: tuple[Config, Store], config_path: Path,
                                        run_cli: Run) -> None:
    _config, store = world
    f = subscriber_admin.filters
    page = subscriber_admin.search_subscribers(store, f(search="ANN"))
    assert _emails(page) == ["Ann@example.org", "ann.b@example.net"] and page.total == 2
    assert _emails(subscriber_admin.search_subscribers(store, f(search="ann", status="pending"))) \
        == ["ann.b@example.net"]
    # % and _ are the address's own characters, not wildcards
    assert _emails(subscriber_admin.search_subscribers(store, f(search="%_"))) == \
        ["100%_x@example.org"]
    assert _emails(subscriber_admin.search_subscribers(store, f(search="0%"))) == \
        ["100%_x@example.org"]
    assert subscriber_admin.search_subscribers(store, f(search="n_b")).total == 0  # not "n.b"
    two = subscriber_admin.search_subscribers(store, f(language="en"), limit=2, offset=1)
    assert _emails(two) == ["bob@example.org", "100%_x@example.org"] and two.total == 3
    weekly_es = subscriber_admin.search_subscribers(store, f(language="es", frequency="weekly"))
    assert _emails(weekly_es) == ["cara@example.com"]
    with pytest.raises(ValidationError, match="limit"):
        subscriber_admin.search_subscribers(store, f(), limit=0)
    with pytest.raises(ValidationError, match="status"):
        f(status="gone")

    listed = run_cli("--config", config_path, "subscribers", "list", "--search", "example.org",
                     "--frequency", "weekly", "--json")
    assert listed.code == 0, listed
    assert [r["email"] for r in json.loads(listed.out)] == ["Ann@example.org",
                                                            "100%_x@example.org"]
    paged = run_cli("--config", config_path, "subscribers", "list", "--limit", "2",
                    "--offset", "2")
    assert paged.code == 0 and paged.out.splitlines()[-1] == "2 of 5 subscribers (from 3)"
    every = run_cli("--config", config_path, "subscribers", "list", "--status", "confirmed",
                    "--language", "en")
    assert every.out.splitlines()[-1] == "2 subscribers"
    assert run_cli("--config", config_path, "subscribers", "list", "--limit", "0").code == 2


def test_show_everything_about_one_and_an_erased_address(
        world: tuple[Config, Store], config_path: Path, run_cli: Run) -> None:
    config, store = world
    pending = add_subscriber(store, config, "dee@example.org", name="Dee",
                             language="es").subscriber
    assert pending is not None
    assert queue_confirmation(store, config, pending, now_utc())
    d = subscriber_admin.show_subscriber(store, config, "DEE@example.org")
    s = d.subscriber
    assert s is not None and d.suppression is None
    assert (s["email"], s["status"], s["language"], s["name"], s["hard_bounces"]) == \
        ("dee@example.org", "pending", "es", "Dee", 0)
    assert s["consent_source"] == "cli" and s["created_at"].endswith(("-05:00", "-04:00"))
    assert s["confirm_sent_at"] is not None and s["confirmed_at"] is None
    assert [(m["kind"], m["state"]) for m in d.outbox] == [("confirm", "queued")]
    assert d.outbox_total == 1
    by_id = subscriber_admin.show_subscriber(store, config, str(s["id"]))
    assert by_id.email == "dee@example.org"

    actions.subscribers.remove_subscriber(store, "dee@example.org")
    gone = run_cli("--config", config_path, "subscribers", "show", "dee@example.org", "--json")
    assert gone.code == 0, gone
    data = json.loads(gone.out)
    assert data["subscriber"] is None and data["suppressed"] is True
    assert data["suppression"]["reason"] == "removed"
    shown = run_cli("--config", config_path, "subscribers", "show", "bob@example.org")
    assert shown.code == 0 and "not suppressed" in shown.out and "confirmed" in shown.out
    missing = run_cli("--config", config_path, "subscribers", "show", "nobody@example.org")
    assert missing.code == 1 and missing.err.startswith("Error: no subscriber nobody@")
    assert "Traceback" not in missing.err
    with pytest.raises(NotFoundError):
        subscriber_admin.show_subscriber(store, config, "#9999")


def _status(store: Store, email: str) -> str:
    with store.read() as conn:
        return str(conn.execute(select(subscribers.c.status)
                                .where(subscribers.c.email_key == email.lower())).scalar())


def test_set_status_legal_moves_and_refusals(world: tuple[Config, Store], config_path: Path,
                                             run_cli: Run) -> None:
    config, store = world
    ok = run_cli("--config", config_path, "subscribers", "set", "ann.b@example.net",
                 "--status", "confirmed")
    assert ok.code == 0 and ok.out.strip() == "ann.b@example.net: pending -> confirmed", ok
    again = run_cli("--config", config_path, "subscribers", "set", "ann.b@example.net",
                    "--status", "confirmed")
    assert again.out.strip() == "ann.b@example.net: already confirmed"
    out = run_cli("--config", config_path, "subscribers", "set", "ann.b@example.net",
                  "--status", "unsubscribed")
    assert out.code == 0 and _status(store, "ann.b@example.net") == "unsubscribed"
    # back to confirmed only by the person's own consent
    refused = run_cli("--config", config_path, "subscribers", "set", "ann.b@example.net",
                      "--status", "confirmed")
    assert refused.code == 1 and refused.err.startswith("Error: status: unsubscribed: only")
    assert _status(store, "ann.b@example.net") == "unsubscribed"
    assert run_cli("--config", config_path, "subscribers", "set", "bob@example.org",
                   "--status", "pending").code == 2  # not a status an operator sets

    # bounced after being confirmed: the mailbox works again
    with store.write() as conn:
        conn.execute(update(subscribers).where(subscribers.c.email_key == "bob@example.org")
                     .values(status="bounced", hard_bounces=3))
    change = subscriber_admin.set_status(store, "bob@example.org", "confirmed")
    assert change.changed and change.before.value == "bounced"
    assert subscriber_admin.show_subscriber(store, config, "bob@example.org") \
        .subscriber["hard_bounces"] == 0  # type: ignore[index]

    # a complaint suppresses the address: never confirmed by hand
    with store.write() as conn:
        conn.execute(update(subscribers).where(subscribers.c.email_key == "cara@example.com")
                     .values(status="pending"))
        conn.execute(text("INSERT INTO suppressions (email_hash, reason, created_at) "
                          "VALUES (:h, 'complaint', :t)"),
                     {"h": hashlib.sha256(b"cara@example.com").hexdigest(),
                      "t": now_utc().replace(tzinfo=None)})
    with pytest.raises(ValidationError, match="suppressed"):
        subscriber_admin.set_status(store, "cara@example.com", "confirmed")
    assert _status(store, "cara@example.com") == "pending"

    trail = audit.log(store, limit=20, action="subscribers.set")
    assert [(e.ok, e.detail.get("to")) for e in trail][:3] == [
        (False, "confirmed"), (True, "confirmed"), (False, "confirmed")]
    assert trail[-1].detail == {"from": "pending", "to": "confirmed", "changed": True}
    assert all(e.account == "cli" and e.address is None for e in trail)


def test_unsuppress_needs_a_reason_and_records_it(
        world: tuple[Config, Store], config_path: Path, run_cli: Run) -> None:
    config, store = world
    actions.subscribers.remove_subscriber(store, "bob@example.org")
    assert add_subscriber(store, config, "bob@example.org").subscriber is None  # suppressed

    assert run_cli("--config", config_path, "subscribers", "unsuppress",
                   "bob@example.org").code == 2  # --reason is required
    blank = run_cli("--config", config_path, "subscribers", "unsuppress", "bob@example.org",
                    "--reason", "   ")
    assert blank.code == 1 and blank.err.startswith("Error: --reason: give the reason")
    nope = run_cli("--config", config_path, "subscribers", "unsuppress", "ann@example.org",
                   "--reason", "asked")
    assert nope.code == 1 and "is not suppressed" in nope.err
    done = run_cli("--config", config_path, "subscribers", "unsuppress", "Bob@Example.org",
                   "--reason", "asked by phone on 7 December to subscribe again")
    assert done.code == 0 and done.out.startswith("b•••@example.org: suppression (removed) "
                                                  "lifted"), done
    # lifting confirms nobody: the person subscribes again, with a confirmation
    again = add_subscriber(store, config, "bob@example.org")
    assert again.subscriber is not None and again.subscriber.status.value == "pending"

    logged = json.loads(run_cli("--config", config_path, "admin", "log", "--json",
                                "--action", "subscribers.unsuppress").out)
    # the blank reason and the address not suppressed are refusals, recorded as such
    assert [r["ok"] for r in logged] == [True, False, False]
    assert logged[1]["target"] == "a•••@example.org" and logged[2]["target"] == "b•••@example.org"
    row = logged[0]
    assert row["account"] == "cli" and row["address"] is None and row["session"] is None
    assert row["target"] == "b•••@example.org" and row["detail"]["was"] == "removed"
    assert row["detail"]["reason"] == "asked by phone on 7 December to subscribe again"
    # the trail never writes an erased address back into the store
    with store.read() as conn:
        stored = " ".join(str(v) for r in conn.execute(select(admin_audit)) for v in r)
    assert "bob@example.org" not in stored.lower()


def test_an_erasure_takes_the_address_out_of_the_audit_trail_too(
        world: tuple[Config, Store]) -> None:
    _config, store = world
    subscriber_admin.set_status(store, "bob@example.org", "unsubscribed")
    with pytest.raises(ValidationError):
        subscriber_admin.set_status(store, "bob@example.org", "confirmed")  # recorded too
    actions.subscribers.remove_subscriber(store, "bob@example.org")
    with store.read() as conn:
        rows = conn.execute(select(admin_audit.c.target, admin_audit.c.detail)).all()
    assert len(rows) == 2
    assert all("bob@example.org" not in f"{t} {d}".lower() for t, d in rows)
    # the change's row named it and is scrubbed; the refusal kept it masked from the start
    assert sorted(t for t, _ in rows) == ["b•••@example.org", "erased@invalid"]


def test_a_refused_change_never_writes_an_erased_or_unknown_address_to_the_trail(
        world: tuple[Config, Store]) -> None:
    """Erasure scrubs the trail once; a refusal recorded after it (a stale console page,
    a typo) must not write the erased address back, nor keep an address that was never a
    subscriber's, which no erasure would ever find."""
    _config, store = world
    actions.subscribers.remove_subscriber(store, "bob@example.org")
    for who in ("Bob@Example.org", "nobody.here@example.net"):
        with pytest.raises(NotFoundError):
            subscriber_admin.set_status(store, who, "confirmed")
    with store.read() as conn:
        rows = conn.execute(select(admin_audit.c.target, admin_audit.c.detail,
                                   admin_audit.c.ok)).all()
    assert len(rows) == 2 and not any(ok for _, _, ok in rows)  # the refusals are recorded
    written = " ".join(f"{t} {d}" for t, d, _ in rows).lower()
    assert "bob@example.org" not in written and "nobody.here@example.net" not in written
    assert {t for t, _, _ in rows} == {"b•••@example.org", "n•••e@example.net"}


def test_an_unsuppress_reason_naming_the_address_keeps_it_masked(
        world: tuple[Config, Store]) -> None:
    _config, store = world
    actions.subscribers.remove_subscriber(store, "bob@example.org")
    subscriber_admin.unsuppress(store, "bob@example.org",
                                "BOB@example.org phoned: bob@example.org wants the digest")
    with store.read() as conn:
        stored = " ".join(str(v) for r in conn.execute(select(admin_audit)) for v in r)
    assert "bob@example.org" not in stored.lower(), stored
    assert "b•••@example.org phoned: b•••@example.org wants the digest" in stored


def test_a_refused_unsuppress_keeps_the_address_masked_in_its_error(
        world: tuple[Config, Store]) -> None:
    _config, store = world
    with pytest.raises(ValidationError):  # never suppressed: nothing to lift
        subscriber_admin.unsuppress(store, "Stranger@Example.net", "asked")
    with store.read() as conn:
        stored = " ".join(str(v) for r in conn.execute(select(admin_audit)) for v in r)
    assert "stranger@example.net" not in stored.lower() and "is not suppressed" in stored

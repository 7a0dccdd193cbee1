"""`digests retry ID` (the outbox retry's path and rules) and `digest test-send`, against a
real SMTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from seriesfeed import actions
from seriesfeed.actions import subscribers
from seriesfeed.clock import now_utc
from seriesfeed.config import Config, load_config
from seriesfeed.store import Store, open_store
from seriesfeed.store import outbox as outq
from seriesfeed.store import subscribers as sq
from seriesfeed.store.tables import outbox, suppressions
from seriesfeed.store.tables import subscribers as subscriber_rows
from tests.conftest import SEED_PAGE, CliResult
from tests.smtp_server import SmtpServer
from tests.test_ops_cli import relay_config

Run = Callable[..., CliResult]


@pytest.fixture
def world(make_config: Callable[..., Path], database_url: str,
          smtp_server: SmtpServer) -> Iterator[tuple[Path, Config, Store]]:
    path = relay_config(make_config, database_url, smtp_server)
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    for email, lang in (("ann@example.org", "en"), ("Gone@hard.example.net", "en"),
                        ("left@hard.example.net", "en"), ("bea@example.org", "es")):
        subscribers.add_subscriber(store, config, email, language=lang, frequency="daily",
                                   confirmed=True)
    actions.import_entries(store, config, SEED_PAGE)
    yield path, config, store
    store.close()


def _send(store: Store, config: Config) -> str:
    return asyncio.run(actions.send_digests(store, config, scheduled=False))


def test_digests_retry_requeues_failed_rows_but_never_for_the_unsubscribed(
        world: tuple[Path, Config, Store], run_cli: Run, smtp_server: SmtpServer) -> None:
    path, config, store = world
    smtp_server.recorder.rcpt_replies["hard.example.net"] = "550 5.1.1 no such user"
    _send(store, config)
    en = next(d for d in actions.ops.list_digests(store, config) if d["language"] == "en")
    shown = actions.ops.show_digest(store, config, en["id"])
    why = {r["recipient"]: r["why"] for r in shown["not_sent"]}
    assert why == {"Gone@hard.example.net": "failed: 550 RCPT TO: 550 5.1.1 no such user",
                   "left@hard.example.net": "failed: 550 RCPT TO: 550 5.1.1 no such user"}
    failed = {r["recipient"]: r for r in shown["not_sent"]}
    subscribers.unsubscribe_address(store, "left@hard.example.net")

    # a row named for someone who left is refused, and nothing changes
    named = run_cli("--config", path, "outbox", "retry",
                    str(failed["left@hard.example.net"]["id"]))
    assert named.code == 1 and "the subscriber is unsubscribed" in named.err, named
    assert actions.ops.show_digest(store, config, en["id"])["failed"] == 2

    done = run_cli("--config", path, "digests", "retry", str(en["id"]))
    assert done.code == 0, done
    gone_id, left_id = failed["Gone@hard.example.net"]["id"], failed["left@hard.example.net"]["id"]
    assert done.out.splitlines() == [
        f"1 rows queued again: {gone_id}",
        f"  not retried: row {left_id} to left@hard.example.net: the subscriber is "
        "unsubscribed"]
    again = actions.ops.retry_digest(store, en["id"])  # nothing failed is left to retry
    assert again.queued == [] and [s["id"] for s in again.skipped] == [left_id]
    missing = run_cli("--config", path, "digests", "retry", "999")
    assert missing.code == 1 and missing.err.startswith("Error: no digest 999")

    smtp_server.recorder.rcpt_replies.clear()  # the mailbox works again
    before = len(smtp_server.recorder.messages)
    _send(store, config)
    new = smtp_server.recorder.messages[before:]
    assert [m.recipients for m in new] == [["Gone@hard.example.net"]]
    assert new[0].message["Message-ID"] == failed["Gone@hard.example.net"]["message_id"]
    rows = json.loads(run_cli("--config", path, "outbox", "list", "--digest", str(en["id"]),
                              "--json").out)
    states = {r["recipient"]: r["state"] for r in rows}
    assert states == {"ann@example.org": "sent", "Gone@hard.example.net": "sent",
                      "left@hard.example.net": "failed"}


def test_test_send_arrives_alone_and_the_real_digest_still_goes_to_everyone(
        world: tuple[Path, Config, Store], run_cli: Run, smtp_server: SmtpServer) -> None:
    path, config, store = world
    out = run_cli("--config", path, "digest", "test-send", "--language", "es", "--to",
                  "Editor@Example.org", "--frequency", "daily")
    assert out.code == 0, out
    got = smtp_server.recorder.wait_for(1)
    assert len(got) == 1 and got[0].recipients == ["Editor@example.org"]
    msg = got[0].message
    assert msg["Message-ID"].startswith("<test.") and msg["Message-ID"] in out.out
    assert msg["Subject"].startswith("[test] ") and "artículo" in msg["Subject"]
    # nothing recorded: no digest, no outbox row
    assert json.loads(run_cli("--config", path, "digests", "list", "--json").out) == []
    assert json.loads(run_cli("--config", path, "outbox", "list", "--json").out) == []

    bad = run_cli("--config", path, "digest", "test-send", "--language", "fr", "--to",
                  "editor@example.org")
    assert bad.code == 1 and bad.err.startswith("Error: --language: unknown language 'fr'")
    no_to = run_cli("--config", path, "digest", "test-send", "--language", "es")
    assert no_to.code == 2

    _send(store, config)
    by = {}
    for m in smtp_server.recorder.messages[1:]:
        for r in m.recipients:
            by.setdefault(r, []).append(m.message)
    assert sorted(by) == ["Gone@hard.example.net", "ann@example.org", "bea@example.org",
                          "left@hard.example.net"]
    assert all(len(v) == 1 and v[0]["Message-ID"].startswith("<digest.") for v in by.values())
    assert by["bea@example.org"][0]["Subject"] == msg["Subject"].removeprefix("[test] ")


def test_a_suppressed_address_is_never_retried_whatever_its_status(store: Store) -> None:
    """A restored export can hold a confirmed subscriber whose address is suppressed (a
    complaint kept through the round trip): the retry checks the suppression itself."""
    now = now_utc()
    with store.write() as conn:
        ids = []
        for n, email in enumerate(("kept@example.org", "Quiet@Example.org")):
            sid = conn.execute(insert(subscriber_rows).values(
                email=email, email_key=email.lower(), language="en", frequency="daily",
                status="confirmed", created_at=now, last_seq=0, hard_bounces=0,
                soft_bounces=0, start="new").returning(subscriber_rows.c.id)).scalar_one()
            ids.append(conn.execute(insert(outbox).values(
                kind="digest", subscriber_id=sid, recipient=email,
                message_id=f"<m{n}@example.org>", state="failed", attempts=1,
                uncertain=False, created_at=now, operator_retries=0)
                .returning(outbox.c.id)).scalar_one())
        conn.execute(insert(suppressions).values(email_hash=sq.email_hash("quiet@example.org"),
                                                 reason="complaint", created_at=now))
        assert outq.retry_blockers(conn, ids) == {ids[1]: "the address is suppressed"}
    done = actions.ops.retry_outbox(store, None)
    assert done.queued == [ids[0]]
    assert done.skipped == [{"id": ids[1], "recipient": "Quiet@Example.org",
                             "why": "the address is suppressed"}]


def test_test_send_never_mails_a_suppressed_or_erased_address(
        world: tuple[Path, Config, Store], run_cli: Run, smtp_server: SmtpServer) -> None:
    """A suppression is the promise that no mail goes to the address (a complaint, an
    erasure): an operator's test copy keeps it too."""
    path, _config, store = world
    subscribers.remove_subscriber(store, "ann@example.org")  # erased: suppressed
    for to in ("ann@example.org", "ANN@Example.org"):
        out = run_cli("--config", path, "digest", "test-send", "--language", "en", "--to", to,
                      "--frequency", "daily")
        lines = out.err.strip().splitlines()
        assert out.code == 1 and len(lines) == 1, out.err
        assert lines[0].startswith("Error: --to: ") and "suppressed" in lines[0], lines
    assert smtp_server.recorder.messages == []
    # and the erased address is not written back anywhere by the refusal
    with store.read() as conn:
        for table in ("admin_audit", "outbox", "subscribers"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            assert "ann@example.org" not in repr(rows).lower(), table
    # another address still gets its copy
    assert run_cli("--config", path, "digest", "test-send", "--language", "en", "--to",
                   "editor@example.org", "--frequency", "daily").code == 0
    assert len(smtp_server.recorder.wait_for(1)) == 1

"""`outbox list|retry` and `digests list|show`: who did not get a digest, and why, without SQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seriesfeed import actions
from seriesfeed.actions import subscribers
from seriesfeed.config import Config, load_config
from seriesfeed.store import Store, open_store
from tests.conftest import SEED_PAGE, CliResult
from tests.smtp_server import SmtpServer


def relay_config(make_config: Callable[..., Path], database_url: str,
                 smtp_server: SmtpServer) -> Path:
    """A config on ``database_url`` whose mail goes to ``smtp_server``."""
    return make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none",
              "connections": 2},
        web={"host": "127.0.0.1", "port": 8080, "base_url": "https://feeds.example.org"},
        security={"secret_key": "d" * 32})


@pytest.fixture
def world(make_config: Callable[..., Path], database_url: str,
          smtp_server: SmtpServer) -> Iterator[tuple[Path, Config, Store]]:
    path = relay_config(make_config, database_url, smtp_server)
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    for email in ("ann@example.org", "Gone@hard.example.net", "cai@example.org"):
        subscribers.add_subscriber(store, config, email, frequency="daily", confirmed=True)
    actions.import_entries(store, config, SEED_PAGE)
    smtp_server.recorder.rcpt_replies["hard.example.net"] = "550 5.1.1 no such user"
    yield path, config, store
    store.close()


def _send(store: Store, config: Config) -> str:
    return asyncio.run(actions.send_digests(store, config, scheduled=False))


def test_outbox_and_digest_listings_name_the_failed_recipient_of_a_550(
        world: tuple[Path, Config, Store], run_cli: Callable[..., CliResult],
        smtp_server: SmtpServer) -> None:
    path, config, store = world
    _send(store, config)
    assert len(smtp_server.recorder.messages) == 2

    failed = run_cli("--config", path, "outbox", "list", "--state", "failed", "--json")
    assert failed.code == 0, failed
    rows = json.loads(failed.out)
    assert [r["recipient"] for r in rows] == ["Gone@hard.example.net"]
    assert rows[0]["smtp_code"] == 550 and "no such user" in rows[0]["last_error"]
    # times are the site's, with its offset, to the second
    assert rows[0]["created_at"].endswith(("-05:00", "-04:00"))
    assert "." not in rows[0]["created_at"]

    by_email = json.loads(run_cli("--config", path, "outbox", "list", "--email",
                                  "ann@EXAMPLE.org", "--json").out)
    assert [(r["recipient"], r["state"]) for r in by_email] == [("ann@example.org", "sent")]

    listed = json.loads(run_cli("--config", path, "digests", "list", "--json").out)
    assert len(listed) == 1
    d = listed[0]
    assert (d["language"], d["frequency"], d["recipients"], d["sent"], d["failed"],
            d["pending"]) == ("en", "daily", 3, 2, 1, 0)
    assert d["first_sent_at"] and d["last_sent_at"] and d["first_sent_at"] <= d["last_sent_at"]

    shown = run_cli("--config", path, "digests", "show", str(d["id"]), "--json")
    assert shown.code == 0, shown
    detail = json.loads(shown.out)
    assert [(r["recipient"], r["state"], r["smtp_code"]) for r in detail["not_sent"]] == [
        ("Gone@hard.example.net", "failed", 550)]
    text = run_cli("--config", path, "digests", "show", str(d["id"]))
    assert "Gone@hard.example.net" in text.out and "550" in text.out

    missing = run_cli("--config", path, "digests", "show", "999")
    assert missing.code == 1 and missing.err.startswith("Error: no digest 999")


def test_retry_puts_failed_rows_back_with_the_same_message_id_and_counts_it(
        world: tuple[Path, Config, Store], run_cli: Callable[..., CliResult],
        smtp_server: SmtpServer) -> None:
    path, config, store = world
    _send(store, config)
    before = json.loads(run_cli("--config", path, "outbox", "list", "--json").out)
    failed = [r for r in before if r["state"] == "failed"]
    sent = [r for r in before if r["state"] == "sent"]

    # a row that is not failed: refused, and nothing changes
    refused = run_cli("--config", path, "outbox", "retry", str(sent[0]["id"]),
                      str(failed[0]["id"]))
    assert refused.code == 1 and "not failed" in refused.err
    assert json.loads(run_cli("--config", path, "outbox", "list", "--json").out) == before
    assert run_cli("--config", path, "outbox", "retry").code == 2  # neither IDs nor --failed

    done = run_cli("--config", path, "outbox", "retry", "--failed", "--digest",
                   str(failed[0]["digest_id"]))
    assert done.code == 0 and done.out.startswith("1 rows queued again"), done
    row = json.loads(run_cli("--config", path, "outbox", "list", "--email", "gone@hard.example.net",
                             "--json").out)[0]
    assert row["state"] == "queued" and row["message_id"] == failed[0]["message_id"]
    assert row["operator_retries"] == 1 and row["note"].startswith("operator retry 1")

    smtp_server.recorder.rcpt_replies.clear()  # the mailbox exists again
    _send(store, config)
    got = [m for m in smtp_server.recorder.messages if m.recipients == ["Gone@hard.example.net"]]
    assert len(got) == 1 and got[0].message["Message-ID"] == failed[0]["message_id"]
    row = json.loads(run_cli("--config", path, "outbox", "list", "--email", "gone@hard.example.net",
                             "--json").out)[0]
    assert row["state"] == "sent" and row["operator_retries"] == 1
    assert len(smtp_server.recorder.messages) == 3  # the two sent ones were not sent again

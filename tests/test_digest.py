"""Digests end to end against a real SMTP server on 127.0.0.1: who gets what, once."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from seriesfeed import actions
from seriesfeed.actions.digests import record_digests
from seriesfeed.config import Config, load_config
from seriesfeed.models import Entry, Frequency
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import outbox, subscribers
from tests.conftest import EXAMPLE_JSON, SEED_PAGE
from tests.smtp_server import SmtpServer

SLUG = "reflections-on-the-iso-crisis"


@pytest.fixture
def world(make_config: Callable[..., Path], database_url: str,
          smtp_server: SmtpServer) -> Iterator[tuple[Config, Store]]:
    config = load_config(make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none",
              "connections": 2},
        web={"host": "127.0.0.1", "port": 8080, "base_url": "https://feeds.example.org"},
        security={"secret_key": "d" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    for email, lang, freq in (("ann@example.org", "en", "daily"),
                              ("bea@example.org", "es", "daily"),
                              ("cai@example.org", "en", "weekly")):
        actions.subscribers.add_subscriber(store, config, email, language=lang, frequency=freq,
                                     confirmed=True, name="Ann O'Neil" if lang == "en" else None)
    # the articles come after the subscriptions, so they are news to everyone
    actions.import_entries(store, config, SEED_PAGE)
    actions.import_entries(store, config, EXAMPLE_JSON)
    yield config, store
    store.close()


def _send(store: Store, config: Config, frequency: Frequency | None = None) -> str:
    return asyncio.run(actions.send_digests(store, config, frequency=frequency,
                                            scheduled=False))


def _by_recipient(server: SmtpServer) -> dict[str, list[EmailMessage]]:
    out: dict[str, list[EmailMessage]] = {}
    for m in server.recorder.messages:
        for r in m.recipients:
            out.setdefault(r, []).append(m.message)
    return out


def test_each_subscriber_gets_one_digest_in_their_language(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = world
    summary = _send(store, config)
    assert "3 sent" in summary
    got = _by_recipient(smtp_server)
    assert sorted(got) == ["ann@example.org", "bea@example.org", "cai@example.org"]
    assert all(len(v) == 1 for v in got.values())
    en, es = got["ann@example.org"][0], got["bea@example.org"][0]
    assert en["Subject"] == "Reflections on the ISO crisis: 18 new articles"
    assert es["Subject"] == "Reflexiones sobre la crisis de la ISO: 2 artículos nuevos"
    assert str(en["To"]) == "Ann O'Neil <ann@example.org>"
    for msg in (en, es):
        assert msg.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in msg.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        assert msg["Message-ID"].startswith("<digest.")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.match(r"<https://feeds\.example\.org/unsubscribe/[\w\-.]+>",
                        msg["List-Unsubscribe"])
        assert msg["List-Id"] and msg["Date"]
    es_text = es.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "26 de marzo de 2019" in es_text and "Carta a las bases de la ISO" in es_text
    assert "También en inglés" in es_text  # link to the translation
    es_html = es.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script" not in es_html and 'style="' in es_html  # CSS inlined
    assert "prefers-color-scheme: dark" in es_html  # the dark-mode rules stay in <style>
    for raw in smtp_server.recorder.messages:
        assert b"\r\n" in raw.data and b"\n" not in raw.data.replace(b"\r\n", b"")
        assert max(len(line) for line in raw.data.split(b"\r\n")) <= 998
        assert all(b < 128 for b in raw.data)  # 7-bit: no 8BITMIME needed


def test_second_send_sends_nothing_and_a_new_article_sends_only_it(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = world
    _send(store, config)
    assert len(smtp_server.recorder.messages) == 3
    assert "0 sent" in _send(store, config)
    assert len(smtp_server.recorder.messages) == 3
    actions.add_entry(store, config, Entry(
        series=SLUG, language="en", title="A late, back-dated piece", summary="Late.",
        published=datetime(2019, 3, 1, tzinfo=config.zone)))
    actions.add_entry(store, config, Entry(  # an edit of a sent entry is not news
        series=SLUG, language="en", title="Letter to the ISO membership", summary="Edited.",
        published=datetime(2019, 3, 15, tzinfo=config.zone),
        url="https://socialistworker.org/2019/03/15/letter-to-the-iso-membership/"))
    _send(store, config, Frequency.DAILY)
    new = smtp_server.recorder.messages[3:]
    assert [m.recipients for m in new] == [["ann@example.org"]]
    body = new[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "A late, back-dated piece" in body and "Letter to the ISO" not in body
    assert new[0].message["Subject"].endswith("1 new article")


def test_scheduled_runs_record_one_digest_per_slot(world: tuple[Config, Store]) -> None:
    config, store = world
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    first = record_digests(store, config, Frequency.DAILY, now, scheduled=True)
    assert {d.language for d in first} == {"en", "es"}
    assert {d.period for d in first} == {"2026-11-24"}
    actions.add_entry(store, config, Entry(series=SLUG, language="en", title="Later today",
                                           summary="x", published=now))
    assert record_digests(store, config, Frequency.DAILY, now, scheduled=True) == []
    weekly = record_digests(store, config, Frequency.WEEKLY, now, scheduled=True)
    assert [d.period for d in weekly] == ["2026-W48"]


def test_a_new_subscriber_starts_from_confirmation_and_unsubscribed_get_nothing(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = world
    actions.subscribers.add_subscriber(store, config, "late@example.org", language="en",
                                 frequency="daily", confirmed=True)
    record_digests(store, config, Frequency.DAILY, datetime.now(UTC), scheduled=False)
    with store.write() as conn:  # Bea unsubscribes after recording, before sending
        from seriesfeed.store import subscribers as sq
        bea = sq.get(conn, email="bea@example.org")
        assert bea is not None and bea.id is not None
        sq.unsubscribe(conn, bea.id, datetime.now(UTC))
    _send(store, config, Frequency.DAILY)
    got = _by_recipient(smtp_server)
    assert "late@example.org" not in got  # confirmed after every stored entry
    assert "bea@example.org" not in got
    assert "ann@example.org" in got


def test_451_then_250_is_delivered_and_550_fails_and_bounces(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = world
    actions.subscribers.add_subscriber(store, config, "gone@hard.example.net", language="es",
                                 frequency="daily", confirmed=True)
    actions.subscribers.add_subscriber(store, config, "busy@soft.example.net", language="es",
                                 frequency="daily", confirmed=True)
    actions.add_entry(store, config, Entry(series=SLUG, language="es", title="Nueva",
                                           summary="x", published=datetime.now(UTC)))
    smtp_server.recorder.rcpt_replies.update({"hard.example.net": "550 5.1.1 no such user",
                                              "soft.example.net": "451 4.3.0 try later"})
    _send(store, config, Frequency.DAILY)
    with store.read() as conn:
        states = dict(conn.execute(select(outbox.c.recipient, outbox.c.state)).all())
        hard = conn.execute(select(subscribers.c.hard_bounces).where(
            subscribers.c.email == "gone@hard.example.net")).scalar()
    assert states["gone@hard.example.net"] == "failed" and hard == 1
    assert states["busy@soft.example.net"] == "retry"
    smtp_server.recorder.rcpt_replies.clear()
    with store.write() as conn:  # the retry comes due
        from sqlalchemy import update
        conn.execute(update(outbox).values(next_at=datetime(2000, 1, 1, tzinfo=UTC))
                     .where(outbox.c.state == "retry"))
    from seriesfeed.actions.delivery import drain_outbox

    asyncio.run(drain_outbox(store, config))
    with store.read() as conn:
        assert conn.execute(select(outbox.c.state).where(
            outbox.c.recipient == "busy@soft.example.net")).scalar() == "sent"
        assert conn.execute(select(outbox.c.attempts).where(
            outbox.c.recipient == "gone@hard.example.net")).scalar() == 1  # 5xx tried once
    assert "busy@soft.example.net" in _by_recipient(smtp_server)


def test_the_mailto_unsubscribe_is_offered_when_configured_and_its_token_unsubscribes(
        world: tuple[Config, Store], smtp_server: SmtpServer, run_cli) -> None:  # type: ignore[no-untyped-def]
    config, store = world
    config = dataclasses.replace(config, mail=dataclasses.replace(
        config.mail, unsubscribe_mailto="unsubscribe@example.org"))
    _send(store, config, Frequency.DAILY)
    msg = _by_recipient(smtp_server)["ann@example.org"][0]
    found = re.fullmatch(r"<https://feeds\.example\.org/unsubscribe/([\w\-.]+)>, "
                         r"<mailto:unsubscribe@example\.org\?subject=unsubscribe%20([\w\-.]+)>",
                         msg["List-Unsubscribe"])
    assert found and found.group(1) == found.group(2), msg["List-Unsubscribe"]
    assert config.path is not None
    # what an operator's mail filter does with the subject of a mail to that address
    done = run_cli("--config", config.path, "subscribers", "unsubscribe",
                   f"unsubscribe {found.group(2)}")
    assert done.code == 0 and "ann@example.org: unsubscribed" in done.out, done
    forged = run_cli("--config", config.path, "subscribers", "unsubscribe",
                     found.group(2)[:-2] + "xx")
    assert forged.code == 1 and forged.err.startswith("Error: "), forged
    with store.read() as conn:
        states = dict(conn.execute(select(subscribers.c.email, subscribers.c.status)).all())
    assert states["ann@example.org"] == "unsubscribed"
    assert states["cai@example.org"] == "confirmed"
    by_address = run_cli("--config", config.path, "subscribers", "unsubscribe", "CAI@example.org")
    assert by_address.code == 0 and "cai@example.org: unsubscribed" in by_address.out


def test_subjects_come_from_the_config_when_set(world: tuple[Config, Store],
                                               smtp_server: SmtpServer) -> None:
    config, store = world
    es = dataclasses.replace(config.languages["es"], digest_subject="Novedades: {title} ({n})")
    config = dataclasses.replace(config, languages={**config.languages, "es": es})
    _send(store, config, Frequency.DAILY)
    got = _by_recipient(smtp_server)
    assert got["bea@example.org"][0]["Subject"] == \
        "Novedades: Reflexiones sobre la crisis de la ISO (2)"
    # English keeps the catalogue's plural-aware default
    assert got["ann@example.org"][0]["Subject"] == \
        "Reflections on the ISO crisis: 18 new articles"


def test_cli_preview_and_dry_run(world: tuple[Config, Store], run_cli,  # type: ignore[no-untyped-def]
                                 tmp_path: Path) -> None:
    config, _store = world
    assert config.path is not None
    out = tmp_path / "preview.html"
    preview = run_cli("--config", config.path, "digest", "preview", "--lang", "es",
                      "--out", out)
    assert preview.code == 0, preview
    assert "26 de marzo de 2019" in out.read_text(encoding="utf-8")
    dry = run_cli("--config", config.path, "digest", "send", "--dry-run")
    assert dry.code == 0 and "en daily: 1 subscribers would get a digest" in dry.out
    due = run_cli("--config", config.path, "digest", "preview", "--lang", "es",
                  "--frequency", "daily")
    assert due.code == 0 and due.err == "", due
    assert "Subject: Reflexiones sobre la crisis de la ISO: 2 artículos nuevos" in due.out
    assert "SERIESFEED-" not in due.out and "/unsubscribe/PREVIEW" in due.out
    # nobody follows Spanish weekly: a labelled sample of the newest entries
    sample = run_cli("--config", config.path, "digest", "preview", "--lang", "es")
    assert sample.code == 0 and "No es weekly subscriber is due" in sample.err
    _send(_store, config)
    # once sent, the next daily digest would be a sample too, and a new entry is news
    after = run_cli("--config", config.path, "digest", "preview", "--frequency", "daily")
    assert "is due a digest now" in after.err
    actions.add_entry(_store, config, Entry(
        series=SLUG, language="en", title="Only this one", summary="New.",
        published=datetime(2019, 5, 1, tzinfo=config.zone)))
    news = run_cli("--config", config.path, "digest", "preview", "--frequency", "daily")
    assert news.err == "" and "1 new article" in news.out and "Only this one" in news.out
    bad = run_cli("--config", config.path, "digest", "preview", "--lang", "fr")
    assert bad.code == 1 and "unknown language 'fr'" in bad.err


def test_two_senders_share_the_outbox_without_double_claims(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    """On PostgreSQL claims use FOR UPDATE SKIP LOCKED; on SQLite the sender lock makes the
    second drain wait its turn. Either way each message goes out once."""
    from sqlalchemy import insert as sa_insert

    config, store = world
    now = datetime.now(UTC)
    with store.write() as conn:
        conn.execute(sa_insert(subscribers), [
            {"email": f"s{i}@example.org", "email_key": f"s{i}@example.org", "language": "en",
             "frequency": "daily", "status": "confirmed", "created_at": now,
             "confirmed_at": now, "last_seq": 0, "hard_bounces": 0} for i in range(400)])
    record_digests(store, config, Frequency.DAILY, now, scheduled=False)

    from seriesfeed.actions.delivery import DrainReport, drain_outbox

    async def both() -> list[DrainReport]:
        return list(await asyncio.gather(drain_outbox(store, config, batch=25),
                                         drain_outbox(store, config, batch=25)))

    reports = asyncio.run(both())
    per = _by_recipient(smtp_server)
    assert sum(r.sent for r in reports) == len(per) == 402
    assert all(len(v) == 1 for v in per.values())
    if store.dialect == "postgresql":
        assert all(r.sent > 0 for r in reports)  # the work was shared


def test_dkim_signature_covers_both_list_unsubscribe_headers_and_verifies(
        make_config: Callable[..., Path], tmp_path: Path,
        smtp_server: SmtpServer) -> None:
    import base64
    import subprocess

    import dkim

    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'k.sqlite3'}"},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        mail={"from": "Digest <digest@example.org>", "maildir": "var/maildir",
              "bounce_limit": 3, "max_attempts": 8, "retry_seconds": 60,
              "dkim_key": str(key), "dkim_selector": "sf", "dkim_domain": "example.org"}),
        env={})
    store = open_store(config.database.url, config.base_dir)
    actions.subscribers.add_subscriber(store, config, "d@example.org", frequency="daily",
                                 confirmed=True)
    actions.import_entries(store, config, SEED_PAGE)
    asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                     scheduled=False))
    store.close()
    raw = smtp_server.recorder.wait_for(1)[0].data
    assert raw.startswith(b"DKIM-Signature:")
    signed = raw.split(b"\r\n\r\n", 1)[0].lower()
    assert b"list-unsubscribe:list-unsubscribe-post" in signed.replace(b"\r\n", b"").replace(
        b" ", b"").replace(b"\t", b"")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sf._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    assert dkim.verify(raw, dnsfunc=dns)


def test_confirmation_mail_and_test_copies_are_signed_too(
        make_config: Callable[..., Path], tmp_path: Path,
        smtp_server: SmtpServer) -> None:
    """Only digests were signed: a confirmation or a `digest send --to` copy left unsigned,
    as DKIM-aligned receivers see it (DMARC), looked forged."""
    import base64
    import subprocess

    import dkim

    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'c.sqlite3'}"},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        mail={"from": "Digest <digest@example.org>", "maildir": "var/maildir",
              "bounce_limit": 3, "max_attempts": 8, "retry_seconds": 60,
              "dkim_key": str(key), "dkim_selector": "sf", "dkim_domain": "example.org"}),
        env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        added = actions.subscribers.add_subscriber(store, config, "new@example.org",
                                                   frequency="daily")
        assert added.subscriber is not None
        assert actions.subscribers.send_confirmation(
            store, config, added.subscriber).name == "SENT"
        actions.import_entries(store, config, SEED_PAGE)
        actions.digests.send_test_message(store, config, "editor@example.org", "en",
                                          Frequency.DAILY)
    finally:
        store.close()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sf._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    received = smtp_server.recorder.wait_for(2)
    assert sorted(r for m in received for r in m.recipients) == [
        "editor@example.org", "new@example.org"]
    for message in received:
        raw = message.data
        assert raw.startswith(b"DKIM-Signature:"), raw[:200]
        assert dkim.verify(raw, dnsfunc=dns)


def test_digest_send_on_a_terminal_shows_progress_and_a_summary(
        world: tuple[Config, Store]) -> None:
    import os
    import pty
    import subprocess
    import sys

    config, _store = world
    assert config.path is not None
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                             "digest", "send"], stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    assert b"3 sent, 0 to retry, 0 failed" in output


def test_a_server_dropping_connections_mid_run_loses_nothing(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    """Every 7th DATA the server hangs up after reading the message (RFC 1047's uncertain
    case): those rows are retried, counted as uncertain, and every recipient gets the digest."""
    import time as time_mod

    from aiosmtpd.controller import Controller

    from seriesfeed.actions.delivery import drain_outbox
    from tests.smtp_server import Recorder, free_port

    class Dropping(Recorder):
        seen = 0

        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            Dropping.seen += 1
            if Dropping.seen % 7 == 0:
                server.transport.close()  # gone after the final dot: delivery uncertain
                return "421 closing"
            return await super().handle_DATA(server, session, envelope)

    recorder = Dropping()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = load_config(make_config(
            database={"url": f"sqlite:///{tmp_path / 'drop.sqlite3'}"},
            smtp={"host": "127.0.0.1", "port": port, "security": "none", "connections": 2,
                  "timeout": 5},
            mail={"from": "Digest <digest@example.org>", "maildir": "var/maildir",
                  "bounce_limit": 3, "max_attempts": 20, "retry_seconds": 0.01}), env={})
        store = open_store(config.database.url, config.base_dir)
        for i in range(40):
            actions.subscribers.add_subscriber(store, config, f"p{i}@example.org",
                                         frequency="daily", confirmed=True)
        actions.import_entries(store, config, SEED_PAGE)
        first = asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                                 scheduled=False))
        uncertain = 0
        for _ in range(20):
            time_mod.sleep(0.1)
            report = asyncio.run(drain_outbox(store, config))
            uncertain += report.uncertain
            with store.read() as conn:
                left = conn.execute(select(outbox.c.id).where(outbox.c.state != "sent")).all()
            if not left:
                break
        store.close()
        uncertain += int(re.search(r"(\d+) uncertain", first).group(1))  # type: ignore[union-attr]
        assert uncertain >= 5  # the drops really happened and were counted
        got = {m.recipients[0] for m in recorder.messages}
        assert got == {f"p{i}@example.org" for i in range(40)}
        assert not left
    finally:
        controller.stop()

"""A late reader starts at part 1: a from-part-1 reader gets the back catalogue one part per
slot of their frequency, in their language, then new parts like everyone; re-running a
slot adds nothing; the welcome mail after confirming says what comes and when."""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select, update

from seriesfeed import actions
from seriesfeed.actions import subscriber_admin, subscribers
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.config import Config, load_config
from seriesfeed.models import Entry
from seriesfeed.store import Store, open_store, tables
from seriesfeed.store import entries as eq
from tests.conftest import SEED_PAGE, CliResult, ConfigFactory
from tests.smtp_server import SmtpServer

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # after that day's 07:00 (New York) slot


@pytest.fixture
def world(make_config: ConfigFactory, database_url: str,
          smtp_server: SmtpServer) -> Iterator[tuple[Config, Store]]:
    path = make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none",
              "connections": 1},
        web={"host": "127.0.0.1", "port": 8080, "base_url": "https://feeds.example.org"},
        security={"secret_key": "e" * 32})
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    yield config, store
    store.close()


def _send(store: Store, config: Config) -> str:
    return asyncio.run(actions.send_digests(store, config, scheduled=False))


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def _to(server: SmtpServer, address: str) -> list[EmailMessage]:
    return [m.message for m in server.recorder.messages if address in str(m.message["To"])]


def _parts(mails: list[EmailMessage]) -> list[int]:
    found = []
    for m in mails:
        match = re.search(r": part (\d+) of \d+$", str(m["Subject"]))
        if match:
            found.append(int(match.group(1)))
    return found


def test_a_reader_from_part_1_gets_one_part_per_daily_slot_then_new_parts(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = world
    with time_machine.travel(T0, tick=False) as clock:
        actions.import_entries(store, config, SEED_PAGE)
        subscribers.add_subscriber(store, config, "late@example.org", frequency="daily",
                                   confirmed=True, start="first")
        subscribers.add_subscriber(store, config, "now@example.org", frequency="daily",
                                   confirmed=True, start="new")
        for day in range(3):
            _send(store, config)
            _send(store, config)  # the same slot again: nothing more
            assert _parts(_to(smtp_server, "late@example.org")) == list(range(1, day + 2))
            clock.shift(timedelta(days=1))
        late = _to(smtp_server, "late@example.org")
        assert str(late[1]["Subject"]).endswith(": part 2 of 20")
        # 18 of the 20 parts are in English and this reader gets no originals: 16 after part 2
        assert "Part 2 of 20 · 16 still to come" in _text(late[1]), _text(late[1])
        assert _to(smtp_server, "now@example.org") == []  # "only new": no back catalogue
        # a new part: both readers get it in the digest, the late one also part 4
        actions.add_entry(store, config, Entry(
            series="reflections-on-the-iso-crisis", language="en", title="What comes next",
            summary="A new part.", published=T0 + timedelta(days=3),
            url="https://socialistworker.org/2026/12/04/what-comes-next/"))
        _send(store, config)
    late = _to(smtp_server, "late@example.org")
    assert _parts(late) == [1, 2, 3, 4]
    news = [m for m in late if "What comes next" in _text(m)]
    assert len(news) == 1 and not _parts(news)
    assert len([m for m in _to(smtp_server, "now@example.org")
                if "What comes next" in _text(m)]) == 1
    ids = [str(m["Message-ID"]) for m in late]
    assert len(set(ids)) == len(ids)


def test_the_back_catalogue_ends_and_the_cursor_goes(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config = dataclass_replace_digests(world[0], catch_up_per_digest=10)
    store = world[1]
    with time_machine.travel(T0, tick=False) as clock:
        actions.import_entries(store, config, SEED_PAGE)
        subscribers.add_subscriber(store, config, "late@example.org", frequency="daily",
                                   confirmed=True, start="first")
        for _ in range(3):
            _send(store, config)
            clock.shift(timedelta(days=1))
    with store.read() as conn:
        english = sorted({e.part for e in eq.list_entries(conn, language="en") if e.part})
    assert len(english) == 18  # the seed's English parts (two parts are Spanish only)
    assert _parts(_to(smtp_server, "late@example.org")) == english
    with store.read() as conn:
        assert conn.execute(select(tables.catch_ups)).all() == []


def test_a_reader_restored_from_bounced_gets_no_part_a_second_time(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    """Restoring a bounced reader keeps where their catch-up stood: only confirming a
    pending reader starts them on part 1 (restarting would send as catch-up mail, under
    new Message-IDs, the parts they already got)."""
    config = dataclass_replace_digests(world[0], catch_up_per_digest=10)
    store = world[1]
    reader = "late@example.org"
    with time_machine.travel(T0, tick=False) as clock:
        actions.import_entries(store, config, SEED_PAGE)
        subscribers.add_subscriber(store, config, reader, frequency="daily",
                                   confirmed=True, start="first")
        for _ in range(2):  # 10 + 8 parts: the English back catalogue is done
            _send(store, config)
            clock.shift(timedelta(days=1))
        actions.add_entry(store, config, Entry(
            series="reflections-on-the-iso-crisis", language="en", title="What comes next",
            summary="A new part.", published=T0 + timedelta(days=2),
            url="https://socialistworker.org/2026/12/03/what-comes-next/"))
        _send(store, config)  # the new part comes in an ordinary digest
        clock.shift(timedelta(days=1))
        with store.write() as conn:
            conn.execute(update(tables.subscribers)
                         .where(tables.subscribers.c.email_key == reader)
                         .values(status="bounced", hard_bounces=3))
        subscriber_admin.set_status(store, reader, "confirmed")
        for _ in range(3):
            _send(store, config)
            clock.shift(timedelta(days=1))
    late = _to(smtp_server, reader)
    parts = _parts(late)
    assert len(parts) == 18 and len(set(parts)) == 18, str(parts)
    assert len([m for m in late if "What comes next" in _text(m)]) == 1
    with store.read() as conn:
        assert conn.execute(select(tables.catch_ups)).all() == []


def dataclass_replace_digests(config: Config, **values: object) -> Config:
    import dataclasses
    return dataclasses.replace(config, digests=dataclasses.replace(config.digests, **values))


def test_a_spanish_reader_catches_up_in_spanish_with_the_fallback(
        make_config: ConfigFactory, database_url: str, smtp_server: SmtpServer) -> None:
    path = make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        security={"secret_key": "e" * 32})
    config = load_config(path, env={"SERIESFEED_LANGUAGES_ES_FALLBACK": "original"})
    store = open_store(config.database.url, config.base_dir)
    try:
        with time_machine.travel(T0, tick=False):
            actions.import_entries(store, config, SEED_PAGE)
            subscribers.add_subscriber(store, config, "lector@example.org", language="es",
                                       frequency="daily", confirmed=True, start="first")
            _send(store, config)
        (mail,) = _to(smtp_server, "lector@example.org")
        assert str(mail["Content-Language"]) == "es"
        assert re.search(r"Parte 1 de 20 · 19 (por llegar|todavía)", _text(mail)), _text(mail)
    finally:
        store.close()


def test_still_to_come_counts_the_parts_this_reader_will_get(
        make_config: ConfigFactory, database_url: str, smtp_server: SmtpServer) -> None:
    """Without the fallback a Spanish reader gets the Spanish parts only: "17 por llegar"
    after part 9 promised parts that never come."""
    path = make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        security={"secret_key": "e" * 32})
    config = load_config(path, env={})
    assert config.languages["es"].fallback != "original"
    store = open_store(config.database.url, config.base_dir)
    try:
        with time_machine.travel(T0, tick=False):
            actions.import_entries(store, config, SEED_PAGE)
            spanish = sorted(e.part for e in actions.list_entries(store)
                             if e.language == "es" and e.part is not None)
            assert len(spanish) >= 2, spanish
            subscribers.add_subscriber(store, config, "lectora@example.org", language="es",
                                       frequency="daily", confirmed=True, start="first")
            _send(store, config)
        (mail,) = _to(smtp_server, "lectora@example.org")
        text = _text(mail)
        later = len(spanish) - 1
        assert re.search(rf"Parte {spanish[0]} de \d+ · {later} por llegar", text), text
    finally:
        store.close()


def test_a_confirmed_reader_gets_a_welcome_in_their_language_with_the_next_date(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = world
    with time_machine.travel(T0, tick=False):
        actions.import_entries(store, config, SEED_PAGE)
        added = subscribers.add_subscriber(store, config, "nuevo@example.org", language="es",
                                           frequency="daily", start="first")
        assert added.subscriber is not None
        subscribers.send_confirmation(store, config, added.subscriber)
        (confirm,) = _to(smtp_server, "nuevo@example.org")
        token = re.search(r"/confirm/(\S+)", _text(confirm))
        assert token is not None
        subscribers.confirm(store, config, token.group(1))
        asyncio.run(drain_outbox(store, config))
    welcome = _to(smtp_server, "nuevo@example.org")[1]
    text = _text(welcome)
    assert str(welcome["Content-Language"]) == "es"
    # "te damos la bienvenida": Spanish that does not guess the reader's gender
    assert str(welcome["Subject"]).startswith("Te damos la bienvenida a "), welcome["Subject"]
    # T0 is past 07:00 in New York: the next daily slot is the 2nd, at 07:00
    assert "2 de diciembre de 2026" in text and "7:00" in text
    # no fallback for Spanish here: the first Spanish part of the seed is part 9
    assert "La parte 9 llega el 2 de diciembre de 2026 a las 7:00" in text
    assert "https://feeds.example.org/es/reflections-on-the-iso-crisis/" in text
    assert "https://feeds.example.org/preferences/" in text


def test_a_subscriber_added_confirmed_gets_no_welcome_unless_asked(
        world: tuple[Config, Store], smtp_server: SmtpServer,
        run_cli: Callable[..., CliResult]) -> None:
    config, _ = world
    assert config.path is not None
    assert run_cli("--config", config.path, "subscribers", "add", "quiet@example.org",
                   "--confirmed").code == 0
    assert run_cli("--config", config.path, "subscribers", "add", "hello@example.org",
                   "--confirmed", "--welcome", "--start", "first").code == 0
    assert _to(smtp_server, "quiet@example.org") == []
    (welcome,) = _to(smtp_server, "hello@example.org")
    assert "Welcome" in str(welcome["Subject"])


def test_start_goes_through_the_subscriber_csv(
        world: tuple[Config, Store], tmp_path: Path,
        run_cli: Callable[..., CliResult]) -> None:
    config, store = world
    assert config.path is not None
    actions.import_entries(store, config, SEED_PAGE)
    source = tmp_path / "in.csv"
    source.write_text("email,status,frequency,start\nfirst@example.org,confirmed,daily,first\n"
                      "new@example.org,confirmed,daily,\n")
    assert run_cli("--config", config.path, "subscribers", "import", source).code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("email,start\nx@example.org,later\n")
    result = run_cli("--config", config.path, "subscribers", "import", bad)
    assert result.code == 1 and "start" in result.err and "Traceback" not in result.err
    out = tmp_path / "out.csv"
    assert run_cli("--config", config.path, "subscribers", "export", "--out", out).code == 0
    with out.open() as f:
        rows = {r["email"]: r for r in csv.DictReader(f)}
    assert rows["first@example.org"]["start"] == "first"
    assert rows["new@example.org"]["start"] == "new"
    with store.read() as conn:
        assert len(conn.execute(select(tables.catch_ups)).all()) == 1
        assert conn.execute(select(tables.outbox)).all() == []


def test_the_catch_up_migration_goes_up_and_down_keeping_subscribers(
        database_url: str) -> None:
    """Down to the revision before it (no start, no catch_ups) and up again, on a
    store holding a subscriber who is catching up; the subscriber survives both ways."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import inspect, text

    from seriesfeed.store import HEAD_REVISION, MIGRATIONS

    store = Store(database_url)
    store.migrate()
    now = T0.replace(tzinfo=None)
    with store.write() as conn:
        conn.execute(text("INSERT INTO series (id, slug, created_at) VALUES (1, 's', :n)"),
                     {"n": now})
        conn.execute(text(
            "INSERT INTO subscribers (id, email, email_key, language, frequency, status, "
            "created_at, last_seq, hard_bounces, start) VALUES (1, 'a@example.org', "
            "'a@example.org', 'en', 'daily', 'confirmed', :n, 0, 0, 'first')"), {"n": now})
        conn.execute(text("INSERT INTO catch_ups (subscriber_id, series_id, next_part, "
                          "upto_seq) VALUES (1, 1, 2, 5)"))
        conn.execute(text("INSERT INTO subscriber_series (subscriber_id, series_id) "
                          "VALUES (1, 1)"))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "i23_nodes")  # the revision before catch-up
            assert "catch_ups" not in inspect(conn).get_table_names()
            assert "start" not in {c["name"] for c in inspect(conn).get_columns("subscribers")}
            assert conn.execute(text("SELECT email FROM subscribers")).scalar() == \
                "a@example.org"
            # the series they follow survive too (a rebuilt subscribers table would
            # have cascaded them away)
            assert conn.execute(text("SELECT count(*) FROM subscriber_series")).scalar() == 1
            command.upgrade(cfg, "head")
            assert conn.execute(text("SELECT start FROM subscribers")).scalar() == "new"
            assert conn.execute(text("SELECT count(*) FROM catch_ups")).scalar() == 0
        assert store.schema_revision() == HEAD_REVISION
    finally:
        store.close()

"""Scheduled publishing and the sources in the daemon: a future-dated entry is absent from
every feed, page, digest and WebSub ping until its time, then present, once; the daemon
wakes at that time; a new entry at a source reaches subscribers exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import time_machine

from seriesfeed import actions
from seriesfeed.actions import sources, subscribers
from seriesfeed.config import Config, load_config
from seriesfeed.daemon import PUBLISH, build_daemon
from seriesfeed.models import Entry
from seriesfeed.store import Store, open_store
from tests.conftest import CliResult, ConfigFactory
from tests.harness.http_source import Route, SourceServer, source_server
from tests.smtp_server import SmtpServer

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def hub() -> Iterator[SourceServer]:
    with source_server() as s:
        yield s


@pytest.fixture
def world(make_config: ConfigFactory, database_url: str, hub: SourceServer,
          smtp_server: SmtpServer) -> Iterator[tuple[Config, Store]]:
    path = make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none",
              "connections": 1},
        web={"host": "127.0.0.1", "port": 8080, "base_url": "https://feeds.example.org"},
        security={"secret_key": "e" * 32}, websub={"hub": hub.url("/hub")})
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    yield config, store
    store.close()


def _entry(title: str, when: datetime, language: str = "en", **kw: Any) -> Entry:
    return Entry(series="news", language=language, title=title, summary=f"About {title}",
                 published=when, url=f"https://socialistworker.org/{language}/"
                 f"{title.lower().replace(' ', '-')}/", **kw)


def _site_text(store: Store, config: Config) -> str:
    return "\n".join(d.body.decode("utf-8") for d in actions.plan_site(store, config))


def _send(store: Store, config: Config) -> str:
    return asyncio.run(actions.send_digests(store, config, scheduled=False))


def _mails(server: SmtpServer) -> list[EmailMessage]:
    return [m.message for m in server.recorder.messages]


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_a_future_entry_is_held_everywhere_until_its_time(
        world: tuple[Config, Store], smtp_server: SmtpServer, hub: SourceServer,
        tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    config, store = world
    out = tmp_path / "public"
    with time_machine.travel(T0, tick=False) as clock:
        actions.add_entry(store, config, _entry("Old news", T0 - timedelta(days=1)),
                          series_title="News")
        subscribers.add_subscriber(store, config, "ann@example.org", language="en",
                                     frequency="daily", confirmed=True)
        subscribers.add_subscriber(store, config, "bea@example.org", language="es",
                                     frequency="daily", confirmed=True)
        actions.build_feeds(store, config, out)
        pings_before = len(hub.requests_to("/hub"))
        # a translation pair with one future time, so both languages appear together
        at = T0 + timedelta(hours=1)
        original = actions.add_entry(store, config, _entry("Embargoed piece", at))
        actions.add_entry(store, config, _entry("Pieza embargada", at, "es",
                                                translation_of=original.id))
        listed = run_cli("--config", config.path, "entries", "list", "--json")
        scheduled = {e["title"]: e["scheduled"] for e in json.loads(listed.out)}
        assert scheduled == {"Old news": False, "Embargoed piece": True,
                             "Pieza embargada": True}
        human = run_cli("--config", config.path, "entries", "list").out
        assert "Embargoed piece" in human and "[scheduled 2026-12-01T08:00-05:00]" in human
        assert "embargad" not in _site_text(store, config).lower()
        assert "Embargoed" not in _site_text(store, config)
        actions.build_feeds(store, config, out)
        assert len(hub.requests_to("/hub")) == pings_before  # no ping for a held entry
        assert not any("Embargoed" in f.read_text(encoding="utf-8")
                       for f in out.rglob("*.xml"))
        assert "0 digests recorded" in _send(store, config)
        assert _mails(smtp_server) == []
        assert actions.next_release(store) == at

        clock.move_to(at - timedelta(seconds=1))
        assert actions.release_due(store) == 0
        clock.move_to(at)
        actions.build_feeds(store, config, out)  # publishes what came due, then builds
        assert len(hub.requests_to("/hub")) > pings_before
        site = _site_text(store, config)
        assert "Embargoed piece" in site and "Pieza embargada" in site
        atom = (out / "feeds" / "en" / "atom.xml").read_text(encoding="utf-8")
        assert "Embargoed piece" in atom and 'hreflang="es"' in atom
        assert actions.next_release(store) is None
        _send(store, config)
        _send(store, config)  # a second run finds nothing new
    got = {m["To"]: _text(m) for m in _mails(smtp_server)}
    assert len(_mails(smtp_server)) == 2
    assert "Embargoed piece" in got["ann@example.org"]
    assert "Pieza embargada" in got["bea@example.org"]
    assert "Old news" not in got["ann@example.org"]


def test_moving_a_held_entry_moves_its_release(world: tuple[Config, Store]) -> None:
    config, store = world
    with time_machine.travel(T0, tick=False):
        actions.add_entry(store, config, _entry("Later", T0 + timedelta(days=2)),
                          series_title="News")
        assert actions.next_release(store) == T0 + timedelta(days=2)
        actions.add_entry(store, config, _entry("Later", T0 + timedelta(hours=3)))
        assert actions.next_release(store) == T0 + timedelta(hours=3)
        # an entry already published is never held again (it may have been sent)
        actions.add_entry(store, config, _entry("Now", T0 - timedelta(hours=1)))
        actions.add_entry(store, config, _entry("Now", T0 + timedelta(hours=1)))
        assert [e.title for e in actions.list_entries(store) if e.scheduled] == ["Later"]


def test_the_daemon_wakes_at_the_release_time(
        world: tuple[Config, Store], make_config: ConfigFactory, database_url: str) -> None:
    config, store = world
    config = load_config(make_config(database={"url": database_url}, schedule={
        "feeds": "0 */6 * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
        "drain_seconds": 60, "watch_seconds": 0.1, "shutdown_timeout": 5}), env={})
    daemon = build_daemon(config, store, serve_web=False)
    release = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + \
        timedelta(seconds=1)

    async def scenario() -> tuple[datetime | None, datetime | None, list[str]]:
        runner = asyncio.ensure_future(daemon.run())
        await asyncio.wait_for(daemon.started.wait(), 10)
        await asyncio.to_thread(actions.add_entry, store, config,
                                _entry("Timed", release), "News")
        woke: datetime | None = None
        for _ in range(50):
            woke = daemon.next_wake(PUBLISH)
            if woke is not None:
                break
            await asyncio.sleep(0.1)
        while datetime.now(UTC) < release + timedelta(seconds=1):
            await asyncio.sleep(0.1)
        for _ in range(30):
            public = [e.title for e in await asyncio.to_thread(actions.list_entries, store)
                      if not e.scheduled]
            if public:
                break
            await asyncio.sleep(0.1)
        after = daemon.next_wake(PUBLISH)
        daemon.stopping.set()
        await runner
        return woke, after, public

    woke, after, public = asyncio.run(scenario())
    assert woke == release  # the moment itself, not the next cron tick
    assert public == ["Timed"]
    assert after is None


# -- sources in digests and in the daemon ---------------------------------------------

def _atom(items: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<entry><id>urn:uuid:{i}</id><title>{t}</title>"
        f"<link rel='alternate' href='https://news.example/{i}'/>"
        f"<author><name>Ann Writer</name></author>"
        f"<published>2026-11-0{n + 1}T10:00:00Z</published>"
        f"<updated>2026-11-0{n + 1}T10:00:00Z</updated><summary>On {t}</summary></entry>"
        for n, (i, t) in enumerate(items))
    return ("<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom' xml:lang='en'>"
            "<id>urn:news</id><title>News</title><updated>2026-11-09T10:00:00Z</updated>"
            f"{body}</feed>").encode()


def test_a_new_entry_at_the_source_reaches_subscribers_once(
        world: tuple[Config, Store], make_config: ConfigFactory, database_url: str,
        smtp_server: SmtpServer, hub: SourceServer) -> None:
    _, store = world
    path = make_config(
        f'[sources.news]\nurl = "{hub.url("/news.xml")}"\nseries = "news"\n',
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        security={"secret_key": "e" * 32})
    config = load_config(path, env={})
    hub.routes["/news.xml"] = Route(_atom([("a", "First"), ("b", "Second")]))
    poll = lambda: asyncio.run(sources.poll_source(  # noqa: E731
        store, config, config.sources["news"], force=True))
    assert poll().added == 2
    subscribers.add_subscriber(store, config, "ann@example.org", language="en",
                                 frequency="daily", confirmed=True)
    _send(store, config)
    assert _mails(smtp_server) == []  # nothing new since she confirmed
    hub.routes["/news.xml"] = Route(_atom([("a", "First"), ("b", "Second"), ("c", "Third")]))
    assert poll().added == 1
    _send(store, config)
    assert poll().outcome == "not-modified"
    _send(store, config)
    # the publisher fixes a title: updated in place, not sent again
    hub.routes["/news.xml"] = Route(_atom([("a", "First"), ("b", "Second"),
                                           ("c", "Third, corrected")]))
    assert (poll().updated, poll().outcome) == (1, "not-modified")
    _send(store, config)
    mails = _mails(smtp_server)
    assert len(mails) == 1
    assert "Third" in _text(mails[0]) and "Second" not in _text(mails[0])


def test_daemon_keeps_polling_a_healthy_source_while_a_failing_one_backs_off(
        make_config: ConfigFactory, database_url: str, hub: SourceServer) -> None:
    hub.routes["/ok.xml"] = Route(_atom([("a", "First")]))
    hub.routes["/bad.xml"] = Route(status=500, conditional=False)
    path = make_config(
        f'[sources.ok]\nurl = "{hub.url("/ok.xml")}"\nseries = "news"\n'
        f'schedule = "* * * * * *"\n'
        f'[sources.bad]\nurl = "{hub.url("/bad.xml")}"\nschedule = "* * * * * *"\n',
        database={"url": database_url},
        schedule={"feeds": "0 */6 * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
                  "drain_seconds": 60, "watch_seconds": 1, "shutdown_timeout": 5})
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    daemon = build_daemon(config, store, serve_web=False)

    async def scenario() -> None:
        runner = asyncio.ensure_future(daemon.run())
        await asyncio.wait_for(daemon.started.wait(), 10)
        await asyncio.sleep(4.5)
        daemon.stopping.set()
        await runner

    asyncio.run(scenario())
    state = {s["name"]: s for s in sources.list_sources(store, config)}
    store.close()
    assert len(hub.requests_to("/ok.xml")) >= 4  # every second
    assert len(hub.requests_to("/bad.xml")) == 1  # then a minute's backoff
    assert state["bad"]["failures"] == 1 and "HTTP 500" in state["bad"]["last_error"]
    assert state["ok"]["last_error"] is None and state["ok"]["entries_added"] == 1


def test_a_held_translation_is_not_linked_from_its_published_original(
        world: tuple[Config, Store]) -> None:
    config, store = world
    with time_machine.travel(T0, tick=False) as clock:
        original = actions.add_entry(store, config, _entry("Out now", T0 - timedelta(days=1)),
                                     series_title="News")
        later = actions.add_entry(store, config, _entry("Pronto", T0 + timedelta(days=1), "es",
                                                        translation_of=original.id))
        assert later.url is not None
        assert later.url not in _site_text(store, config)
        clock.move_to(T0 + timedelta(days=1))
        assert actions.release_due(store) == 1
        assert later.url in _site_text(store, config)
        stored = {e.title: e for e in actions.list_entries(store)}
        assert stored["Pronto"].translation_of == original.id  # the link survived release


def test_json_feed_and_html_files_import_too(
        world: tuple[Config, Store], tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    from tests.test_sources import seed_html

    config, store = world
    page = tmp_path / "series.html"
    page.write_bytes(seed_html())
    assert run_cli("--config", config.path, "import", page).code == 0
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps({"version": "https://jsonfeed.org/version/1.1",
                                "title": "Elsewhere", "language": "en", "items": [
                                    {"id": "urn:uuid:1", "title": "From a JSON Feed",
                                     "url": "https://elsewhere.example/1",
                                     "date_published": "2026-11-03T10:00:00Z",
                                     "authors": [{"name": "Ana López y Juan Pérez"}]}]}),
                    encoding="utf-8")
    done = run_cli("--config", config.path, "import", feed)
    assert done.code == 0, done
    stored = {e.title: e for e in actions.list_entries(store)}
    assert len(stored) == 21
    assert [a.name for a in stored["From a JSON Feed"].authors] == ["Ana López", "Juan Pérez"]
    assert stored["From a JSON Feed"].series == "elsewhere"

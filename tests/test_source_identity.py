"""Invariant 14 at the importers: an entry's identity is its id. A translation's
``hreflang`` link never makes it the original, a match by URL never changes an entry's
language or id, and a source never overwrites what an editor set on a series."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from seriesfeed import actions
from seriesfeed.actions import sources
from seriesfeed.config import Config, load_config
from seriesfeed.store import Store
from tests.conftest import CliResult, ConfigFactory
from tests.harness.http_source import Route, SourceServer, source_server


@pytest.fixture
def server() -> Iterator[SourceServer]:
    with source_server() as s:
        yield s


@pytest.fixture
def site(make_config: ConfigFactory, tmp_path: Path,
         server: SourceServer) -> Iterator[Callable[..., tuple[Config, Store]]]:
    opened: list[Store] = []

    def make(database: str | None = None, **tables: dict[str, Any]) -> tuple[Config, Store]:
        extra = ""
        for name, values in tables.items():
            values = {"url": server.url(values.pop("path")), **values}
            body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
            extra += f"\n[sources.{name}]\n{body}\n"
        path = make_config(extra, database={
            "url": database or f"sqlite:///{tmp_path / 'r.sqlite3'}"})
        config = load_config(path, env={})
        store = Store(config.database.url, base_dir=config.base_dir)
        store.migrate()
        opened.append(store)
        return config, store

    yield make
    for s in opened:
        s.close()


def poll(store: Store, config: Config, name: str) -> sources.PollResult:
    return asyncio.run(sources.poll_source(store, config, config.sources[name], force=True))


SITE = "https://news.example"


def english_feed(n: int = 3) -> bytes:
    items = "".join(
        f"<entry><id>urn:en:{i}</id><title>Letter {i}</title>"
        f"<link rel='alternate' href='{SITE}/letter-{i}/'/>"
        f"<published>2026-11-0{i}T10:00:00Z</published><summary>About {i}</summary></entry>"
        for i in range(1, n + 1))
    return (f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
            f"xml:lang='en'><id>urn:en</id><title>News</title>"
            f"<updated>2026-11-05T10:00:00Z</updated>{items}</feed>").encode()


def spanish_feed(title: str = "Obrero Socialista", subtitle: str = "") -> bytes:
    """Own link first (no hreflang), the English original second: feedparser's ``link``
    is the last alternate, the English one."""
    sub = f"<subtitle>{subtitle}</subtitle>" if subtitle else ""
    return (f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
            f"xml:lang='es'><id>urn:es</id><title>{title}</title>{sub}"
            f"<updated>2026-11-05T10:00:00Z</updated>"
            f"<entry><id>urn:es:1</id><title>Carta 1</title>"
            f"<link rel='alternate' href='{SITE}/carta-1/'/>"
            f"<link rel='alternate' hreflang='en' href='{SITE}/letter-1/'/>"
            f"<published>2026-11-01T12:00:00Z</published><summary>Sobre 1</summary></entry>"
            f"</feed>").encode()


def test_a_translation_takes_its_own_link_not_its_hreflang_alternate(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/en.xml"] = Route(english_feed())
    server.routes["/es.xml"] = Route(spanish_feed())
    config, store = site(en={"path": "/en.xml", "series": "news"},
                         es={"path": "/es.xml", "series": "news"})
    assert poll(store, config, "en").added == 3
    result = poll(store, config, "es")
    assert result.outcome == "imported" and result.added == 1, result
    stored = {e.id: e for e in actions.list_entries(store)}
    assert len(stored) == 4
    assert stored["urn:en:1"].language == "en" and stored["urn:en:1"].title == "Letter 1"
    assert stored["urn:es:1"].url == f"{SITE}/carta-1/"
    assert stored["urn:es:1"].translation_of == "urn:en:1"  # its hreflang link, as a link


def conflicting_feed() -> bytes:
    """A Spanish entry whose own link (no hreflang) is the English entry's URL."""
    return (f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
            f"xml:lang='es'><id>urn:es</id><title>Obrero Socialista</title>"
            f"<updated>2026-11-05T10:00:00Z</updated>"
            f"<entry><id>urn:es:1</id><title>Carta 1</title>"
            f"<link rel='alternate' href='{SITE}/letter-1/'/>"
            f"<published>2026-11-01T12:00:00Z</published><summary>Sobre 1</summary></entry>"
            f"<entry><id>urn:es:2</id><title>Carta 2</title>"
            f"<link rel='alternate' href='{SITE}/carta-2/'/>"
            f"<published>2026-11-02T12:00:00Z</published><summary>Sobre 2</summary></entry>"
            f"</feed>").encode()


def test_a_url_match_in_another_language_is_that_entrys_error_in_a_poll(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        caplog: pytest.LogCaptureFixture) -> None:
    server.routes["/en.xml"] = Route(english_feed())
    server.routes["/es.xml"] = Route(conflicting_feed())
    config, store = site(en={"path": "/en.xml", "series": "news"},
                         es={"path": "/es.xml", "series": "news"})
    poll(store, config, "en")
    before = {e.id: e.to_json() for e in actions.list_entries(store)}
    with caplog.at_level(logging.ERROR, logger="seriesfeed.sources"):
        result = poll(store, config, "es")
    assert result.added == 1, result  # the rest of the feed still imports
    after = {e.id: e.to_json() for e in actions.list_entries(store)}

    def stored(entry: dict[str, object]) -> dict[str, object]:
        # a part number is computed from the originals' order, not stored: the new
        # Spanish original takes its place in the series and later parts move up one
        return {k: v for k, v in entry.items() if k != "part"}

    assert {k: stored(after[k]) for k in before} == {k: stored(v) for k, v in before.items()}
    assert "urn:es:2" in after and "urn:es:1" not in after
    error = sources.list_sources(store, config)[1]["last_error"]
    assert error and f"{SITE}/letter-1/" in error and "urn:en:1" in error, error
    assert any(f"{SITE}/letter-1/" in r.getMessage() for r in caplog.records)
    assert poll(store, config, "es").outcome == "not-modified"
    assert sources.list_sources(store, config)[1]["last_error"] == error  # still unresolved


def test_a_url_match_in_another_language_fails_a_file_import_whole(
        make_config: ConfigFactory, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    path = make_config(database={"url": f"sqlite:///{tmp_path / 'f.sqlite3'}"})
    (tmp_path / "en.xml").write_bytes(english_feed())
    (tmp_path / "es.xml").write_bytes(conflicting_feed())
    assert run_cli("--config", str(path), "import", str(tmp_path / "en.xml"),
                   "--series", "news").code == 0
    before = run_cli("--config", str(path), "entries", "list", "--json").out
    result = run_cli("--config", str(path), "import", str(tmp_path / "es.xml"),
                     "--series", "news")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and ":1" in lines[0], result
    assert f"{SITE}/letter-1/" in lines[0] and "Traceback" not in result.err
    assert run_cli("--config", str(path), "entries", "list", "--json").out == before


def test_a_poll_never_renames_a_series_or_drops_its_description(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/es.xml"] = Route(spanish_feed("Obrero Socialista"))
    config, store = site(es={"path": "/es.xml", "series": "news", "language": "es"})
    actions.add_entry(store, config, actions.new_entry(
        config, series_slug="news", title="First", summary="", language="es",
        published=datetime(2026, 1, 1, tzinfo=UTC)),
        series_title="Reflexiones sobre la crisis de la ISO")
    actions.set_series_text(store, config, "news", "es", description="Colaboradores.")
    poll(store, config, "es")
    server.routes["/es.xml"] = Route(spanish_feed("Obrero Socialista, otra vez", "Otra"))
    poll(store, config, "es")
    text = actions.show_series(store, "news").series.texts["es"]
    assert (text.title, text.description) == ("Reflexiones sobre la crisis de la ISO",
                                              "Colaboradores.")


def test_a_poll_fills_a_series_texts_that_are_empty(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/es.xml"] = Route(spanish_feed("Obrero Socialista", "Desde el sitio"))
    config, store = site(es={"path": "/es.xml", "series": "news"})
    poll(store, config, "es")
    text = actions.show_series(store, "news").series.texts["es"]
    assert (text.title, text.description) == ("Obrero Socialista", "Desde el sitio")


def _rss(items: list[tuple[str, str]]) -> bytes:
    body = "".join(f"<item><title>{t}</title><link>{u}</link>"
                   f"<pubDate>Sat, 28 Sep 2002 10:00:00 GMT</pubDate></item>" for t, u in items)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Links</title>"
            f"<link>{SITE}/</link><description>d</description>{body}</channel></rss>").encode()


def test_entries_without_ids_at_urls_that_differ_only_in_fragment_or_scheme_stay_apart(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """A minted id dropped the URL's fragment, so a second id-less item at ``page#2``
    got ``page#1``'s id and overwrote its title (found by the feedparser corpus)."""
    config = load_config(make_config(database={"url": f"sqlite:///{tmp_path / 'm.sqlite3'}"}),
                         env={})
    store = Store(config.database.url, base_dir=config.base_dir)
    store.migrate()
    try:
        (tmp_path / "a.xml").write_bytes(_rss([("One", f"{SITE}/page#1"),
                                               ("Two", f"{SITE}/page#2")]))
        (tmp_path / "b.xml").write_bytes(_rss([("Three", f"{SITE}/page#3"),
                                               ("Four", f"http://{SITE[8:]}/page#1")]))
        actions.import_entries(store, config, tmp_path / "a.xml", fmt="feed")
        first = {e.seq: (e.language, e.id, e.title) for e in actions.list_entries(store)}
        assert sorted(t for _, _, t in first.values()) == ["One", "Two"]
        actions.import_entries(store, config, tmp_path / "b.xml", fmt="feed")
        after = {e.seq: (e.language, e.id, e.title) for e in actions.list_entries(store)}
        assert {k: after[k] for k in first} == first
        assert len(after) == 4 and len({i for _, i, _ in after.values()}) == 4
    finally:
        store.close()


def test_a_file_moving_an_entry_onto_another_entrys_url_is_refused_in_one_line(
        make_config: ConfigFactory, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    path = make_config(database={"url": f"sqlite:///{tmp_path / 'g.sqlite3'}"})
    (tmp_path / "one.xml").write_bytes(english_feed(2))
    # urn:en:1 alone, moved onto urn:en:2's URL
    moved = english_feed(1).replace(f"{SITE}/letter-1/".encode(), f"{SITE}/letter-2/".encode())
    (tmp_path / "two.xml").write_bytes(moved)
    assert run_cli("--config", str(path), "import", str(tmp_path / "one.xml")).code == 0
    before = run_cli("--config", str(path), "entries", "list", "--json").out
    result = run_cli("--config", str(path), "import", str(tmp_path / "two.xml"))
    lines = result.err.strip().splitlines()
    assert result.code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result
    assert "urn:en:1" in lines[0] and f"{SITE}/letter-2/" in lines[0]
    assert run_cli("--config", str(path), "entries", "list", "--json").out == before


def _atom(lang: str, entries: list[tuple[str, str, list[tuple[str | None, str]]]]) -> bytes:
    """An Atom feed in ``lang``: (id, title, [(hreflang or None, href)]) per entry."""
    body = ""
    for entry_id, title, links in entries:
        hrefs = "".join(f"<link rel='alternate'{f' hreflang={lang_!r}' if lang_ else ''} "
                        f"href='{href}'/>" for lang_, href in links)
        body += (f"<entry><id>{entry_id}</id><title>{title}</title>{hrefs}"
                 f"<published>2026-11-01T12:00:00Z</published><summary>On {title}</summary>"
                 f"</entry>")
    return (f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
            f"xml:lang='{lang}'><id>urn:{lang}</id><title>Feed {lang}</title>"
            f"<updated>2026-11-05T10:00:00Z</updated>{body}</feed>").encode()


def test_a_spanish_feed_reusing_an_english_id_never_changes_the_english_entry(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/en.xml"] = Route(english_feed())
    # a publisher's Spanish edition that copied the English entry's id along with it
    server.routes["/es.xml"] = Route(_atom("es", [
        ("urn:en:1", "Carta 1", [(None, f"{SITE}/carta-1/")])]))
    config, store = site(en={"path": "/en.xml", "series": "news"},
                         es={"path": "/es.xml", "series": "news"})
    poll(store, config, "en")
    before = {e.id: e.to_json() for e in actions.list_entries(store)}
    poll(store, config, "es")
    after = {e.id: e.to_json() for e in actions.list_entries(store)}
    assert after["urn:en:1"]["language"] == "en", after["urn:en:1"]
    assert after == before
    error = sources.list_sources(store, config)[1]["last_error"]
    assert error and "urn:en:1" in error and len(error.splitlines()) == 1, error


def test_another_languages_feed_never_relinks_a_translation(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    # the English template names the same Spanish page under every letter (a publisher's
    # slip); the Spanish feed says which letter it translates
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/letter-1/"), ("es", f"{SITE}/carta-1/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/letter-2/"), ("es", f"{SITE}/carta-1/")])]))
    server.routes["/es.xml"] = Route(_atom("es", [
        ("urn:es:1", "Carta 1", [(None, f"{SITE}/carta-1/"), ("en", f"{SITE}/letter-1/")])]))
    config, store = site(en={"path": "/en.xml", "series": "news"},
                         es={"path": "/es.xml", "series": "news"})
    poll(store, config, "en")
    poll(store, config, "es")
    linked = {e.id: e.translation_of for e in actions.list_entries(store)}
    assert linked["urn:es:1"] == "urn:en:1", linked
    # the English feed is polled again (changed elsewhere): the Spanish entry keeps its link
    server.routes["/en.xml"] = Route(server.routes["/en.xml"].body + b"\n")
    poll(store, config, "en")
    linked = {e.id: e.translation_of for e in actions.list_entries(store)}
    assert linked["urn:es:1"] == "urn:en:1", linked


def test_a_pruning_source_never_removes_an_entry_another_source_still_lists(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    # two sources of one series list the same letters; one prunes (an operator's choice the
    # config allows) and stops listing them: the other still does, unchanged (so it answers
    # 304 and the letters never come back)
    server.routes["/all.xml"] = Route(english_feed(3))
    server.routes["/series.xml"] = Route(english_feed(3))
    config, store = site(all={"path": "/all.xml", "series": "news", "prune": True},
                         series={"path": "/series.xml", "series": "news"})
    poll(store, config, "all")
    poll(store, config, "series")
    seqs = {e.id: e.seq for e in actions.list_entries(store)}
    server.routes["/all.xml"] = Route(_atom("en", [
        ("urn:en:9", "Other news", [(None, f"{SITE}/other/")])]))
    poll(store, config, "all")
    poll(store, config, "series")
    after = {e.id: e.seq for e in actions.list_entries(store)}
    # still there, under the same sequence number (a new one would put it in the next digest)
    assert {k: after.get(k) for k in seqs} == seqs, after


def test_a_renamed_feed_never_moves_its_stored_entries_to_another_series(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    one = _atom("en", [("urn:en:1", "Letter 1", [(None, f"{SITE}/letter-1/")])])
    server.routes["/en.xml"] = Route(one)
    config, store = site(en={"path": "/en.xml"})  # series: from the document's title
    poll(store, config, "en")
    before = {e.id: e.series for e in actions.list_entries(store)}
    # the publisher retitles the feed and adds a letter
    two = _atom("en", [("urn:en:1", "Letter 1", [(None, f"{SITE}/letter-1/")]),
                       ("urn:en:2", "Letter 2", [(None, f"{SITE}/letter-2/")])])
    server.routes["/en.xml"] = Route(two.replace(b"<title>Feed en</title>",
                                                 b"<title>Feed en, now weekly</title>"))
    poll(store, config, "en")
    after = {e.id: e.series for e in actions.list_entries(store)}
    # the stored letter stays where readers, subscribers and its page's URL have it
    assert after["urn:en:1"] == before["urn:en:1"], after
    assert after["urn:en:2"] == before["urn:en:1"], after


def test_two_entries_swapping_urls_in_one_poll_both_move(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/a/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/b/")])]))
    config, store = site(en={"path": "/en.xml", "series": "news"})
    poll(store, config, "en")
    # the publisher fixes a mix-up of the two letters' addresses: the document as a whole
    # is consistent, each id keeps one URL
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/b/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/a/")])]))
    poll(store, config, "en")
    urls = {e.id: e.url for e in actions.list_entries(store)}
    assert urls == {"urn:en:1": f"{SITE}/b/", "urn:en:2": f"{SITE}/a/"}, urls
    assert sources.list_sources(store, config)[0]["last_error"] is None


def test_an_entry_may_take_the_url_another_leaves_in_the_same_poll_and_nothing_else_moves(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/a/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/b/")]),
        ("urn:en:3", "Letter 3", [(None, f"{SITE}/c/")])]))
    config, store = site(en={"path": "/en.xml", "series": "news"})
    poll(store, config, "en")
    seqs = {e.id: e.seq for e in actions.list_entries(store)}
    # 1 takes 2's address, listed first; 2 moves on to a new one; a new entry takes 1's
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/b/")]),
        ("urn:en:4", "Letter 4", [(None, f"{SITE}/a/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/d/")]),
        ("urn:en:3", "Letter 3", [(None, f"{SITE}/c/")])]))
    poll(store, config, "en")
    after = {e.id: (e.url, e.seq) for e in actions.list_entries(store)}
    assert {k: v[0] for k, v in after.items()} == {
        "urn:en:1": f"{SITE}/b/", "urn:en:2": f"{SITE}/d/", "urn:en:3": f"{SITE}/c/",
        "urn:en:4": f"{SITE}/a/"}, after
    # the moved entries keep their sequence numbers (no second digest for them)
    assert all(after[k][1] == seqs[k] for k in seqs), (after, seqs)
    assert sources.list_sources(store, config)[0]["last_error"] is None


def test_a_trade_that_cannot_complete_changes_nothing(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/a/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/b/")])]))
    server.routes["/other.xml"] = Route(_atom("en", [
        ("urn:en:9", "Letter 9", [(None, f"{SITE}/z/")])]))
    config, store = site(en={"path": "/en.xml", "series": "news"},
                         other={"path": "/other.xml", "series": "news"})
    poll(store, config, "en")
    poll(store, config, "other")
    before = {e.id: e.url for e in actions.list_entries(store)}
    # 1 wants 2's address, but 2 wants one another source's entry holds
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/b/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/z/")])]))
    poll(store, config, "en")
    assert {e.id: e.url for e in actions.list_entries(store)} == before
    error = sources.list_sources(store, config)[0]["last_error"]
    assert error and "/z/" in error, error
    assert not any(e.url.startswith("urn:seriesfeed:") for e in actions.list_entries(store))


def test_a_file_reusing_an_id_in_another_language_leaves_no_same_language_translation(
        make_config: ConfigFactory, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    from tests.conftest import EXAMPLE_JSON

    path = make_config(database={"url": f"sqlite:///{tmp_path / 'j.sqlite3'}"})
    assert run_cli("--config", str(path), "import", str(EXAMPLE_JSON)).code == 0
    document = json.loads(EXAMPLE_JSON.read_text(encoding="utf-8"))
    english = next(e for e in document["entries"] if e["language"] == "en" and any(
        t.get("translation_of") == e["id"] for t in document["entries"]))
    # a Spanish edition's export that kept the English entry's id
    document["entries"] = [{**english, "language": "es", "title": "Carta a las bases",
                            "url": "https://socialistworker.org/es/carta/"}]
    (tmp_path / "es.json").write_text(json.dumps(document), encoding="utf-8")
    result = run_cli("--config", str(path), "import", str(tmp_path / "es.json"))
    stored = {e["id"]: e for e in json.loads(
        run_cli("--config", str(path), "entries", "list", "--json").out)}
    same = [(e["id"], e["translation_of"]) for e in stored.values() if e["translation_of"]
            and stored[e["translation_of"]]["language"] == e["language"]]
    assert not same, (same, result)
    assert stored[english["id"]]["language"] == "en", result
    # the whole file is refused in one line that names where
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1, result
    assert "es.json" in result.err and english["id"] in result.err, result


def _numbered_rss(items: list[tuple[str, str]], site: str = SITE) -> bytes:
    """An RSS feed whose guids are not URIs (a CMS's numbers)."""
    body = "".join(f"<item><guid isPermaLink='false'>{guid}</guid><title>{title}</title>"
                   f"<link>{site}/{guid}/</link><pubDate>Mon, 02 Nov 2026 10:00:00 GMT"
                   f"</pubDate><description>On {title}</description></item>"
                   for guid, title in items)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>News</title>"
            f"<link>{SITE}/</link><language>en</language><description>x</description>"
            f"{body}</channel></rss>").encode()


def test_a_source_whose_url_the_operator_updates_keeps_updating_its_entries(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    old = _numbered_rss([("101", "One"), ("102", "Two")])
    server.routes["/old.xml"] = Route(old, content_type="application/rss+xml")
    config, store = site(en={"path": "/old.xml", "series": "news"})
    poll(store, config, "en")
    # the publisher moves the feed (http to https, a new path): the operator updates url;
    # the same items, one with a corrected title
    server.routes["/new.xml"] = Route(_numbered_rss([("101", "One, corrected"), ("102", "Two")]),
                                      content_type="application/rss+xml")
    config, store = site(en={"path": "/new.xml", "series": "news"})
    result = poll(store, config, "en")
    titles = sorted(e.title for e in actions.list_entries(store))
    assert titles == ["One, corrected", "Two"], (titles, result)
    assert sources.list_sources(store, config)[0]["last_error"] is None


def test_a_pruning_source_never_removes_an_entry_it_still_lists_but_could_not_store(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    """An entry left out for a conflict is still in the document: it is that entry's
    error, not an entry the source stopped listing."""
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/a/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/b/")])]))
    server.routes["/other.xml"] = Route(_atom("en", [
        ("urn:en:9", "Letter 9", [(None, f"{SITE}/z/")])]))
    config, store = site(en={"path": "/en.xml", "series": "news", "prune": True},
                         other={"path": "/other.xml", "series": "news"})
    poll(store, config, "en")
    poll(store, config, "other")
    before = {e.id: e.to_json() for e in actions.list_entries(store)}
    seqs = {e.id: e.seq for e in actions.list_entries(store)}
    # the publisher's slip: letter 1 moves onto the address another source's entry has
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/z/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/b/")])]))
    result = poll(store, config, "en")
    after = {e.id: e.to_json() for e in actions.list_entries(store)}
    assert after == before, (result, sorted(after))
    error = sources.list_sources(store, config)[0]["last_error"]
    assert error and "urn:en:1" in error and "/z/" in error, error
    # the slip fixed: nothing comes back as new (same sequence number, no second digest)
    server.routes["/en.xml"] = Route(server.routes["/en.xml"].body.replace(
        f"{SITE}/z/".encode(), f"{SITE}/a/".encode()))
    poll(store, config, "en")
    assert {e.id: e.seq for e in actions.list_entries(store)} == seqs


def _mixed_rss(items: list[tuple[str | None, str, str]]) -> bytes:
    """RSS whose items may lack a guid (guid, title, link)."""
    body = "".join(f"<item>{f'<guid>{g}</guid>' if g else ''}<title>{t}</title><link>{u}</link>"
                   f"<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>"
                   f"<description>On {t}</description></item>" for g, t, u in items)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>News</title>"
            f"<link>{SITE}/</link><language>en</language><description>x</description>"
            f"{body}</channel></rss>").encode()


def test_an_item_without_id_may_take_the_url_an_entry_of_the_same_document_leaves(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/en.xml"] = Route(_mixed_rss([("urn:en:1", "Letter 1", f"{SITE}/a/")]),
                                     content_type="application/rss+xml")
    config, store = site(en={"path": "/en.xml", "series": "news"})
    poll(store, config, "en")
    # letter 1 moves to /b/, and a new item with no guid is published at /a/, listed first
    server.routes["/en.xml"] = Route(_mixed_rss([(None, "Notice", f"{SITE}/a/"),
                                                 ("urn:en:1", "Letter 1", f"{SITE}/b/")]),
                                     content_type="application/rss+xml")
    result = poll(store, config, "en")
    stored = sorted((e.title, e.url) for e in actions.list_entries(store))
    assert stored == [("Letter 1", f"{SITE}/b/"), ("Notice", f"{SITE}/a/")], (stored, result)
    assert result.added == 1, result


def test_two_sources_of_one_site_listing_the_same_numbered_item_share_one_entry(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    # a site's main feed and its series feed: a CMS's guids (not URIs) name the same post
    items = [("101", "One"), ("102", "Two")]
    server.routes["/feed.xml"] = Route(_numbered_rss(items), content_type="application/rss+xml")
    server.routes["/series/feed.xml"] = Route(_numbered_rss(items[:1]),
                                              content_type="application/rss+xml")
    config, store = site(all={"path": "/feed.xml", "series": "news"},
                         series={"path": "/series/feed.xml", "series": "news"})
    poll(store, config, "all")
    before = {e.id: e.to_json() for e in actions.list_entries(store)}
    result = poll(store, config, "series")
    assert {e.id: e.to_json() for e in actions.list_entries(store)} == before
    # the second feed's copy is the same post, not a conflict shown for ever
    assert sources.list_sources(store, config)[1]["last_error"] is None, result


def test_the_translations_own_feed_decides_its_original_whichever_feed_is_polled_first(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    # the English feed names the Spanish page under letter 1 (a publisher's slip); the
    # Spanish feed says it translates letter 2
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/letter-1/"), ("es", f"{SITE}/carta-2/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/letter-2/")])]))
    server.routes["/es.xml"] = Route(_atom("es", [
        ("urn:es:2", "Carta 2", [(None, f"{SITE}/carta-2/"), ("en", f"{SITE}/letter-2/")])]))
    config, store = site(en={"path": "/en.xml", "series": "news"},
                         es={"path": "/es.xml", "series": "news"})
    # the Spanish feed first: its original is not stored yet
    poll(store, config, "es")
    poll(store, config, "en")
    # every feed polled again, each unchanged
    poll(store, config, "es")
    poll(store, config, "en")
    linked = {e.id: e.translation_of for e in actions.list_entries(store)}
    assert linked["urn:es:2"] == "urn:en:2", linked
    # and it stays so: nothing relinks it on later polls
    poll(store, config, "en")
    poll(store, config, "es")
    assert {e.id: e.translation_of for e in actions.list_entries(store)} == linked
    assert poll(store, config, "es").outcome == "not-modified"


def test_an_entry_an_editor_moved_to_another_series_stays_there_after_a_poll(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        tmp_path: Path) -> None:
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/a/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/b/")]),
        ("urn:en:3", "Letter 3", [(None, f"{SITE}/c/")])]))
    config, store = site(en={"path": "/en.xml"})  # series: from the document's title
    poll(store, config, "en")
    # the editor moves letter 1 into a series of its own (a JSON file naming it by id)
    data, _ = actions.export_entries(store, config, "json")
    document = json.loads(data)
    document["series"] = [{"slug": "letters", "texts": {"en": {"title": "Letters"}}}]
    document["entries"] = [{**e, "series": "letters"} for e in document["entries"]
                           if e["id"] == "urn:en:1"]
    (tmp_path / "move.json").write_text(json.dumps(document), encoding="utf-8")
    actions.import_entries(store, config, tmp_path / "move.json")
    moved = {e.id: (e.series, e.slug) for e in actions.list_entries(store)}
    assert moved["urn:en:1"][0] == "letters", moved
    # the publisher adds a letter: the feed changes and is read again
    server.routes["/en.xml"] = Route(_atom("en", [
        ("urn:en:1", "Letter 1", [(None, f"{SITE}/a/")]),
        ("urn:en:2", "Letter 2", [(None, f"{SITE}/b/")]),
        ("urn:en:3", "Letter 3", [(None, f"{SITE}/c/")]),
        ("urn:en:4", "Letter 4", [(None, f"{SITE}/d/")])]))
    poll(store, config, "en")
    after = {e.id: (e.series, e.slug) for e in actions.list_entries(store)}
    # what the editor set stays (and so does the page's URL); the new letter joins the rest
    assert {k: after[k] for k in moved} == moved, after
    assert after["urn:en:4"][0] == moved["urn:en:2"][0], after


def test_a_feed_moved_to_another_host_keeps_updating_the_items_it_listed(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    """A feed moved to another host (a feed service) with the same guids and article
    addresses lists the same items: each one matches its entry instead of being refused
    as another entry at that address, on every poll."""
    server.routes["/old.xml"] = Route(_numbered_rss([("101", "One"), ("102", "Two")]),
                                      content_type="application/rss+xml")
    config, store = site(en={"path": "/old.xml", "series": "news"})
    poll(store, config, "en")
    seqs = {e.url: e.seq for e in actions.list_entries(store)}
    server.routes["/moved.xml"] = Route(
        _numbered_rss([("101", "One, corrected"), ("102", "Two"), ("103", "Three")]),
        content_type="application/rss+xml")
    moved = server.url("/moved.xml").replace("127.0.0.1", "localhost")
    config, store = site(en={"path": "/moved.xml", "series": "news"})
    config.sources["en"] = dataclasses.replace(config.sources["en"], url=moved)
    result = poll(store, config, "en")
    after = {e.url: (e.seq, e.title) for e in actions.list_entries(store)}
    assert {u: after[u][0] for u in seqs} == seqs, (after, result)
    assert sorted(t for _, t in after.values()) == ["One, corrected", "Three", "Two"]
    assert sources.list_sources(store, config)[0]["last_error"] is None, result


def _letters(title_1: str, summary_1: str) -> bytes:
    return _atom_texts([("urn:en:1", title_1, summary_1), ("urn:en:2", "Letter 2", "About 2")])


def _atom_texts(items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(f"<entry><id>{eid}</id><title>{title}</title>"
                   f"<link rel='alternate' href='{SITE}/{eid.rsplit(':', 1)[1]}/'/>"
                   f"<published>2026-11-02T10:00:00Z</published><summary>{summary}</summary>"
                   f"</entry>" for eid, title, summary in items)
    return (f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
            f"xml:lang='en'><id>urn:en</id><title>News</title>"
            f"<updated>2026-11-05T10:00:00Z</updated>{body}</feed>").encode()


def test_an_editors_title_fix_holds_against_the_next_poll_and_the_summary_still_follows(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        run_cli: Callable[..., CliResult]) -> None:
    server.routes["/en.xml"] = Route(_letters("Leter 1", "About 1"))
    config, store = site(en={"path": "/en.xml", "series": "news"})
    poll(store, config, "en")
    actions.entries.set_entry_texts(store, config, "urn:en:1", title="Letter 1")
    # the publisher edits the item: a new summary, and still the misspelt title
    server.routes["/en.xml"] = Route(_letters("Leter 1", "About 1, revised"))
    poll(store, config, "en")
    entry = actions.show_entry(store, "urn:en:1")
    assert (entry.title, entry.summary) == ("Letter 1", "About 1, revised")
    # a pinned summary holds too, and the pins survive an export read back
    actions.entries.set_entry_texts(store, config, "urn:en:1", summary="About letter 1")
    server.routes["/en.xml"] = Route(_letters("Leter 1", "About 1, revised again"))
    poll(store, config, "en")
    entry = actions.show_entry(store, "urn:en:1")
    assert (entry.title, entry.summary) == ("Letter 1", "About letter 1")
    assert entry.texts_pinned == ("title", "summary")
    # the editor gives the title back to the source: the next poll brings the site's
    assert config.path is not None
    both = run_cli("--config", config.path, "entries", "set", "urn:en:1", "--title", "X",
                   "--title-from-source")
    assert both.code == 1 and "--title-from-source" in both.err, both
    assert "Traceback" not in both.err
    assert actions.show_entry(store, "urn:en:1").texts_pinned == ("title", "summary")
    result = run_cli("--config", config.path, "entries", "set", "urn:en:1",
                     "--title-from-source")
    assert result.code == 0, result.err
    server.routes["/en.xml"] = Route(_letters("Letter 1 (corrected by the site)",
                                              "About 1, revised again"))
    poll(store, config, "en")
    entry = actions.show_entry(store, "urn:en:1")
    assert (entry.title, entry.summary) == ("Letter 1 (corrected by the site)",
                                            "About letter 1")
    assert entry.texts_pinned == ("summary",)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_text_pins_survive_an_export_read_into_a_new_store(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        make_config: ConfigFactory, tmp_path: Path, fmt: str) -> None:
    server.routes["/en.xml"] = Route(_letters("Leter 1", "About 1"))
    config, store = site(en={"path": "/en.xml", "series": "news"})
    poll(store, config, "en")
    actions.entries.set_entry_texts(store, config, "urn:en:1", title="Letter 1")
    data, _ = actions.export_entries(store, config, fmt)
    (tmp_path / f"all.{fmt}").write_bytes(data)
    other_path = make_config(database={"url": f"sqlite:///{tmp_path / 'other.sqlite3'}"})
    other_config = load_config(other_path, env={})
    other = Store(other_config.database.url, base_dir=other_config.base_dir)
    try:
        other.migrate()
        actions.import_entries(other, other_config, tmp_path / f"all.{fmt}")
        pins = {e.id: e.texts_pinned for e in actions.list_entries(other)}
        assert pins == {"urn:en:1": ("title",), "urn:en:2": ()}, pins
        # read back into the store it came from: nothing changes
        report = actions.import_entries(store, config, tmp_path / f"all.{fmt}")
        assert (report.added, report.updated) == (0, 0), report
    finally:
        other.close()



def _author_rss(author: str, title: str) -> bytes:
    """A blog platform's per-author feed: guid "42" is the author's post 42, and another
    author on the same host has a post 42 of their own."""
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Blog</title>"
            f"<link>{SITE}/@{author}</link><language>en</language><description>x</description>"
            f"<item><guid isPermaLink='false'>42</guid><title>{title}</title>"
            f"<link>{SITE}/@{author}/42/</link><pubDate>Mon, 02 Nov 2026 10:00:00 GMT"
            f"</pubDate><description>By {author}</description></item>"
            f"</channel></rss>").encode()


def test_a_source_repointed_to_another_feed_on_the_host_never_overwrites_its_entries(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    """The same host is not the same feed: repointing a source from one author's feed to
    another's keeps the first author's post 42 as it was, and stores the second's beside
    it (a stored id is taken over only where the guid and the article's address agree)."""
    server.routes["/@alice/feed"] = Route(_author_rss("alice", "Alice's 42"),
                                          content_type="application/rss+xml")
    server.routes["/@bob/feed"] = Route(_author_rss("bob", "Bob's 42"),
                                        content_type="application/rss+xml")
    config, store = site(blog={"path": "/@alice/feed", "series": "blog"})
    poll(store, config, "blog")
    (alice,) = actions.list_entries(store)
    config, store = site(blog={"path": "/@bob/feed", "series": "blog"})
    result = poll(store, config, "blog")
    after = {e.id: (e.title, e.url) for e in actions.list_entries(store)}
    assert after[alice.id] == (alice.title, alice.url) == ("Alice's 42", f"{SITE}/@alice/42/")
    assert sorted(after.values()) == [("Alice's 42", f"{SITE}/@alice/42/"),
                                      ("Bob's 42", f"{SITE}/@bob/42/")], (after, result)


def test_an_editors_series_move_committed_while_a_poll_reads_is_not_undone(
        server: SourceServer, site: Callable[..., tuple[Config, Store]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """What decides a poll's writes (each stored entry's series) is read in the poll's
    own write transaction: an editor's move committed right after the poll looked is
    either seen by it or waits for it, and is never overwritten."""
    import threading

    from seriesfeed.store import sources as source_queries

    feed = [("urn:en:1", "Letter 1", [(None, f"{SITE}/a/")]),
            ("urn:en:2", "Letter 2", [(None, f"{SITE}/b/")])]
    server.routes["/en.xml"] = Route(_atom("en", feed))
    config, store = site(database_url, en={"path": "/en.xml"})
    poll(store, config, "en")
    data, _ = actions.export_entries(store, config, "json")
    document = json.loads(data)
    document["series"] = [{"slug": "letters", "texts": {"en": {"title": "Letters"}}}]
    document["entries"] = [{**e, "series": "letters"} for e in document["entries"]
                           if e["id"] == "urn:en:1"]
    (tmp_path / "move.json").write_text(json.dumps(document), encoding="utf-8")
    errors: list[BaseException] = []

    def editor() -> None:  # the console's move, through its own connection
        other = Store(config.database.url, base_dir=config.base_dir)
        try:
            actions.import_entries(other, config, tmp_path / "move.json")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            other.close()

    real = source_queries.series_by_entry
    mover = threading.Thread(target=editor)

    def looked(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        mover.start()
        mover.join(1.0)  # committed now, unless it waits for the poll's transaction
        return found

    monkeypatch.setattr(source_queries, "series_by_entry", looked)
    server.routes["/en.xml"] = Route(_atom("en", [*feed, ("urn:en:3", "Letter 3",
                                                          [(None, f"{SITE}/c/")])]))
    poll(store, config, "en")
    mover.join(30)
    assert not mover.is_alive() and errors == []
    after = {e.id: e.series for e in actions.list_entries(store)}
    assert after["urn:en:1"] == "letters", after


def test_a_site_moved_to_https_keeps_its_entries_when_the_operator_follows_its_feed(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    """The feed and every article's address change scheme at once (guids are a CMS's
    numbers): the same guid at the same address under the other scheme is the same entry,
    updated in place, not a second copy in the next digest."""
    plain = SITE.replace("https://", "http://")
    server.routes["/old.xml"] = Route(_numbered_rss([("101", "One"), ("102", "Two")], plain),
                                      content_type="application/rss+xml")
    config, store = site(en={"path": "/old.xml", "series": "news"})
    poll(store, config, "en")
    seqs = sorted(e.seq for e in actions.list_entries(store))
    server.routes["/new.xml"] = Route(_numbered_rss([("101", "One"), ("102", "Two")]),
                                      content_type="application/rss+xml")
    config, store = site(en={"path": "/new.xml", "series": "news"})
    poll(store, config, "en")
    stored = actions.list_entries(store)
    assert sorted(e.seq for e in stored) == seqs, stored
    assert sorted(e.url for e in stored) == [f"{SITE}/101/", f"{SITE}/102/"]
    assert sources.list_sources(store, config)[0]["last_error"] is None

"""Sources: `import URL` and the `[sources.*]` poller against a real HTTP server on 127.0.0.1.

The publisher's documents are built from the seed: its feeds (Atom, RSS, JSON Feed) come
from a store holding examples/iso-crisis.json, its series page is the text capture and an
HTML rendering of it.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from seriesfeed import actions
from seriesfeed.actions import plan_feeds, sources
from seriesfeed.config import Config, load_config
from seriesfeed.models import AuthorKind, Entry
from seriesfeed.store import Store
from tests.conftest import EXAMPLE_JSON, SEED_PAGE, CliResult, ConfigFactory
from tests.harness.http_source import Route, SourceServer, source_server

SLUG = "reflections-on-the-iso-crisis"
SEED = Path("/work/shared/seed/000_030484b5922fdcce.txt")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The publisher's feeds, built by seriesfeed itself from the seed JSON."""
    folder = tmp_path_factory.mktemp("publisher")
    config = load_config(Path(__file__).parent.parent / "config.toml", env={
        "SERIESFEED_DATABASE_URL": f"sqlite:///{folder / 'p.sqlite3'}"})
    store = Store(config.database.url, base_dir=folder)
    store.migrate()
    actions.import_entries(store, config, EXAMPLE_JSON)
    docs = {d.path: d.body for d in plan_feeds(config, store)}
    store.close()
    return docs


def seed_html() -> bytes:
    """The seed's series page as a browser would get it: nav, scripts, then the list."""
    text = (SEED if SEED.exists() else SEED_PAGE).read_text(encoding="utf-8")
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    start = lines.index("Series")
    body = [f"<h1>{html.escape(lines[start + 1])}</h1>",
            f"<p class=desc>{html.escape(lines[start + 2])}</p>"]
    i = start + 3
    while i + 3 < len(lines) and not lines[i].startswith("Previously published"):
        byline, title, summary, when = lines[i:i + 4]
        n = (i - start) // 4
        if not when[-4:].isdigit():
            break
        body.append(f'<article><div class="byline">{html.escape(byline)}</div>'
                    f'<h3><a href="/articles/{n}/">{html.escape(title)}</a></h3>'
                    f"<p>{html.escape(summary)}</p><time>{html.escape(when)}</time></article>")
        i += 4
    page = ("<!DOCTYPE html><html><head><title>Series</title><style>.a{fill:red}</style>"
            "<script>var menu = 'March 1, 2019';</script></head><body>"
            "<nav><ul><li>Topics</li><li>Obrero Socialista</li></ul></nav>"
            "<main><div class=label>Series</div>" + "".join(body) +
            "</main><footer><p>Material on this Web site is licensed</p></footer>"
            "</body></html>")
    return page.encode("utf-8")


@pytest.fixture
def server() -> Iterator[SourceServer]:
    with source_server() as s:
        yield s


@pytest.fixture
def site(make_config: ConfigFactory, tmp_path: Path,
         server: SourceServer) -> Callable[..., tuple[Config, Store]]:
    """A reader's config (with the given sources) and its empty store."""
    opened: list[Store] = []

    def make(**tables: dict[str, Any]) -> tuple[Config, Store]:
        extra = ""
        for name, values in tables.items():
            values = {"url": server.url(values.pop("path")), **values}
            body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
            extra += f"\n[sources.{name}]\n{body}\n"
        db = tmp_path / f"reader-{len(opened)}.sqlite3"
        path = make_config(extra, database={"url": f"sqlite:///{db}"})
        config = load_config(path, env={})
        store = Store(config.database.url, base_dir=config.base_dir)
        store.migrate()
        opened.append(store)
        return config, store

    yield make
    for s in opened:
        s.close()


def poll(store: Store, config: Config, name: str, **kw: Any) -> sources.PollResult:
    return asyncio.run(sources.poll_source(store, config, config.sources[name], **kw))


def listing(store: Store, config: Config) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in sources.list_sources(store, config)}


def by_title(store: Store) -> dict[str, Entry]:
    return {e.title: e for e in actions.list_entries(store)}


# -- formats --------------------------------------------------------------------------

def test_atom_sources_import_entries_authors_and_translation_links(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes]) -> None:
    for lang in ("en", "es"):
        server.routes[f"/{lang}.xml"] = Route(published[f"/feeds/{lang}/{SLUG}/atom.xml"])
    config, store = site(en={"path": "/en.xml", "series": SLUG},
                         es={"path": "/es.xml", "series": SLUG})
    first = poll(store, config, "en")
    assert first.outcome == "imported" and first.added == 18
    second = poll(store, config, "es")
    assert second.added == 2
    entries = by_title(store)
    assert len(entries) == 20
    canadians = entries["A letter from Canadian comrades"]
    assert [a.name for a in canadians.authors] == ["David Camfield", "Todd Gordon",
                                                   "Brian McDougall", "Sandra Sarner"]
    assert entries["Letter to the ISO membership"].authors[0].kind is AuthorKind.ORGANIZATION
    letter = entries["Letter to the ISO membership"]
    assert letter.id == ("tag:socialistworker.org,2019-03-15:"
                         "/2019/03/15/letter-to-the-iso-membership/")  # the source's id
    assert entries["Carta a las bases de la ISO"].translation_of == letter.id
    assert entries["Carta a las bases de la ISO"].language == "es"
    vote = entries["The ISO’s vote to dissolve and what comes next"]
    assert entries["El voto de la ISO para disolverse y lo que viene después"] \
        .translation_of == vote.id
    state = listing(store, config)["en"]
    assert state["entries_added"] == 18 and state["last_status"] == "200 imported"
    assert state["last_error"] is None


def test_rss_source_keeps_guids_and_authors(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes]) -> None:
    server.routes["/rss"] = Route(published[f"/feeds/en/{SLUG}/rss.xml"],
                                  content_type="application/rss+xml")
    config, store = site(rss={"path": "/rss", "series": SLUG})
    assert poll(store, config, "rss").added == 18
    entries = by_title(store)
    assert [a.name for a in entries["Nothing can be changed until it is faced"].authors] == \
        ["Maryam A", "Nikki W"]
    assert all(e.id and e.id.startswith("tag:socialistworker.org,2019-") for e in
               entries.values())
    assert {e.language for e in entries.values()} == {"en"}  # from <language>


def test_json_feed_source_with_translation_extension(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes]) -> None:
    en = json.loads(published[f"/feeds/en/{SLUG}/feed.json"])
    es = json.loads(published[f"/feeds/es/{SLUG}/feed.json"])
    originals = {"Carta a las bases de la ISO": "Letter to the ISO membership"}
    ids = {i["title"]: i["id"] for i in en["items"]}
    for item in es["items"]:
        if item["title"] in originals:  # our extension: the original's id
            item.setdefault("_seriesfeed", {})["translation_of"] = ids[originals[item["title"]]]
    server.routes["/en.json"] = Route(json.dumps(en).encode(),
                                      content_type="application/feed+json")
    server.routes["/es.json"] = Route(json.dumps(es).encode(),
                                      content_type="application/feed+json")
    config, store = site(en={"path": "/en.json", "series": SLUG},
                         es={"path": "/es.json", "series": SLUG})
    assert poll(store, config, "en").added == 18
    assert poll(store, config, "es").added == 2
    entries = by_title(store)
    assert entries["Carta a las bases de la ISO"].translation_of == \
        entries["Letter to the ISO membership"].id
    assert entries["Letter to the ISO membership"].authors[0].kind is AuthorKind.ORGANIZATION
    assert [a.name for a in entries["A letter from Canadian comrades"].authors][-1] == \
        "Sandra Sarner"


@pytest.mark.parametrize("form", ["text", "html"])
def test_series_page_source_as_text_or_html(
        form: str, server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    if form == "text":
        server.routes["/series/"] = Route(SEED_PAGE.read_bytes(),
                                          content_type="text/plain; charset=utf-8")
    else:
        server.routes["/series/"] = Route(seed_html(), content_type="text/html; charset=utf-8")
    config, store = site(page={"path": "/series/"})
    result = poll(store, config, "page")
    assert result.outcome == "imported", result.message
    entries = actions.list_entries(store)
    assert len(entries) == 20
    assert sum(e.language == "es" for e in entries) == 2
    titles = [e.title for e in entries]
    assert titles[0] == "Letter to the ISO membership"
    canadians = next(e for e in entries if e.title == "A letter from Canadian comrades")
    assert len(canadians.authors) == 4
    assert {e.series for e in entries} == {SLUG}
    if form == "html":  # each title links to its article: that is the entry's URL
        assert entries[0].url == server.url("/articles/0/")
        assert len({e.url for e in entries}) == 20
    else:
        assert entries[0].url == ("https://socialistworker.org/2019/03/15/"
                                  "letter-to-the-iso-membership/")


def test_import_url_reads_every_format(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes], run_cli: Callable[..., CliResult]) -> None:
    server.routes["/seed.json"] = Route(EXAMPLE_JSON.read_bytes(),
                                        content_type="application/json")
    server.routes["/page.html"] = Route(seed_html(), content_type="text/html")
    server.routes["/atom"] = Route(published[f"/feeds/es/{SLUG}/atom.xml"], gzip=True)
    config, _store = site()
    assert config.path is not None
    done = run_cli("--config", config.path, "import", server.url("/page.html"))
    assert done.code == 0, done
    assert "20 added" in done.out
    again = run_cli("--config", config.path, "import", server.url("/seed.json"))
    assert again.code == 0 and "2 translation links set" in again.out, again
    gz = run_cli("--config", config.path, "import", server.url("/atom"), "--series", SLUG)
    assert gz.code == 0, gz
    assert server.requests_to("/atom")[0].headers["accept-encoding"] == "gzip"
    ua = server.requests_to("/atom")[0].headers["user-agent"]
    assert ua.startswith("seriesfeed/") and "https://socialistworker.org" in ua
    missing = run_cli("--config", config.path, "import", server.url("/nope.xml"))
    assert missing.code == 1 and missing.err.startswith("Error: http://127.0.0.1:")
    assert "404" in missing.err and "Traceback" not in missing.err


def test_import_url_error_names_the_url_and_position(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        run_cli: Callable[..., CliResult]) -> None:
    doc = json.loads(EXAMPLE_JSON.read_text(encoding="utf-8"))
    doc["entries"][2]["published"] = "not a date"
    server.routes["/bad.json"] = Route(json.dumps(doc).encode(), content_type="application/json")
    config, store = site()
    assert config.path is not None
    bad = run_cli("--config", config.path, "import", server.url("/bad.json"))
    assert bad.code == 1
    assert bad.err.startswith(f"Error: {server.url('/bad.json')}:3")
    assert actions.list_entries(store) == []


# -- HTTP citizenship -----------------------------------------------------------------

def test_second_poll_is_conditional_gets_304_and_parses_nothing(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes]) -> None:
    server.routes["/en.xml"] = Route(published[f"/feeds/en/{SLUG}/atom.xml"])
    config, store = site(en={"path": "/en.xml", "series": SLUG})
    assert poll(store, config, "en").added == 18
    # a changed route body would be parsed; a 304 must not be: poison the body
    route = server.routes["/en.xml"]
    second = poll(store, config, "en")
    assert second.outcome == "not-modified"
    sent = server.requests_to("/en.xml")[-1]
    assert sent.status == 304
    assert sent.headers["if-none-match"].startswith('"')
    assert sent.headers["if-modified-since"] == route.last_modified
    assert len(actions.list_entries(store)) == 18
    state = listing(store, config)["en"]
    assert state["last_status"] == "304 not modified" and state["entries_added"] == 18


def test_each_poll_that_asked_is_counted_for_metrics_by_result(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes]) -> None:
    """``seriesfeed_source_polls_total{source,result}`` (README: Metrics) counts the polls
    that asked the source; one waiting out its backoff asked nothing and is not counted."""
    from seriesfeed import metrics

    def count(result: str) -> float:
        return metrics.LOCAL.get_sample_value(
            "seriesfeed_source_polls_total", {"source": "en", "result": result}) or 0.0

    server.routes["/en.xml"] = Route(published[f"/feeds/en/{SLUG}/atom.xml"])
    config, store = site(en={"path": "/en.xml", "series": SLUG})
    before = {r: count(r) for r in ("imported", "not-modified", "failed", "waiting")}
    assert poll(store, config, "en").outcome == "imported"
    assert poll(store, config, "en").outcome == "not-modified"
    server.routes["/en.xml"] = Route(status=500, conditional=False)
    assert poll(store, config, "en").outcome == "failed"
    assert poll(store, config, "en", force=False).outcome == "waiting"  # backing off
    after = {r: count(r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        "imported": 1, "not-modified": 1, "failed": 1, "waiting": 0}


def test_permanent_redirect_is_remembered(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    server.routes["/old.xml"] = Route(status=301, headers={"Location": "/new.xml"},
                                      conditional=False)
    server.routes["/new.xml"] = Route(published[f"/feeds/en/{SLUG}/atom.xml"])
    config, store = site(en={"path": "/old.xml", "series": SLUG})
    with caplog.at_level("WARNING", logger="seriesfeed.sources"):
        assert poll(store, config, "en").added == 18
    assert any("moved permanently" in r.getMessage() for r in caplog.records)
    assert listing(store, config)["en"]["url"] == server.url("/new.xml")
    poll(store, config, "en")
    assert len(server.requests_to("/old.xml")) == 1  # the second poll went to the new URL
    assert server.requests_to("/new.xml")[-1].status == 304


def test_too_many_redirects_is_an_error(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    for n in range(8):
        server.routes[f"/r{n}"] = Route(status=302, headers={"Location": f"/r{n + 1}"},
                                        conditional=False)
    config, store = site(loop={"path": "/r0"})
    result = poll(store, config, "loop")
    assert result.outcome == "failed" and "more than 5 redirects" in result.message
    assert len(server.seen) == 6


def test_410_stops_the_source_loudly(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        caplog: pytest.LogCaptureFixture) -> None:
    server.routes["/gone.xml"] = Route(status=410, conditional=False)
    config, store = site(gone={"path": "/gone.xml"})
    with caplog.at_level("ERROR", logger="seriesfeed.sources"):
        result = poll(store, config, "gone")
    assert result.outcome == "gone"
    assert any(r.levelname == "CRITICAL" and "gone" in r.getMessage() for r in caplog.records)
    state = listing(store, config)["gone"]
    assert state["stopped"] and state["next_poll"] is None and "410" in state["last_error"]
    again = poll(store, config, "gone", force=True)
    assert again.outcome == "gone"
    assert len(server.requests_to("/gone.xml")) == 1  # never asked again


def test_503_retry_after_is_honoured(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes]) -> None:
    server.routes["/busy.xml"] = Route(status=503, headers={"Retry-After": "120"},
                                       conditional=False)
    config, store = site(busy={"path": "/busy.xml", "series": SLUG})
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert poll(store, config, "busy").outcome == "failed"
        server.routes["/busy.xml"] = Route(published[f"/feeds/en/{SLUG}/atom.xml"])
        clock.move_to(start + timedelta(seconds=119))
        assert poll(store, config, "busy").outcome == "waiting"
        assert len(server.requests_to("/busy.xml")) == 1
        clock.move_to(start + timedelta(seconds=121))
        assert poll(store, config, "busy").outcome == "imported"
    assert len(server.requests_to("/busy.xml")) == 2


def test_failures_back_off_exponentially_up_to_a_day(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    server.routes["/err"] = Route(status=500, conditional=False)
    config, store = site(err={"path": "/err"})
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    waits = []
    with time_machine.travel(start, tick=False) as clock:
        now = start
        for _ in range(14):
            poll(store, config, "err")
            wait = datetime.fromisoformat(listing(store, config)["err"]["not_before"]) - now
            waits.append(wait.total_seconds())
            now = now + wait + timedelta(seconds=1)
            clock.move_to(now)
    assert waits[:4] == [60, 120, 240, 480]
    assert max(waits) == 86_400 and waits[-1] == 86_400
    assert len(server.requests_to("/err")) == 14


@pytest.mark.parametrize("case", ["truncated", "bomb", "huge", "hang", "content-type",
                                  "gzip-bomb"])
def test_bad_documents_leave_the_store_unchanged(
        case: str, server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes], monkeypatch: pytest.MonkeyPatch,
        run_cli: Callable[..., CliResult]) -> None:
    good = published[f"/feeds/en/{SLUG}/atom.xml"]
    server.routes["/feed.xml"] = Route(good)
    config, store = site(feed={"path": "/feed.xml", "series": SLUG})
    assert poll(store, config, "feed").added == 18
    before = [e.to_json() for e in actions.list_entries(store)]
    route = Route(good + b"x")  # a new ETag: the next poll downloads
    if case == "truncated":
        route.body = good[: len(good) // 2]
    elif case == "bomb":
        route.body = (b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">'
                      b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                      b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                      b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&c;</title></feed>')
    elif case == "huge":
        route.endless = 60 * 1024 * 1024
    elif case == "hang":
        route.hang = True
        monkeypatch.setattr(sources, "fetch", _with_timeouts(sources.fetch, 1.0))
    elif case == "content-type":
        route.content_type = "image/png"
    elif case == "gzip-bomb":
        import gzip

        route.body = b"<feed>" + b" " * (80 * 1024 * 1024)
        route.gzip = True
        assert len(gzip.compress(route.body)) < 1024 * 1024
    server.routes["/feed.xml"] = route
    result = poll(store, config, "feed")
    assert result.outcome == "failed", result
    assert [e.to_json() for e in actions.list_entries(store)] == before
    assert config.path is not None
    shown = run_cli("--config", config.path, "sources", "list", "--json")
    state = {s["name"]: s for s in json.loads(shown.out)}["feed"]
    assert state["last_error"] and server.url("/feed.xml") in state["last_error"]
    assert state["entries_added"] == 18 and state["failures"] == 1
    expected = {"truncated": "not well-formed", "bomb": "refused", "huge": "larger than",
                "hang": "timed out", "content-type": "image/png",
                "gzip-bomb": "larger than"}[case]
    assert expected in state["last_error"], state["last_error"]
    # the last good validators were kept: once the publisher is fixed, it all comes back
    server.routes["/feed.xml"] = Route(good)
    assert poll(store, config, "feed", force=True).outcome == "not-modified"


def _with_timeouts(real: Any, seconds: float) -> Any:
    async def short(*args: Any, **kw: Any) -> Any:
        return await real(*args, read_timeout=seconds, **kw)
    return short


def test_an_error_is_logged_once_per_change(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    server.routes["/f"] = Route(status=500, conditional=False)
    config, store = site(f={"path": "/f", "series": SLUG})
    with caplog.at_level("INFO", logger="seriesfeed.sources"):
        for _ in range(3):
            poll(store, config, "f", force=True)
        server.routes["/f"] = Route(status=502, conditional=False)
        poll(store, config, "f", force=True)
        server.routes["/f"] = Route(published[f"/feeds/en/{SLUG}/atom.xml"])
        poll(store, config, "f", force=True)
        poll(store, config, "f", force=True)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("HTTP 500" in m for m in messages) == 1
    assert sum("HTTP 502" in m for m in messages) == 1
    assert sum("working again" in m for m in messages) == 1


# -- what an import from a source means ------------------------------------------------

def _atom(entries: list[tuple[str, str, str]], lang: str = "en") -> bytes:
    items = "".join(
        f"<entry><id>{i}</id><title>{t}</title><link rel='alternate' href='{u}'/>"
        f"<author><name>Ann Writer</name></author>"
        f"<published>2026-11-0{n + 1}T10:00:00Z</published>"
        f"<updated>2026-11-0{n + 1}T10:00:00Z</updated><summary>About {t}</summary></entry>"
        for n, (i, t, u) in enumerate(entries))
    return (f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
            f"xml:lang='{lang}'><id>urn:x</id><title>News</title>"
            f"<updated>2026-11-05T10:00:00Z</updated>{items}</feed>").encode()


def test_retitled_entry_is_updated_not_duplicated_and_vanished_ones_kept(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    a = ("urn:uuid:a", "First", "https://news.example/a")
    b = ("urn:uuid:b", "Second", "https://news.example/b")
    server.routes["/n.xml"] = Route(_atom([a, b]))
    config, store = site(n={"path": "/n.xml", "series": "news"})
    poll(store, config, "n")
    seqs = {e.id: e.seq for e in actions.list_entries(store)}
    server.routes["/n.xml"] = Route(_atom([(a[0], "First, retitled",
                                            "https://news.example/a-moved")]))
    result = poll(store, config, "n")
    assert (result.added, result.updated) == (0, 1)
    stored = {e.id: e for e in actions.list_entries(store)}
    assert len(stored) == 2  # b vanished from the window: kept
    assert stored["urn:uuid:a"].title == "First, retitled"
    assert stored["urn:uuid:a"].seq == seqs["urn:uuid:a"]  # same cursor position


def test_prune_removes_entries_the_source_no_longer_lists(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    a = ("urn:uuid:a", "First", "https://news.example/a")
    b = ("urn:uuid:b", "Second", "https://news.example/b")
    server.routes["/n.xml"] = Route(_atom([a, b]))
    config, store = site(n={"path": "/n.xml", "series": "news", "prune": True})
    poll(store, config, "n")
    actions.add_entry(store, config, Entry(series="news", language="en", title="By hand",
                                           summary="", published=datetime(2026, 1, 1,
                                                                          tzinfo=UTC)))
    server.routes["/n.xml"] = Route(_atom([b]))
    assert "1 pruned" in poll(store, config, "n").message
    assert sorted(e.title for e in actions.list_entries(store)) == ["By hand", "Second"]


def test_config_rejects_bad_source_tables(make_config: ConfigFactory) -> None:
    from seriesfeed.errors import ConfigError

    for body, key in (('url = "ftp://x"', "sources.s.url"),
                      ('url = "https://x.example/f"\nschedule = "61 * * * *"',
                       "sources.s.schedule"),
                      ('url = "https://x.example/f"\nformat = "pdf"', "sources.s.format"),
                      ('url = "https://x.example/f"\ncolour = "red"', "sources.s.colour"),
                      ('url = "https://x.example/f"\nlanguage = "de"', "sources.s")):
        path = make_config(f"[sources.s]\n{body}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path, env={})
        assert key in str(info.value) and ":" in str(info.value)
    ok = load_config(make_config('[sources.s]\nurl = "https://x.example/f"\n'), env={
        "SERIESFEED_SOURCES_S_SCHEDULE": "0 * * * *"})
    assert ok.sources["s"].schedule == "0 * * * *" and ok.sources["s"].prune is False


# -- the shells: CLI, /healthz, the daemon process ---------------------------------------

def test_sources_poll_and_list_commands(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        published: dict[str, bytes], run_cli: Callable[..., CliResult]) -> None:
    server.routes["/en.xml"] = Route(published[f"/feeds/en/{SLUG}/atom.xml"])
    server.routes["/gone.xml"] = Route(status=410, conditional=False)
    config, _store = site(en={"path": "/en.xml", "series": SLUG}, old={"path": "/gone.xml"})
    assert config.path is not None
    one = run_cli("--config", config.path, "sources", "poll", "en")
    assert one.code == 0 and "en: 18 added" in one.out, one
    both = run_cli("--config", config.path, "sources", "poll")
    assert both.code == 1 and "en: not modified" in both.out and "old: " in both.out
    unknown = run_cli("--config", config.path, "sources", "poll", "nope")
    assert unknown.code == 1 and unknown.err.startswith("Error: no source 'nope'")
    shown = run_cli("--config", config.path, "sources", "list")
    assert "old  STOPPED" in shown.out and "en  ok" in shown.out
    listed = {s["name"]: s for s in json.loads(
        run_cli("--config", config.path, "sources", "list", "--json").out)}
    assert set(listed["en"]) >= {"url", "schedule", "last_poll", "last_status",
                                 "entries_added", "last_error", "next_poll"}
    assert listed["en"]["schedule"] == "*/15 * * * *"
    assert datetime.fromisoformat(listed["en"]["next_poll"]).minute % 15 == 0


def test_healthz_says_degraded_for_a_failing_source(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    from starlette.testclient import TestClient

    from seriesfeed.web import create_app

    server.routes["/bad.xml"] = Route(b"<feed", conditional=False)
    config, store = site(bad={"path": "/bad.xml"})
    client = TestClient(create_app(config, store))
    assert client.get("/healthz").json()["status"] == "up"
    poll(store, config, "bad")
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json()["status"] == "degraded"
    assert any(r.startswith("source bad failing:") and "not well-formed" in r
               for r in reply.json()["reasons"]), reply.json()


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
def test_sigterm_during_a_poll_exits_0_within_the_shutdown_timeout(
        server: SourceServer, make_config: ConfigFactory, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    server.routes["/slow.xml"] = Route(hang=True)
    path = make_config(
        f'[sources.slow]\nurl = "{server.url("/slow.xml")}"\n',
        database={"url": f"sqlite:///{tmp_path / 'd.sqlite3'}"},
        schedule={"feeds": "0 */6 * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
                  "drain_seconds": 60, "watch_seconds": 1, "shutdown_timeout": 5})
    proc = subprocess.Popen([sys.executable, "-m", "seriesfeed", "--config", str(path), "run",
                             "--no-web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while not server.requests_to("/slow.xml") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert server.requests_to("/slow.xml"), "the daemon never polled"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        _out, err = proc.communicate(timeout=10)
    assert code == 0, err
    assert took < 5 + 1.5, took
    assert "Traceback" not in err
    config = load_config(path, env={})
    store = Store(config.database.url, base_dir=config.base_dir)
    state = listing(store, config)["slow"]
    store.close()
    assert state["last_error"] is None  # interrupted, not failed; the lease is given back


def test_plain_ids_and_declared_charsets(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    rss = ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
           "<title>Plain</title><link>https://plain.example/</link><language>en</language>"
           "<item><title>Numbered</title><guid isPermaLink='false'>1234</guid>"
           "<link>https://plain.example/1234</link>"
           "<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>")
    server.routes["/plain.rss"] = Route(rss.encode(), content_type="application/rss+xml")
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "Numbers",
            "items": [{"id": 42, "title": "Forty-two", "url": "https://plain.example/42",
                       "date_published": "2026-11-03T10:00:00Z"}]}
    server.routes["/n.json"] = Route(json.dumps(feed).encode(),
                                     content_type="application/feed+json")
    page = seed_html().decode("utf-8").replace("Helen Scott", "Hélène Scott")
    server.routes["/latin1.html"] = Route(page.encode("iso-8859-1", "replace"),
                                          content_type="text/html; charset=ISO-8859-1")
    config, store = site(rss={"path": "/plain.rss", "series": "plain"},
                         js={"path": "/n.json", "series": "plain"},
                         page={"path": "/latin1.html"})
    for name in ("rss", "js", "page"):
        assert poll(store, config, name).outcome == "imported", name
    ids = {e.title: e.id for e in actions.list_entries(store)}
    assert ids["Numbered"] == server.url("/plain.rss") + "#id=1234"
    assert ids["Forty-two"] == server.url("/n.json") + "#id=42"
    assert any(a.name == "Hélène Scott" for e in actions.list_entries(store) for a in e.authors)
    server.routes["/plain.rss"] = Route(rss.replace("Numbered", "Numbered, fixed").encode(),
                                        content_type="application/rss+xml")
    assert poll(store, config, "rss").updated == 1  # matched by its id again


def test_a_url_taken_by_another_entry_is_that_entrys_error_only(
        server: SourceServer, site: Callable[..., tuple[Config, Store]]) -> None:
    a = ("urn:uuid:a", "First", "https://news.example/a")
    b = ("urn:uuid:b", "Second", "https://news.example/b")
    c = ("urn:uuid:c", "Third", "https://news.example/c")
    server.routes["/n.xml"] = Route(_atom([a, b]))
    config, store = site(n={"path": "/n.xml", "series": "news"})
    poll(store, config, "n")
    before = [e.to_json() for e in actions.list_entries(store)]
    # the publisher moves a onto b's URL while b is still stored, and adds c
    server.routes["/n.xml"] = Route(_atom([(a[0], "First", b[2]), c]))
    result = poll(store, config, "n")
    assert result.outcome == "imported" and result.added == 1, result
    after = [e.to_json() for e in actions.list_entries(store)]
    assert after[:2] == before and after[2]["id"] == c[0]  # a and b untouched
    error = listing(store, config)["n"]["last_error"]
    assert error and "urn:uuid:a" in error and b[2] in error


def test_one_request_per_source_at_a_time(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/slow.xml"] = Route(hang=True)
    monkeypatch.setattr(sources, "fetch", _with_timeouts(sources.fetch, 1.5))
    config, store = site(slow={"path": "/slow.xml"})

    async def both() -> list[sources.PollResult]:
        first = asyncio.ensure_future(sources.poll_source(store, config,
                                                          config.sources["slow"]))
        await asyncio.sleep(0.5)  # the first is waiting for its answer
        second = await sources.poll_source(store, config, config.sources["slow"], force=True)
        return [await first, second]

    first, second = asyncio.run(both())
    assert second.outcome == "busy"
    assert first.outcome == "failed" and "timed out" in first.message
    assert len(server.requests_to("/slow.xml")) == 1

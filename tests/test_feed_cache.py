"""The feed cache (issue 15): pieces and archive pages kept between builds never give other
bytes than a build from nothing, and a new entry changes only the documents that show it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from seriesfeed import actions
from seriesfeed.actions.feeds import FeedCache, plan_feeds
from seriesfeed.config import Config, load_config
from seriesfeed.models import Author, Entry
from seriesfeed.store import Store, open_store
from tests.conftest import EXAMPLE_JSON, SEED_PAGE, ConfigFactory
from tests.harness.builds import cli as _cli
from tests.harness.builds import files as _files

SLUG = "reflections-on-the-iso-crisis"


def _docs(config: Config, store: Store, cache: FeedCache) -> dict[str, bytes]:
    return {d.path: d.body for d in plan_feeds(config, store, cache=cache)}


def _small(make_config: ConfigFactory, database_url: str) -> Config:
    return load_config(make_config(database={"url": database_url},
                                   feeds={"max_entries": 3, "out_dir": "var/public"}), env={})


def test_a_warm_cache_gives_the_bytes_of_a_cold_build_after_every_kind_of_change(
        store: Store, make_config: ConfigFactory, database_url: str) -> None:
    config = _small(make_config, database_url)
    actions.import_entries(store, config, SEED_PAGE)
    warm = FeedCache()
    first = _docs(config, store, warm)
    assert any("/archive/" in p for p in first)
    assert _docs(config, store, warm) == first  # nothing changed

    def same_as_cold() -> dict[str, bytes]:
        got = _docs(config, store, warm)
        assert got == _docs(config, store, FeedCache())
        return got

    # an edit of an entry that sits in a full (archived) page
    oldest = actions.list_entries(store, language="en")[0]
    actions.add_entry(store, config, Entry(
        series=oldest.series, language="en", title=oldest.title + " (corrected)",
        summary=oldest.summary, published=oldest.published, authors=oldest.authors,
        url=oldest.url, id=oldest.id))
    edited = same_as_cold()
    page = next(p for p, b in edited.items() if p.endswith("/archive/1.xml")
                and b"(corrected)" in b)
    assert page.startswith("/feeds/en/")
    # a translation link added between two old entries, then the whole JSON example
    actions.import_entries(store, config, EXAMPLE_JSON)
    same_as_cold()
    # other settings: every piece is rebuilt with them
    other = load_config(make_config(database={"url": database_url},
                                    feeds={"max_entries": 3, "out_dir": "var/public"},
                                    websub={"hub": "https://hub.example.org/"}), env={})
    hubbed = {d.path: d.body for d in plan_feeds(other, store, cache=warm)}
    assert hubbed == {d.path: d.body for d in plan_feeds(other, store, cache=FeedCache())}
    assert b"https://hub.example.org/" in hubbed["/feeds/en/atom.xml"]


def test_one_new_entry_changes_only_the_documents_that_show_it(
        store: Store, make_config: ConfigFactory, database_url: str) -> None:
    config = _small(make_config, database_url)
    actions.import_entries(store, config, SEED_PAGE)
    # 18 English entries, pages of 3: six full archive pages; one more makes a tail
    cache = FeedCache()
    before = _docs(config, store, cache)
    newest = max(e.published for e in actions.list_entries(store))
    actions.add_entry(store, config, Entry(
        series=SLUG, language="en", title="One more", summary="New.",
        published=newest + timedelta(days=1), authors=(Author("A"),)))
    after = _docs(config, store, cache)
    changed = {p for p in after if before.get(p) != after[p]}
    assert changed == {f"{base}/{name}" for base in ("/feeds/en", f"/feeds/en/{SLUG}")
                       for name in ("atom.xml", "rss.xml", "feed.json")}
    assert after == _docs(config, store, FeedCache())


def test_a_new_full_page_links_the_page_before_it(
        store: Store, make_config: ConfigFactory, database_url: str) -> None:
    config = _small(make_config, database_url)
    actions.import_entries(store, config, SEED_PAGE)
    cache = FeedCache()
    before = _docs(config, store, cache)
    start = datetime(2020, 1, 1, tzinfo=UTC)  # after the seed, not in the future (held)
    for i in range(3):  # a seventh full page of English entries
        actions.add_entry(store, config, Entry(
            series=SLUG, language="en", title=f"Later {i}", summary="S",
            published=start + timedelta(days=i), authors=(Author("A"),)))
    after = _docs(config, store, cache)
    assert f"/feeds/en/{SLUG}/archive/7.xml" in after
    assert b"archive/7.xml" in after[f"/feeds/en/{SLUG}/archive/6.xml"]
    assert b"archive/7.xml" not in before[f"/feeds/en/{SLUG}/archive/6.xml"]
    assert after[f"/feeds/en/{SLUG}/archive/5.xml"] == before[f"/feeds/en/{SLUG}/archive/5.xml"]
    assert after == _docs(config, store, FeedCache())


def test_the_live_site_never_goes_back_to_an_older_plan(
        store: Store, make_config: ConfigFactory, database_url: str) -> None:
    """Two requests race: one read plan 1 from actions.LiveSite and was held up; the other
    planned and served plan 2 (a new entry). When the slow one arrives, the web's cache
    keeps serving plan 2, with its Last-Modified, and never plan 1 again."""
    from seriesfeed.web.feeds import SiteCache

    config = _small(make_config, database_url)
    actions.import_entries(store, config, SEED_PAGE)
    cache = SiteCache(config, store)
    stale = cache.live.current()  # what the slow request read
    assert stale[0] == 1 and cache.current()
    latest = actions.list_entries(store, language="en")[-1]
    actions.add_entry(store, config, Entry(
        series=latest.series, language="en", title="A new part", summary="s",
        published=latest.published + timedelta(days=1), authors=latest.authors,
        url="https://example.org/new-part"))
    newer = cache.current()
    assert cache.version == 2 and b"A new part" in newer["/feeds/en/atom.xml"].doc.body
    cache.live.current = lambda: stale  # type: ignore[method-assign]  # the slow request
    assert cache.current() is newer and cache.version == 2
    # and a version and its documents always come from one plan
    version, docs = cache.live.plan
    assert version == 2 and any(b"A new part" in d.body for d in docs)


def test_an_entry_that_moves_series_gets_its_new_local_link_from_a_warm_cache(
        store: Store, make_config: ConfigFactory, database_url: str) -> None:
    """With article pages local, an entry's link is its page under its series: the cached
    pieces must follow a move (and a new slug), not keep the old page's address."""
    config = load_config(make_config(database={"url": database_url},
                                     site={"article_pages": "local"},
                                     feeds={"max_entries": 3, "out_dir": "var/public"}), env={})
    actions.import_entries(store, config, SEED_PAGE)
    warm = FeedCache()
    before = _docs(config, store, warm)
    newest = actions.list_entries(store, language="en")[-1]
    old_path = f"/en/{SLUG}/{newest.slug}/"
    assert old_path.encode() in before["/feeds/en/atom.xml"]
    actions.add_entry(store, config, Entry(
        series="elsewhere", language="en", title=newest.title, summary=newest.summary,
        published=newest.published, authors=newest.authors, url=newest.url, id=newest.id))
    after = _docs(config, store, warm)
    assert after == _docs(config, store, FeedCache())
    assert f"/en/elsewhere/{newest.slug}/".encode() in after["/feeds/en/atom.xml"]
    assert old_path.encode() not in after["/feeds/en/atom.xml"]
    assert old_path.encode() not in after["/feeds/en/feed.json"]


def test_the_piece_key_holds_what_the_local_link_is_made_of() -> None:
    """Equal keys must mean equal bytes: the series and slug make the local link, so an
    entry that moved (even with the same dates) never gets its old piece."""
    import dataclasses

    from seriesfeed.feeds import entry_key

    e = Entry(series="one", language="en", title="Intro", summary="", seq=1, id="tag:x,2024:/a",
              published=datetime(2024, 1, 1, tzinfo=UTC), url="https://example.org/a/",
              slug="intro")
    assert entry_key(e, {}) == entry_key(dataclasses.replace(e), {})
    for change in ({"series": "two"}, {"slug": "intro-2"}):
        moved = dataclasses.replace(e, **change)  # type: ignore[arg-type]
        assert moved.link("https://s.example", True) != e.link("https://s.example", True)
        assert entry_key(moved, {}) != entry_key(e, {}), change


def test_a_new_process_after_an_edit_changes_exactly_what_shows_it_as_a_cold_build_would(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """The piece cache outlives the process (a manifest beside the built files): a build
    in a new process after one title edit writes exactly the documents that show the
    title, and the folder is then byte for byte what a build from nothing writes."""
    config_path = make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                              feeds={"max_entries": 3, "out_dir": "var/public"})
    config = load_config(config_path, env={})
    _cli(config_path, "import", str(SEED_PAGE))
    warm, cold = tmp_path / "warm", tmp_path / "cold"
    _cli(config_path, "feeds", "build", "--out", str(warm))
    before = _files(warm)
    assert any("/archive/" in p for p in before) and len(before) > 20
    store = open_store(config.database.url, config.base_dir)
    try:
        oldest = actions.list_entries(store, language="en")[0]
    finally:
        store.close()
    _cli(config_path, "entries", "add", "--series", oldest.series, "--lang", "en",
         "--title", oldest.title + " (corrected)", "--summary", oldest.summary,
         "--published", oldest.published.isoformat(), "--url", str(oldest.url))
    said = _cli(config_path, "feeds", "build", "--out", str(warm))
    after = _files(warm)
    changed = {p for p in after if before.get(p) != after[p]}
    showing = {p for p, body in after.items() if b"(corrected)" in body}
    # besides those, the documents dated by the newest change among what they cover
    # (a feed's <updated>, the sitemap's <lastmod>): the edit is that change
    series = f"feeds/en/{oldest.series}"
    dated = {"sitemap.xml", "feeds/en/atom.xml", "feeds/en/rss.xml", f"{series}/atom.xml",
             f"{series}/rss.xml", "feeds/en/feed.json", f"{series}/feed.json"}
    assert showing <= changed <= showing | dated, (changed ^ showing)
    assert f"{len(changed)} files written" in said
    assert any("/archive/" in p for p in changed)  # an archived page, made again
    _cli(config_path, "feeds", "build", "--out", str(cold))
    assert after == _files(cold)


def test_a_built_file_changed_by_someone_else_is_made_again(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """The manifest is believed only for files still as written (size and time): a page
    edited or removed by hand is made and written again, not taken as cached."""
    config_path = make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                              feeds={"max_entries": 3, "out_dir": "var/public"})
    _cli(config_path, "import", str(SEED_PAGE))
    out = tmp_path / "out"
    _cli(config_path, "feeds", "build", "--out", str(out))
    built = _files(out)
    page = next(p for p in built if p.endswith("/index.html") and p.count("/") == 3)
    archive = next(p for p in built if "/archive/" in p)
    (out / page).write_bytes(b"<p>defaced</p>")
    (out / archive).unlink()
    _cli(config_path, "entries", "add", "--series", "reflections-on-the-iso-crisis",
         "--title", "A new part", "--published", "2019-06-01")  # so that the build runs
    _cli(config_path, "feeds", "build", "--out", str(out))
    rebuilt = _files(out)
    assert b"defaced" not in rebuilt[page] and archive in rebuilt
    _cli(config_path, "feeds", "build", "--out", str(tmp_path / "cold"))
    assert rebuilt == _files(tmp_path / "cold")


def test_an_edited_template_remakes_every_page_it_draws(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """An operator's own templates folder (or a new checkout's) is an input of every page:
    after an edit to the article template and one new entry, every article page is drawn
    with the new template, as a build from nothing draws it, not only the pages the entry
    touches."""
    import shutil

    from seriesfeed.templating import PACKAGE_TEMPLATES

    config_path = make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                              feeds={"max_entries": 3, "out_dir": "var/public"})
    shutil.copytree(PACKAGE_TEMPLATES, config_path.parent / "templates")
    _cli(config_path, "import", str(SEED_PAGE))
    warm = tmp_path / "warm"
    _cli(config_path, "feeds", "build", "--out", str(warm))
    article = config_path.parent / "templates" / "web" / "article.html.j2"
    text = article.read_text(encoding="utf-8")
    marker = "<!-- drawn by the edited template -->"
    assert "{% block content %}" in text
    article.write_text(text.replace("{% block content %}", "{% block content %}" + marker, 1),
                       encoding="utf-8")
    # one title edit (a new part would renumber every page and hide a stale key)
    store = open_store(load_config(config_path, env={}).database.url, config_path.parent)
    try:
        oldest = actions.list_entries(store, language="en")[0]
    finally:
        store.close()
    _cli(config_path, "entries", "add", "--series", oldest.series, "--lang", "en",
         "--title", oldest.title + " (fixed)", "--summary", oldest.summary,
         "--published", oldest.published.isoformat(), "--url", str(oldest.url))
    _cli(config_path, "feeds", "build", "--out", str(warm))
    pages = {p: body for p, body in _files(warm).items()
             if p.endswith("/index.html") and p.count("/") == 3}
    assert len(pages) >= 20
    stale = [p for p, body in pages.items() if marker.encode() not in body]
    assert not stale, stale[:5]
    _cli(config_path, "feeds", "build", "--out", str(tmp_path / "cold"))
    assert _files(warm) == _files(tmp_path / "cold")

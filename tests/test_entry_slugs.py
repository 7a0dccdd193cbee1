"""Entry slugs after a move, on PostgreSQL's collation and under two writers, and the
slug rule itself: a slug stays unique in its series and language whatever the import does,
and a clash is never a traceback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from seriesfeed import actions
from seriesfeed.config import Config
from seriesfeed.models import Entry
from seriesfeed.store import Store
from seriesfeed.store.slugs import entry_slug
from tests.conftest import CliResult

A = {"id": "tag:example.org,2024-01-01:/a", "series": "one", "language": "en", "title": "Intro",
     "url": "https://example.org/one/intro/", "published": "2024-01-01T10:00:00Z"}
B = {"id": "tag:example.org,2024-01-02:/b", "series": "two", "language": "en", "title": "Intro",
     "url": "https://example.org/two/intro/", "published": "2024-01-02T10:00:00Z"}


def _doc(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"format": "seriesfeed/1", "series": [], "entries": entries}),
                    encoding="utf-8")
    return path


def _slugs(store: Store) -> dict[str, tuple[str, str, str | None]]:
    return {e.id or "": (e.series, e.language, e.slug) for e in actions.list_entries(store)}


def test_an_entry_moved_to_another_series_gets_a_slug_free_there(
        run_cli: Callable[..., CliResult], config_path: Path, config: Config, store: Store,
        tmp_path: Path) -> None:
    assert run_cli("--config", config_path, "import",
                   _doc(tmp_path / "ab.json", [A, B])).code == 0
    moved = run_cli("--config", config_path, "import",
                    _doc(tmp_path / "a2.json", [dict(A, series="two")]))
    assert moved.code == 0, moved
    assert "Traceback" not in moved.err and "1 updated" in moved.out
    slugs = _slugs(store)
    # the entry already in "two" keeps its slug; the one that moved there gets the next
    assert slugs[B["id"]] == ("two", "en", "intro")
    assert slugs[A["id"]] == ("two", "en", "intro-2")
    # unchanged otherwise: re-importing the same file keeps the new slug
    again = actions.import_entries(store, config, tmp_path / "a2.json")
    assert again.unchanged == 1 and _slugs(store)[A["id"]] == ("two", "en", "intro-2")
    # a move to a language or series where the plain slug is free takes the plain one
    actions.import_entries(store, config, _doc(tmp_path / "a3.json", [dict(A, series="three")]))
    assert _slugs(store)[A["id"]] == ("three", "en", "intro")


def test_a_poll_that_moves_an_entry_onto_a_taken_slug_stores_it(
        store: Store, config: Config, tmp_path: Path) -> None:
    from seriesfeed.actions import entries as ae
    from seriesfeed.importers.parse import parse_file

    actions.import_entries(store, config, _doc(tmp_path / "ab.json", [A, B]))
    batch = parse_file(_doc(tmp_path / "poll.json", [dict(A, series="two")]), "json",
                       ae.import_settings(config))
    report = ae.store_batch(store, config, batch, "source x", ae.ImportReport("x", "json"),
                            from_source=True)
    assert report.updated == 1 and report.conflicts == []
    assert _slugs(store)[A["id"]] == ("two", "en", "intro-2")


def test_slugs_with_characters_that_sort_between_hyphen_and_dot_are_seen(
        store: Store, config: Config) -> None:
    """The taken slugs are found by equality, not by a range whose order depends on the
    database's collation (en_US sorts 'intro-2' outside ['intro-', 'intro.'))."""
    def add(url: str) -> Entry:
        return actions.add_entry(store, config, Entry(
            series="s", language="en", title="Intro", summary="",
            published=datetime(2024, 1, 1, tzinfo=UTC), url=url))

    made = [add(f"https://example.org/{n}/intro/").slug for n in range(12)]
    assert made == ["intro"] + [f"intro-{n}" for n in range(2, 13)]
    # a slug that shares the prefix but is another base does not count as taken
    assert add("https://example.org/x/intro-duction/").slug == "intro-duction"


@pytest.mark.postgres
def test_slugs_on_a_postgresql_database_whose_collation_ignores_punctuation(
        make_config: Callable[..., Path]) -> None:
    """ICU with alternate=shifted sorts 'intro-2' after 'intro.' (punctuation ignored): a
    range lookup of the taken slugs missed it and minted it a second time."""
    import uuid

    import psycopg

    from seriesfeed.config import load_config
    from tests.conftest import PG_ADMIN_URL, PG_SKIP_REASON

    if PG_SKIP_REASON:
        pytest.skip(PG_SKIP_REASON)
    name = f"seriesfeed_test_shifted_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                      "ICU_LOCALE 'und-u-ka-shifted' LOCALE 'C.UTF-8'")
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    store = Store(url)
    try:
        with store.read() as conn:  # the premise: this collation breaks the range
            assert conn.execute(text("SELECT 'intro-2' < 'intro.'")).scalar() is False
        store.migrate()
        config = load_config(make_config(database={"url": url}), env={})
        made = [actions.add_entry(store, config, Entry(
            series="s", language="en", title="Intro", summary="",
            published=datetime(2024, 1, 1, tzinfo=UTC), url=f"https://example.org/{n}/intro/"))
            .slug for n in range(4)]
        assert made == ["intro", "intro-2", "intro-3", "intro-4"]
    finally:
        store.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_two_writers_minting_the_same_slug_on_postgresql_both_store(
        pg_url: str, make_config: Callable[..., Path], tmp_path: Path) -> None:
    """The second writer reads the taken slugs before the first commits: its insert meets
    the unique index, and it takes the next suffix instead of failing."""
    from seriesfeed.config import load_config

    config = load_config(make_config(database={"url": pg_url}), env={})
    store = Store(pg_url)
    other = Store(pg_url)
    try:
        actions.import_entries(store, config, _doc(tmp_path / "first.json", [B]))
        first_done = threading.Event()
        errors: list[BaseException] = []
        with other.write() as conn:
            # the other writer holds an uncommitted "intro-2" (the slug our import will pick)
            sid = conn.execute(text("SELECT id FROM series WHERE slug = 'two'")).scalar_one()
            now = datetime(2024, 1, 1, tzinfo=UTC)
            conn.execute(text(
                "INSERT INTO entries (id, series_id, language, title, summary, url, published, "
                "updated, created_at, slug) VALUES ('tag:x,2024:/held', :sid, 'en', 'Intro', "
                "'', 'https://example.org/held/intro/', :n, :n, :n, 'intro-2')"),
                {"sid": sid, "n": now})

            def run() -> None:
                try:
                    actions.import_entries(store, config, _doc(
                        tmp_path / "second.json",
                        [dict(B, id="tag:example.org,2024-01-03:/c",
                              url="https://example.org/three/intro/")]))
                except BaseException as exc:  # reported below
                    errors.append(exc)
                finally:
                    first_done.set()

            worker = threading.Thread(target=run)
            worker.start()
            time.sleep(1.0)  # the worker's insert now waits on the held row's index entry
            assert not first_done.is_set()
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert errors == []
        found = {e.id: e.slug for e in actions.list_entries(store)}
        assert found["tag:x,2024:/held"] == "intro-2"
        assert found["tag:example.org,2024-01-03:/c"] == "intro-3"
    finally:
        store.close()
        other.close()


def test_a_numbered_html_page_never_gives_a_slug_of_digits_only() -> None:
    assert entry_slug("https://example.org/2019/123.html", "The title", ()) == "the-title"
    assert entry_slug("https://example.org/2019/12-3.HTML", "The title", ()) == "the-title"
    assert entry_slug("https://example.org/a/intro.html", "The title", ()) == "intro"


def test_the_slug_migration_keeps_its_own_copy_of_the_rule() -> None:
    """What migration 0006 gives an old store must not change when the live rule is fixed."""
    from seriesfeed.store import MIGRATIONS

    found = [p for p in (MIGRATIONS / "versions").glob("*.py")
             if "entry_slug" in p.read_text(encoding="utf-8")]
    assert found, "the slug migration was not found"
    for path in found:
        source = path.read_text(encoding="utf-8")
        assert "seriesfeed.store.slugs" not in source, path.name
        assert "def _entry_slug" in source, path.name


def test_an_entry_moved_by_id_onto_another_entrys_url_is_that_entrys_error(
        store: Store, config: Config, tmp_path: Path) -> None:
    """One query finds both the entry with the id and the entry at the URL."""
    from seriesfeed.actions import entries as ae
    from seriesfeed.errors import ImportError_
    from seriesfeed.importers.parse import parse_file

    actions.import_entries(store, config, _doc(tmp_path / "ab.json", [A, B]))
    onto = dict(A, url=B["url"])
    with pytest.raises(ImportError_, match=r"moved to .* which the stored entry .*/b"):
        actions.import_entries(store, config, _doc(tmp_path / "onto.json", [onto]))
    new = dict(B, id="tag:example.org,2024-01-05:/n", url="https://example.org/n/")
    batch = parse_file(_doc(tmp_path / "poll.json", [onto, new]), "json",
                       ae.import_settings(config))
    report = ae.store_batch(store, config, batch, "source x", ae.ImportReport("x", "json"),
                            from_source=True)
    assert report.added == 1 and len(report.conflicts) == 1
    assert B["id"] in report.conflicts[0]
    urls = {e.id: e.url for e in actions.list_entries(store)}
    assert urls[A["id"]] == A["url"] and urls[B["id"]] == B["url"]
    # its own URL again (matched by id and at that URL): no conflict
    assert actions.import_entries(store, config, _doc(tmp_path / "a.json", [A])).unchanged == 1

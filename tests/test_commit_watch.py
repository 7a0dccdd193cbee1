"""The web app skips the store's fingerprint query while nothing was committed (SQLite's
data_version), and still never answers a stale 304 after a commit from anywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.testclient import TestClient

from seriesfeed import actions
from seriesfeed.config import Config
from seriesfeed.models import Author, Entry
from seriesfeed.store import Store, open_store
from seriesfeed.store.watch import CommitWatch
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE

SLUG = "reflections-on-the-iso-crisis"


def _entry(title: str) -> Entry:
    return Entry(series=SLUG, language="en", title=title, summary="S",
                 published=datetime(2020, 1, 1, tzinfo=UTC), authors=(Author("A"),))


def test_the_counter_moves_exactly_when_something_is_committed(store: Store,
                                                               config: Config) -> None:
    watch = CommitWatch(store)
    if store.dialect != "sqlite":
        assert watch.counter() is None  # the caller asks the store itself
        return
    first = watch.counter()
    assert first is not None and watch.counter() == first
    with store.read() as conn:  # reading commits nothing
        conn.exec_driver_sql("SELECT count(*) FROM entries")
    assert watch.counter() == first
    other = open_store(config.database.url, config.base_dir)  # another "process"
    try:
        actions.add_entry(other, config, _entry("From elsewhere"))
    finally:
        other.close()
    assert watch.counter() != first
    watch.close()


def test_no_stale_304_after_a_commit_by_another_store(store: Store, config: Config) -> None:
    actions.import_entries(store, config, SEED_PAGE)
    other = open_store(config.database.url, config.base_dir)
    try:
        with TestClient(create_app(config, store)) as client:
            path = "/feeds/en/atom.xml"
            first = client.get(path)
            etag = first.headers["etag"]
            for _ in range(3):
                assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
            actions.add_entry(other, config, _entry("Committed elsewhere"))
            after = client.get(path, headers={"If-None-Match": etag})
            assert after.status_code == 200 and after.headers["etag"] != etag
            assert b"Committed elsewhere" in after.content
    finally:
        other.close()


def test_the_probe_answers_at_once_or_not_at_all(store: Store, config: Config) -> None:
    """The web's event loop asks the probe on every conditional GET: it must never wait,
    neither for another thread reading the counter nor for a writer holding SQLite's lock;
    "cannot tell" (None) sends the request to a worker thread instead."""
    watch = CommitWatch(store)
    if store.dialect != "sqlite":
        assert watch.probe() is None
        return
    first = watch.probe()
    assert first is not None and first == watch.counter()
    with watch.lock:  # another thread is reading the counter
        assert watch.probe() is None
    other = open_store(config.database.url, config.base_dir)
    try:
        with other.write() as conn:  # a writer holds the lock: the probe still answers
            conn.exec_driver_sql("SELECT 1")
            assert watch.probe() == first
        actions.add_entry(other, config, _entry("From elsewhere"))
    finally:
        other.close()
    assert watch.probe() not in (None, first)
    watch.close()

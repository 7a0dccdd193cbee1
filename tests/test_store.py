"""The store contract, run against a SQLite file and PostgreSQL alike."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select

from seriesfeed.errors import NotFoundError, StoreError
from seriesfeed.models import Author, AuthorKind, Entry, Series, SeriesText
from seriesfeed.store import HEAD_REVISION, MIGRATIONS, Store
from seriesfeed.store import entries as q
from seriesfeed.store.tables import job_runs, metadata

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EDT = timezone(timedelta(hours=-4))


def _entry(n: int, **kw: object) -> Entry:
    base: dict[str, object] = dict(
        series="s", language="en", title=f"Title {n}", summary=f"Summary {n}",
        published=datetime(2019, 3, n, tzinfo=EDT), url=f"https://example.org/{n}/",
        id=f"tag:example.org,2019-03-{n:02d}:/{n}/",
        authors=(Author("Ann Person"), Author("ISO Steering Committee", AuthorKind.ORGANIZATION)),
    )
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


def _series(store: Store) -> int:
    with store.write() as conn:
        return q.upsert_series(conn, Series("s", {"en": SeriesText("S", "About S")}), NOW)


def test_migrations_create_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)
    assert diff == []
    assert store.schema_revision() == HEAD_REVISION == "i24_entry_pins"  # the newest
    assert store.migrate() == []  # idempotent


def test_the_fast_start_knows_the_newest_migration(store: Store) -> None:
    """HEAD_REVISION, which lets a store at the newest schema open without Alembic, is
    Alembic's head: a new migration that forgets it is caught here, not in the field."""
    assert store.head_revision() == HEAD_REVISION
    assert store.at_head()


def test_a_store_at_head_opens_without_alembic_and_an_older_one_upgrades(
        tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = Store(url)
    with old.engine.begin() as conn:  # an older store: the first revision only
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    assert not old.at_head() and old.schema_revision() == "0001"
    assert Store(f"sqlite:///{tmp_path / 'new.sqlite3'}").schema_revision() is None
    upgrade = subprocess.run([sys.executable, "-c",
                              "from seriesfeed.store import Store\n"
                              f"print(Store({url!r}).migrate())\n"],
                             capture_output=True, text=True, check=True)
    assert upgrade.stdout.strip() == ("['i14_sources', 'i16_ops', 'i12_drop_rate_limits', "
                                      "'sub_unsubscribed_from', 'i21_parts', 'i20_relay_state', "
                                      "'i23_nodes', 'i21_catch_up', 'i20_relay_identity', "
                                      "'i24_admin', 'i24_entry_pins']")
    assert old.at_head()
    again = subprocess.run([sys.executable, "-c",
                            "import sys\nfrom seriesfeed.store import open_store\n"
                            f"s = open_store({url!r})\n"
                            "print(s.migrate(), 'alembic' in sys.modules)\n"],
                           capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "[] False"
    assert old.schema_revision() == HEAD_REVISION
    old.close()


def test_entries_round_trip_with_ordered_authors_and_aware_dates(store: Store) -> None:
    sid = _series(store)
    with store.write() as conn:
        row = q.save_entry(conn, _entry(15), sid, NOW)
    assert row.created
    with store.read() as conn:
        got = q.get_entry(conn, "tag:example.org,2019-03-15:/15/")
    assert got.authors == (Author("Ann Person"),
                           Author("ISO Steering Committee", AuthorKind.ORGANIZATION))
    assert got.published == datetime(2019, 3, 15, 4, 0, tzinfo=UTC)
    assert got.published.tzinfo is not None
    assert got.updated == got.published
    assert got.series == "s"


def test_sequence_grows_on_insert_only(store: Store) -> None:
    sid = _series(store)
    with store.write() as conn:
        a = q.save_entry(conn, _entry(1), sid, NOW)
        b = q.save_entry(conn, _entry(2), sid, NOW)
    assert b.seq > a.seq
    with store.write() as conn:
        again = q.save_entry(conn, _entry(1, summary="Fixed"), sid, NOW + timedelta(hours=1))
        c = q.save_entry(conn, _entry(3), sid, NOW)
    assert again.seq == a.seq and again.changed and not again.created
    assert c.seq > b.seq
    with store.read() as conn:
        fixed = q.get_entry(conn, str(a.seq))
        assert fixed.summary == "Fixed"
        assert fixed.updated == NOW + timedelta(hours=1)
        assert q.max_seq(conn) == c.seq


def test_unchanged_save_keeps_updated(store: Store) -> None:
    sid = _series(store)
    with store.write() as conn:
        q.save_entry(conn, _entry(4), sid, NOW)
    with store.write() as conn:
        row = q.save_entry(conn, _entry(4), sid, NOW + timedelta(days=3))
    assert not row.changed
    with store.read() as conn:
        assert q.get_entry(conn, "https://example.org/4/").updated == _entry(4).published


def test_seq_is_never_reused_after_a_delete(store: Store) -> None:
    sid = _series(store)
    with store.write() as conn:
        q.save_entry(conn, _entry(1), sid, NOW)
        last = q.save_entry(conn, _entry(2), sid, NOW)
    with store.write() as conn:
        q.remove_entry(conn, str(last.seq))
    with store.write() as conn:
        new = q.save_entry(conn, _entry(3), sid, NOW)
    assert new.seq > last.seq


def test_translations_link_both_ways(store: Store) -> None:
    sid = _series(store)
    with store.write() as conn:
        en = q.save_entry(conn, _entry(1), sid, NOW)
        es = q.save_entry(conn, _entry(2, language="es"), sid, NOW)
        assert q.set_translation(conn, es.seq, en.seq)
        assert not q.set_translation(conn, es.seq, en.seq)
    with store.read() as conn:
        assert q.get_entry(conn, str(es.seq)).translation_of == _entry(1).id
        assert q.translations_of(conn, [en.seq, es.seq]) == {en.seq: [es.seq], es.seq: [en.seq]}
    with store.write() as conn:
        q.remove_entry(conn, str(en.seq))
    with store.read() as conn:
        assert q.get_entry(conn, str(es.seq)).translation_of is None


def test_listing_filters_and_orders(store: Store) -> None:
    sid = _series(store)
    with store.write() as conn:
        for n in (3, 1, 2):
            q.save_entry(conn, _entry(n, language="es" if n == 2 else "en"), sid, NOW)
    with store.read() as conn:
        newest = q.list_entries(conn, language="en")
        assert [e.title for e in newest] == ["Title 3", "Title 1"]
        oldest = q.list_entries(conn, newest_first=False)
        assert [e.title for e in oldest] == ["Title 1", "Title 2", "Title 3"]
        assert [e.title for e in q.list_entries(conn, after_seq=1, newest_first=False)] == \
            ["Title 1", "Title 2"]
        assert q.count_entries(conn) == {"en": 2, "es": 1}


def test_unknown_entry_is_not_found(store: Store) -> None:
    with store.read() as conn, pytest.raises(NotFoundError, match="no entry"):
        q.get_entry(conn, "tag:nope")


def test_series_texts_merge_per_language(store: Store) -> None:
    with store.write() as conn:
        q.upsert_series(conn, Series("s", {"en": SeriesText("S", "About")}), NOW)
        q.upsert_series(conn, Series("s", {"es": SeriesText("S es", "Sobre")}), NOW)
        q.upsert_series(conn, Series("s", {"en": SeriesText("S2", "About")}), NOW)
    with store.read() as conn:
        got = q.get_series(conn, "s")
    assert got is not None
    assert got.texts == {"en": SeriesText("S2", "About"), "es": SeriesText("S es", "Sobre")}


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    sid = _series(store)
    with pytest.raises(RuntimeError), store.write() as conn:
        q.save_entry(conn, _entry(1), sid, NOW)
        raise RuntimeError("boom")
    with store.read() as conn:
        assert q.list_entries(conn) == []


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"), store.write() as conn:
        conn.execute(insert(job_runs).values(job="x", started_at=datetime(2020, 1, 1)))


def test_concurrent_writers_wait_instead_of_failing(store: Store) -> None:
    """RELIABILITY #8: read-then-write transactions from several threads never see
    "database is locked" (BEGIN IMMEDIATE on SQLite)."""
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                with store.write() as conn:
                    conn.execute(select(job_runs.c.id)).all()  # read first, then write
                    conn.execute(insert(job_runs).values(job=f"w{n}", started_at=NOW,
                                                         summary=str(i)))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with store.read() as conn:
        assert len(conn.execute(select(job_runs.c.id)).all()) == 60


def test_durable_write_commits(store: Store) -> None:
    with store.write(durable=True) as conn:
        conn.execute(insert(job_runs).values(job="d", started_at=NOW))
    with store.read() as conn:
        assert conn.execute(select(job_runs.c.job)).scalar() == "d"
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_unreachable_postgres_is_a_store_error() -> None:
    store = Store("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="cannot open the database"):
        store.ping()


def test_relative_sqlite_path_resolves_against_base_dir(tmp_path: Path) -> None:
    store = Store("sqlite:///var/x.sqlite3", base_dir=tmp_path)
    store.migrate()
    assert (tmp_path / "var" / "x.sqlite3").exists()
    assert store.lock_path == tmp_path / "var" / "x.sqlite3.lock"
    store.close()


def test_content_version_grows_with_every_visible_change(store: Store) -> None:
    def version() -> object:
        with store.read() as conn:
            return q.fingerprint(conn)

    v0 = version()
    sid = _series(store)
    v1 = version()
    assert v1 != v0
    with store.write() as conn:
        q.save_entry(conn, _entry(1), sid, NOW)
    v2 = version()
    with store.write() as conn:
        q.save_entry(conn, _entry(1), sid, NOW)  # unchanged
    assert version() == v2
    with store.write() as conn:
        q.save_entry(conn, _entry(1, title="Fixed title"), sid, NOW)
    v3 = version()
    assert v3 != v2
    with store.write() as conn:
        other = q.save_entry(conn, _entry(2, language="es"), sid, NOW)
        q.set_translation(conn, other.seq, q.find_seq(conn, url="https://example.org/1/"))
    v4 = version()
    assert v4 != v3
    with store.write() as conn:
        q.remove_entry(conn, str(other.seq))
    assert version() != v4

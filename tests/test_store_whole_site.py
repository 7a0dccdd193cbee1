"""The whole-site read (``list_entries`` with no filter, what a feed build reads) numbers
parts from the rows it loaded, in one scan of the entries: the same entries, parts and
links as the filtered path, which reads the part rows in a second scan; on SQLite and
PostgreSQL, with held entries, pinned parts, translations and ties in publication time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event

from seriesfeed.models import Author, Entry, Series, SeriesText
from seriesfeed.parts import PartRow
from seriesfeed.store import Store
from seriesfeed.store import entries as q

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EVERYTHING = 10**6  # a limit that leaves nothing out: the filtered path over every entry


def _entry(series: str, n: int, published: datetime, **kw: Any) -> Entry:
    base: dict[str, Any] = dict(
        series=series, language="en", title=f"{series} {n}", summary=f"About {n}",
        published=published, url=f"https://example.org/{series}/{n}/",
        id=f"tag:example.org,2026:/{series}/{n}/",
        authors=(Author(f"Writer {n % 3}"),) if n % 4 else ())
    base.update(kw)
    return Entry(**base)


def _fill(conn: Connection) -> dict[str, int]:
    """Two series: originals with ties in publication time (microseconds and none),
    Spanish translations (one of a translation), pinned parts (one beyond the count), held
    entries (an original whose translation is public, a translation of a held one), a
    pinned title. Returns seq by title."""
    seqs: dict[str, int] = {}
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for slug in ("alpha", "beta"):
        sid = q.upsert_series(conn, Series(slug, {"en": SeriesText(slug.title(), ""),
                                                  "es": SeriesText(slug, "")}), NOW)
        for n in range(12):
            # n 4 and 5 share a time; n 7 has microseconds
            at = start + timedelta(days=n if n != 5 else 4, microseconds=7 if n == 7 else 0)
            held = n in (9, 11)
            if held:
                at = NOW + timedelta(days=n)
            e = _entry(slug, n, at, texts_pinned=("title",) if n == 2 else ())
            row = q.save_entry(conn, e, sid, NOW)
            q.sync_hold(conn, row.seq, at, NOW, created=True)
            seqs[e.title] = row.seq
        for n, original in ((1, 3), (2, 6), (3, 9), (4, 11)):
            e = _entry(slug, 100 + n, start + timedelta(days=20 + n), language="es")
            row = q.save_entry(conn, e, sid, NOW)
            seqs[e.title] = row.seq
            q.set_translation(conn, row.seq, seqs[f"{slug} {original}"])
        # a translation of a translation, and a held translation of a public original
        row = q.save_entry(conn, _entry(slug, 200, start + timedelta(days=30), language="es"),
                           sid, NOW)
        q.set_translation(conn, row.seq, seqs[f"{slug} 101"])
        at = NOW + timedelta(days=40)
        held_es = q.save_entry(conn, _entry(slug, 201, at, language="es"), sid, NOW)
        q.sync_hold(conn, held_es.seq, at, NOW, created=True)
        q.set_translation(conn, held_es.seq, seqs[f"{slug} 8"])
        q.set_part(conn, seqs[f"{slug} 1"], 5)
        q.set_part(conn, seqs[f"{slug} 10"], 2)
    q.set_part(conn, seqs["beta 0"], 30)  # beyond the count: the series has 30 parts
    return seqs


@pytest.fixture
def filled(store: Store) -> Iterator[Store]:
    with store.write() as conn:
        _fill(conn)
    yield store


def _entry_scans(store: Store) -> tuple[list[str], Any]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM entries" in statement:
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    return seen, count


@pytest.mark.parametrize("include_held", [False, True])
def test_the_whole_site_read_equals_the_filtered_path_field_for_field(
        filled: Store, include_held: bool) -> None:
    with filled.read() as conn:
        whole = q.list_entries(conn, include_held=include_held)
        filtered = q.list_entries(conn, include_held=include_held, limit=EVERYTHING)
        per_series = [e for slug in ("alpha", "beta")
                      for e in q.list_entries(conn, include_held=include_held,
                                              series_slug=slug)]
        oldest_first = q.list_entries(conn, include_held=include_held, newest_first=False)
    assert whole == filtered  # every field: parts, authors, links, pins, order
    by_seq = {e.seq: e for e in whole}
    assert len(whole) == (36 if include_held else 30)
    assert {e.seq: (e.part, e.parts) for e in per_series} == {
        s: (e.part, e.parts) for s, e in by_seq.items()}
    assert oldest_first == sorted(whole, key=lambda e: (e.published, e.seq or 0))
    # the numbers themselves, as parts.py defines them (a few that the fixture pins down)
    titles = {e.title: e for e in whole}
    assert (titles["alpha 1"].part, titles["alpha 10"].part) == (5, 2)  # pinned
    assert titles["alpha 102"].part == titles["alpha 6"].part  # a translation: its original's
    assert titles["alpha 200"].part == titles["alpha 3"].part  # through a translation
    assert titles["beta 0"].parts == 30 and titles["alpha 3"].parts == 12
    if not include_held:
        assert not {"alpha 9", "alpha 11", "alpha 201"} & set(titles)
        # the originals are held: their public translations count as originals
        assert titles["alpha 103"].part != titles["alpha 104"].part
    assert any(e.texts_pinned == ("title",) for e in whole)
    assert any(e.authors == () for e in whole) and any(e.authors for e in whole)


def test_the_whole_site_read_hands_number_parts_the_same_rows_in_one_scan(
        filled: Store) -> None:
    with filled.read() as conn:
        for include_held in (False, True):
            query = q._entry_select()
            if not include_held:
                query = query.where(q._public())
            rows: list[PartRow] = []
            q._load(conn, query, rows)
            assert set(rows) == set(q.part_rows(conn, include_held=include_held))
            assert len(rows) == len(set(rows))
        seen, listener = _entry_scans(filled)
        try:
            q.list_entries(conn)
        finally:
            event.remove(filled.engine, "before_cursor_execute", listener)
    assert len(seen) == 1, seen


def test_site_data_is_the_same_from_either_path(filled: Store) -> None:
    with filled.read() as conn:
        whole = q.site_data(conn)
        filtered = q.site_data(conn, q.list_entries(conn, limit=EVERYTHING))
    assert whole == filtered
    assert whole.links  # translations linked both ways


def test_a_translation_in_another_series_carries_its_originals_number_on_every_path(
        store: Store) -> None:
    """`entries link` accepts an original in another series: the translation carries the
    original's number (README, "Part numbers") whether the read is the whole site, one
    series or one language, and it is not one of its own series' parts on any of them."""
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with store.write() as conn:
        alpha = q.upsert_series(conn, Series("alpha", {"en": SeriesText("A", "")}), NOW)
        beta = q.upsert_series(conn, Series("beta", {"en": SeriesText("B", ""),
                                                     "es": SeriesText("b", "")}), NOW)
        originals = [q.save_entry(conn, _entry("alpha", n, start + timedelta(days=n)),
                                  alpha, NOW).seq for n in range(3)]
        for n in range(2):
            q.save_entry(conn, _entry("beta", n, start + timedelta(days=n)), beta, NOW)
        # a translation (in beta) of alpha's first part, and one of that translation
        es = q.save_entry(conn, _entry("beta", 9, start + timedelta(days=9), language="es"),
                          beta, NOW).seq
        q.set_translation(conn, es, originals[0])
        de = q.save_entry(conn, _entry("beta", 10, start + timedelta(days=10),
                                       language="de"), beta, NOW).seq
        q.set_translation(conn, de, es)
    with store.read() as conn:
        whole = {e.seq: (e.part, e.parts) for e in q.list_entries(conn)}
        paths = {
            "series": q.list_entries(conn, series_slug="beta"),
            "language": q.list_entries(conn, language="es"),
            "after": q.list_entries(conn, after_seq=originals[-1]),
            "entry": [q.get_entry(conn, str(de), parts=True)],
        }
    assert whole[es] == whole[de] == whole[originals[0]] == (1, 3)
    for name, found in paths.items():
        assert {e.seq: (e.part, e.parts) for e in found} == {
            e.seq: whole[e.seq] for e in found}, name
    assert {whole[s] for s in whole if s not in originals and s not in (es, de)} == {
        (1, 2), (2, 2)}  # beta's own parts: two, the translations are not among them

"""Random stores (seeded): the whole-site read (no filter, parts numbered from its own
rows) gives the same entries and part numbers as the filtered path and as each series'
own read, on SQLite and PostgreSQL alike, with translations across series and chains and
cycles of them, held entries, pinned parts, moved and removed entries, and ties."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seriesfeed.models import Entry, Series, SeriesText
from seriesfeed.store import Store
from seriesfeed.store import entries as q

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SLUGS = ("a", "b", "c")


def _random_store(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with store.write() as conn:
        sids = {s: q.upsert_series(conn, Series(s, {"en": SeriesText(s, ""),
                                                    "es": SeriesText(s, "")}), NOW)
                for s in SLUGS}
        seqs: list[int] = []
        made: list[Entry] = []
        for n in range(rng.randint(5, 40)):
            slug = rng.choice(SLUGS)
            held = rng.random() < 0.15
            at = (NOW + timedelta(days=rng.randint(1, 9)) if held else
                  start + timedelta(days=rng.randint(0, 20),
                                    microseconds=rng.choice([0, 0, 7])))
            e = Entry(series=slug, language=rng.choice(["en", "es"]), title=f"t{n}",
                      summary="", published=at, url=f"https://example.org/{n}/",
                      id=f"tag:example.org,2026:{n}")
            row = q.save_entry(conn, e, sids[slug], NOW)
            q.sync_hold(conn, row.seq, at, NOW, created=True)
            seqs.append(row.seq)
            made.append(e)
        for e in rng.sample(made, k=len(made) // 6):  # moved to another series
            slug = rng.choice([s for s in SLUGS if s != e.series])
            e.series = slug
            q.save_entry(conn, e, sids[slug], NOW)
        for seq in seqs:
            roll = rng.random()
            if roll < 0.3:
                q.set_translation(conn, seq, rng.choice(seqs))  # any series, even itself
            elif roll < 0.4:
                q.set_part(conn, seq, rng.randint(1, 50))
        for seq in rng.sample(seqs, k=len(seqs) // 8):
            q.remove_entry(conn, str(seq))


def _check(store: Store) -> dict[int, tuple[int | None, int | None]]:
    with store.read() as conn:
        for include_held in (False, True):
            whole = q.list_entries(conn, include_held=include_held)
            filtered = q.list_entries(conn, include_held=include_held, limit=10**6)
            assert whole == filtered
            per_series = {e.seq: (e.part, e.parts) for s in SLUGS
                          for e in q.list_entries(conn, include_held=include_held,
                                                  series_slug=s)}
            assert per_series == {e.seq: (e.part, e.parts) for e in whole}
            per_language = {e.seq: (e.part, e.parts) for lang in ("en", "es")
                            for e in q.list_entries(conn, include_held=include_held,
                                                    language=lang)}
            assert per_language == per_series
        return {e.seq or 0: (e.part, e.parts) for e in q.list_entries(conn)}


@pytest.mark.parametrize("seed", range(12))
def test_whole_site_parts_equal_filtered_parts_on_random_stores(
        store: Store, tmp_path: Path, seed: int) -> None:
    """And the same numbers for the same seqs as a SQLite store filled alike (on
    PostgreSQL: the two backends agree)."""
    _random_store(store, seed)
    found = _check(store)
    reference = Store(f"sqlite:///{tmp_path / 'reference.sqlite3'}")
    try:
        reference.migrate()
        _random_store(reference, seed)
        assert _check(reference) == found
    finally:
        reference.close()

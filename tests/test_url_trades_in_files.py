"""Entries of one file trading URLs (`import FILE`, JSON and CSV), on SQLite and on
PostgreSQL, whose unique URL constraint is checked row by row: a cycle of three moves,
and a trade that cannot complete leaves everything as it was."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seriesfeed import actions
from seriesfeed.config import Config
from seriesfeed.errors import ImportError_
from seriesfeed.store import Store, open_store

SITE = "https://socialistworker.org"


def _entries(urls: dict[str, str], language: str = "en") -> list[dict[str, object]]:
    return [{"id": f"urn:x:{n}", "series": "trades", "language": language,
             "authors": [], "title": f"Letter {n}", "summary": f"About {n}",
             "url": url, "published": f"2026-11-0{n}T10:00:00+00:00",
             "translation_of": None} for n, url in sorted(urls.items())]


def _json(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"format": "seriesfeed/1", "series": [], "entries": entries}),
                    encoding="utf-8")
    return path


def _csv(path: Path, entries: list[dict[str, object]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["id", "series", "language", "title", "summary", "url",
                                  "published"])
    writer.writeheader()
    for e in entries:
        writer.writerow({k: e[k] for k in writer.fieldnames})
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    s = open_store(config.database.url, config.base_dir)
    yield s
    s.close()


def _stored(store: Store) -> dict[str, tuple[str | None, int | None]]:
    return {str(e.id): (e.url, e.seq) for e in actions.list_entries(store)}


@pytest.mark.parametrize("write", [_json, _csv], ids=["json", "csv"])
def test_a_cycle_of_three_moves_in_one_file(
        config: Config, store: Store, tmp_path: Path,
        write: Callable[[Path, list[dict[str, object]]], Path]) -> None:
    a, b, c = (f"{SITE}/{x}/" for x in "abc")
    fmt = "json" if write is _json else "csv"
    actions.import_entries(store, config, write(tmp_path / f"one.{fmt}",
                                                _entries({"1": a, "2": b, "3": c})))
    before = _stored(store)
    report = actions.import_entries(store, config, write(
        tmp_path / f"two.{fmt}", _entries({"1": b, "2": c, "3": a})))
    after = _stored(store)
    assert {k: v[0] for k, v in after.items()} == {"urn:x:1": b, "urn:x:2": c, "urn:x:3": a}
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}
    assert report.updated == 3 and report.added == 0, report


def test_a_trade_refused_in_a_file_changes_nothing(config: Config, store: Store,
                                                  tmp_path: Path) -> None:
    a, b, z = (f"{SITE}/{x}/" for x in "abz")
    actions.import_entries(store, config, _json(tmp_path / "one.json",
                                                _entries({"1": a, "2": b, "9": z})))
    before = _stored(store)
    # 1 takes 2's address, but 2 wants the one 9 keeps (9 is not in the file)
    with pytest.raises(ImportError_) as caught:
        actions.import_entries(store, config, _json(tmp_path / "two.json",
                                                    _entries({"1": b, "2": z})))
    assert "two.json" in str(caught.value) and len(str(caught.value).splitlines()) == 1
    assert _stored(store) == before
    assert not any(str(u).startswith("urn:seriesfeed:") for u, _ in _stored(store).values())

"""Parts of a series: numbers from the originals' order, a translation's from its original,
an editor's choice kept (and the rest numbered around it), round trips through JSON/CSV."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from seriesfeed import actions
from seriesfeed.config import Config
from seriesfeed.store import Store
from tests.conftest import EXAMPLE_JSON, SEED_PAGE, CliResult

SLUG = "reflections-on-the-iso-crisis"


def _listed(run_cli: Callable[..., CliResult], config_path: Path) -> list[dict[str, object]]:
    result = run_cli("--config", config_path, "entries", "list", "--json")
    assert result.code == 0, result
    found: list[dict[str, object]] = json.loads(result.out)
    return found


def _seed(run_cli: Callable[..., CliResult], config_path: Path) -> None:
    """The seed: the series page, then the JSON that links its two translations."""
    for source in (SEED_PAGE, EXAMPLE_JSON):
        assert run_cli("--config", config_path, "import", source).code == 0


def _parts(found: list[dict[str, object]], language: str) -> dict[str, object]:
    return {str(e["title"]): e["part"] for e in found if e["language"] == language}


def test_the_seed_has_eighteen_parts_in_date_order_and_translations_share_theirs(
        run_cli: Callable[..., CliResult], config_path: Path) -> None:
    _seed(run_cli, config_path)
    found = _listed(run_cli, config_path)
    english = [e for e in found if e["language"] == "en"]
    assert len(english) == 18
    # entries list is oldest first (published, then the store's order): parts 1..18
    assert [e["part"] for e in english] == list(range(1, 19))
    assert all(isinstance(e["part"], int) for e in found)
    by_id = {e["id"]: e for e in found}
    spanish = [e for e in found if e["language"] == "es"]
    assert len(spanish) == 2
    for e in spanish:
        assert e["translation_of"] is not None
        assert e["part"] == by_id[e["translation_of"]]["part"]
    parts = _parts(found, "en")
    assert parts["Letter to the ISO membership"] == _parts(found, "es")[
        "Carta a las bases de la ISO"]


def test_an_editor_moves_a_part_and_only_the_computed_ones_between_shift(
        run_cli: Callable[..., CliResult], config_path: Path) -> None:
    _seed(run_cli, config_path)
    before = [e for e in _listed(run_cli, config_path) if e["language"] == "en"]
    moved = before[9]  # part 10
    result = run_cli("--config", config_path, "entries", "set", moved["id"], "--part", "2")
    assert result.code == 0, result
    assert "part 2 of 18" in result.out
    after = {e["id"]: e["part"] for e in _listed(run_cli, config_path)}
    assert after[moved["id"]] == 2
    # parts 2..9 move up one; 1 and 11..18 stay where they were
    for old in before:
        n = int(str(old["part"]))
        want = n if n == 1 or n > 10 else (2 if old is moved else n + 1)
        assert after[old["id"]] == want, old["title"]
    assert sorted(after[e["id"]] for e in before) == list(range(1, 19))
    # the translation follows its original wherever it goes
    found = _listed(run_cli, config_path)
    by_id = {e["id"]: e for e in found}
    for e in found:
        if e["translation_of"]:
            assert e["part"] == by_id[e["translation_of"]]["part"]
    # a number another editor took is refused, with the field named and nothing changed
    other = before[0]
    refused = run_cli("--config", config_path, "entries", "set", other["id"], "--part", "2")
    assert refused.code == 1 and "Error:" in refused.err and "part 2" in refused.err
    assert {e["id"]: e["part"] for e in _listed(run_cli, config_path)} == after
    # a translation carries its original's part: it cannot be given its own
    spanish = next(e for e in found if e["language"] == "es")
    refused = run_cli("--config", config_path, "entries", "set", spanish["id"], "--part", "7")
    assert refused.code == 1 and "original" in refused.err
    # back to the computed number
    assert run_cli("--config", config_path, "entries", "set", moved["id"], "--part",
                   "auto").code == 0
    assert [e["part"] for e in _listed(run_cli, config_path) if e["language"] == "en"] == \
        list(range(1, 19))


def test_bad_part_values_are_one_line_errors(run_cli: Callable[..., CliResult],
                                             config_path: Path, tmp_path: Path) -> None:
    _seed(run_cli, config_path)
    first = _listed(run_cli, config_path)[0]
    for bad in ("0", "-1", "x", "1.5", "9999999"):
        result = run_cli("--config", config_path, "entries", "set", first["id"], "--part", bad)
        assert result.code != 0 and "Traceback" not in result.err and "Error" in result.err
    doc = {"format": "seriesfeed/1", "series": [], "entries": [
        {"series": SLUG, "title": "Bad part", "published": "2019-05-01", "part": "three"}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = run_cli("--config", config_path, "import", path)
    assert result.code == 1 and "part" in result.err


def test_part_round_trips_through_json_and_csv(store: Store, config: Config,
                                               make_config: Callable[..., Path],
                                               tmp_path: Path) -> None:
    actions.import_entries(store, config, SEED_PAGE)
    actions.import_entries(store, config, EXAMPLE_JSON)
    english = [e for e in actions.list_entries(store, "en")]
    actions.set_entry(store, english[12].url or "", part=1)  # part 13 -> 1
    want = {e.id: e.part for e in actions.list_entries(store)}
    assert want[english[12].id] == 1 and want[english[0].id] == 2
    for fmt in ("json", "csv"):
        data, _count = actions.export_entries(store, config, fmt)
        if fmt == "json":  # the export states the editor's number only
            assert {e["id"]: e["part"] for e in json.loads(data)["entries"]} == {
                i: 1 if i == english[12].id else None for i in want}
        path = tmp_path / f"export.{fmt}"
        path.write_bytes(data)
        other_config = load(make_config, tmp_path / f"{fmt}.sqlite")
        other = Store(other_config.database.url)
        other.migrate()
        try:
            actions.import_entries(other, other_config, path)
            assert {e.id: e.part for e in actions.list_entries(other)} == want, fmt
            # reading the same export again changes nothing
            report = actions.import_entries(other, other_config, path)
            assert report.added == 0 and report.updated == 0, fmt
        finally:
            other.close()


def load(make_config: Callable[..., Path], db: Path) -> Config:
    from seriesfeed.config import load_config

    return load_config(make_config(database={"url": f"sqlite:///{db}"}), env={})


def test_the_migration_gives_existing_entries_stable_unique_slugs(tmp_path: Path) -> None:
    """A store from before article pages: its entries get slugs from their URLs, unique
    within series and language (the first stored keeps the plain one)."""
    from datetime import UTC, datetime

    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import text

    from seriesfeed.store import MIGRATIONS

    old = Store(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "i12_drop_rate_limits")
        now = datetime(2019, 3, 1, tzinfo=UTC).replace(tzinfo=None)
        conn.execute(text("INSERT INTO series (id, slug, created_at) VALUES (1, 's', :n)"),
                     {"n": now})
        for seq, url in enumerate(["https://e.example/2019/03/01/same/",
                                   "https://e.example/other/same", "https://e.example/2019/",
                                   "https://e.example/a.html"], start=1):
            conn.execute(text(
                "INSERT INTO entries (seq, id, series_id, language, title, summary, url, "
                "published, updated, created_at) VALUES (:seq, :id, 1, 'en', :title, '', "
                ":url, :n, :n, :n)"), {"seq": seq, "id": f"tag:e,2019:{seq}", "url": url,
                                       "title": f"Title Nº {seq}", "n": now})
    old.migrate()
    with old.read() as conn:
        slugs = dict(conn.execute(text("SELECT seq, slug FROM entries")).all())
    old.close()
    assert slugs == {1: "same", 2: "same-2", 3: "title-no-3", 4: "a"}


def test_an_entry_slug_is_unique_in_its_series_and_language_and_survives_a_title_edit(
        store: Store, config: Config) -> None:
    from datetime import UTC, datetime

    from seriesfeed.models import Entry

    def add(url: str, title: str, language: str = "en") -> Entry:
        return actions.add_entry(store, config, Entry(
            series=SLUG, language=language, title=title, summary="",
            published=datetime(2019, 5, 1, tzinfo=UTC), url=url))

    first = add("https://e.example/2019/05/01/same-name/", "One")
    second = add("https://e.example/other/same-name/", "Two")
    spanish = add("https://e.example/es/same-name/", "Uno", "es")
    assert (first.slug, second.slug, spanish.slug) == ("same-name", "same-name-2", "same-name")
    edited = add("https://e.example/2019/05/01/same-name/", "One, with a fixed title")
    assert edited.seq == first.seq and edited.slug == "same-name"
    assert add("https://e.example/2019/05/01/", "Dated only").slug == "dated-only"


def _e(name: str, day: int, **extra: object) -> dict[str, object]:
    return {"id": f"tag:example.org,2024-01-0{day}:/{name}", "series": "s", "language": "en",
            "title": name, "url": f"https://example.org/s/{name}/",
            "published": f"2024-01-0{day}T10:00:00Z", **extra}


def _write(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def _store_poll(store: Store, config: Config, path: Path) -> actions.ImportReport:
    from seriesfeed.actions import entries as ae
    from seriesfeed.importers.parse import parse_file

    batch = parse_file(path, "json", ae.import_settings(config))
    return ae.store_batch(store, config, batch, "source x", ae.ImportReport("x", "json"),
                          from_source=True)


def test_a_source_part_that_clashes_with_an_editors_is_left_out_and_the_rest_stored(
        store: Store, config: Config, tmp_path: Path) -> None:
    actions.import_entries(store, config, _write(tmp_path / "ab.json", [_e("a", 1), _e("b", 2)]))
    actions.set_entry(store, "https://example.org/s/b/", part=1)
    poll = _write(tmp_path / "poll.json", [_e("a", 1, part=1), _e("b", 2), _e("c", 3)])
    report = _store_poll(store, config, poll)
    assert report.added == 1
    assert len(report.conflicts) == 1 and "part 1" in report.conflicts[0]
    assert {e.title: e.part for e in actions.list_entries(store)} == {"a": 2, "b": 1, "c": 3}
    # the next poll is the same: no error, nothing changes, the conflict said again
    again = _store_poll(store, config, poll)
    assert again.added == 0 and again.updated == 0 and len(again.conflicts) == 1
    # a file from an editor is all or nothing: the same clash refuses the whole import
    from seriesfeed.errors import ImportError_

    try:
        actions.import_entries(store, config, _write(
            tmp_path / "file.json", [_e("a", 1, part=1), _e("d", 4)]))
    except ImportError_ as exc:
        assert "part 1" in str(exc)
    else:
        raise AssertionError("the clash was not refused")
    assert "d" not in {e.title for e in actions.list_entries(store)}


def test_reimporting_an_export_keeps_the_computed_order_and_pins_nothing(
        store: Store, config: Config, tmp_path: Path) -> None:
    actions.import_entries(store, config, _write(tmp_path / "ab.json", [_e("a", 2), _e("b", 3)]))
    data, _n = actions.export_entries(store, config, "json")
    exported = tmp_path / "export.json"
    exported.write_bytes(data)
    # nothing was pinned: the export states no part
    assert [e.get("part") for e in json.loads(data)["entries"]] == [None, None]
    actions.import_entries(store, config, _write(tmp_path / "z.json", [_e("z", 1)]))
    report = actions.import_entries(store, config, exported)
    assert (report.updated, report.unchanged) == (0, 2)
    assert {e.title: e.part for e in actions.list_entries(store)} == {"z": 1, "a": 2, "b": 3}
    # `entries list --json` still shows the computed part
    assert [e.to_json()["part"] for e in actions.list_entries(store)] == [1, 2, 3]


def test_an_import_that_changes_a_part_counts_as_an_update_and_the_export_carries_it(
        store: Store, config: Config, tmp_path: Path) -> None:
    actions.import_entries(store, config, _write(tmp_path / "ab.json", [_e("a", 1), _e("b", 2)]))
    report = actions.import_entries(store, config, _write(
        tmp_path / "pin.json", [_e("a", 1), _e("b", 2, part=1)]))
    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    assert {e.title: e.part for e in actions.list_entries(store)} == {"a": 2, "b": 1}
    data, _n = actions.export_entries(store, config, "json")
    assert {e["title"]: e["part"] for e in json.loads(data)["entries"]} == {"a": None, "b": 1}
    csv_data, _n = actions.export_entries(store, config, "csv")
    rows = csv_data.decode().splitlines()
    assert rows[0].split(",")[12] == "part"
    # two entries swapping their pinned numbers in one file is not a clash
    swap = actions.import_entries(store, config, _write(
        tmp_path / "swap.json", [_e("a", 1, part=1), _e("b", 2, part=2)]))
    assert swap.updated == 2
    assert {e.title: e.part for e in actions.list_entries(store)} == {"a": 1, "b": 2}


def test_stating_many_parts_costs_a_bounded_number_of_statements(
        store: Store, config: Config, tmp_path: Path) -> None:
    """Parts are worked out once per import, not once per stated number."""
    from sqlalchemy import event

    n = 40
    entries = [{"id": f"tag:example.org,2024:/{i}", "series": "s", "language": "en",
                "title": f"t{i}", "url": f"https://example.org/s/{i}/",
                "published": f"2024-01-01T10:{i:02d}:00Z"} for i in range(n)]
    actions.import_entries(store, config, _write(tmp_path / "plain.json", entries))
    # reverse the order: every stated number differs from the computed one
    reversed_ = [dict(e, part=n - i) for i, e in enumerate(entries)]
    scans: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        # a read of the whole entries table (the part numbers are worked out from one)
        if statement.lstrip().upper().startswith("SELECT") and "FROM entries" in statement \
                and "WHERE" not in statement:
            scans.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        report = actions.import_entries(store, config, _write(tmp_path / "rev.json", reversed_))
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert report.updated == n
    assert [e.part for e in actions.list_entries(store)] == list(range(n, 0, -1))
    assert len(scans) <= 2, len(scans)


def test_a_file_may_move_an_original_and_state_its_translations_new_part(
        store: Store, config: Config, tmp_path: Path) -> None:
    actions.import_entries(store, config, SEED_PAGE)
    actions.import_entries(store, config, EXAMPLE_JSON)
    doc = json.loads(actions.export_entries(store, config, "json")[0])
    spanish = next(e for e in doc["entries"] if e["translation_of"])
    original = next(e for e in doc["entries"] if e["id"] == spanish["translation_of"])
    original["part"] = spanish["part"] = 7
    path = tmp_path / "moved.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = actions.import_entries(store, config, path)
    assert report.updated == 1
    parts = {e.id: e.part for e in actions.list_entries(store)}
    assert parts[original["id"]] == parts[spanish["id"]] == 7
    # a translation given a number of its own is refused, and nothing changes
    spanish["part"] = 3
    path.write_text(json.dumps(doc), encoding="utf-8")
    from seriesfeed.errors import ImportError_

    try:
        actions.import_entries(store, config, path)
    except ImportError_ as exc:
        assert "original" in str(exc)
    else:
        raise AssertionError("the translation's own number was not refused")
    assert {e.id: e.part for e in actions.list_entries(store)} == parts

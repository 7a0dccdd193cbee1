"""`seriesfeed import` and `seriesfeed entries …` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import EXAMPLE_JSON, ROOT, SEED_PAGE, CliResult

Run = Callable[..., CliResult]


def _list(run_cli: Run, config_path: Path, *extra: str) -> list[dict[str, object]]:
    result = run_cli("--config", config_path, "entries", "list", "--json", *extra)
    assert result.code == 0, result
    data = json.loads(result.out)
    assert isinstance(data, list)
    return data


def test_seed_import_gives_twenty_entries_with_languages_authors_and_dates(
        run_cli: Run, config_path: Path) -> None:
    result = run_cli("--config", config_path, "import", SEED_PAGE)
    assert result.code == 0, result
    assert "20 added" in result.out
    entries = _list(run_cli, config_path)
    assert len(entries) == 20
    assert sum(e["language"] == "en" for e in entries) == 18
    assert sum(e["language"] == "es" for e in entries) == 2
    by_title = {e["title"]: e for e in entries}
    canadian = by_title["A letter from Canadian comrades"]
    assert [a["name"] for a in canadian["authors"]] == [  # type: ignore[union-attr]
        "David Camfield", "Todd Gordon", "Brian McDougall", "Sandra Sarner"]
    assert {a["kind"] for a in canadian["authors"]} == {"person"}  # type: ignore[union-attr]
    assert by_title["Letter to the ISO membership"]["authors"] == [
        {"name": "ISO Steering Committee", "kind": "organization"}]
    assert [a["name"] for a in by_title["Nothing can be changed until it is faced"][
        "authors"]] == ["Maryam A", "Nikki W"]  # type: ignore[union-attr]
    assert by_title["Critical thoughts about Draper’s “micro-sect”"]["authors"] == [
        {"name": "brian bean", "kind": "person"}]
    carta = by_title["Carta a las bases de la ISO"]
    assert carta["language"] == "es"
    # the page gives dates only: midnight, no invented seconds (issue 15)
    assert carta["published"] == "2019-03-26T00:00:00-04:00"
    assert carta["series"] == "reflections-on-the-iso-crisis"
    letter = by_title["Letter to the ISO membership"]
    assert letter["id"] == ("tag:socialistworker.org,2019-03-15:"
                            "/2019/03/15/letter-to-the-iso-membership/")
    assert letter["url"] == "https://socialistworker.org/2019/03/15/letter-to-the-iso-membership/"
    assert letter["updated"] == letter["published"]
    for e in entries:
        for key in ("id", "series", "language", "authors", "title", "summary", "url",
                    "published", "updated", "translation_of"):
            assert key in e


def test_reimport_adds_nothing_and_a_changed_summary_updates(
        run_cli: Run, config_path: Path, tmp_path: Path) -> None:
    assert run_cli("--config", config_path, "import", SEED_PAGE).code == 0
    again = run_cli("--config", config_path, "import", SEED_PAGE)
    assert again.code == 0
    assert "0 added, 0 updated, 20 unchanged" in again.out
    changed = tmp_path / "changed.txt"
    text = SEED_PAGE.read_text(encoding="utf-8").replace(
        "A longtime socialist urges her comrades", "A longtime socialist asks her comrades")
    changed.write_text(text, encoding="utf-8")
    result = run_cli("--config", config_path, "import", changed, "--format", "page")
    assert "0 added, 1 updated, 19 unchanged" in result.out
    entry = next(e for e in _list(run_cli, config_path)
                 if e["title"] == "Separating what’s good from what’s rotten")
    assert str(entry["summary"]).startswith("A longtime socialist asks")
    assert entry["updated"] != entry["published"]
    ids = {e["id"] for e in _list(run_cli, config_path)}
    assert len(ids) == 20


def test_example_json_links_both_translation_pairs(run_cli: Run, config_path: Path) -> None:
    assert run_cli("--config", config_path, "import", SEED_PAGE).code == 0
    result = run_cli("--config", config_path, "import", EXAMPLE_JSON)
    assert result.code == 0, result
    assert "0 added" in result.out
    entries = {e["title"]: e for e in _list(run_cli, config_path)}
    assert len(entries) == 20
    assert entries["Carta a las bases de la ISO"]["translation_of"] == \
        entries["Letter to the ISO membership"]["id"]
    assert entries["El voto de la ISO para disolverse y lo que viene después"][
        "translation_of"] == entries["The ISO’s vote to dissolve and what comes next"]["id"]


def test_export_import_round_trips_in_both_formats(run_cli: Run, config_path: Path,
                                                   make_config: Callable[..., Path],
                                                   tmp_path: Path) -> None:
    assert run_cli("--config", config_path, "import", EXAMPLE_JSON).code == 0
    original = _list(run_cli, config_path)
    for fmt in ("json", "csv"):
        out = tmp_path / f"export.{fmt}"
        assert run_cli("--config", config_path, "entries", "export", "--format", fmt,
                       "--out", out).code == 0
        fresh = make_config(database={"url": f"sqlite:///{tmp_path / (fmt + '.sqlite3')}"})
        result = run_cli("--config", fresh, "import", out)
        assert result.code == 0, result
        assert _list(run_cli, fresh) == original


def test_a_bad_row_imports_nothing_and_names_line_and_field(
        run_cli: Run, config_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "series,title,published,language\n"
        "s,Fine,2019-03-15,en\n"
        "s,Also fine,2019-03-16,en\n"
        "s,Broken,2019-03-16,xx\n", encoding="utf-8")
    good_series = tmp_path / "series.json"
    good_series.write_text(json.dumps({"format": "seriesfeed/1", "series": [
        {"slug": "s", "texts": {"en": {"title": "S", "description": "", "url": None}}}],
        "entries": []}), encoding="utf-8")
    assert run_cli("--config", config_path, "import", good_series).code == 0
    result = run_cli("--config", config_path, "import", bad)
    assert result.code == 1
    assert result.err.startswith("Error: ")
    assert ":4" in result.err and "language" in result.err and "xx" in result.err
    assert "Traceback" not in result.err
    assert _list(run_cli, config_path) == []


def test_a_series_that_is_not_a_slug_names_the_field(run_cli: Run, config_path: Path,
                                                      tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("series,title,published\nNot A Slug!,T,2019-03-15\n", encoding="utf-8")
    result = run_cli("--config", config_path, "import", bad)
    assert result.code == 1
    assert "field 'series'" in result.err and ":2" in result.err
    fine = tmp_path / "fine.csv"
    fine.write_text("series,title,published\nnew-series,T,2019-03-15\n", encoding="utf-8")
    assert run_cli("--config", config_path, "import", fine).code == 0
    assert _list(run_cli, config_path)[0]["series"] == "new-series"


def test_entries_add_show_link_remove(run_cli: Run, config_path: Path) -> None:
    assert run_cli("--config", config_path, "import", SEED_PAGE).code == 0
    added = run_cli("--config", config_path, "entries", "add", "--series",
                    "reflections-on-the-iso-crisis", "--title", "Una nueva carta",
                    "--summary", "Resumen", "--published", "2019-04-20", "--lang", "es",
                    "--byline", "Ana López y Juan Pérez", "--json")
    assert added.code == 0, added
    new = json.loads(added.out)
    assert [a["name"] for a in new["authors"]] == ["Ana López", "Juan Pérez"]
    assert new["published"] == "2019-04-20T00:00:00-04:00"
    taking = next(e for e in _list(run_cli, config_path) if e["title"] == "Taking our final steps")
    linked = run_cli("--config", config_path, "entries", "link", taking["id"], new["id"])
    assert linked.code == 0, linked
    shown = run_cli("--config", config_path, "entries", "show", new["id"], "--json")
    assert json.loads(shown.out)["translation_of"] == taking["id"]
    same_lang = run_cli("--config", config_path, "entries", "link", taking["id"], taking["url"])
    assert same_lang.code == 1
    removed = run_cli("--config", config_path, "entries", "remove", new["id"])
    assert removed.code == 0
    missing = run_cli("--config", config_path, "entries", "show", new["id"])
    assert missing.code == 1 and "no entry" in missing.err
    assert len(_list(run_cli, config_path)) == 20


def test_add_with_a_bad_date_names_the_option(run_cli: Run, config_path: Path) -> None:
    result = run_cli("--config", config_path, "entries", "add", "--series", "x", "--title", "T",
                     "--published", "15/03/2019", "--series-title", "X")
    assert result.code == 1
    assert "--published" in result.err


def test_missing_file_and_usage_errors(run_cli: Run, config_path: Path, tmp_path: Path) -> None:
    result = run_cli("--config", config_path, "import", tmp_path / "nope.json")
    assert result.code == 1 and result.err.startswith("Error: ")
    usage = run_cli("--config", config_path, "entries", "list", "--bogus")
    assert usage.code == 2


def test_console_script_runs_as_a_process(config_path: Path) -> None:
    # a listing never creates the store: init makes it first
    subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config_path), "init"],
                   capture_output=True, text=True, timeout=60, check=True)
    proc = subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config_path),
                           "entries", "list", "--json"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_every_command_is_documented_in_the_readme() -> None:
    import click

    from seriesfeed.cli import cli, load_commands

    load_commands()  # the root group imports a command's module only when it is called
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    def walk(group: click.Group, prefix: str) -> list[str]:
        names = []
        for name, command in group.commands.items():
            path = f"{prefix} {name}"
            names.append(path)
            if isinstance(command, click.Group):
                names.extend(walk(command, path))
        return names

    missing = [path for path in walk(cli, "seriesfeed") if path not in readme]
    assert missing == []


def test_json_typos_bad_slugs_and_unknown_text_languages_import_nothing(
        run_cli: Run, config_path: Path, tmp_path: Path) -> None:
    entry = {"series": "s", "title": "T", "published": "2019-03-15"}
    cases = [
        ({"format": "seriesfeed/1", "entries": [entry], "extra": 1}, "field 'extra'"),
        ({"series": [{"slug": "s", "texts": {}, "slgu": "x"}], "entries": [entry]},
         "field 'slgu'"),
        ({"series": [{"slug": "s", "texts": {"en": {"title": "S", "descripton": "d"}}}],
          "entries": [entry]}, "field 'descripton'"),
        ({"series": [{"slug": "Bad Slug!", "texts": {"en": {"title": "S"}}}], "entries": []},
         "'Bad Slug!' is not a series slug"),
        ({"entries": [{**entry, "series": "../../etc"}]}, "is not a series slug"),
        ({"series": [{"slug": "s", "texts": {"fr": {"title": "S"}}}], "entries": [entry]},
         "unknown language 'fr'"),
    ]
    for n, (doc, message) in enumerate(cases):
        path = tmp_path / f"bad{n}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        result = run_cli("--config", config_path, "import", path)
        assert result.code == 1, (doc, result)
        assert result.err.startswith("Error: ") and message in result.err, (doc, result)
        assert "Traceback" not in result.err
    assert _list(run_cli, config_path) == []  # nothing half-written


def test_article_bodies_are_stored_as_safe_html(run_cli: Run, config_path: Path,
                                                tmp_path: Path) -> None:
    body = ('<p onclick="steal()">Body <b>bold</b> <script>alert(1)</script>'
            '<a href="javascript:alert(2)">x</a> <a href="https://example.org/">ok</a>'
            '<img src="https://example.org/i.png" onerror="steal()"></p>')
    path = tmp_path / "x.json"
    path.write_text(json.dumps([{"series": "s", "title": "T", "published": "2019-03-15",
                                 "content_html": body}]), encoding="utf-8")
    assert run_cli("--config", config_path, "import", path).code == 0
    stored = str(_list(run_cli, config_path)[0]["content_html"])
    assert "<b>bold</b>" in stored and 'href="https://example.org/"' in stored
    for bad in ("<script", "alert(1)", "onclick", "onerror", "javascript:"):
        assert bad not in stored, (bad, stored)
    out = tmp_path / "pub"
    # feeds carry the body only with [feeds] content = "full"
    config_path.write_text(config_path.read_text(encoding="utf-8").replace(
        'content = "summary"', 'content = "full"', 1), encoding="utf-8")
    assert run_cli("--config", config_path, "feeds", "build", "--out", out).code == 0
    for feed in ("atom.xml", "rss.xml", "feed.json"):
        text = (out / "feeds" / "en" / feed).read_text(encoding="utf-8")
        assert "bold" in text and "<script" not in text and "onerror" not in text
    page = next((out / "en" / "s").glob("*/index.html")).read_text(encoding="utf-8")
    assert "<b>bold</b>" in page and "<script>alert" not in page and "onerror" not in page

"""`seriesfeed series list|show|set` and `import --series-title`: a series' words per language
from the command line, so the quick start's Spanish series has its Spanish title."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from seriesfeed import actions
from seriesfeed.actions.feeds import build_pages
from seriesfeed.config import Config
from seriesfeed.store import open_store
from tests.bilingual import SLUG, SPANISH_TITLE
from tests.conftest import ROOT, SEED_PAGE, CliResult

Run = Callable[..., CliResult]


def test_the_quick_start_gives_the_spanish_series_its_title(run_cli: Run, config_path: Path,
                                                            config: Config) -> None:
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    assert f'--series-title "es={SPANISH_TITLE}"' in dev
    # the page alone, as `./dev run` imports it (before the JSON adds descriptions)
    done = run_cli("--config", config_path, "import", SEED_PAGE, "--series-title",
                   f"es={SPANISH_TITLE}")
    assert done.code == 0, done
    shown = run_cli("--config", config_path, "series", "show", SLUG, "--json")
    assert shown.code == 0, shown
    data = json.loads(shown.out)
    assert data["texts"]["es"]["title"] == SPANISH_TITLE
    assert data["texts"]["en"]["title"] == "Reflections on the ISO crisis"
    assert data["entries"] == {"en": 18, "es": 2}
    store = open_store(config.database.url, config.base_dir)
    try:
        pages = {d.path: d.body.decode() for d in build_pages(config, store)}
    finally:
        store.close()
    assert f"<h1>{SPANISH_TITLE}</h1>" in pages[f"/es/{SLUG}/"]
    # re-importing the page without the option leaves the Spanish title alone
    assert run_cli("--config", config_path, "import", SEED_PAGE).code == 0
    again = json.loads(run_cli("--config", config_path, "series", "list", "--json").out)
    assert [s["texts"]["es"]["title"] for s in again] == [SPANISH_TITLE]


def test_series_set_changes_one_language_and_keeps_the_rest(run_cli: Run, config_path: Path,
                                                           config: Config) -> None:
    assert run_cli("--config", config_path, "import", SEED_PAGE).code == 0
    no_title = run_cli("--config", config_path, "series", "set", SLUG, "--lang", "es",
                       "--description", "Sin título todavía")
    assert no_title.code == 1 and "give --title" in no_title.err
    titled = run_cli("--config", config_path, "series", "set", SLUG, "--lang", "es", "--title",
                     "Reflexiones", "--json")
    assert titled.code == 0, titled
    assert json.loads(titled.out)["texts"]["es"] == {"title": "Reflexiones", "description": "",
                                                     "url": None}
    described = run_cli("--config", config_path, "series", "set", SLUG, "--lang", "es",
                        "--description", "Una serie de artículos.")
    assert described.code == 0 and "es: Reflexiones" in described.out
    store = open_store(config.database.url, config.base_dir)
    try:
        info = actions.show_series(store, SLUG)
    finally:
        store.close()
    assert info.series.texts["es"].title == "Reflexiones"
    assert info.series.texts["es"].description == "Una serie de artículos."
    assert info.series.texts["en"].title == "Reflections on the ISO crisis"  # untouched
    listing = run_cli("--config", config_path, "series", "list")
    assert listing.code == 0 and "1 series" in listing.out and "(entries: 18 en, 2 es)" in \
        listing.out


def test_series_commands_refuse_bad_input_in_one_line(run_cli: Run, config_path: Path) -> None:
    assert run_cli("--config", config_path, "import", SEED_PAGE).code == 0
    cases = [
        (("series", "show", "nope"), 1, "Error: no series 'nope'"),
        (("series", "set", "nope", "--lang", "es", "--title", "x"), 1, "Error: no series"),
        (("series", "set", SLUG, "--lang", "xx", "--title", "x"), 1,
         "Error: --lang: unknown language 'xx'"),
        (("series", "set", SLUG, "--lang", "es", "--title", "  "), 1,
         "Error: --title: the title is empty"),
        (("series", "set", SLUG, "--lang", "es", "--url", "ftp://x"), 1,
         "Error: --url: 'ftp://x' is not an http(s) URL"),
        (("series", "set", SLUG, "--lang", "es"), 2, "give --title, --description or --url"),
        (("import", SEED_PAGE, "--series-title", "es"), 1,
         "Error: --series-title: 'es' is not LANG=TITLE"),
        (("import", SEED_PAGE, "--series-title", "xx=Titre"), 1, "unknown language 'xx'"),
    ]
    for args, code, message in cases:
        result = run_cli("--config", config_path, *args)
        assert result.code == code, (args, result)
        assert message in result.err and "Traceback" not in result.err, (args, result)
        lines = result.err.strip().splitlines()
        assert lines[-1].startswith("Error: "), (args, result)
        assert code == 2 or len(lines) == 1, (args, result)  # usage errors show the usage

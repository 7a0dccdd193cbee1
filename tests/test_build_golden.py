"""A cold `seriesfeed feeds build` writes exactly the bytes it wrote before the build was
made cheaper: two stores (the seed series as the quick start imports it, and a generated
store of 300 entries with Spanish entries, translations, two authors, parts, full text and
text that looks like markup) are built into empty folders by the real command, in a
process of its own, and every file's sha256 is compared with tests/data/build_golden.json.

The digests were recorded on an unchanged checkout (main at 7bf1dd8), before any work on
the build's CPU: a difference is a change of output, never a matter of taste. Regenerate
(``REGENERATE_BUILD_GOLDEN=1``) only for a change meant to alter the output (a new
version number is one: feeds name the generator's version), and say why in the commit.

The stores are made under a fixed clock (an import compares dates with now to hold
scheduled entries); the build reads now only to release scheduled entries, and these
stores have none. Files whose names start with a dot (the manifest and the build stamp)
are the folder's records, not output: they hold keys made from absolute paths and file
times, so they are left out.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from seriesfeed import __version__, actions
from seriesfeed.config import Config, load_config
from seriesfeed.importers import ImportBatch, ImportedEntry
from seriesfeed.models import Author, AuthorKind, Entry, Series, SeriesText
from seriesfeed.store import open_store
from tests.bilingual import seed_like_quick_start
from tests.conftest import ConfigFactory

GOLDEN = Path(__file__).parent / "data" / "build_golden.json"
EXE = str(Path(sys.executable).with_name("seriesfeed"))
BASE = "https://feeds.example.org"
CLOCK = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _seed(make_config: ConfigFactory) -> Path:
    """The quick start's store: the seed page with its Spanish title, then its links."""
    path = make_config(web={"host": "127.0.0.1", "port": 8080, "base_url": BASE})
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        seed_like_quick_start(store, config)
    finally:
        store.close()
    return path


def _generated_batch() -> ImportBatch:
    """300 entries in 3 series (one in five in Spanish; two authors each, an organisation
    among them; some with a body, a section, an edit time, a title or summary that reads
    like markup, several on one day); the first entries of one series have parts set."""
    series = [Series(f"serie-{k}", {"en": SeriesText(f"Series {k} & more", f"About <{k}>"),
                                    "es": SeriesText(f"Serie {k}: año", f"Sobre «{k}»")})
              for k in range(3)]
    series.append(Series("only-english", {"en": SeriesText("Only English", "")}))
    batch = ImportBatch(series=series)
    start = datetime(2019, 3, 26, 4, 0, tzinfo=UTC)
    for i in range(300):
        lang = "es" if i % 5 == 0 else "en"
        title = (f"Artículo {i}: la crisis" if lang == "es" else f"Article {i} about things")
        if i % 17 == 0:
            title += " <b>bold</b> & Co"
        summary = "A summary with an ampersand & a < sign, " * (1 + i % 3)
        if i % 23 == 0:
            summary = ""
        authors: tuple[Author, ...] = (Author(f"Author {i % 7}"), Author(f"Second {i % 3}"))
        if i % 11 == 0:
            authors = (Author("From SW", AuthorKind.ORGANIZATION),)
        elif i % 13 == 0:
            authors = (*authors, Author("Third Person"))
        elif i % 29 == 0:
            authors = ()
        day = start + timedelta(days=i // 3)  # three a day: some share a day and hour
        published = day if i % 3 == 1 else day + timedelta(hours=i % 3, minutes=i % 60)
        slug = "only-english" if i % 10 == 9 else f"serie-{i % 3}"
        batch.entries.append(ImportedEntry(Entry(
            series=slug, language=lang, title=title, summary=summary, published=published,
            authors=authors, section="Analysis" if i % 4 == 0 else None,
            content_html=(f"<p>Body of {i} with <a href=\"https://example.org/{i}\">a link"
                          f"</a> &amp; <em>emphasis</em>.</p>" if i % 6 == 0 else None),
            url=f"https://example.org/{lang}/{i}/",
            updated=published + timedelta(days=2) if i % 8 == 0 else None,
            part=(i // 3 + 1) if slug == "serie-0" and lang == "en" and i < 30 else None),
            i + 1))
    return batch


def _generated(make_config: ConfigFactory) -> Path:
    """The generated store, with local article pages, Spanish showing English originals it
    has no translation of, a WebSub hub, and Spanish entries linked as translations."""
    path = make_config(
        web={"host": "127.0.0.1", "port": 8080, "base_url": BASE},
        websub={"hub": "https://hub.example.org/"},
        extra="")
    text = path.read_text(encoding="utf-8")
    text = text.replace('article_pages = "publisher"', 'article_pages = "local"', 1)
    es = text.index("\n[languages.es]\n")
    text = text[:es] + text[es:].replace('fallback = "none"', 'fallback = "original"', 1)
    path.write_text(text, encoding="utf-8")
    config: Config = load_config(path, env={})
    assert config.site.article_pages == "local"
    assert config.languages["es"].fallback == "original"
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.store_batch(store, config, _generated_batch(), "golden",
                            actions.ImportReport("golden", None))
        entries = {e.url: e for e in actions.list_entries(store)}
        for i in range(0, 300, 15):  # Spanish entry i translates English entry i + 3
            original = entries.get(f"https://example.org/en/{i + 3}/")
            translation = entries.get(f"https://example.org/es/{i}/")
            assert original and translation and original.series == translation.series
            assert original.id and translation.id
            actions.link_translations(store, original.id, translation.id)
    finally:
        store.close()
    return path


SITES = {"seed": _seed, "generated": _generated}


def _build(config_path: Path, out: Path) -> dict[str, str]:
    # the settings are the file's alone: SERIESFEED_* variables would override them
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERIESFEED_")}
    done = subprocess.run([EXE, "--config", str(config_path), "feeds", "build", "--out",
                           str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and not p.name.startswith(".")}


@pytest.mark.parametrize("name", sorted(SITES))
def test_a_cold_build_writes_the_recorded_bytes(name: str, make_config: ConfigFactory,
                                                tmp_path: Path) -> None:
    with time_machine.travel(CLOCK, tick=False):
        config_path = SITES[name](make_config)
    found = _build(config_path, tmp_path / "out")
    if os.environ.get("REGENERATE_BUILD_GOLDEN"):
        recorded = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
        recorded["version"] = __version__
        recorded[name] = found
        GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n",
                          encoding="utf-8")
        pytest.skip(f"regenerated {GOLDEN.name} for {name}")
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert recorded["version"] == __version__, "a new version changes the feeds' bytes"
    want: dict[str, str] = recorded[name]
    assert sorted(found) == sorted(want), (
        f"files missing: {sorted(set(want) - set(found))[:5]}, "
        f"new: {sorted(set(found) - set(want))[:5]}")
    changed = [p for p in want if found[p] != want[p]]
    assert not changed, f"{len(changed)} of {len(want)} files differ, e.g. {changed[:5]}"

"""Feeds written by other people (invariant 19): feedparser 6.0.12's well-formed samples,
1,739 RSS, Atom and RDF documents, through ``seriesfeed import FILE --format feed``.

Each sample imports, or is refused with one ``Error:`` line naming the file (and the
item, for an item's fault), never a traceback; an import stores every item as its own
entry. Whatever it stored comes back out of our
Atom, RSS and JSON feeds with its id, title and link. Importing a second, unrelated sample
never changes an entry the first one stored (language, id, title). The fast tier takes a
fixed sample (every 15th file, plus the files that found something); ``--full`` takes all.
"""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import pytest

from seriesfeed import actions
from seriesfeed.actions import plan_feeds
from seriesfeed.config import Config, load_config
from seriesfeed.errors import SeriesfeedError
from seriesfeed.store import Store
from tests.conftest import ROOT, CliResult
from tests.harness import figures as tiers
from tests.harness.corpora import corpus_root

EVERY = 15
# samples worth keeping in the fast tier: hreflang links, a declared DTD, a language that
# is not configured, a root that is neither RSS nor Atom, hostile markup
KEPT = (
    "wellformed/atom10/entry_link_hreflang.xml",
    "wellformed/atom10/entry_source_link_hreflang.xml",
    "wellformed/rss/rss_version_091_netscape.xml",
    "wellformed/rss/entity_in_doctype.xml",
    "wellformed/lang/entry_title_xml_lang_inherit_3.xml",
    "wellformed/cdf/item_abstract_map_summary.xml",
    "wellformed/sanitize/entry_content_crazy.xml",
    # the only samples whose items all have a title and a date, so that store entries:
    # the round trip and the pairs are checked on every one of them in both tiers
    "wellformed/namespace/atomthreadingwithentry.xml",
    "wellformed/namespace/rss1.0withModules.xml",
    "wellformed/namespace/rss1.0withModulesNoDefNS.xml",
    "wellformed/namespace/rss1.0withModulesNoDefNSLocalNameClash.xml",
    "wellformed/namespace/rss2.0NSwithModules.xml",
    "wellformed/namespace/rss2.0NSwithModulesNoDefNS.xml",
    "wellformed/namespace/rss2.0NSwithModulesNoDefNSLocalNameClash.xml",
    "wellformed/namespace/rss2.0noNSwithModules.xml",
    "wellformed/namespace/rss2.0noNSwithModulesLocalNameClash.xml",
    "wellformed/namespace/rss2.0withAtomNS.xml",
    "wellformed/psc/atomsimplechapter.xml",
    "wellformed/psc/atomsimplechapterexternal.xml",
    "wellformed/psc/ignore_multiple_psc_chapters.xml",
    "wellformed/psc/rss2.0simplechapter.xml",
    "wellformed/sanitize/large_atom_feed_that_needs_css_sanitisation.xml",
)


def _samples() -> list[Path]:
    top = corpus_root("feedparser") / "tests"
    every = sorted((top / "wellformed").rglob("*.xml"))
    if tiers.FULL:
        return every
    kept = [top / k for k in KEPT if (top / k).exists()]
    return list(dict.fromkeys(every[::EVERY] + kept))


@pytest.fixture(scope="module")
def corpus() -> list[Path]:
    return _samples()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated store, copied for each sample (migrating costs more than a
    sample's import)."""
    folder = tmp_path_factory.mktemp("corpus")
    db = folder / "template.sqlite3"
    store = Store(f"sqlite:///{db}", base_dir=folder)
    store.migrate()
    store.close()
    return db


@pytest.fixture
def fresh(template: Path, tmp_path: Path) -> Iterator[tuple[Path, Config, Callable[[], Path]]]:
    """A config whose store is reset to the empty template by calling the third item."""
    db = tmp_path / "store.sqlite3"
    config_path = tmp_path / "config.toml"
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    config_path.write_text(text, encoding="utf-8")
    env = {"SERIESFEED_DATABASE_URL": f"sqlite:///{db}"}
    config = load_config(config_path, env=env)

    def reset() -> Path:
        shutil.copyfile(template, db)
        for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            extra.unlink(missing_ok=True)
        return db

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SERIESFEED_DATABASE_URL", env["SERIESFEED_DATABASE_URL"])
        yield config_path, config, reset


def _feed_items(path: str, body: bytes) -> set[tuple[str, str, str]]:
    """(id, title, link) of every item of one of our feeds, as a reader would parse it."""
    if path.endswith(".json"):
        return {(i["id"], i["title"], i["url"]) for i in json.loads(body)["items"]}
    parsed = feedparser.parse(io.BytesIO(body))
    assert not parsed.bozo, f"{path}: {parsed.bozo_exception}"
    return {(i.get("id"), i.get("title"), i.get("link")) for i in parsed.entries}


def _round_trip(store: Store, config: Config) -> list[str]:
    """What of the stored entries does not come back out of the feeds unchanged."""
    stored = actions.list_entries(store)
    problems: list[str] = []
    for doc in plan_feeds(config, store):
        parts = doc.path.strip("/").split("/")  # feeds/<lang>[/<series>]/<file>
        want = {(e.id, e.title, e.url) for e in stored
                if e.language == parts[1] and (len(parts) == 3 or e.series == parts[2])}
        missing = want - _feed_items(doc.path, doc.body)
        problems += [f"{doc.path}: {m}" for m in sorted(missing, key=str)[:3]]
    return problems


def test_every_sample_imports_or_is_refused_in_one_line_and_comes_back_out(
        corpus: list[Path], fresh: tuple[Path, Config, Callable[[], Path]],
        run_cli: Callable[..., CliResult], figures: Callable[..., None]) -> None:
    config_path, config, reset = fresh
    outcome: Counter[str] = Counter()
    wrong: list[str] = []
    for sample in corpus:
        db = reset()
        result = run_cli("--config", str(config_path), "import", str(sample),
                         "--format", "feed")
        if result.code != 0:
            outcome["refused"] += 1
            lines = result.err.strip().splitlines()
            if (result.code != 1 or len(lines) != 1 or not lines[0].startswith("Error: ")
                    or str(sample) not in lines[0] or "Traceback" in result.err):
                wrong.append(f"{sample.name}: {result!r}")
            continue
        outcome["imported"] += 1
        store = Store(f"sqlite:///{db}", base_dir=db.parent)
        try:
            stored = actions.list_entries(store)
            outcome["entries"] += len(stored)
            items = feedparser.parse(io.BytesIO(sample.read_bytes())).entries
            if len(stored) != len(items):  # no item taken for another one
                wrong.append(f"{sample.name}: {len(items)} items, {len(stored)} stored")
            by_url = {e.url: e for e in stored}
            for item in items:  # the source's link and id (when it has one) kept as given
                link = item.get("link")
                if link and link.startswith("http") and link not in by_url:
                    wrong.append(f"{sample.name}: link {link} not stored")
                elif link in by_url and item.get("id") and by_url[link].id != item["id"]:
                    wrong.append(f"{sample.name}: id {item['id']} stored as {by_url[link].id}")
            wrong += [f"{sample.name}: {p}" for p in _round_trip(store, config)]
        finally:
            store.close()
    figures(samples=len(corpus), **outcome, wrong=len(wrong))
    assert outcome["entries"] >= 29  # the samples with entries are all in the sample
    assert wrong == []


def test_a_second_unrelated_sample_never_changes_the_first_ones_entries(
        corpus: list[Path], fresh: tuple[Path, Config, Callable[[], Path]],
        figures: Callable[..., None]) -> None:
    _config_path, config, reset = fresh
    importable: list[Path] = []
    for sample in corpus:
        db = reset()
        store = Store(f"sqlite:///{db}", base_dir=db.parent)
        try:
            actions.import_entries(store, config, sample, fmt="feed")
            importable.append(sample)
        except SeriesfeedError:
            pass
        finally:
            store.close()
    changed: list[str] = []
    outcome: Counter[str] = Counter()
    for n, first in enumerate(importable):
        second = importable[(n + 1) % len(importable)]
        db = reset()
        store = Store(f"sqlite:///{db}", base_dir=db.parent)
        try:
            actions.import_entries(store, config, first, fmt="feed")
            before = {e.seq: (e.language, e.id, e.title) for e in actions.list_entries(store)}
            try:
                actions.import_entries(store, config, second, fmt="feed")
                outcome["second imported"] += 1
            except SeriesfeedError:
                outcome["second refused"] += 1
            after = {e.seq: (e.language, e.id, e.title) for e in actions.list_entries(store)}
            changed += [f"{first.name} then {second.name}: {v} -> {after.get(k)}"
                        for k, v in before.items() if after.get(k) != v]
        finally:
            store.close()
    figures(pairs=len(importable), **outcome, changed=len(changed))
    assert len(importable) > 15 and changed == []

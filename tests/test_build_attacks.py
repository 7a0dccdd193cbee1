"""Attacks on ``seriesfeed feeds build``'s cache (the manifest, the build stamp), its
splice and its write path: after store edits, settings edits and hand edits of the folder,
a build from a new process must leave the folder as a build into an empty folder does,
byte for byte and file type for file type (the manifest aside), with no temporary file
left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from seriesfeed import actions
from seriesfeed.config import load_config
from seriesfeed.models import Entry
from seriesfeed.store import open_store
from tests.conftest import ROOT, SEED_PAGE, ConfigFactory
from tests.harness.builds import Tmpfs
from tests.harness.builds import cli as _cli
from tests.harness.builds import entries as _entries
from tests.harness.builds import run as _run

SLUG = "reflections-on-the-iso-crisis"
MANIFEST = ".seriesfeed-manifest.json"


def _tree(folder: Path) -> dict[str, object]:
    """Every name under ``folder`` (the manifest aside): a file's bytes, or what else it
    is; a symlink is never a file here, a leftover temporary file shows."""
    out: dict[str, object] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            if rel == MANIFEST:
                continue
            if path.is_symlink():
                out[rel] = ("symlink", os.readlink(path))
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = path.read_bytes()
    return out


class Site:
    """A store and a folder built into by one process after another, checked against a
    build from nothing after every build."""

    def __init__(self, make_config: ConfigFactory, tmp_path: Path, **sections: dict[str, object]
                 ) -> None:
        self.tmp_path = tmp_path
        self.config_path = make_config(
            database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
            feeds={"max_entries": 3, "out_dir": "var/public", "content": "full"}, **sections)
        self.warm = tmp_path / "warm"
        self.colds = 0
        assert IMPORTED, "the imported_store fixture makes it"
        shutil.copyfile(IMPORTED[0], tmp_path / "store.sqlite3")
        _cli(self.config_path, "feeds", "build", "--out", str(self.warm))

    def cold(self) -> dict[str, object]:
        self.colds += 1
        cold = self.tmp_path / f"cold{self.colds}"
        _cli(self.config_path, "feeds", "build", "--out", str(cold))
        return _tree(cold)

    def check(self) -> str:
        """Build the warm folder again and compare it with a cold build."""
        said = _cli(self.config_path, "feeds", "build", "--out", str(self.warm))
        assert _tree(self.warm) == self.cold()
        return said

    def pages(self) -> list[str]:
        return sorted(p for p, v in _tree(self.warm).items()
                      if isinstance(v, bytes) and p.endswith("/index.html")
                      and p.count("/") == 3)

    def en(self) -> list[Entry]:
        return sorted((e for e in _entries(self.config_path) if e.language == "en"),
                      key=lambda e: (e.part or 1 << 30, e.published))


IMPORTED: list[Path] = []  # a store the seed series was imported into, for this module


@pytest.fixture(scope="module", autouse=True)
def imported_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``seriesfeed import`` of the seed series once for the module: each Site starts from
    a copy of that store (the same bytes its own import would write), then builds."""
    folder = tmp_path_factory.mktemp("imported")
    config = folder / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/seriesfeed.sqlite3"',
        f'url = "sqlite:///{folder}/store.sqlite3"', 1), encoding="utf-8")
    assert f"{folder}/store.sqlite3" in config.read_text(encoding="utf-8")
    _cli(config, "import", str(SEED_PAGE))
    IMPORTED.append(folder / "store.sqlite3")
    try:
        yield
    finally:
        IMPORTED.clear()


def _diff(a: dict[str, object], b: dict[str, object]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


# --- hand edits of the folder ----------------------------------------------------------


def test_a_page_edited_by_hand_is_made_again_when_nothing_else_changed(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """The build stamp says the store and settings are as the last build saw them; it
    does not say the folder is: a defaced page must not survive a build."""
    site = Site(make_config, tmp_path)
    # untouched, the folder is still taken as it is, without a plan
    assert "nothing changed since the last build" in site.check()
    page = site.pages()[0]
    (site.warm / page).write_bytes(b"<p>defaced</p>")
    (site.warm / "sitemap.xml").unlink()
    site.check()


def test_a_same_size_edit_with_its_time_put_back_is_made_again(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """Size and modification time are what a hand (``touch -d``, ``cp -p``, an editor
    keeping times) can put back; the change time and the inode it cannot."""
    site = Site(make_config, tmp_path)
    first = site.en()[0]
    target = site.warm / (first.page_path or "/").lstrip("/") / "index.html"
    before = target.stat()
    body = target.read_bytes()
    assert b"<h1>" in body
    target.write_bytes(body.replace(b"<h1>", b"<h2>", 1))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size
    # another page of the list changes, so the build runs and this page's list digest moves
    last = site.en()[-1]
    _cli(site.config_path, "entries", "set", str(last.id), "--title", "A title fixed")
    site.check()


def test_a_leftover_temporary_file_is_swept(make_config: ConfigFactory,
                                             tmp_path: Path) -> None:
    """What a build killed between its write and its rename leaves: ``.NAME.PID.tmp``
    files, and no build stamp (a build removes it before it writes anything)."""
    site = Site(make_config, tmp_path)
    (site.warm / ".seriesfeed-build").unlink()
    page = site.warm / site.pages()[0]
    (page.parent / f".{page.name}.999999.tmp").write_bytes(b"half a pa")
    (site.warm / ".sitemap.xml.4.tmp").write_bytes(b"")
    _cli(site.config_path, "entries", "set", str(site.en()[-1].id), "--title", "Fixed")
    site.check()


def test_a_page_replaced_by_a_symlink_is_a_file_again(make_config: ConfigFactory,
                                                      tmp_path: Path) -> None:
    site = Site(make_config, tmp_path)
    page = site.warm / site.pages()[0]
    outside = tmp_path / "outside.html"
    outside.write_bytes(page.read_bytes())  # the same bytes: read through, it looks right
    page.unlink()
    page.symlink_to(outside)
    _cli(site.config_path, "entries", "set", str(site.en()[-1].id), "--title", "Fixed")
    site.check()
    assert outside.read_bytes() != b""  # and what it pointed at is left alone


def test_a_page_replaced_by_a_directory_fails_with_one_line(make_config: ConfigFactory,
                                                            tmp_path: Path) -> None:
    """A folder someone made where a page goes is theirs: not removed, the build says so."""
    site = Site(make_config, tmp_path)
    page = site.warm / site.pages()[0]
    page.unlink()
    page.mkdir()
    (page / "keep.txt").write_text("mine", encoding="utf-8")
    _cli(site.config_path, "entries", "set", str(site.en()[-1].id), "--title", "Fixed")
    proc = _run(site.config_path, "feeds", "build", "--out", str(site.warm))
    assert proc.returncode == 1 and proc.stderr.startswith("Error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert (page / "keep.txt").read_text(encoding="utf-8") == "mine"
    (page / "keep.txt").unlink()
    page.rmdir()
    site.check()


# --- the manifest ----------------------------------------------------------------------


# The fast tier keeps one manifest of each way read_manifest turns one away: a ValueError
# (garbage; not-utf8 and empty raise the same), a RecursionError (deep; deep-files the same,
# one level down), hostile records (hostile-paths) and a large one (10MB), each in the
# format builds write, so every record is looked at (the format 1 ones, which the format
# check turns away before any record is read, in the full tier).
@pytest.mark.parametrize("manifest", [
    b"{not json", pytest.param(b"\xff\xfe", marks=pytest.mark.full),
    pytest.param(b"", marks=pytest.mark.full), b"[" * 200_000 + b"]" * 200_000,
    pytest.param(b'{"format": 1, "files": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                 marks=pytest.mark.full),
    pytest.param(json.dumps({"format": 1, "files": {
        "/../../escape/": ["k", 1, 2], "/etc/passwd": ["k", 3, 4], "/en/": [None, None, None],
        "/x/": "y", "": [1]}}).encode(), marks=pytest.mark.full),
    pytest.param(json.dumps({"format": 1, "files": {f"/p{i}/": [f"page {'x' * 64}", i, i]
                                                    for i in range(100_000)}}).encode(),
                 marks=pytest.mark.full),  # ~10 MB
    # the format builds write, so every record is looked at: paths out of the folder, to
    # its dot-files, with empty parts; records of every wrong shape; a stamp of the kind
    json.dumps({"format": 2, "stamp": "(1,) 0123456789abcdef", "files": {
        "/../../escape/": ["k", 1, 2, 3, 4], "/etc/passwd": ["k", 3, 4, 5, 6],
        "/en//": ["k", 1, 2, 3, 4], "/./": ["k", 1, 2, 3, 4], "/.seriesfeed-build": [
            "k", 1, 2, 3, 4], "/en/": [None, None, None, None, None], "/x/": "y", "": [1],
        "/sitemap.xml": ["", "1", 2, 3, 4], "/robots.txt": [1, 2, 3, 4, 5]}}).encode(),
    json.dumps({"format": 2, "stamp": "", "files": {
        f"/p{i}/": [f"page {'x' * 64}", i, i, i, i] for i in range(100_000)}}).encode(),
], ids=["garbage", "not-utf8", "empty", "deep", "deep-files", "hostile-paths-1", "10MB-1",
        "hostile-paths", "10MB"])
def test_a_hostile_manifest_is_ignored(make_config: ConfigFactory, tmp_path: Path,
                                       manifest: bytes) -> None:
    site = Site(make_config, tmp_path)
    (site.warm / MANIFEST).write_bytes(manifest)
    _cli(site.config_path, "entries", "set", str(site.en()[-1].id), "--title", "Fixed")
    site.check()
    assert not (tmp_path / "escape").exists()


def test_what_a_manifest_records_is_removed_only_while_still_as_written(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """A removed document's file goes; an operator's own file that a (stale or hostile)
    record names, or another spelling of a kept page's path, never does."""
    site = Site(make_config, tmp_path)
    own = site.warm / "assets" / "site.css"
    own.parent.mkdir()
    own.write_bytes(b"body{}")
    kept = site.pages()[0]
    data = json.loads((site.warm / MANIFEST).read_bytes())
    st = own.stat()
    data["files"]["/assets/site.css"] = ["", st.st_size + 1, st.st_mtime_ns, st.st_ino,
                                         st.st_ctime_ns]
    record = data["files"]["/" + kept.removesuffix("index.html")]
    data["files"]["/" + kept.replace("/", "//", 1)] = record
    (site.warm / MANIFEST).write_text(json.dumps(data), encoding="utf-8")
    _cli(site.config_path, "entries", "set", str(site.en()[-1].id), "--title", "Fixed")
    _cli(site.config_path, "feeds", "build", "--out", str(site.warm))
    assert own.read_bytes() == b"body{}" and (site.warm / kept).is_file()
    own.unlink()
    own.parent.rmdir()
    assert _tree(site.warm) == site.cold()


def test_a_manifest_that_claims_every_page_under_a_wrong_key_changes_nothing_wrongly(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """Records whose key is not the page's (another build's, a stale copy) with the
    right size and time: the page is made, never kept."""
    site = Site(make_config, tmp_path)
    data = json.loads((site.warm / MANIFEST).read_bytes())
    for record in data["files"].values():
        record[0] = "page 0000000000000000 1 1"
    (site.warm / MANIFEST).write_text(json.dumps(data), encoding="utf-8")
    _cli(site.config_path, "entries", "set", str(site.en()[-1].id), "--title", "Fixed")
    site.check()


# --- store and settings edits ----------------------------------------------------------


def test_a_removed_entry_leaves_no_page(make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config, tmp_path)
    middle = site.en()[len(site.en()) // 2]
    _cli(site.config_path, "entries", "remove", str(middle.id))
    site.check()


def test_a_sequence_of_edits_each_gives_a_cold_builds_bytes(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config, tmp_path)
    en = site.en()
    first, middle = en[0], en[len(en) // 2]
    es_id = str(next(e for e in _entries(site.config_path) if e.language == "es").id)
    body = tmp_path / "body.html"
    # a content body quoting the label and JSON-LD lines of its neighbours' pages
    body.write_text('<p><span class="part">Part 3 of 21</span> and '
                    '<span class="part">Part 4 of 22</span></p><pre>\n "position": 3,\n'
                    ' "position": 4\n</pre>', encoding="utf-8")
    steps: list[tuple[str, ...]] = [
        ("entries", "add", "--series", SLUG, "--title", "Inserted",
         "--published", (middle.published + timedelta(hours=1)).isoformat(),
         "--url", "https://example.org/inserted", "--content-file", str(body),
         "--summary", '<span class="part">Part 2 of 21</span> "position": 2,'),
        ("entries", "add", "--series", SLUG, "--title", "Before all",
         "--published", (first.published - timedelta(days=1)).isoformat(),
         "--url", "https://example.org/before"),
        ("entries", "add", "--series", SLUG, "--title", "After all",
         "--published", (en[-1].published + timedelta(days=3)).isoformat(),
         "--url", "https://example.org/after"),
        ("entries", "set", "https://example.org/after", "--part", "2"),
        ("entries", "set", "https://example.org/after", "--part", "auto"),
        ("entries", "remove", "https://example.org/before"),
        ("entries", "set", str(first.id), "--title", "Renamed <span class=\"part\">"),
        # a translation linked, then gone (its page, and its alternates on the original)
        ("entries", "link", str(en[1].id), es_id),
        ("entries", "remove", es_id),
    ]
    for step in steps:
        _cli(site.config_path, *step)
        site.check()


def test_settings_edits_give_a_cold_builds_bytes(make_config: ConfigFactory,
                                                 tmp_path: Path) -> None:
    site = Site(make_config, tmp_path)
    text = site.config_path.read_text(encoding="utf-8")
    text = text.replace('title = "SocialistWorker.org"', 'title = "Another Site"', 1)
    site.config_path.write_text(text, encoding="utf-8")
    site.check()
    text = site.config_path.read_text(encoding="utf-8")
    assert 'base_url = ""' in text
    site.config_path.write_text(text.replace('base_url = ""',
                                             'base_url = "https://feeds.example.net"', 1),
                                encoding="utf-8")
    site.check()


# --- processes ---------------------------------------------------------------------------


def test_two_builds_at_once_then_a_build_give_a_cold_builds_bytes(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config, tmp_path)
    newest = site.en()[-1].published
    for n in range(3):
        _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", f"Race {n}",
             "--published", (newest + timedelta(days=n + 1)).isoformat(),
             "--url", f"https://example.org/race{n}")
        cmd = [sys.executable, "-m", "seriesfeed", "--config", str(site.config_path),
               "feeds", "build", "--out", str(site.warm)]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
        time.sleep(0.4)
        _cli(site.config_path, "entries", "set", f"https://example.org/race{n}",
             "--title", f"Race {n} fixed")
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
        # each racing build was right for the store it read; the next one for this store
        site.check()


def test_a_build_killed_midway_then_run_again_gives_a_cold_builds_bytes(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config, tmp_path)
    newest = site.en()[-1].published
    cmd = [sys.executable, "-m", "seriesfeed", "--config", str(site.config_path),
           "feeds", "build", "--out", str(site.warm)]
    for n, delay in enumerate((0.9, 1.2, 1.5, 1.8)):
        _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", f"Kill {n}",
             "--published", (newest - timedelta(days=200 + n)).isoformat(),
             "--url", f"https://example.org/kill{n}")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        site.check()


# --- templates, catalogues, languages, numbers -----------------------------------------

FRENCH = """
[languages.fr]
name = "Français"
locale = "fr_FR"
feed_title = "SocialistWorker.org en français"
feed_description = "Articles en français de SocialistWorker.org"
"""


def _same_size_edit(path: Path, old: str, new: str) -> None:
    """Edit ``path`` keeping its size, with its modification time put back."""
    assert len(old.encode()) == len(new.encode())
    before = path.stat()
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_template_edited_with_its_time_put_back_is_drawn(make_config: ConfigFactory,
                                                           tmp_path: Path) -> None:
    from seriesfeed.templating import PACKAGE_TEMPLATES

    site = Site(make_config, tmp_path)
    shutil.copytree(PACKAGE_TEMPLATES, site.config_path.parent / "templates")
    site.check()
    _same_size_edit(site.config_path.parent / "templates" / "web" / "article.html.j2",
                    "<h1>", "<h2>")
    site.check()


def test_a_language_added_then_its_catalogue_edited_gives_a_cold_builds_bytes(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config, tmp_path)
    shutil.copytree(ROOT / "tests/data/locale", site.config_path.parent / "locale")
    text = site.config_path.read_text(encoding="utf-8")
    site.config_path.write_text(text.replace('catalogues = ""', 'catalogues = "locale"', 1)
                                + FRENCH, encoding="utf-8")
    site.check()
    first = site.en()[0]
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--lang", "fr",
         "--title", "Lettre", "--published", first.published.isoformat(),
         "--url", "https://example.org/fr/lettre")
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--lang", "fr",
         "--title", "Deuxième", "--published", (first.published + timedelta(days=1)).isoformat(),
         "--url", "https://example.org/fr/deux")
    _cli(site.config_path, "entries", "link", str(first.id), "https://example.org/fr/lettre")
    site.check()
    po = site.config_path.parent / "locale/fr/LC_MESSAGES/seriesfeed.po"
    _same_size_edit(po, 'msgstr[2] "Partie {part} sur {n}"', 'msgstr[2] "Partie {part} de  {n}"')
    site.check()
    # CLDR grouping: 12 345 (fr, narrow no-break space), 12.345 (es), 12,345 (en)
    _cli(site.config_path, "entries", "set", "https://example.org/fr/deux", "--part", "12345")
    site.check()
    _cli(site.config_path, "entries", "set", "https://example.org/fr/deux", "--part", "auto")
    site.check()
    es = [e for e in _entries(site.config_path) if e.language == "es"]
    _cli(site.config_path, "entries", "set", str(es[-1].id), "--part", "12345")
    site.check()
    _cli(site.config_path, "entries", "set", str(es[-1].id), "--part", "1000")
    site.check()
    _cli(site.config_path, "entries", "set", str(site.en()[-1].id), "--part", "100000")
    site.check()
    _cli(site.config_path, "entries", "set", str(site.en()[0].id), "--part", "1001")
    site.check()
    # and the language taken out of the config again: its pages and feeds go
    site.config_path.write_text(site.config_path.read_text(encoding="utf-8")
                                .replace(FRENCH, ""), encoding="utf-8")
    site.check()


# --- a full disk -------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_fails_with_one_line_leaves_no_temporary_file_and_recovers(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config, tmp_path)
    size = sum(len(v) for v in _tree(site.warm).values() if isinstance(v, bytes))
    disk = tmp_path / "disk"
    with Tmpfs(disk, f"size={size // 2}") as fs:
        out = disk / "public"
        proc = _run(site.config_path, "feeds", "build", "--out", str(out))
        assert proc.returncode == 1 and proc.stderr.startswith("Error:"), proc.stderr
        assert "Traceback" not in proc.stderr
        left = [p for p in _tree(disk) if p.endswith(".tmp")]
        assert left == []
        fs.remount(f"size={size * 4}")
        _cli(site.config_path, "feeds", "build", "--out", str(out))
        assert _tree(out) == site.cold()


# --- a long-lived process (the daemon builds in its own process, on a schedule) ---------


def test_a_catalogue_edited_under_a_running_process_is_drawn_by_its_next_build(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """The daemon builds in one process for days; the catalogue's file is an input of
    every page (``settings_key``): its next build must draw the new words, or it records
    the old ones under the new key and every later build from a new process keeps them."""
    site = Site(make_config, tmp_path)
    shutil.copytree(ROOT / "tests/data/locale", site.config_path.parent / "locale")
    text = site.config_path.read_text(encoding="utf-8")
    site.config_path.write_text(text.replace('catalogues = ""', 'catalogues = "locale"', 1)
                                + FRENCH, encoding="utf-8")
    first = site.en()[0]
    for n in range(2):
        _cli(site.config_path, "entries", "add", "--series", SLUG, "--lang", "fr",
             "--title", f"Article {n}",
             "--published", (first.published + timedelta(days=n)).isoformat(),
             "--url", f"https://example.org/fr/{n}")
    config = load_config(site.config_path, env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.build_feeds(store, config, site.warm)  # this process: the daemon
        po = site.config_path.parent / "locale/fr/LC_MESSAGES/seriesfeed.po"
        po.write_text(po.read_text(encoding="utf-8").replace(
            'msgstr[2] "Partie {part} sur {n}"', 'msgstr[2] "Article {part} sur {n}"'),
            encoding="utf-8")
        actions.build_feeds(store, config, site.warm)  # its next scheduled build
    finally:
        store.close()
    assert b'<span class="part">Article ' in (site.warm / "fr" / SLUG / "article-1" /
                                             "index.html").read_bytes()
    site.check()


def test_a_template_edited_with_its_time_put_back_under_a_running_process_is_drawn(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """As the catalogue: Jinja reloads a template whose mtime moved; a same-size edit
    with its mtime put back moves only its change time, which the pages' keys hold."""
    from seriesfeed.templating import PACKAGE_TEMPLATES

    site = Site(make_config, tmp_path)
    shutil.copytree(PACKAGE_TEMPLATES, site.config_path.parent / "templates")
    config = load_config(site.config_path, env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.build_feeds(store, config, site.warm)  # this process: the daemon
        _same_size_edit(site.config_path.parent / "templates" / "web" / "article.html.j2",
                        "<h1>", "<h2>")
        actions.build_feeds(store, config, site.warm)
    finally:
        store.close()
    site.check()

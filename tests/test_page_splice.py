"""Article pages whose part numbers alone changed (an add into a series renumbers every
later part and changes every page's "of M") are spliced from the folder's earlier files,
not rendered: a build from a new process then writes the same bytes as a build from
nothing, and renders only the pages whose other inputs changed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from seriesfeed.models import Entry
from seriesfeed.templating import PACKAGE_TEMPLATES
from tests.conftest import EXAMPLE_JSON, SEED_PAGE, ConfigFactory
from tests.harness.builds import cli as _cli
from tests.harness.builds import entries as _entries
from tests.harness.builds import files as _files

SLUG = "reflections-on-the-iso-crisis"


def _articles(files: dict[str, bytes]) -> dict[str, bytes]:
    return {p: body for p, body in files.items()
            if p.endswith("/index.html") and p.count("/") == 3}


class Site:
    """A store and a folder built into by one process after another, beside a build from
    nothing after every change."""

    def __init__(self, config_path: Path, tmp_path: Path) -> None:
        self.config_path, self.tmp_path = config_path, tmp_path
        self.warm = tmp_path / "warm"
        self.colds = 0
        _cli(config_path, "import", str(SEED_PAGE))
        _cli(config_path, "feeds", "build", "--out", str(self.warm))

    def rebuilt(self) -> tuple[int, int, set[str]]:
        """Build the warm folder again; check it against a cold build; (files written,
        of them spliced, article pages whose bytes changed)."""
        before = _files(self.warm)
        said = _cli(self.config_path, "feeds", "build", "--out", str(self.warm))
        after = _files(self.warm)
        self.colds += 1
        cold = self.tmp_path / f"cold{self.colds}"
        _cli(self.config_path, "feeds", "build", "--out", str(cold))
        assert after == _files(cold)  # byte for byte, every file
        found = re.search(r"(\d+) files written(?: \((\d+) spliced\))?", said)
        assert found, said
        changed = {p for p, body in _articles(after).items() if before.get(p) != body}
        return int(found[1]), int(found[2] or 0), changed


def test_an_add_in_the_middle_and_at_the_end_splice_the_renumbered_pages(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                            feeds={"max_entries": 3, "out_dir": "var/public"}), tmp_path)
    en = [e for e in _entries(site.config_path) if e.language == "en"]
    middle = en[len(en) // 2]
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", "Inserted",
         "--published", (middle.published + timedelta(hours=1)).isoformat(),
         "--url", "https://example.org/inserted")
    written, spliced, changed = site.rebuilt()
    assert len(changed) >= 19  # every page of the series: "of M" changed
    # rendered: the new page and its two neighbours (their prev/next links changed)
    assert spliced == len(changed) - 3, (written, spliced, len(changed))
    newest = max(e.published for e in _entries(site.config_path))
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", "Appended",
         "--published", (newest + timedelta(days=1)).isoformat(),
         "--url", "https://example.org/appended")
    written, spliced, changed = site.rebuilt()
    # the new page and the one before it (its next link) rendered; every other spliced
    assert spliced == len(changed) - 2 and spliced >= 18, (written, spliced, len(changed))


def test_a_part_moved_by_an_editor_splices_the_pages_between(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                            feeds={"max_entries": 3, "out_dir": "var/public"}), tmp_path)
    en = [e for e in _entries(site.config_path) if e.language == "en" and e.part]
    latest = max(en, key=lambda e: e.part or 0)
    _cli(site.config_path, "entries", "set", str(latest.id), "--part", "2")
    written, spliced, changed = site.rebuilt()
    assert spliced >= 1 and spliced <= len(changed), (written, spliced, len(changed))


def test_a_series_crossing_catch_up_max_is_rendered_again(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """The subscribe form checks "from part 1" while the series is shorter than
    catch_up_max: an add that reaches it changes every page's form, which no splice does."""
    probe = make_config(database={"url": f"sqlite:///{tmp_path}/probe.sqlite3"})
    _cli(probe, "import", str(SEED_PAGE))
    parts = max(e.parts or 0 for e in _entries(probe))
    site = Site(make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                            feeds={"max_entries": 3, "out_dir": "var/public"},
                            digests={"catch_up_max": parts + 1}), tmp_path)
    newest = max(e.published for e in _entries(site.config_path))
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", "The last straw",
         "--published", (newest + timedelta(days=1)).isoformat(),
         "--url", "https://example.org/straw")
    written, spliced, changed = site.rebuilt()
    assert spliced == 0 and len(changed) >= parts, (written, len(changed))


def test_a_body_quoting_its_own_label_and_position_is_rendered_not_spliced(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    site = Site(make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                            feeds={"max_entries": 3, "out_dir": "var/public",
                                   "content": "full"}), tmp_path)
    entries = _entries(site.config_path)
    parts = max(e.parts or 0 for e in entries)
    newest = max(e.published for e in entries)
    # the new last part quotes the very text its page shows, label and JSON-LD line
    body = tmp_path / "body.html"
    body.write_text(f'<p>This is <span class="part">Part {parts + 1} of {parts + 1}</span>'
                    f'</p><pre>copied:\n "position": {parts + 1},\n "position": {parts + 1}\n'
                    "</pre>", encoding="utf-8")
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", "Quoting",
         "--published", (newest + timedelta(days=2)).isoformat(),
         "--url", "https://example.org/quoting", "--content-file", str(body))
    site.rebuilt()
    quoting = next(p for p, b in _articles(_files(site.warm)).items() if b"copied:" in b)
    # an add before it: its part and "of M" both move, and the old text is twice in it
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", "Earlier",
         "--published", (newest + timedelta(days=1)).isoformat(),
         "--url", "https://example.org/earlier")
    written, spliced, changed = site.rebuilt()
    assert quoting in changed
    # rendered: the new page, its neighbours (one of them the quoting page), nothing else
    assert spliced == len(changed) - 3, (written, spliced, len(changed))


def test_an_edited_translation_gives_the_bytes_of_a_cold_build(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """A list whose entries did not change keeps its pages without a key worked out for
    each: its digest holds what every page shows of the entries' translations too, which
    may be in another list (another language)."""
    site = Site(make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                            site={"article_pages": "local"},
                            feeds={"max_entries": 3, "out_dir": "var/public"}), tmp_path)
    _cli(site.config_path, "import", str(EXAMPLE_JSON))
    site.rebuilt()
    es = next(e for e in _entries(site.config_path)
              if e.language == "es" and e.translation_of is not None)
    _cli(site.config_path, "entries", "set", str(es.id), "--title", "Título corregido")
    _, spliced, changed = site.rebuilt()
    assert any(p.startswith("es/") for p in changed), changed
    assert spliced == 0
    # the pages kept as they were took their list's new digest: an add in the middle
    # then splices them from those records
    en = [e for e in _entries(site.config_path) if e.language == "en"]
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", "Inserted",
         "--published", (en[len(en) // 2].published + timedelta(hours=1)).isoformat(),
         "--url", "https://example.org/inserted")
    _, spliced, changed = site.rebuilt()
    assert spliced >= len(changed) // 2 > 0, (spliced, len(changed))


def test_the_label_is_escaped_as_the_template_escapes_it() -> None:
    from markupsafe import escape

    from seriesfeed.pages import _escaped

    for text in ("Part 3 of 18", "Parte 3 de 18", "<b>&'\"", "a & b < c > d"):
        assert _escaped(text) == str(escape(text))


def test_a_splice_refuses_what_it_cannot_place_for_sure() -> None:
    """The label or the position line found twice, or the position outside the JSON-LD
    script: render instead."""
    from seriesfeed.pages import _respliced

    config = 30  # catch_up_max: the form unchanged between 18 and 19 parts
    e = Entry(series="s", language="en", title="t", summary="", part=4, parts=19,
              published=datetime(2024, 1, 1, tzinfo=UTC))

    def label(part: int | None, parts: int | None) -> str:
        return f"Part {part} of {parts}"

    span = b'<span class="part">Part 3 of 18</span>'
    ld = b'<script type="application/ld+json">{\n "name": "t",\n "position": 3,\n "x": 1\n}'
    good = b"<html>" + ld + b"</script>" + span + b"<p>body</p>"
    assert _respliced(config, "3 18", e, label, good) == good.replace(
        b"Part 3 of 18", b"Part 4 of 19").replace(b'"position": 3,', b'"position": 4,')
    assert _respliced(config, "3 18", e, label, good + span) is None
    assert _respliced(config, "3 18", e, label, good + b'<pre>\n "position": 3,</pre>') is None
    outside = b"<html>" + span + b'<pre>\n "position": 3,</pre>'
    assert _respliced(config, "3 18", e, label, outside) is None
    assert _respliced(19, "3 18", e, label, good) is None  # the form's default changes
    assert _respliced(config, "None None", e, label, good) is None
    assert _respliced(config, "3 18", e, label, None) is None


def test_an_operator_template_printing_the_part_numbers_elsewhere_is_rendered_not_spliced(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    """The splice replaces the label span and the JSON-LD position, where the shipped
    template writes the part numbers. An operator's article template may print them
    anywhere else too (``entry.parts`` in a meta tag, the label in the title): a splice
    kept those stale, so such pages are rendered, and equal a cold build's."""
    config_path = make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"},
                              feeds={"max_entries": 3, "out_dir": "var/public"})
    folder = config_path.parent / "templates"  # a templates folder beside the config wins
    (folder / "web").mkdir(parents=True)
    for template in (PACKAGE_TEMPLATES / "web").glob("*.j2"):
        text = template.read_text(encoding="utf-8")
        if template.name == "article.html.j2":
            text = text.replace("{% block content %}", '{% block content %}\n<p class="of">'
                                "{{ entry.part }}/{{ entry.parts }}</p>", 1)
            assert "{{ entry.parts }}" in text
        (folder / "web" / template.name).write_text(text, encoding="utf-8")
    site = Site(config_path, tmp_path)
    en = [e for e in _entries(site.config_path) if e.language == "en"]
    _cli(site.config_path, "entries", "add", "--series", SLUG, "--title", "Inserted",
         "--published", (en[len(en) // 2].published + timedelta(hours=1)).isoformat(),
         "--url", "https://example.org/inserted")
    written, spliced, changed = site.rebuilt()  # equal to a cold build's, file for file
    assert spliced == 0 and len(changed) >= 19, (written, spliced, len(changed))


def test_the_shipped_article_template_is_known_as_such(tmp_path: Path) -> None:
    """A copy of the shipped templates splices as they do; one changed byte in the article
    template or in the one it extends, or a language's own copy, does not."""
    from seriesfeed.templating import stock_template

    assert stock_template(PACKAGE_TEMPLATES, "web/article.html.j2")
    (tmp_path / "web").mkdir()
    for template in (PACKAGE_TEMPLATES / "web").glob("*.j2"):
        (tmp_path / "web" / template.name).write_bytes(template.read_bytes())
    assert stock_template(tmp_path, "web/article.html.j2")
    base = tmp_path / "web" / "base.html.j2"
    base.write_bytes(base.read_bytes() + b"{{ entry.parts }}")
    assert not stock_template(tmp_path, "web/article.html.j2")
    base.write_bytes((PACKAGE_TEMPLATES / "web" / "base.html.j2").read_bytes())
    (tmp_path / "web" / "es").mkdir()
    (tmp_path / "web" / "es" / "article.html.j2").write_text(
        '{% extends "web/article.html.j2" %}', encoding="utf-8")
    assert not stock_template(tmp_path, "web/es/article.html.j2")
    assert not stock_template(tmp_path, "web/missing.html.j2")

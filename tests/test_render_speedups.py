"""What the cheaper cold build must still do: templates write what stock Jinja writes
(templating's own escaping path), json_ld is json.dumps(indent=1)'s text, Atom entries
built with lxml are the ones feedgen made, and a template
override added between two builds in one process is used by the second (the article
pages find their template once per run, not once per process)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest
from lxml import etree
from markupsafe import Markup

from seriesfeed import feeds
from seriesfeed.actions.feeds import plan_site
from seriesfeed.config import Config, load_config
from seriesfeed.feeds import Translation
from seriesfeed.models import Author, AuthorKind, Entry
from seriesfeed.pages import json_ld
from seriesfeed.store import Store
from seriesfeed.templating import PACKAGE_TEMPLATES, environment
from tests.bilingual import seed_like_quick_start
from tests.conftest import ConfigFactory

TEMPLATE = """{% macro m(x) %}<i>{{ x }}</i>{% endmacro %}
{% macro c() %}[{{ caller() }}]{% endmacro %}
{% set block %}<b>{{ title }}</b>{% endset %}
{{ title }}|{{ safe_title }}|{{ html_object }}|{{ number }}|{{ nothing }}|{{ m(title) }}
{{ block }}|{{ title | upper }}|{{ title ~ "&" ~ safe_title }}|{{ "<lit>" }}|{{ raw | safe }}
{% filter upper %}{{ title }}{% endfilter %}|{% call c() %}{{ title }}&{% endcall %}
{% for t in items %}{{ t }}{% if not loop.last %},{% endif %}{% endfor %}
"""


class HasHtml:
    def __html__(self) -> str:
        return "<em>as html</em>"


def test_templates_write_what_stock_jinja_writes(tmp_path: Path) -> None:
    (tmp_path / "t.html.j2").write_text(TEMPLATE, encoding="utf-8")
    ours = environment(tmp_path)
    stock = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)),
                               autoescape=True, undefined=jinja2.StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True,
                               keep_trailing_newline=True)
    context: dict[str, Any] = {
        "title": "Tom & Jerry <b>\"quoted\" 'single'</b>", "safe_title": Markup("<u>ok</u>"),
        "html_object": HasHtml(), "number": 42, "nothing": None, "raw": "<script>x</script>",
        "items": ["a<", Markup("b&amp;"), 3, "é"]}
    want = stock.get_template("t.html.j2").render(context)
    assert "&amp;" in want and "<u>ok</u>" in want  # escaping is on in both
    assert ours.get_template("t.html.j2").render(context) == want


def test_json_ld_is_json_dumps_text() -> None:
    rng = random.Random(7)
    chars = [chr(c) for c in (*range(0, 0x80), 0x2028, 0xe9, 0x4e2d, 0xd800, 0xfeff)]

    def value(depth: int) -> Any:
        kind = rng.randrange(7 if depth < 4 else 3)
        if kind == 0:
            return "".join(rng.choice(chars) for _ in range(rng.randrange(8)))
        if kind == 1:
            return rng.choice([0, -1, 10**30, True, False, None])
        if kind == 2:
            return "</script><!-- & -->"
        if kind in (3, 4):
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {"".join(rng.choice(chars) for _ in range(rng.randrange(5))): value(depth + 1)
                for _ in range(rng.randrange(4))}

    for _ in range(3000):
        data = {"k": value(0)}
        text = json.dumps(data, ensure_ascii=False, indent=1)
        assert json_ld(data) == text.replace("<", "\\u003c").replace(">", "\\u003e").replace(
            "&", "\\u0026")
    odd = {"float": 1.5, 3: "an integer key"}  # not plain data: json itself writes it
    assert json_ld(odd) == json.dumps(odd, ensure_ascii=False, indent=1)


def test_an_override_added_between_builds_is_used_by_the_next(
        make_config: ConfigFactory, store: Store, database_url: str) -> None:
    path = make_config(database={"url": database_url})
    folder = path.parent / "templates"  # a templates folder beside the config file wins
    (folder / "web").mkdir(parents=True)
    for template in (PACKAGE_TEMPLATES / "web").glob("*.j2"):
        (folder / "web" / template.name).write_text(template.read_text(encoding="utf-8"),
                                                    encoding="utf-8")
    config = load_config(path, env={})
    seed_like_quick_start(store, config)
    before = {d.path: d.body for d in plan_site(store, config)}
    spanish = [p for p in before if p.startswith("/es/") and p.count("/") == 4]
    assert spanish and all(b"OVERRIDDEN" not in before[p] for p in spanish)
    (folder / "web" / "es").mkdir()
    (folder / "web" / "es" / "article.html.j2").write_text(
        '{% extends "web/article.html.j2" %}{% block title %}OVERRIDDEN{% endblock %}',
        encoding="utf-8")
    after = {d.path: d.body for d in plan_site(store, config)}
    assert all(b"<title>OVERRIDDEN</title>" in after[p] for p in spanish)
    english = [p for p in after if p.startswith("/en/") and p.count("/") == 4]
    assert english and all(after[p] == before[p] for p in english)


def _feedgen_fragment(config: Config, e: Entry,
                      translations: dict[str, list[Translation]]) -> bytes:
    """The Atom entry as it was made before: through feedgen's FeedEntry."""
    fe = feeds._Entry()
    feeds._fill_entry(fe, config, e, translations, rss=False)
    return etree.tostring(fe.atom_entry(), pretty_print=True, encoding="UTF-8")


@pytest.mark.parametrize(("pages", "content"), [("publisher", "full"), ("local", "summary")])
def test_atom_entries_are_the_ones_feedgen_made(make_config: ConfigFactory, pages: str,
                                                content: str) -> None:
    path = make_config(feeds={"max_entries": 50, "out_dir": "var/public", "content": content})
    path.write_text(path.read_text(encoding="utf-8").replace(
        'article_pages = "publisher"', f'article_pages = "{pages}"', 1), encoding="utf-8")
    config = load_config(path, env={})
    assert (config.site.article_pages, config.feeds.content) == (pages, content)
    rng = random.Random(11)
    texts = ["Plain title", "A <b>bold</b> claim", "Tom &amp; Jerry", "a < b", "", "  ",
             "\x00\x0b", "Línea con acentos — y «comillas»", "tab\there\nnewline",
             "&#39; entity", "<!-- comment -->", "x" * 300]
    names = ["Ann Author", "", " ", "From SW", "Zoë <z@example.org>", "\x07"]
    start = datetime(2019, 3, 26, 4, 0, tzinfo=UTC)
    for i in range(400):
        authors = tuple(Author(rng.choice(names), rng.choice(list(AuthorKind)))
                        for _ in range(rng.randrange(4)))
        e = Entry(series="s", language=rng.choice(["en", "es", "pt-BR"]),
                  title=rng.choice(texts), summary=rng.choice(texts),
                  published=start + timedelta(hours=i, microseconds=rng.choice([0, 5])),
                  authors=authors, section=rng.choice([None, "", "Analysis", "\x01", "a <i>"]),
                  content_html=rng.choice([None, "", "<p>Body &amp; more</p>", "\x02"]),
                  url=f"https://example.org/{i}/", id=f"tag:example.org,2019:{i}",
                  updated=rng.choice([None, start + timedelta(days=i)]), seq=i + 1,
                  slug=rng.choice([None, f"entry-{i}"]))
        translations = {e.id or "": [Translation(lang, f"https://example.org/{lang}/{i}/",
                                                 f"tag:x,{lang}")
                                     for lang in rng.sample(["fr", "de", ""], rng.randrange(3))]}
        assert feeds._atom_fragment(config, e, translations) == \
            _feedgen_fragment(config, e, translations), e

"""What the cheaper cold build must still do: templates write what stock Jinja writes
(templating's own escaping path), json_ld is json.dumps(indent=1)'s text, and a template
override added between two builds in one process is used by the second (the article
pages find their template once per run, not once per process)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from seriesfeed.actions.feeds import plan_site
from seriesfeed.config import load_config
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

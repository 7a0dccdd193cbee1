"""Run the W3C Feed Validator over every feed document of a store with hostile text, two
series and archives. The validator is not on PyPI and is not part of seriesfeed: check out
https://github.com/w3c/feedvalidator somewhere (never into this repository), make a venv
with its requirements (lxml, html5lib, rdflib), then:

    .venv/bin/python bench/w3c_feeds.py build OUT
    /path/to/validator-venv/bin/python bench/w3c_feeds.py validate OUT \\
        --validator /path/to/feedvalidator/src

``build`` writes the documents under OUT/public (max_entries = 5, a WebSub hub, the seed,
the JSON example, and a second series of hostile titles, summaries and bylines in both
languages); ``validate`` prints every event (compatibility level "AA", as the online
validator) and the totals. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://feeds.example.org"
HOSTILE = ["<", "&", "&amp;", "<![CDATA[", "]]>", "Los signos <menor> y <mayor>.",
           "a < b && c > d; &lt;not a tag&gt; ]]> <![CDATA[x]]> &#60; \"q\" 'a'",
           "<b>bold</b> and <i>it</i>", "<p>A paragraph</p>", '<a href="https://x.example/">x</a>']


def build(out: Path) -> None:
    from seriesfeed import actions
    from seriesfeed.config import load_config
    from seriesfeed.models import Author, AuthorKind, Entry
    from seriesfeed.store import open_store

    out.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace("max_entries = 50", "max_entries = 5")
    text = text.replace('[websub]\nhub = ""', '[websub]\nhub = "https://hub.example.org/"')
    text = text.replace('base_url = ""', f'base_url = "{BASE}"')
    (out / "config.toml").write_text(text, encoding="utf-8")
    config = load_config(out / "config.toml", env={})
    store = open_store(config.database.url, config.base_dir)
    store.migrate()
    actions.import_entries(store, config, ROOT / "examples" / "iso-crisis-series-page.txt")
    actions.import_entries(store, config, ROOT / "examples" / "iso-crisis.json")
    start = datetime(2020, 1, 1, 12, tzinfo=UTC)
    four = (Author("Ana <Pérez> & Co"), Author('Berta "B" Díaz'), Author("Carla Ruiz"),
            Author("D'Arcy"))
    for i, s in enumerate(HOSTILE * 2):
        body = s.replace("&", "&amp;").replace("<", "&lt;")
        actions.add_entry(store, config, Entry(
            series="second-series", language="es" if i >= len(HOSTILE) else "en",
            title=f"Hostile {i} {s}", summary=s, published=start + timedelta(days=i // 2),
            content_html=f"<p>{body}</p>" if i % 3 == 0 else None,
            authors=four if i % 2 else (Author("From SW", AuthorKind.ORGANIZATION),)),
            series_title="A second <series> & more")
    print(actions.build_feeds(store, config, out / "public"))
    store.close()


def validate(out: Path, validator: Path) -> None:
    sys.path.insert(0, str(validator))
    import feedvalidator
    from feedvalidator import compatibility
    from feedvalidator.formatter.text_plain import Formatter

    errors = warnings = files = 0
    public = out / "public"
    for path in sorted(public.rglob("*.xml")):
        rel = path.relative_to(public).as_posix()
        try:
            events = feedvalidator.validateString(path.read_bytes(), firstOccurrenceOnly=1,
                                                  base=f"{BASE}/{rel}")["loggedEvents"]
        except feedvalidator.logging.ValidationFailure as failure:
            events = [failure.event]
        events = compatibility.AA(events)
        files += 1
        for event, line in zip(events, Formatter(events), strict=True):
            print(f"{rel}: {type(event).__name__}: {line}")
        errors += sum(isinstance(e, feedvalidator.logging.Error) for e in events)
        warnings += sum(isinstance(e, feedvalidator.logging.Warning) for e in events)
    print(f"{files} documents: {errors} errors, {warnings} warnings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["build", "validate"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--validator", type=Path, help="the checkout's src folder")
    args = parser.parse_args()
    if args.what == "build":
        build(args.out)
    elif args.validator is None:
        raise SystemExit("validate needs --validator PATH (the feedvalidator checkout's src)")
    else:
        validate(args.out, args.validator)


if __name__ == "__main__":
    main()

"""Helpers for the bilingual tests: the seed store as the quick start makes it, and the
check that a Spanish text carries no English interface string."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from babel.messages.pofile import read_po

from seriesfeed import actions, i18n
from seriesfeed.config import Config
from seriesfeed.store import Store
from tests.conftest import EXAMPLE_JSON, SEED_PAGE

SLUG = "reflections-on-the-iso-crisis"
SPANISH_TITLE = "Reflexiones sobre la crisis de la ISO"
# English that the code used to show before issue 13, besides the catalogue
OLD_ENGLISH = ("Not found", "Not Found", "Internal Server Error", "Method Not Allowed",
               "No such feed or page", "Home", "token:", "Something is not right",
               "Read it", "request body too large", "bad form", "Unknown language")


def seed_like_quick_start(store: Store, config: Config) -> None:
    """What `./dev run` imports: the page (with the Spanish title), then the JSON links."""
    actions.import_entries(store, config, SEED_PAGE, titles={"es": SPANISH_TITLE})
    actions.import_entries(store, config, EXAMPLE_JSON)


def english_fragments(config: Config, language: str = "es") -> list[str]:
    """Pieces of the English interface text (the catalogue's msgids, split at their
    placeholders, and the [site] rights) that must never reach a reader of ``language``.
    A word that the language's own translations use too ("Error", "Series") is no leak."""
    with i18n.TEMPLATE.open("rb") as fh:
        template = read_po(fh)
    catalogue = i18n.messages_for(config, language).catalogue
    translated = " ".join(v if isinstance(v, str) else " ".join(v)
                          for v in catalogue.messages.values())
    ids: list[str] = []
    for message in template:
        if message.id:
            ids += [message.id] if isinstance(message.id, str) else list(message.id)
    out: set[str] = set()
    for text in [*ids, *OLD_ENGLISH, config.site.rights]:
        for fragment in re.split(r"\{\w+\}", text):
            fragment = fragment.strip(" :().;")
            if re.search(r"[A-Za-z]{3,}", fragment) and fragment not in translated:
                out.add(fragment)
    return sorted(out, key=len, reverse=True)


def english_in(text: str, fragments: list[str]) -> list[str]:
    return [f for f in fragments if re.search(rf"(?<!\w){re.escape(f)}(?!\w)", text)]


def feed_text(path: str, body: bytes) -> str:
    """The human-readable text of a feed document (text nodes and string values)."""
    if path.endswith(".json"):
        def strings(value: object) -> list[str]:
            if isinstance(value, str):
                return [] if value.startswith(("http", "tag:")) else [value]
            if isinstance(value, dict):
                return [s for v in value.values() for s in strings(v)]
            if isinstance(value, list):
                return [s for v in value for s in strings(v)]
            return []
        return "\n".join(strings(json.loads(body)))
    return "\n".join(t.strip() for t in ET.fromstring(body).itertext() if t.strip())


def save_screenshot(source: Path, name: str) -> None:
    """Keep a copy where SERIESFEED_SCREENSHOTS says, for a person to look at."""
    import os
    import shutil

    where = os.environ.get("SERIESFEED_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, Path(where) / name)

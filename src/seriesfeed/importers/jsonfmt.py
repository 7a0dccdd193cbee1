"""The JSON format: read and write series and entries.

    {"format": "seriesfeed/1",
     "series": [{"slug": "...", "texts": {"en": {"title", "description", "url"}}}],
     "entries": [{"id", "series", "language", "section", "authors": [{"name", "kind"}],
                  "title", "summary", "content_html", "url", "published", "updated",
                  "translation_of", "part"}]}

A bare list of entry objects is accepted too. Per entry only ``series``, ``title`` and
``published`` are required; ``authors`` may also be a byline string or a list of names.
Dates are ISO 8601; a date alone means midnight in the site's time zone.
"""

from __future__ import annotations

import json
from typing import Any

from seriesfeed.errors import ImportError_
from seriesfeed.importers import ImportBatch, ImportedEntry, ImportSettings
from seriesfeed.importers.bylines import split_byline
from seriesfeed.importers.dates import parse_iso
from seriesfeed.importers.seriespage import decode_text
from seriesfeed.models import PINNABLE_TEXTS, Author, AuthorKind, Entry, Series, SeriesText
from seriesfeed.text import clean_line, clean_text

__all__ = [
    "DOCUMENT_KEYS", "ENTRY_KEYS", "FORMAT", "LIMITS", "MAX_DEPTH", "MAX_INT_DIGITS",
    "SERIES_KEYS", "TEXT_KEYS", "dump_json", "load_json", "parse_json",
]

FORMAT = "seriesfeed/1"
MAX_DEPTH = 64
MAX_INT_DIGITS = 50
ENTRY_KEYS = {"id", "series", "language", "section", "authors", "title", "summary",
              "content_html", "url", "published", "updated", "translation_of", "part",
              "pinned_texts"}
# a part number beyond this is a typing mistake, not a series
MAX_PART = 100_000
LIMITS = {"title": 1000, "summary": 10_000, "content_html": 1_000_000}


def _check_depth(text: str, source: str) -> None:
    """Refuse deep nesting before json.loads recurses into it."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ImportError_(f"JSON nested deeper than {MAX_DEPTH} levels", path=source)
        elif ch in "]}":
            depth -= 1


def load_json(data: bytes, source: str) -> Any:
    """A JSON document under the import limits (depth, integer size): ImportError_ else."""
    text = decode_text(data, source)
    _check_depth(text, source)
    try:
        return json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:
        raise ImportError_(f"not valid JSON: {exc}", path=source) from exc


def _parse_int(value: str) -> int:
    if len(value.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(value)} digits")
    return int(value)


def _text(item: dict[str, Any], key: str, n: int, source: str, *, required: bool = False,
          line: bool = True) -> str | None:
    value = item.get(key)
    if value is None:
        if required:
            raise ImportError_(f"entry {n}: '{key}' is required", path=source, line=n,
                               field=key)
        return None
    if not isinstance(value, str):
        raise ImportError_(f"entry {n}: '{key}' must be a string", path=source, line=n,
                           field=key)
    if key in LIMITS and len(value) > LIMITS[key]:
        raise ImportError_(f"entry {n}: '{key}' is longer than {LIMITS[key]} characters",
                           path=source, line=n, field=key)
    return clean_line(value) if line else clean_text(value).strip()


def _authors(value: Any, n: int, settings: ImportSettings, source: str) -> tuple[Author, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return split_byline(value, settings.organizations,
                            settings.conjunctions)
    if not isinstance(value, list):
        raise ImportError_(f"entry {n}: 'authors' must be a list", path=source, line=n,
                           field="authors")
    out: list[Author] = []
    for a in value:
        if isinstance(a, str):
            out.extend(split_byline(a, settings.organizations,
                            settings.conjunctions))
        elif isinstance(a, dict) and isinstance(a.get("name"), str) and \
                a.get("kind", "person") in ("person", "organization") and \
                set(a) <= {"name", "kind"}:
            if clean_line(a["name"]):
                out.append(Author(clean_line(a["name"]), AuthorKind(a.get("kind", "person"))))
        else:
            raise ImportError_(f"entry {n}: each author is a name or {{'name', 'kind'}} with "
                               "kind 'person' or 'organization'", path=source, line=n,
                               field="authors")
    return tuple(out)


def _entry(item: Any, n: int, settings: ImportSettings, source: str) -> Entry:
    if not isinstance(item, dict):
        raise ImportError_(f"entry {n} is not an object", path=source, line=n)
    unknown = sorted(set(item) - ENTRY_KEYS)
    if unknown:
        raise ImportError_(f"entry {n}: unknown field '{unknown[0]}'", path=source, line=n,
                           field=unknown[0])
    dates = {}
    for key in ("published", "updated"):
        raw = _text(item, key, n, source, required=key == "published")
        if raw is not None:
            try:
                dates[key] = parse_iso(raw, settings.time_zone)
            except ValueError as exc:
                raise ImportError_(f"entry {n}: {exc}", path=source, line=n, field=key) from exc
    return Entry(
        id=_text(item, "id", n, source), series=_text(item, "series", n, source,
                                                      required=True) or "",
        language=_text(item, "language", n, source) or settings.default_language,
        section=_text(item, "section", n, source),
        authors=_authors(item.get("authors"), n, settings, source),
        title=_text(item, "title", n, source, required=True) or "",
        summary=_text(item, "summary", n, source, line=False) or "",
        content_html=_text(item, "content_html", n, source, line=False),
        url=_text(item, "url", n, source), published=dates["published"],
        updated=dates.get("updated"), translation_of=_text(item, "translation_of", n, source),
        part=_part(item.get("part"), n, source),
        texts_pinned=_pins(item.get("pinned_texts"), n, source))


def _pins(value: Any, n: int, source: str) -> tuple[str, ...]:
    """The texts an editor pinned (an export states them, like the part an editor set)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(v in PINNABLE_TEXTS for v in value):
        raise ImportError_(f"entry {n}: 'pinned_texts' must be a list of "
                           f"{' and '.join(repr(t) for t in PINNABLE_TEXTS)}",
                           path=source, line=n, field="pinned_texts")
    return tuple(t for t in PINNABLE_TEXTS if t in value)


def _part(value: Any, n: int, source: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PART:
        raise ImportError_(f"entry {n}: 'part' must be a whole number from 1 to {MAX_PART}",
                           path=source, line=n, field="part")
    return value


DOCUMENT_KEYS = {"format", "series", "entries"}
SERIES_KEYS = {"slug", "texts"}
TEXT_KEYS = {"title", "description", "url"}


def _no_unknown(obj: dict[str, Any], allowed: set[str], where: str, source: str) -> None:
    """Typos do not pass silently: 'descripton' is an error, not a lost description."""
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ImportError_(f"{where}: unknown field '{unknown[0]}' (known: "
                           f"{', '.join(sorted(allowed))})", path=source, field=unknown[0])


def _series(item: Any, n: int, source: str) -> Series:
    if not isinstance(item, dict) or not isinstance(item.get("slug"), str) or \
            not isinstance(item.get("texts", {}), dict):
        raise ImportError_(f"series {n}: needs a 'slug' and a 'texts' object", path=source,
                           field="series")
    _no_unknown(item, SERIES_KEYS, f"series {n}", source)
    texts: dict[str, SeriesText] = {}
    for lang, t in item.get("texts", {}).items():
        if not isinstance(t, dict) or not isinstance(t.get("title"), str):
            raise ImportError_(f"series {n}: texts.{lang} needs a 'title'", path=source,
                               field="series")
        _no_unknown(t, TEXT_KEYS, f"series {n}: texts.{lang}", source)
        texts[str(lang)] = SeriesText(clean_line(t["title"]),
                                      clean_text(str(t.get("description") or "")).strip(),
                                      t.get("url") if isinstance(t.get("url"), str) else None)
    return Series(clean_line(item["slug"]), texts)


def parse_json(data: bytes, settings: ImportSettings, *, source: str) -> ImportBatch:
    if not data.strip():
        raise ImportError_("the file is empty", path=source)
    doc = load_json(data, source)
    if isinstance(doc, list):
        doc = {"entries": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("entries", []), list) or \
            not isinstance(doc.get("series", []), list):
        raise ImportError_("expected an object with 'series' and 'entries' lists, or a list "
                           "of entries", path=source)
    _no_unknown(doc, DOCUMENT_KEYS, "the document", source)
    if doc.get("format", FORMAT) != FORMAT:
        raise ImportError_(f"unknown format '{doc.get('format')}' (expected '{FORMAT}')",
                           path=source, field="format")
    batch = ImportBatch(series=[_series(s, n, source) for n, s in
                                enumerate(doc.get("series", []), start=1)])
    batch.entries = [ImportedEntry(_entry(item, n, settings, source), n)
                     for n, item in enumerate(doc.get("entries", []), start=1)]
    return batch


def dump_json(series: list[Series], entries: list[Entry]) -> bytes:
    doc = {
        "format": FORMAT,
        "series": [{"slug": s.slug, "texts": {
            lang: {"title": t.title, "description": t.description, "url": t.url}
            for lang, t in sorted(s.texts.items())}} for s in sorted(series, key=lambda s: s.slug)],
        # the part an editor set, not the computed one: read back, a computed number would
        # pin the entry there, and an entry added before it later would not move it
        "entries": [{**e.to_json(), "part": e.pinned, "pinned_texts": list(e.texts_pinned)}
                    for e in entries],
    }
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

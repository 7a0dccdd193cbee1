"""Read a JSON Feed 1.1 document (https://jsonfeed.org/version/1.1) into entries.

Items keep their ``id``. Translations come from our extension object ``_seriesfeed``
on an item: ``translation_of`` (the original's id or URL) and ``translations`` (a list
of ``{"language", "url"}``); ``_seriesfeed.authors`` marks organisation authors, as the
feeds seriesfeed writes do. Other extensions (keys starting with ``_``) are ignored.
"""

from __future__ import annotations

from typing import Any

from seriesfeed.errors import ImportError_
from seriesfeed.importers import ImportBatch, ImportedEntry, ImportSettings
from seriesfeed.importers.bylines import split_byline
from seriesfeed.importers.dates import parse_iso
from seriesfeed.importers.jsonfmt import load_json
from seriesfeed.models import Author, AuthorKind, Entry, Series, SeriesText
from seriesfeed.text import clean_line, clean_text, html_to_text, slugify

__all__ = [
    "MAX_ITEMS", "VERSION_PREFIX", "is_json_feed", "parse_json_feed",
]

VERSION_PREFIX = "https://jsonfeed.org/version/"
MAX_ITEMS = 50_000


def is_json_feed(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("version", "")).startswith(VERSION_PREFIX)


def _str(item: dict[str, Any], key: str, n: int, source: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ImportError_(f"item {n}: '{key}' must be a string", path=source, line=n,
                           field=key)
    return value


def _authors(item: dict[str, Any], ext: dict[str, Any], n: int,
             settings: ImportSettings, source: str) -> tuple[Author, ...]:
    raw = item.get("authors", [])
    if not isinstance(raw, list):
        raise ImportError_(f"item {n}: 'authors' must be a list", path=source, line=n,
                           field="authors")
    orgs = {clean_line(str(a.get("name", ""))) for a in ext.get("authors", [])
            if isinstance(a, dict) and a.get("kind") == AuthorKind.ORGANIZATION.value}
    out: list[Author] = []
    for a in raw:
        if not isinstance(a, dict) or not isinstance(a.get("name", ""), str):
            raise ImportError_(f"item {n}: each author must be an object with a 'name'",
                               path=source, line=n, field="authors")
        name = clean_line(a.get("name", ""))
        if not name:
            continue
        if name in orgs:
            out.append(Author(name, AuthorKind.ORGANIZATION))
        elif len(raw) == 1:
            out.extend(split_byline(name, settings.organizations,
                            settings.conjunctions))
        else:
            out.append(Author(name))
    return tuple(out)


def _translations(ext: dict[str, Any], n: int, source: str) -> tuple[str, ...]:
    found = ext.get("translations", [])
    if not isinstance(found, list):
        raise ImportError_(f"item {n}: '_seriesfeed.translations' must be a list",
                           path=source, line=n, field="_seriesfeed.translations")
    return tuple(clean_line(t["url"]) for t in found
                 if isinstance(t, dict) and isinstance(t.get("url"), str) and t["url"])


def parse_json_feed(data: bytes, settings: ImportSettings, *, source: str,
                    series_slug: str | None = None, doc: Any = None) -> ImportBatch:
    if doc is None:
        doc = load_json(data, source)
    if not is_json_feed(doc):
        raise ImportError_("not a JSON Feed (no 'version' https://jsonfeed.org/version/…)",
                           path=source, field="version")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ImportError_("'items' must be a list", path=source, field="items")
    if len(items) > MAX_ITEMS:
        raise ImportError_(f"{len(items)} items, more than the limit of {MAX_ITEMS}",
                           path=source, field="items")
    title = clean_line(str(doc.get("title") or "")) or "Imported feed"
    language = clean_line(str(doc.get("language") or "")) or settings.default_language
    language = language[:2].lower()
    slug = series_slug or slugify(title) or "imported"
    home = doc.get("home_page_url") if isinstance(doc.get("home_page_url"), str) else None
    batch = ImportBatch(series=[Series(slug, {language: SeriesText(
        title, clean_text(str(doc.get("description") or "")).strip(), home)})])
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ImportError_(f"item {n} is not an object", path=source, line=n)
        found = item.get("_seriesfeed")
        ext: dict[str, Any] = found if isinstance(found, dict) else {}
        raw_id = item.get("id")
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            item = {**item, "id": str(raw_id)}  # the spec says string; many feeds send numbers
        item_id = _str(item, "id", n, source)
        if not item_id:
            raise ImportError_(f"item {n} has no id", path=source, line=n, field="id")
        item_title = clean_line(html_to_text(_str(item, "title", n, source) or "",
                                             one_line=True))
        if not item_title:
            raise ImportError_(f"item {n} has no title", path=source, line=n, field="title")
        stamp = _str(item, "date_published", n, source) or \
            _str(item, "date_modified", n, source)
        if not stamp:
            raise ImportError_(f"item {n} has no date", path=source, line=n,
                               field="date_published")
        try:
            published = parse_iso(stamp, settings.time_zone)
            modified = _str(item, "date_modified", n, source)
            updated = parse_iso(modified, settings.time_zone) if modified else None
        except ValueError as exc:
            raise ImportError_(f"item {n}: {exc}", path=source, line=n,
                               field="date_published") from exc
        summary = _str(item, "summary", n, source) or _str(item, "content_text", n, source) \
            or ""
        html = _str(item, "content_html", n, source)
        tags = item.get("tags") if isinstance(item.get("tags"), list) else []
        item_lang = clean_line(str(item.get("language") or "")).lower()[:2] or language
        original = ext.get("translation_of")
        batch.entries.append(ImportedEntry(Entry(
            id=clean_line(item_id), series=slug, language=item_lang, title=item_title,
            summary=clean_text(html_to_text(summary, one_line=True)),
            content_html=clean_text(html) if html else None,
            url=clean_line(_str(item, "url", n, source) or "") or None,
            published=published, updated=updated,
            authors=_authors(item, ext, n, settings, source),
            section=clean_line(str(tags[0])) or None if tags else None,
            translation_of=clean_line(original) if isinstance(original, str) and original
            else None), n, translations=_translations(ext, n, source)))
    return batch

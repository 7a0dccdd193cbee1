"""Import an RSS 2.0 or Atom 1.0 file, for publishers moving from another system.

Untrusted XML is gated first (RELIABILITY invariant 7): a byte cap, then defusedxml with DTDs,
entities and external references forbidden; only then does feedparser see it, as bytes (a
``str`` may make feedparser open files or URLs, and bytes are tried as a file name first, so
feedparser is handed a stream).
"""

from __future__ import annotations

import calendar
import io
import re
import time
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import ParseError

import feedparser
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from seriesfeed.errors import ImportError_
from seriesfeed.importers import ImportBatch, ImportedEntry, ImportSettings
from seriesfeed.importers.bylines import split_byline
from seriesfeed.models import Author, Entry, Series, SeriesText
from seriesfeed.text import clean_line, clean_text, html_to_text, slugify

__all__ = ["ITEM_TAG", "MAX_DEPTH", "MAX_ITEMS", "parse_feed"]

ITEM_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]")
MAX_ITEMS = 50_000
MAX_DEPTH = 100  # counted in the gate, before feedparser spends seconds on them


def _text(value: str) -> str:
    """A feed's title or summary (HTML) as one line of text."""
    return html_to_text(value, one_line=True)


def _gate(data: bytes, settings: ImportSettings, source: str) -> None:
    if len(data) > settings.max_bytes:
        raise ImportError_(f"the file is larger than {settings.max_bytes} bytes", path=source)
    tags = sum(1 for _ in ITEM_TAG.finditer(data))
    if tags > MAX_ITEMS:  # counted on the bytes, before a parse spends seconds on them
        raise ImportError_(f"more than {MAX_ITEMS} items per file (split the file)",
                           path=source)
    depth = items = 0
    root: str | None = None
    try:
        for event, element in iterparse(io.BytesIO(data), events=("start", "end"),
                                        forbid_dtd=True, forbid_entities=True,
                                        forbid_external=True):
            if event == "end":
                depth -= 1
                continue
            depth += 1
            local = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
            if root is None:
                root = local
                if root not in ("rss", "feed", "RDF"):
                    raise ImportError_(f"not an RSS or Atom feed (root element <{root}>)",
                                       path=source)
            if depth > MAX_DEPTH:
                raise ImportError_(f"elements nested more than {MAX_DEPTH} deep", path=source)
            if local in ("item", "entry"):
                items += 1
    except DefusedXmlException as exc:
        raise ImportError_(f"refused: the feed declares a DTD, entities or external "
                           f"references ({type(exc).__name__})", path=source) from exc
    except (ParseError, ValueError) as exc:
        raise ImportError_(f"not well-formed XML: {exc}", path=source) from exc
    except LookupError as exc:  # <?xml encoding="..."?> names a codec Python lacks
        if type(exc) is not LookupError:  # a KeyError or IndexError is a bug, not input
            raise
        raise ImportError_(f"the XML declaration names an encoding that does not exist "
                           f"({exc})", path=source) from exc
    if items > MAX_ITEMS:
        raise ImportError_(f"{items} items, more than the limit of {MAX_ITEMS} per file "
                           "(split the file)", path=source)


def _when(item: Any, key: str) -> datetime | None:
    # dict.get: FeedParserDict.get maps a missing updated_parsed to published_parsed
    parsed: time.struct_time | None = dict.get(item, f"{key}_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _authors(item: Any, settings: ImportSettings) -> tuple[Author, ...]:
    names = [a.get("name", "") for a in item.get("authors", []) if a.get("name")]
    if not names and item.get("author"):
        names = [item["author"]]
    out: list[Author] = []
    for name in names:
        out.extend(split_byline(name, settings.organizations,
                            settings.conjunctions))
    return tuple(out)


def _own_link(item: Any, language: str) -> str:
    """The entry's own URL: its first alternate link with no ``hreflang`` or one in the
    entry's language. feedparser's ``link`` is the last alternate, which in a translated
    feed is often the original's URL; taking it made the translation overwrite the original."""
    alternates = [link for link in item.get("links", [])
                  if link.get("rel", "alternate") == "alternate" and link.get("href")]
    for link in alternates:
        lang = str(link.get("hreflang") or "")[:2].lower()
        if not lang or lang == language:
            return clean_line(link["href"])
    if alternates:  # every alternate names another language: none is the entry's own
        return ""
    return clean_line(item.get("link", ""))


def parse_feed(data: bytes, settings: ImportSettings, *, source: str,
               series_slug: str | None = None) -> ImportBatch:
    if not data.strip():
        raise ImportError_("the file is empty", path=source)
    _gate(data, settings, source)
    # a stream, not bytes: feedparser tries open() on bytes it is given (a file of that name
    # would be read), and on a str it may fetch URLs; a stream is only ever read
    parsed = feedparser.parse(io.BytesIO(data), sanitize_html=True,
                              resolve_relative_uris=False)
    if parsed.get("bozo") and not parsed.get("entries"):
        raise ImportError_(f"not a readable feed: {parsed.get('bozo_exception')}", path=source)
    feed = parsed.get("feed", {})
    items = parsed.get("entries", [])
    title = clean_line(feed.get("title", "")) or "Imported feed"
    language = (feed.get("language") or settings.default_language)[:2].lower()
    slug = series_slug or slugify(title) or "imported"
    # feedparser falls back on the feed's <id> for its link, which may be a urn: the
    # series then has no page URL rather than failing the import's URL check
    link = feed.get("link") or ""
    batch = ImportBatch(series=[Series(slug, {language: SeriesText(
        title, clean_text(_text(feed.get("subtitle", ""))),
        link if link.lower().startswith(("http://", "https://")) else None)})])
    for n, item in enumerate(items, start=1):
        item_title = clean_line(_text(item.get("title", "")))
        published = _when(item, "published") or _when(item, "updated")
        if not item_title:
            raise ImportError_(f"item {n} has no title", path=source, line=n, field="title")
        if published is None:
            raise ImportError_(f"item {n} has no date", path=source, line=n, field="published")
        content = item.get("content") or []
        html = content[0].get("value") if content else None
        own = _own_link(item, language)
        # Atom: <link rel="alternate" hreflang="es" href="…"> to the same article in
        # another language (matched later to a stored entry by URL)
        translations = tuple(dict.fromkeys(
            clean_line(link.get("href", "")) for link in item.get("links", [])
            if link.get("rel", "alternate") == "alternate" and link.get("hreflang")
            and link.get("href") and clean_line(link["href"]) != own
            and str(link["hreflang"])[:2].lower() != language))
        batch.entries.append(ImportedEntry(Entry(
            id=clean_line(item.get("id", "")) or None, series=slug, language=language,
            title=item_title, summary=clean_text(_text(item.get("summary", ""))),
            content_html=clean_text(html) if html else None,
            url=own or None, published=published,
            updated=_when(item, "updated"), authors=_authors(item, settings),
            section=clean_line(item["tags"][0].get("term", "")) or None
            if item.get("tags") else None), n, translations=translations))
    return batch

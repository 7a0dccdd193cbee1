"""The CSV format: one entry per row, with a header row.

Columns: ``id,series,language,section,authors,title,summary,content_html,url,published,
updated,translation_of,part``, optionally ``series_title,series_description,series_url`` (the
series' words in the row's language); only ``series``, ``title`` and ``published`` are
required.
``authors`` is ``Name (person); Org (organization)``, a plain byline, or (when a name
holds ``;`` or brackets) a JSON list of ``{"name", "kind"}``. Exported cells that
would start with ``= + - @`` TAB or CR get a leading ``'`` (spreadsheet formula injection);
the importer removes it again.
"""

from __future__ import annotations

import csv
import io
import json
import re

from seriesfeed.errors import ImportError_
from seriesfeed.importers import ImportBatch, ImportedEntry, ImportSettings
from seriesfeed.importers.bylines import split_byline
from seriesfeed.importers.dates import parse_iso
from seriesfeed.importers.jsonfmt import LIMITS, MAX_PART
from seriesfeed.importers.seriespage import decode_text
from seriesfeed.models import PINNABLE_TEXTS, Author, AuthorKind, Entry, Series, SeriesText
from seriesfeed.text import clean_line, clean_text

__all__ = [
    "COLUMNS", "ENTRY_COLUMNS", "FIELD_LIMIT", "FORMULA_START", "REQUIRED", "SERIES_COLUMNS",
    "dump_csv", "lost_series_texts", "neutralise", "parse_csv",
]

ENTRY_COLUMNS = ("id", "series", "language", "section", "authors", "title", "summary",
                 "content_html", "url", "published", "updated", "translation_of", "part",
                 "pinned_texts")
# the series' words in the row's language: a CSV round trip keeps each
# language's series title, description and URL
SERIES_COLUMNS = ("series_title", "series_description", "series_url")
COLUMNS = ENTRY_COLUMNS + SERIES_COLUMNS
REQUIRED = ("series", "title", "published")
FIELD_LIMIT = 1_100_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_KIND = re.compile(r"^(.*?)\s*\((person|organization)\)$")

csv.field_size_limit(FIELD_LIMIT)


def neutralise(cell: str) -> str:
    """Prefix one ``'`` to a cell that (after any quotes it already has) starts like a
    formula; :func:`_restore` removes exactly one, so the mapping round-trips."""
    return "'" + cell if cell.lstrip("'").startswith(FORMULA_START) else cell


def _restore(cell: str) -> str:
    if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_START):
        return cell[1:]
    return cell


def _authors(cell: str, settings: ImportSettings) -> tuple[Author, ...]:
    if not cell.strip():
        return ()
    if cell.lstrip().startswith("["):  # the exact form, used when a name holds ; or ()
        try:
            items = json.loads(cell)
            return tuple(Author(clean_line(a["name"]), AuthorKind(a.get("kind", "person")))
                         for a in items if clean_line(a["name"]))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a JSON list of {{'name', 'kind'}}: {exc}") from exc
    if not _KIND.match(cell.split(";")[0].strip()):
        return split_byline(cell, settings.organizations,
                            settings.conjunctions)
    out = []
    for part in cell.split(";"):
        m = _KIND.match(part.strip())
        if not m:
            raise ValueError(f"'{part.strip()}' is not 'Name (person)' or 'Name (organization)'")
        if clean_line(m.group(1)):
            out.append(Author(clean_line(m.group(1)), AuthorKind(m.group(2))))
    return tuple(out)


def parse_csv(data: bytes, settings: ImportSettings, *, source: str) -> ImportBatch:
    if not data.strip():
        raise ImportError_("the file is empty", path=source)
    reader = csv.DictReader(io.StringIO(decode_text(data, source), newline=""), strict=True)
    starts = 1  # a quoted cell may span lines: errors name the line where its row starts
    try:
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in COLUMNS]
        if unknown:
            raise ImportError_(f"unknown column '{unknown[0]}' (columns: {', '.join(COLUMNS)})",
                               path=source, line=1, field=unknown[0])
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ImportError_(f"the header lacks the column '{missing[0]}'", path=source,
                               line=1, field=missing[0])
        batch = ImportBatch()
        texts: dict[str, dict[str, tuple[SeriesText, int]]] = {}
        starts = reader.line_num + 1
        for row in reader:
            entry = _row(row, starts, settings, source)
            batch.entries.append(ImportedEntry(entry, starts))
            _series_text(row, entry, starts, source, texts)
            starts = reader.line_num + 1
        batch.series.extend(Series(slug, {lang: t for lang, (t, _) in by_lang.items()})
                            for slug, by_lang in texts.items())
    except csv.Error as exc:
        # an unterminated quote runs to the end of the file: the row that opened it is
        # the one to fix
        raise ImportError_(f"not valid CSV: {exc}", path=source, line=starts) from exc
    return batch


def _series_text(row: dict[str | None, str | None], entry: Entry, line: int, source: str,
                 texts: dict[str, dict[str, tuple[SeriesText, int]]]) -> None:
    """The row's series words (when given), the same on every row of that series and
    language."""
    cells = {k: clean_line(_restore(row.get(k) or "")) for k in SERIES_COLUMNS}
    if not cells["series_title"]:
        if cells["series_description"] or cells["series_url"]:
            raise ImportError_("a series description or URL needs series_title",
                               path=source, line=line, field="series_title")
        return
    text = SeriesText(cells["series_title"], cells["series_description"],
                      cells["series_url"] or None)
    known = texts.setdefault(entry.series, {}).get(entry.language)
    if known is not None and known[0] != text:
        raise ImportError_(f"series '{entry.series}' ({entry.language}) has other words on "
                           f"line {known[1]}", path=source, line=line, field="series_title")
    texts[entry.series].setdefault(entry.language, (text, line))


def lost_series_texts(series: list[Series], entries: list[Entry]) -> list[str]:
    """Series texts a CSV export could not carry: a language with a series title but no
    entry in that language to carry it (JSON keeps every one)."""
    carried = {(e.series, e.language) for e in entries}
    return [f"{s.slug} ({lang})" for s in series for lang in sorted(s.texts)
            if (s.slug, lang) not in carried]


def _row(row: dict[str | None, str | None], line: int, settings: ImportSettings,
         source: str) -> Entry:
    if None in row:
        raise ImportError_("more cells than columns", path=source, line=line)
    cells = {k: _restore(v or "") for k, v in row.items() if k is not None}
    for key in REQUIRED:
        if not cells.get(key, "").strip():
            raise ImportError_(f"'{key}' is required", path=source, line=line, field=key)
    for key, limit in LIMITS.items():
        if len(cells.get(key, "")) > limit:
            raise ImportError_(f"longer than {limit} characters", path=source, line=line,
                               field=key)
    dates = {}
    for key in ("published", "updated"):
        if cells.get(key, "").strip():
            try:
                dates[key] = parse_iso(cells[key], settings.time_zone)
            except ValueError as exc:
                raise ImportError_(str(exc), path=source, line=line, field=key) from exc
    try:
        authors = _authors(cells.get("authors", ""), settings)
    except ValueError as exc:
        raise ImportError_(str(exc), path=source, line=line, field="authors") from exc

    def opt(key: str) -> str | None:
        return clean_line(cells[key]) or None if key in cells else None

    part = opt("part")
    if part is not None and not (part.isascii() and part.isdigit() and len(part) <= 6
                                 and 1 <= int(part) <= MAX_PART):
        raise ImportError_(f"'part' must be a whole number from 1 to {MAX_PART}",
                           path=source, line=line, field="part")

    pins = [p.strip() for p in (opt("pinned_texts") or "").split(";") if p.strip()]
    if not all(p in PINNABLE_TEXTS for p in pins):
        raise ImportError_(f"'pinned_texts' must be {' and/or '.join(PINNABLE_TEXTS)} "
                           "separated by ';'", path=source, line=line, field="pinned_texts")

    return Entry(
        id=opt("id"), series=clean_line(cells["series"]),
        language=opt("language") or settings.default_language, section=opt("section"),
        authors=authors, title=clean_line(cells["title"]),
        summary=clean_text(cells.get("summary", "")).strip(),
        content_html=clean_text(cells["content_html"]) or None if cells.get("content_html")
        else None, url=opt("url"), published=dates["published"], updated=dates.get("updated"),
        translation_of=opt("translation_of"), part=int(part) if part else None,
        texts_pinned=tuple(t for t in PINNABLE_TEXTS if t in pins))


def dump_csv(entries: list[Entry], series: list[Series] | None = None) -> bytes:
    """Entries as CSV; with ``series``, each row also carries its series' words in the
    row's language, so an import restores the series' titles and descriptions."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS if series is not None else ENTRY_COLUMNS)
    by_slug = {s.slug: s for s in series or []}
    for e in entries:
        authors = "; ".join(f"{a.name} ({a.kind.value})" for a in e.authors)
        if any(c in a.name for a in e.authors for c in ";()[]"):
            authors = json.dumps([{"name": a.name, "kind": a.kind.value} for a in e.authors],
                                 ensure_ascii=False)
        values = [e.id or "", e.series, e.language, e.section or "", authors, e.title,
                  e.summary, e.content_html or "", e.url or "", e.published.isoformat(),
                  (e.updated or e.published).isoformat(), e.translation_of or "",
                  str(e.pinned) if e.pinned else "",  # only an editor's (see dump_json)
                  ";".join(e.texts_pinned)]
        if series is not None:
            found = by_slug.get(e.series)
            t = found.texts.get(e.language) if found else None
            values += [t.title, t.description, t.url or ""] if t else ["", "", ""]
        writer.writerow([neutralise(v) for v in values])
    return out.getvalue().encode("utf-8")

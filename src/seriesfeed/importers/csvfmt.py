"""The CSV format: one entry per row, with a header row.

Columns: ``id,series,language,section,authors,title,summary,content_html,url,published,
updated,translation_of``; only ``series``, ``title`` and ``published`` are required.
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
from seriesfeed.importers.jsonfmt import LIMITS
from seriesfeed.importers.seriespage import decode_text
from seriesfeed.models import Author, AuthorKind, Entry
from seriesfeed.text import clean_line, clean_text

COLUMNS = ("id", "series", "language", "section", "authors", "title", "summary",
           "content_html", "url", "published", "updated", "translation_of")
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
        return split_byline(cell, settings.organizations)
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
        starts = reader.line_num + 1
        for row in reader:
            batch.entries.append(ImportedEntry(_row(row, starts, settings, source), starts))
            starts = reader.line_num + 1
    except csv.Error as exc:
        # an unterminated quote runs to the end of the file: the row that opened it is
        # the one to fix
        raise ImportError_(f"not valid CSV: {exc}", path=source, line=starts) from exc
    return batch


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

    return Entry(
        id=opt("id"), series=clean_line(cells["series"]),
        language=opt("language") or settings.default_language, section=opt("section"),
        authors=authors, title=clean_line(cells["title"]),
        summary=clean_text(cells.get("summary", "")).strip(),
        content_html=clean_text(cells["content_html"]) or None if cells.get("content_html")
        else None, url=opt("url"), published=dates["published"], updated=dates.get("updated"),
        translation_of=opt("translation_of"))


def dump_csv(entries: list[Entry]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for e in entries:
        authors = "; ".join(f"{a.name} ({a.kind.value})" for a in e.authors)
        if any(c in a.name for a in e.authors for c in ";()[]"):
            authors = json.dumps([{"name": a.name, "kind": a.kind.value} for a in e.authors],
                                 ensure_ascii=False)
        values = [e.id or "", e.series, e.language, e.section or "", authors, e.title,
                  e.summary, e.content_html or "", e.url or "", e.published.isoformat(),
                  (e.updated or e.published).isoformat(), e.translation_of or ""]
        writer.writerow([neutralise(v) for v in values])
    return out.getvalue().encode("utf-8")

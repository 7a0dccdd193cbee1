"""Parse a series page captured as text (like the seed): the series, then byline/title/summary/date
blocks. Every block is anchored on its date line, so navigation and footer text around the
list are ignored."""

from __future__ import annotations

from seriesfeed.errors import ImportError_
from seriesfeed.importers import ImportBatch, ImportedEntry, ImportSettings
from seriesfeed.importers.bylines import split_byline
from seriesfeed.importers.dates import local_midnight, looks_like_date, parse_human_date
from seriesfeed.models import Entry, Series, SeriesText
from seriesfeed.text import clean_line, slugify

__all__ = ["decode_text", "parse_series_page"]

_FOOTER_MARKERS = ("Previously published by", "Material on this Web site")


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 (a BOM is tolerated); an invalid byte is reported with its line number."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportError_(f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", path=source,
                           line=line) from exc


def _language_of(byline: str, settings: ImportSettings) -> tuple[str, str | None]:
    for code, markers in settings.language_markers.items():
        if any(byline.casefold() == m.casefold() for m in markers):
            return code, byline
    return settings.default_language, None


def parse_series_page(data: bytes, settings: ImportSettings, *, source: str) -> ImportBatch:
    if not data.strip():
        raise ImportError_("the file is empty", path=source)
    text = decode_text(data, source)
    lines = [(n, clean_line(raw)) for n, raw in enumerate(text.splitlines(), start=1)]
    lines = [(n, s) for n, s in lines if s]
    marker = next((i for i, (_, s) in enumerate(lines) if s == "Series"), None)
    if marker is None or marker + 1 >= len(lines):
        raise ImportError_("no series found (expected a line 'Series' followed by the title)",
                           path=source, field="series")
    title_line, title = lines[marker + 1]
    first_date = next((i for i in range(marker + 2, len(lines))
                       if looks_like_date(lines[i][1])), None)
    if first_date is None:
        raise ImportError_("no dated entries found after the series title", path=source,
                           line=title_line, field="date")
    # between the title and the first block (byline, title, summary, date): the description
    description = " ".join(s for _, s in lines[marker + 2:first_date - 3])
    slug = slugify(title)
    series = Series(slug, {settings.default_language: SeriesText(title, description)})
    batch = ImportBatch(series=[series])
    i = first_date - 3
    if i < marker + 2:
        raise ImportError_("the first entry is incomplete (byline, title, summary and date "
                           "are expected)", path=source, line=lines[first_date][0],
                           field="byline")
    while i < len(lines):
        line_no, first = lines[i]
        if first.startswith(_FOOTER_MARKERS):
            break
        block = lines[i:i + 4]
        if len(block) < 4 or not looks_like_date(block[3][1]):
            bad = next((k for k, (_, s) in enumerate(block) if looks_like_date(s)), None)
            fields = ("byline", "title", "summary", "date")
            missing = fields[bad] if bad is not None else "date"
            raise ImportError_(f"incomplete entry: {missing} missing (each entry is a byline, a "
                               "title, a summary and a date)", path=source, line=line_no,
                               field=missing)
        byline, entry_title, summary, when = (s for _, s in block)
        if looks_like_date(entry_title) or looks_like_date(summary):
            raise ImportError_("incomplete entry", path=source, line=line_no, field="title")
        try:
            day = parse_human_date(when)
        except ValueError as exc:
            raise ImportError_(str(exc), path=source, line=block[3][0], field="date") from exc
        language, section = _language_of(byline, settings)
        # the page gives dates only: local midnight, no invented time of day. Entries are
        # stored in the page's order (oldest first), so the store's sequence orders a day
        published = local_midnight(day, settings.time_zone)
        batch.entries.append(ImportedEntry(Entry(
            series=slug, language=language, section=section, title=entry_title,
            summary=summary, published=published,
            authors=split_byline(byline, settings.organizations,
                                 settings.conjunctions)), line=line_no,
            date_only=True))
        i += 4
    if not batch.entries:
        raise ImportError_("no entries found", path=source, line=title_line)
    if batch.entries[0].entry.published > batch.entries[-1].entry.published:
        batch.entries.reverse()  # a newest-first page: store oldest first all the same
    return batch

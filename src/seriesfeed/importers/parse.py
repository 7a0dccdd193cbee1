"""Read an input file (bounded in size) or fetched bytes and hand them to the importer of
their format."""

from __future__ import annotations

from pathlib import Path

from seriesfeed.errors import ImportError_
from seriesfeed.importers import (
    FORMATS,
    ImportBatch,
    ImportSettings,
    detect_format,
    looks_like_html,
)
from seriesfeed.importers.csvfmt import parse_csv
from seriesfeed.importers.feedfile import parse_feed
from seriesfeed.importers.jsonfmt import load_json, parse_json
from seriesfeed.importers.seriespage import parse_series_page

__all__ = [
    "MEDIA_TYPES", "check_media_type", "format_for_media_type", "parse_bytes", "parse_file",
]

# media types a fetched document may come with, per format ("" when none was sent)
MEDIA_TYPES = {
    "feed": ("application/atom+xml", "application/rss+xml", "application/xml", "text/xml",
             "application/rdf+xml"),
    "jsonfeed": ("application/feed+json", "application/json"),
    "json": ("application/json", "application/feed+json"),
    "csv": ("text/csv", "text/plain"),
    "page": ("text/html", "application/xhtml+xml", "text/plain"),
}


def format_for_media_type(media_type: str) -> str | None:
    """The format a media type announces (text/plain says nothing: sniffed)."""
    return {"application/atom+xml": "feed", "application/rss+xml": "feed",
            "application/xml": "feed", "text/xml": "feed", "application/rdf+xml": "feed",
            "application/feed+json": "jsonfeed", "application/json": "json",
            "text/csv": "csv", "text/html": "page", "application/xhtml+xml": "page",
            "text/plain": "page"}.get(media_type)


def check_media_type(fmt: str, media_type: str, source: str) -> None:
    if media_type and media_type not in MEDIA_TYPES[fmt]:
        raise ImportError_(f"the server sent {media_type}, not a {fmt} document (expected "
                           f"{', '.join(MEDIA_TYPES[fmt])})", path=source,
                           field="content-type")


def parse_file(path: Path, fmt: str | None, settings: ImportSettings, *,
               series_slug: str | None = None) -> ImportBatch:
    source = str(path)
    if fmt is not None and fmt not in FORMATS:
        raise ImportError_(f"unknown format '{fmt}' (choose {', '.join(FORMATS)})",
                           path=source, field="format")
    try:
        size = path.stat().st_size
        if size > settings.max_bytes:
            raise ImportError_(f"the file has {size} bytes, more than the limit of "
                               f"{settings.max_bytes}", path=source)
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ImportError_("no such file", path=source) from exc
    except IsADirectoryError as exc:
        raise ImportError_("is a folder, not a file", path=source) from exc
    except OSError as exc:
        raise ImportError_(f"cannot read: {exc.strerror}", path=source) from exc
    return parse_bytes(data, fmt or detect_format(path, data[:512]), settings, source=source,
                       series_slug=series_slug)


def parse_bytes(data: bytes, fmt: str, settings: ImportSettings, *, source: str,
                series_slug: str | None = None) -> ImportBatch:
    """Parse a whole document of a known format (a series page may be text or HTML; JSON
    may be ours or a JSON Feed)."""
    from seriesfeed.importers.jsonfeed import is_json_feed, parse_json_feed

    if len(data) > settings.max_bytes:
        raise ImportError_(f"the document has {len(data)} bytes, more than the limit of "
                           f"{settings.max_bytes}", path=source)
    if not data.strip():
        raise ImportError_("the file is empty", path=source)
    try:
        if fmt in ("json", "jsonfeed"):
            doc = load_json(data, source)
            if fmt == "jsonfeed" or is_json_feed(doc):
                return parse_json_feed(data, settings, source=source,
                                       series_slug=series_slug, doc=doc)
            return parse_json(data, settings, source=source)
        if fmt == "csv":
            return parse_csv(data, settings, source=source)
        if fmt == "feed":
            return parse_feed(data, settings, source=source, series_slug=series_slug)
        if looks_like_html(data[:2048]):
            from seriesfeed.importers.htmlpage import parse_html_series_page

            return parse_html_series_page(data, settings, source=source)
        return parse_series_page(data, settings, source=source)
    except RecursionError as exc:
        raise ImportError_("the input is nested too deeply", path=source) from exc

"""Read an input file (bounded in size) and hand it to the importer of its format."""

from __future__ import annotations

from pathlib import Path

from seriesfeed.errors import ImportError_
from seriesfeed.importers import FORMATS, ImportBatch, ImportSettings, detect_format
from seriesfeed.importers.csvfmt import parse_csv
from seriesfeed.importers.feedfile import parse_feed
from seriesfeed.importers.jsonfmt import parse_json
from seriesfeed.importers.seriespage import parse_series_page


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
    if not data.strip():
        raise ImportError_("the file is empty", path=source)
    fmt = fmt or detect_format(path, data[:512])
    try:
        if fmt == "json":
            return parse_json(data, settings, source=source)
        if fmt == "csv":
            return parse_csv(data, settings, source=source)
        if fmt == "feed":
            return parse_feed(data, settings, source=source, series_slug=series_slug)
        return parse_series_page(data, settings, source=source)
    except RecursionError as exc:
        raise ImportError_("the input is nested too deeply", path=source) from exc

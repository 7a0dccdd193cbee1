"""Read series and entries from files (series page, JSON, CSV, RSS/Atom) into plain models.

Importers only parse: they return an :class:`ImportBatch` or raise
:class:`seriesfeed.errors.ImportError_` naming the line/row and field. Minting ids,
deriving URLs, checking languages against the configuration and storing happen in
``actions.import_entries`` so that every format gets the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from seriesfeed.models import Entry, Series

__all__ = [
    "FORMATS",
    "MAX_IMPORT_BYTES",
    "ImportBatch",
    "ImportSettings",
    "ImportedEntry",
    "detect_format",
    "looks_like_html",
]

FORMATS = ("page", "json", "csv", "feed", "jsonfeed")
MAX_IMPORT_BYTES = 32 * 1024 * 1024  # larger files are refused before they are read


@dataclass(frozen=True)
class ImportSettings:
    """What parsing needs from the configuration."""

    time_zone: ZoneInfo
    default_language: str = "en"
    # language code -> bylines or sections marking an entry as that language
    # (e.g. {"es": ("Obrero Socialista",)})
    language_markers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # bylines that are organisations, not people, besides the built-in rules
    organizations: tuple[str, ...] = ()
    # words joining the last two names of a byline, in every configured language
    conjunctions: tuple[str, ...] = ("and", "y")
    max_bytes: int = MAX_IMPORT_BYTES


@dataclass
class ImportedEntry:
    entry: Entry
    line: int | None = None  # 1-based line (page, CSV row's line) or item index (JSON, feed)
    # URLs or ids of translations the source states without saying which is the original
    # (Atom alternate links with hreflang, JSON Feed's _seriesfeed.translations)
    translations: tuple[str, ...] = ()
    # the input gave a day, not a time (a series page): a stored time on that local day
    # is more precise and stays
    date_only: bool = False


@dataclass
class ImportBatch:
    series: list[Series] = field(default_factory=list)
    entries: list[ImportedEntry] = field(default_factory=list)


def looks_like_html(head: bytes) -> bool:
    """An HTML document (a series page as the browser gets it), not XML."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:200].lower()
    return start.startswith((b"<!doctype html", b"<html")) or (
        start.startswith(b"<!--") and b"<html" in head[:2000].lower())


def detect_format(path: Path, head: bytes) -> str:
    """Guess the format from the file name, then from its first bytes."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix == ".csv":
        return "csv"
    if suffix in (".xml", ".rss", ".atom"):
        return "feed"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith((b"[", b"{")):
        return "json"
    if looks_like_html(head):
        return "page"
    if stripped.startswith(b"<"):
        return "feed"
    return "page"

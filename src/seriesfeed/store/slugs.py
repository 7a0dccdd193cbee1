"""Entry slugs: the path segment of an article page, minted once from the URL or title."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import unquote, urlsplit

from seriesfeed.text import slugify

__all__ = ["entry_slug", "slug_base"]

MAX_SLUG = 80


def entry_slug(url: str | None, title: str, taken: Collection[str]) -> str:
    """The URL's last path segment as a slug (the publisher's own words for the article),
    else the title's; ``-2``, ``-3`` … when ``taken`` (the series' slugs in that language)
    has it. Never purely digits: a number there reads as an entry number or a date."""
    base = slug_base(url, title)
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def slug_base(url: str | None, title: str) -> str:
    """The slug before any ``-2`` that makes it unique."""
    segment = ""
    if url:
        path = urlsplit(url).path.rstrip("/")
        # "123.html" slugifies to "123-html": the suffix goes before the digit test
        segment = slugify(unquote(path.rsplit("/", 1)[-1]),
                          max_length=MAX_SLUG).removesuffix("-html")
        if segment.replace("-", "").isdigit():
            segment = ""
    return segment or slugify(title, max_length=MAX_SLUG) or "article"

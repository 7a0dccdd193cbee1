"""Split a printed byline ("A, B and C") into authors, each a person or an organisation."""

from __future__ import annotations

import re

from seriesfeed.models import Author, AuthorKind
from seriesfeed.text import clean_line

__all__ = ["is_organization", "split_byline"]

# words that make a byline an organisation rather than a list of people
_ORG_WORDS = re.compile(
    r"\b(committee|caucus|organi[sz]ation|editors?|editorial|staff|board|collective|"
    r"socialista|socialistworker|council|coalition|union|party|network|federation|"
    r"newsroom|team|readers)\b", re.IGNORECASE)
_SEPARATORS = re.compile(r"\s*(?:,\s*and\s+|,\s*y\s+|,|\s+and\s+|\s+&\s+|\s+y\s+)\s*")


def is_organization(byline: str, organizations: tuple[str, ...] = ()) -> bool:
    lowered = byline.casefold()
    if any(lowered == o.casefold() for o in organizations):
        return True
    return byline.startswith("From ") or bool(_ORG_WORDS.search(byline))


def split_byline(byline: str, organizations: tuple[str, ...] = ()) -> tuple[Author, ...]:
    """``"David Camfield, Todd Gordon, Brian McDougall and Sandra Sarner"`` -> four people;
    ``"ISO Steering Committee"`` -> one organisation; names keep their case."""
    byline = clean_line(byline)
    if not byline:
        return ()
    if is_organization(byline, organizations):
        return (Author(byline, AuthorKind.ORGANIZATION),)
    names = [clean_line(p) for p in _SEPARATORS.split(byline)]
    return tuple(Author(n) for n in names if n)

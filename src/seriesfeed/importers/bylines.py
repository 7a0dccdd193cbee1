"""Split a printed byline ("A, B and C") into authors, each a person or an organisation."""

from __future__ import annotations

import re
from functools import lru_cache

from seriesfeed.models import Author, AuthorKind
from seriesfeed.text import clean_line

__all__ = ["DEFAULT_CONJUNCTIONS", "is_organization", "split_byline"]

# words that make a byline an organisation rather than a list of people
_ORG_WORDS = re.compile(
    r"\b(committee|caucus|organi[sz]ation|editors?|editorial|staff|board|collective|"
    r"socialista|socialistworker|council|coalition|union|party|network|federation|"
    r"newsroom|team|readers)\b", re.IGNORECASE)
# CLDR's two-item conjunctions of the shipped languages: what splits a byline when the
# caller names none (a third language adds its own through the import settings)
DEFAULT_CONJUNCTIONS = ("and", "y")


# a name suffix after a comma ("King, Jr.") ends the name before it, not a second person
_SUFFIX = r"(?:Jr|Sr|III|II|IV|hijo|fils)\.?(?!\w)"


@lru_cache(maxsize=64)
def _separators(conjunctions: tuple[str, ...]) -> re.Pattern[str]:
    # matched case-sensitively as lowercase words: CLDR's conjunctions are lowercase, and a
    # capital "Y" between names is an initial ("John Y Smith"), not Spanish "y"
    lowered = {c.lower() for c in conjunctions if c}
    words = "|".join(re.escape(c) for c in sorted(lowered, key=len, reverse=True))
    comma = rf",(?!\s*{_SUFFIX})"
    joined = rf"\s*(?:,\s*(?:{words})\s+|{comma}|\s+(?:{words})\s+|\s+&\s+)\s*" if words else \
        rf"\s*(?:{comma}|\s+&\s+)\s*"
    return re.compile(joined)


def is_organization(byline: str, organizations: tuple[str, ...] = ()) -> bool:
    lowered = byline.casefold()
    if any(lowered == o.casefold() for o in organizations):
        return True
    return byline.startswith("From ") or bool(_ORG_WORDS.search(byline))


def split_byline(byline: str, organizations: tuple[str, ...] = (),
                 conjunctions: tuple[str, ...] = DEFAULT_CONJUNCTIONS) -> tuple[Author, ...]:
    """``"David Camfield, Todd Gordon, Brian McDougall and Sandra Sarner"`` -> four people;
    ``"ISO Steering Committee"`` -> one organisation; names keep their case. A conjunction
    is a whole word between names (``"Marie Dupont et Jean Martin"`` with ``et``)."""
    byline = clean_line(byline)
    if not byline:
        return ()
    if is_organization(byline, organizations):
        return (Author(byline, AuthorKind.ORGANIZATION),)
    names = [clean_line(p) for p in _separators(conjunctions).split(byline)]
    return tuple(Author(n) for n in names if n)

"""Text hygiene shared by every entry point: slugs, XML 1.0-safe strings, safe HTML."""

from __future__ import annotations

import html
import re
import unicodedata

import nh3

__all__ = ["clean_line", "clean_text", "html_to_text", "sanitize_html", "slugify"]

# XML 1.0 allows TAB, LF, CR and U+0020..U+D7FF, U+E000..U+FFFD, U+10000..U+10FFFF.
# C1 controls (U+0080..U+009F) are legal XML but are never meant as text (they are
# mis-decoded cp1252) and validators flag them, so they go too; so do the bidi
# override/embedding controls that can disguise text (U+202A..U+202E, U+2066..U+2069).
_ILLEGAL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
    "\u202a-\u202e\u2066-\u2069]"
)
_BOM = "\ufeff"
_SPACE_RUN = re.compile(r"\s+")


def clean_text(value: str) -> str:
    """Return ``value`` with every character XML 1.0 cannot carry removed, a stray BOM
    dropped and CRLF/CR folded to LF. Applied when text enters the store (and again by
    the feeds, for every title, name and summary of every build: printable ASCII, most
    of it, has nothing to remove and is returned as it is, without the four scans)."""
    if value.isascii() and value.isprintable():
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace(_BOM, "")
    return _ILLEGAL.sub("", value)


def clean_line(value: str) -> str:
    """``clean_text`` for one-line fields (titles, names): whitespace runs become one space."""
    if value.isascii() and value.isprintable() and "  " not in value:
        return value.strip()  # printable ASCII: its only whitespace is single spaces
    return _SPACE_RUN.sub(" ", clean_text(value)).strip()


def slugify(value: str, *, max_length: int = 80) -> str:
    """``"Reflections on the ISO crisis"`` -> ``"reflections-on-the-iso-crisis"``.

    Accents are folded to ASCII, typographic apostrophes are dropped rather than
    splitting words (``"ISO’s"`` -> ``"isos"``), anything else not alphanumeric becomes
    one hyphen."""
    value = value.replace("’", "").replace("'", "")
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug


def sanitize_html(value: str) -> str:
    """An article body reduced to HTML that is safe to show anywhere (ammonia's
    allow-list: no script, style, event handlers or javascript: URLs), so a feed reader,
    the validator or a page never meets imported markup that runs. Idempotent."""
    return nh3.clean(clean_text(value)).strip()


_BLOCK_END = re.compile(r"<\s*(?:br\s*/?|/\s*(?:p|div|h[1-6]|li|blockquote|pre|tr|ul|ol))\s*>",
                        re.I)
_BLANK_RUNS = re.compile(r"\n\s*\n\s*(?:\n\s*)+")


def html_to_text(value: str, *, one_line: bool = False) -> str:
    """HTML as plain text: every tag is dropped (nh3 with nothing allowed, so script and
    style contents go with their tags), entities become characters, and blocks end in a
    blank line (an article body for a mail's text part). ``one_line``: every whitespace
    run becomes one space instead (an imported title or summary), so words either side
    of a line break or a paragraph end stay apart."""
    marked = _BLOCK_END.sub("\n\n", clean_text(value))
    stripped = html.unescape(nh3.clean(marked, tags=set()))
    if one_line:
        return _SPACE_RUN.sub(" ", stripped).strip()
    lines = "\n".join(line.strip() for line in stripped.splitlines())
    return _BLANK_RUNS.sub("\n\n", lines).strip()

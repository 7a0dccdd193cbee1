"""A series page fetched as HTML: rendered to text lines with inscriptis, then read by the
series-page parser, so the page imports the same whether it comes as HTML or as the text
capture. The only module that imports inscriptis.

Block elements become lines; scripts, styles, navigation and forms are dropped (the
series-page parser anchors every entry on its date line, so headers and footers left over
are ignored as they are in the text capture). Line numbers in errors are lines of that text.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urljoin, urlsplit

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement

from seriesfeed.importers import ImportBatch, ImportSettings
from seriesfeed.importers.seriespage import decode_text, parse_series_page
from seriesfeed.text import clean_line

__all__ = ["html_to_lines", "parse_html_series_page"]

_DROPPED = ("nav", "script", "style", "noscript", "template", "form", "svg", "button",
            "select", "iframe")


def _config() -> ParserConfig:
    css = CSS_PROFILES["strict"].copy()
    for tag in _DROPPED:
        css[tag] = HtmlElement(display=Display.none)
    # inline in the browser but each its own line on a series page listing
    for tag in ("time", "dt", "dd", "section", "td"):
        css[tag] = HtmlElement(display=Display.block)
    return ParserConfig(css=css, display_links=False, display_images=False)


def html_to_lines(data: bytes, source: str) -> bytes:
    """The page's visible text, one block per line, as UTF-8."""
    text = decode_text(data, source)
    rendered: str = get_text(text, _config())
    return rendered.encode("utf-8")


def _links(text: str, base: str) -> dict[str, str]:
    """Each link's text -> its absolute http(s) URL (an entry's title links to its article)."""
    from lxml import html as lxml_html  # inscriptis's own parser

    try:
        tree = lxml_html.document_fromstring(text)
    except (ValueError, lxml_html.etree.ParserError):
        return {}
    out: dict[str, str] = {}
    for anchor in tree.iter("a"):
        href = anchor.get("href")
        label = clean_line(anchor.text_content() or "")
        if not href or not label:
            continue
        url = urljoin(base, href.strip())
        if urlsplit(url).scheme in ("http", "https"):
            out.setdefault(label, url)
    return out


def parse_html_series_page(data: bytes, settings: ImportSettings, *,
                           source: str) -> ImportBatch:
    batch = parse_series_page(html_to_lines(data, source), settings, source=source)
    # a page fetched from a URL links each title to its article: the entry's real URL
    # (a file has no base, so only absolute links count)
    links = _links(decode_text(data, source), source)
    for item in batch.entries:
        url = links.get(item.entry.title)
        if url and item.entry.url is None:
            item.entry = dataclasses.replace(item.entry, url=url)
    return batch

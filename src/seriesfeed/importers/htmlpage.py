"""A series page fetched as HTML: rendered to text lines with inscriptis, then read by the
series-page parser, so the page imports the same whether it comes as HTML or as the text
capture. The only module that imports inscriptis.

Block elements become lines; scripts, styles, navigation and forms are dropped (the
series-page parser anchors every entry on its date line, so headers and footers left over
are ignored as they are in the text capture). Line numbers in errors are lines of that text.
"""

from __future__ import annotations

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement

from seriesfeed.importers import ImportBatch, ImportSettings
from seriesfeed.importers.seriespage import decode_text, parse_series_page

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


def parse_html_series_page(data: bytes, settings: ImportSettings, *,
                           source: str) -> ImportBatch:
    return parse_series_page(html_to_lines(data, source), settings, source=source)

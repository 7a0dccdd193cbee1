"""Entries -> RSS 2.0, Atom 1.0 (with RFC 5005 archives) and JSON Feed 1.1 documents.

feedgen is used with care (its defaults mislead readers): one FeedGenerator per document,
every date passed explicitly (the feed's own ``updated``/``lastBuildDate`` is the newest
entry change, never the build time, so the same store gives the same bytes), the entry's
own alternate link added last (feedgen's RSS keeps the last one), authors by name through
Dublin Core in RSS (``<author>`` there must be an email address).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

from seriesfeed import __version__, i18n
from seriesfeed.config import Config
from seriesfeed.i18n import format_byline
from seriesfeed.models import AuthorKind, Entry, Series, SiteData
from seriesfeed.text import clean_line, clean_text

__all__ = [
    "ATOM",
    "ATOM_NS",
    "EPOCH",
    "EXTENSION_ABOUT",
    "GENERATOR_URI",
    "HTML",
    "JSONFEED",
    "RSS",
    "UNTITLED",
    "XML_LANG",
    "FeedCache",
    "FeedDocument",
    "Scope",
    "Translation",
    "atom_updated",
    "build_atom",
    "build_json_feed",
    "build_rss",
    "digest",
    "entry_digests",
    "entry_key",
    "full_text",
    "is_fallback_for",
    "json_feed_extension",
    "json_item_extension",
    "local_pages",
    "plan_feeds",
    "scopes",
    "settings_key",
    "translations_for",
    "with_fallback",
]

ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
JSONFEED = "application/feed+json; charset=utf-8"
HTML = "text/html; charset=utf-8"
GENERATOR_URI = "https://github.com/seriesfeed/seriesfeed"
# what the JSON Feed extension objects' "about" points at (JSON Feed 1.1, "Extensions")
EXTENSION_ABOUT = GENERATOR_URI + "#json-feed-extension"
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
UNTITLED = "(untitled)"


@dataclass(frozen=True)
class FeedDocument:
    path: str  # URL path, e.g. /feeds/en/atom.xml
    media_type: str
    body: bytes
    last_modified: datetime
    # a digest of every input of the bytes, where the planner has one (archive pages,
    # article pages): a build into a folder records it beside the file it wrote
    key: str = ""
    # planned for a folder whose file already holds the bytes of this ``key``: nothing
    # was made (``body`` is empty) and nothing is to be written
    on_disk: bool = False
    # made from the folder's own earlier file by replacing what changed in it (an article
    # page's part numbers), not rendered, and known to differ from that file: written
    # without reading it again, and counted apart in the build's report
    spliced: bool = False


def digest(key: object) -> str:
    """A digest of a key made of tuples, strings, numbers and dates: equal in every process
    (their repr is), so a key recorded by one build is compared by the next."""
    return hashlib.blake2b(repr(key).encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Scope:
    """One set of entries: a language site-wide, or a language within one series."""

    language: str
    series: Series | None
    title: str
    description: str

    @property
    def base_path(self) -> str:
        lang = f"/feeds/{self.language}"
        return f"{lang}/{self.series.slug}" if self.series else lang

    def page_url(self, config: Config) -> str:
        """The HTML page this feed is the feed of: the series page, or the publisher's site."""
        if self.series:
            return f"{config.public_url}/{self.language}/{self.series.slug}/"
        if self.language != config.site.default_language:  # that language's index page
            return f"{config.public_url}/{self.language}/"
        return config.site.url.rstrip("/") + "/"


@dataclass(frozen=True)
class Translation:
    language: str
    url: str
    id: str = ""


class _Entry(FeedEntry):  # type: ignore[misc]
    """feedgen 1.0 drops rel, type and hreflang of Atom entry links (its loop rebinds the
    link dict to the new element before reading the attributes); write them ourselves.
    It has no per-entry language and no RSS links but the item's own: an entry shown in
    another language's feed (fallback) gets its ``xml:lang``, and RSS items get their
    translations as ``atom:link rel="alternate" hreflang`` (the RSS root declares the
    Atom namespace)."""

    language: str | None = None  # set when it differs from the feed's
    translations: tuple[Translation, ...] = ()
    own: Translation | None = None  # the entry's own URL and language

    def rss_entry(self, extensions: bool = True) -> object:
        """RSS ``<description>`` is HTML: the plain-text summary is HTML-escaped before
        lxml escapes it for XML, so ``<menor>`` reaches the reader as text, not a tag."""
        element = super().rss_entry(extensions)
        for child in element:
            if child.tag == "description" and isinstance(child.text, str):
                child.text = html.escape(child.text, quote=False)
        if not self.translations:
            return element
        # the item's own page last: feedparser (like many readers) takes the last
        # alternate as the item's link, and the reader came for this language
        for t in (*self.translations, *([self.own] if self.own else [])):
            link = _sub_element(element, f"{{{ATOM_NS}}}link")
            for key, value in (("rel", "alternate"), ("type", "text/html"),
                               ("hreflang", t.language), ("href", t.url)):
                link.set(key, value)
        return element

    def atom_entry(self, extensions: bool = True) -> object:
        element = super().atom_entry(extensions)
        if self.language:
            element.set(XML_LANG, self.language)
        for child in element:
            if child.tag in ("title", "summary") and _declare_as_html(child):
                # text that reads like markup ("<b>bold</b>") said as what it is: HTML whose
                # every character is text, so readers show it as typed and the W3C validator
                # does not take it for undeclared HTML
                child.set("type", "html")
                child.text = html.escape(child.text, quote=False)
        for old in [child for child in element if child.tag == "link"]:
            element.remove(old)
        # the entry's own link stays last: feedparser (and feedgen's RSS) take the last
        # alternate as the entry's link; its hreflang tells the others apart
        for link in self.link() or []:
            new = element.makeelement("link", {"href": link["href"]})
            for key in ("rel", "type", "hreflang", "title", "length"):
                if link.get(key):
                    new.set(key, str(link[key]))
            element.append(new)
        return element


class _Feed(FeedGenerator):  # type: ignore[misc]
    """feedgen 1.0 writes only the self ``atom:link`` into RSS; WebSub discovery (W3C
    WebSub 4) needs the hub's beside it."""

    hub: str = ""

    def _create_rss(self, extensions: bool = True) -> tuple[object, object]:
        feed, doc = super()._create_rss(extensions)
        if self.hub:
            channel = feed[0]
            position = next((i + 1 for i, child in enumerate(channel)
                             if child.tag == f"{{{ATOM_NS}}}link"), len(channel))
            link = channel.makeelement(f"{{{ATOM_NS}}}link", {"href": self.hub, "rel": "hub"})
            channel.insert(position, link)
        return feed, doc


_LOOKS_LIKE_MARKUP = re.compile(r"<[/!?A-Za-z]|&#?\w+;")


def _declare_as_html(element: Any) -> bool:
    text = element.text
    return (isinstance(text, str) and element.get("type") in (None, "text")
            and bool(_LOOKS_LIKE_MARKUP.search(text)))


def _hex_references(body: bytes) -> bytes:
    """The same XML with ``&`` and ``<`` in text written as hexadecimal character references
    (``&#x26;``, ``&#x3C;``) instead of ``&amp;``/``&lt;``, as the RSS Best Practices Profile
    advises: the W3C validator (in RSS and Atom) then knows that a summary reading ``&amp;``
    or ``a &lt; b`` is text on purpose, not undeclared HTML. Parsers read identical text."""
    return body.replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;").replace(
        b"&gt;", b"&#x3E;")


def _sub_element(parent: Any, tag: str) -> Any:
    child = parent.makeelement(tag, {})
    parent.append(child)
    return child


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _safe(value: str) -> str:
    return clean_line(value)


def _newest(entries: list[Entry], fallback: datetime) -> datetime:
    return max((e.updated or e.published for e in entries), default=fallback)


def atom_updated(e: Entry) -> datetime:
    """The entry's ``atom:updated``. Entries of one day often share a stamp (a series page
    gives dates only: local midnight), and Atom readers and the W3C validator want them
    distinct; a stamp with no fraction of a second gets the store's sequence as
    microseconds, which keeps the store's order, is stable for the entry forever, and is
    below what any reader shows. The published date is left exactly as stored."""
    value = e.updated or e.published
    if value.microsecond == 0 and e.seq:
        value += timedelta(microseconds=e.seq % 1_000_000)
    return value


def _generator(config: Config, scope: Scope, self_url: str, updated: datetime) -> FeedGenerator:
    fg = _Feed()
    fg.hub = config.websub.hub
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(config.public_url + scope.base_path + "/")
    fg.title(_safe(scope.title))
    fg.subtitle(_safe(scope.description) or _safe(scope.title))
    fg.language(scope.language)
    fg.rights(_safe(i18n.site_texts(config, scope.language).rights))
    fg.generator("seriesfeed", __version__, GENERATOR_URI)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    return fg


def _locale_of(config: Config, language: str) -> str:
    lang = config.languages.get(language)
    return (lang.locale if lang else "") or language


def _fill_entry(fe: FeedEntry, config: Config, e: Entry,
                translations: dict[str, list[Translation]], *, rss: bool,
                feed_language: str | None = None) -> None:
    assert e.id is not None and e.url is not None
    link = e.link(config.public_url, local_pages(config)) or e.url
    fe.translations = tuple(translations.get(e.id, []))
    fe.own = Translation(e.language, link, e.id)
    if rss and feed_language is not None and e.language != feed_language:  # a fallback
        fe.dc.dc_language(e.language)
    # Atom pieces are shared by every feed an entry is in: each carries its own language
    fe.language = None if rss else e.language
    fe.id(e.id)
    fe.guid(e.id, permalink=e.id == link)
    title = _safe(e.title) or UNTITLED
    fe.title(title)
    fe.summary(clean_text(e.summary).strip() or title)
    if e.content_html and full_text(config):
        fe.content(clean_text(e.content_html), type="html")
    fe.published(e.published)
    fe.updated(atom_updated(e))
    names = [n for n in (_safe(a.name) for a in e.authors) if n]
    for name in names:
        fe.author({"name": name})
    if names and rss:  # RSS: one dc:creator, the byline as the entry's language prints it
        fe.dc.dc_creator(format_byline(names, _locale_of(config, e.language)))
    if e.section:
        fe.category(term=_safe(e.section))
    for t in translations.get(e.id, []):
        fe.link(href=t.url, rel="alternate", type="text/html", hreflang=t.language)
    # last: feedgen's RSS <link> is the last alternate
    fe.link(href=link, rel="alternate", type="text/html", hreflang=e.language)


def _add_entries(fg: FeedGenerator, config: Config, entries: list[Entry],
                 translations: dict[str, list[Translation]], language: str) -> None:
    for e in entries:
        _fill_entry(fg.add_entry(feedEntry=_Entry(), order="append"), config, e, translations,
                    rss=True, feed_language=language)


def entry_key(e: Entry, translations: dict[str, list[Translation]]) -> tuple[object, ...]:
    """Everything about an entry that its feed pieces show: equal keys, equal bytes."""
    # plain tuples and strings only: they hash in C (dataclasses hash in Python)
    # series and slug: the local link (article_pages = "local") is the page under them
    return (e.seq, e.id, e.url, e.title, e.summary, e.content_html, e.published, e.updated,
            e.section, e.language, e.series, e.slug,
            # _value_, not .value: the enum property costs a tenth of a rebuild's keys
            tuple((a.name, a.kind._value_) for a in e.authors),
            tuple((t.language, t.url) for t in translations.get(e.id or "", ())))


class FeedCache:
    """Pieces of feed documents kept between builds in one process: each entry's Atom
    ``<entry>`` and JSON item (an entry is in its language's site-wide feed and in its
    series' feed, current or archived, and unchanged entries are most of a rebuild), and
    whole archive pages, which never change once full. Keys hold every input of the
    bytes (the entry's content, its translations, the settings), so a hit is always
    right; what a build does not use is dropped after it, so the cache stays the size
    of the store. Each distinct entry key gets a small number, so that page keys (fifty
    entries each) are cheap to hash; what a page records on disk holds the entries'
    digests instead (``entry_digests``: numbers are this process's own)."""

    def __init__(self) -> None:
        # one build at a time per cache: the web app and the daemon's job may build at once
        self.lock = threading.Lock()
        self.atom: dict[int, bytes] = {}
        self.json: dict[int, str] = {}
        self.pages: dict[tuple[object, ...], bytes] = {}
        self._numbers: dict[tuple[object, ...], int] = {}
        self._next = 0
        self._by_object: dict[int, int] = {}  # id(entry) -> number, for one build
        self._used_pages: set[tuple[object, ...]] = set()
        # the settings a piece depends on (links, full text, languages): set per build, so
        # a process that builds for two configurations never serves one's pieces to the other
        self.settings = ""

    def key(self, e: Entry, translations: dict[str, list[Translation]]) -> int:
        """The number of the entry's ``entry_key``, computed once per entry and build (an
        entry is in several documents)."""
        found = self._by_object.get(id(e))
        if found is None:
            full = (self.settings, *entry_key(e, translations))
            found = self._numbers.get(full)
            if found is None:
                found = self._numbers[full] = self._next
                self._next += 1
            self._by_object[id(e)] = found
        return found

    def atom_entry(self, key: int, make: Callable[[], bytes]) -> bytes:
        found = self.atom.get(key)
        if found is None:
            found = self.atom[key] = make()
        return found

    def json_item(self, key: int, make: Callable[[], str]) -> str:
        found = self.json.get(key)
        if found is None:
            found = self.json[key] = make()
        return found

    def page(self, key: tuple[object, ...], make: Callable[[], bytes]) -> bytes:
        self._used_pages.add(key)
        found = self.pages.get(key)
        if found is None:
            found = self.pages[key] = make()
        return found

    def sweep(self) -> None:
        """Forget what the last build did not use."""
        used = set(self._by_object.values())
        self._numbers = {k: v for k, v in self._numbers.items() if v in used}
        self.atom = {k: v for k, v in self.atom.items() if k in used}
        self.json = {k: v for k, v in self.json.items() if k in used}
        self.pages = {k: v for k, v in self.pages.items() if k in self._used_pages}
        self._by_object = {}
        self._used_pages = set()


_CACHE = FeedCache()


def _atom_fragment(config: Config, e: Entry, translations: dict[str, list[Translation]]
                   ) -> bytes:
    """The entry's Atom ``<entry>``: the element feedgen's ``atom_entry`` makes from
    ``_fill_entry`` (with ``_Entry``'s changes), built with lxml directly. Through
    feedgen (its setters' checks, then its element builder, then ours moving the links)
    this was half of the feeds of a cold build; tests compare the two on every kind of
    entry."""
    assert e.id is not None and e.url is not None
    link = e.link(config.public_url, local_pages(config)) or e.url
    title = _safe(e.title) or UNTITLED
    entry = etree.Element("entry")
    sub = etree.SubElement
    sub(entry, "id").text = e.id
    _text_element(entry, "title", title)
    sub(entry, "updated").text = atom_updated(e).isoformat()
    for name in (_safe(a.name) for a in e.authors):
        if name:
            sub(sub(entry, "author"), "name").text = name
    if e.content_html and full_text(config):
        content = sub(entry, "content")
        text = clean_text(e.content_html)
        if text:
            content.text = text
        content.set("type", "html")
    _text_element(entry, "summary", clean_text(e.summary).strip() or title)
    if e.section:
        sub(entry, "category", term=_safe(e.section))
    sub(entry, "published").text = e.published.isoformat()
    # the entry's own link last: feedparser takes the last alternate as the entry's link
    for href, hreflang in (*((t.url, t.language) for t in translations.get(e.id, [])),
                           (link, e.language)):
        element = sub(entry, "link", href=href, rel="alternate", type="text/html")
        if hreflang:
            element.set("hreflang", hreflang)
    if e.language:
        entry.set(XML_LANG, e.language)
    fragment: bytes = etree.tostring(entry, pretty_print=True, encoding="UTF-8")
    return fragment


def _text_element(parent: Any, tag: str, text: str) -> None:
    """A title or summary: text, or text that reads like markup said as HTML whose every
    character is text (as ``_Entry.atom_entry`` does)."""
    element = etree.SubElement(parent, tag)
    if not text:
        return
    if _LOOKS_LIKE_MARKUP.search(text):
        element.set("type", "html")
        text = html.escape(text, quote=False)
    element.text = text


def _feed_links(fg: FeedGenerator, config: Config, scope: Scope, self_url: str,
                self_type: str, other_languages: list[str]) -> None:
    fg.link(href=self_url, rel="self", type=self_type.split(";")[0])
    if config.websub.hub:
        fg.link(href=config.websub.hub, rel="hub")
    for lang in other_languages:
        path = scope.base_path.replace(f"/feeds/{scope.language}", f"/feeds/{lang}", 1)
        fg.link(href=f"{config.public_url}{path}/atom.xml", rel="alternate",
                type="application/atom+xml", hreflang=lang)
    # last, because feedgen's RSS <link> is the last link
    fg.link(href=scope.page_url(config), rel="alternate", type="text/html")


def build_atom(config: Config, scope: Scope, entries: list[Entry],
               translations: dict[str, list[Translation]], *, updated: datetime,
               other_languages: list[str], archive: tuple[int, int] | None = None,
               archive_count: int = 0, cache: FeedCache | None = None) -> bytes:
    """An Atom document; ``archive=(page, pages)`` makes it an RFC 5005 archive page.
    Entries come from ``cache`` when it has them (built with feedgen once per entry)."""
    base = config.public_url + scope.base_path
    self_url = f"{base}/archive/{archive[0]}.xml" if archive else f"{base}/atom.xml"
    fg = _generator(config, scope, self_url, updated)
    if any(not any(_safe(a.name) for a in e.authors) for e in entries):
        # RFC 4287 4.1.1: an entry without an author inherits the feed's, which must exist
        fg.author({"name": _safe(config.site.title) or "seriesfeed"})
    if archive:
        fg.id(f"{config.public_url}{scope.base_path}/archive/{archive[0]}")
    _feed_links(fg, config, scope, self_url, ATOM, other_languages)
    if archive:
        page, _pages = archive
        fg.link(href=f"{base}/atom.xml", rel="current", type="application/atom+xml")
        if page > 1:
            fg.link(href=f"{base}/archive/{page - 1}.xml", rel="prev-archive",
                    type="application/atom+xml")
        if page < archive_count:
            fg.link(href=f"{base}/archive/{page + 1}.xml", rel="next-archive",
                    type="application/atom+xml")
    elif archive_count:
        fg.link(href=f"{base}/archive/{archive_count}.xml", rel="prev-archive",
                type="application/atom+xml")
    head: bytes = fg.atom_str(pretty=True)  # feedgen writes the feed; entries go in whole
    cache = cache or FeedCache()
    pieces = [cache.atom_entry(cache.key(e, translations),
                               lambda e=e: _atom_fragment(config, e, translations))  # type: ignore[misc]
              for e in entries]
    end = head.rindex(b"</feed>")
    body = b"".join([head[:end], *pieces, head[end:]])
    if archive:  # feedgen knows no fh:archive; it marks the document as an archive
        body = body.replace(b'<feed xmlns="http://www.w3.org/2005/Atom"',
                            b'<feed xmlns="http://www.w3.org/2005/Atom" '
                            b'xmlns:fh="http://purl.org/syndication/history/1.0"', 1)
        body = body.replace(b"<id>", b"<fh:archive/><id>", 1)
    return _hex_references(body)


def build_rss(config: Config, scope: Scope, entries: list[Entry],
              translations: dict[str, list[Translation]], *, updated: datetime) -> bytes:
    self_url = config.public_url + scope.base_path + "/rss.xml"
    fg = _generator(config, scope, self_url, updated)
    fg.description(_safe(scope.description) or _safe(scope.title))
    _feed_links(fg, config, scope, self_url, RSS, [])
    _add_entries(fg, config, entries, translations, scope.language)
    body: bytes = fg.rss_str(pretty=True)
    return _hex_references(body)


def json_feed_extension(config: Config, scope: Scope) -> dict[str, object]:
    """The feed's ``_seriesfeed`` object: the rights in the feed's language (JSON Feed has
    no field for them)."""
    texts = i18n.site_texts(config, scope.language)
    rights = {"rights": _safe(texts.rights), "rights_url": texts.rights_url}
    return {"about": EXTENSION_ABOUT, **{k: v for k, v in rights.items() if v}}


def json_item_extension(e: Entry, translations: dict[str, list[Translation]]) -> dict[str, object]:
    """An item's ``_seriesfeed`` object (organisation authors, translations), or nothing
    when it would say nothing."""
    ext: dict[str, object] = {}
    orgs = [{"name": a.name, "kind": a.kind.value} for a in e.authors
            if a.kind is AuthorKind.ORGANIZATION]
    if orgs:
        ext["authors"] = orgs
    found = translations.get(e.id or "", [])
    if found:
        ext["translations"] = [{"url": t.url, "id": t.id, "language": t.language}
                               for t in found]
    return {"about": EXTENSION_ABOUT, **ext} if ext else {}


def local_pages(config: Config) -> bool:
    """Whether feeds and digests link our article pages rather than the publisher's."""
    return config.site.article_pages == "local"


def full_text(config: Config) -> bool:
    """Whether feeds and digests carry an article's body where the store has one."""
    return config.feeds.content == "full"


def _json_item(e: Entry, translations: dict[str, list[Translation]], *,
               config: Config) -> dict[str, object]:
    item: dict[str, object] = {
        "id": e.id,
        "url": e.link(config.public_url, local_pages(config)),
        "title": _safe(e.title) or UNTITLED,
        "summary": clean_text(e.summary),
    }
    # JSON Feed 1.1: content_html or content_text (or both) must be there; the summary is
    # the content only when there is no body, or readers show the same sentence twice
    if e.content_html and full_text(config):
        item["content_html"] = clean_text(e.content_html)
    else:
        item["content_text"] = clean_text(e.summary)
    item["date_published"] = _iso(e.published)
    item["date_modified"] = _iso(e.updated or e.published)
    authors = [{"name": n} for n in (_safe(a.name) for a in e.authors) if n]
    if authors:
        item["authors"] = authors
    item["language"] = e.language
    if e.section and _safe(e.section):
        item["tags"] = [_safe(e.section)]
    ext = json_item_extension(e, translations)
    if ext:  # only when there is something to say (no empty objects)
        item["_seriesfeed"] = ext
    return item


def build_json_feed(config: Config, scope: Scope, entries: list[Entry], *,
                    archive: int | None = None, archive_count: int = 0,
                    cache: FeedCache | None = None,
                    translations: dict[str, list[Translation]] | None = None) -> bytes:
    """A JSON Feed 1.1 document. Like Atom's RFC 5005 archives, ``next_url`` pages back
    through the archive pages (newest page first), so every entry can be reached; every
    page keeps the feed's own ``feed_url`` (it identifies the feed). One item per line."""
    base = config.public_url + scope.base_path
    doc: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": _safe(scope.title),
        "home_page_url": scope.page_url(config),
        "feed_url": f"{base}/feed.json",
    }
    if _safe(scope.description):
        doc["description"] = _safe(scope.description)
    following = (archive - 1) if archive is not None else archive_count
    if following >= 1:
        doc["next_url"] = f"{base}/archive/{following}.json"
    doc["language"] = scope.language
    if config.websub.hub and archive is None:
        doc["hubs"] = [{"type": "WebSub", "url": config.websub.hub}]
    doc["_seriesfeed"] = json_feed_extension(config, scope)
    doc["items"] = []
    head = json.dumps(doc, ensure_ascii=False)
    assert head.endswith('"items": []}')
    cache = cache or FeedCache()
    translations = translations or {}
    items = [cache.json_item(cache.key(e, translations),
                             lambda e=e: json.dumps(_json_item(e, translations, config=config),
                                                     ensure_ascii=False))  # type: ignore[misc]
             for e in entries]
    text = head[:-2] + ("\n" + ",\n".join(items) + "\n" if items else "") + "]}\n"
    return text.encode("utf-8")


def scopes(config: Config, all_series: list[Series]) -> list[Scope]:
    out: list[Scope] = []
    for code, lang in config.languages.items():
        out.append(Scope(code, None, lang.feed_title or config.site.title,
                         lang.feed_description))
        for s in all_series:
            text = s.texts.get(code) or s.texts.get(config.site.default_language) or \
                next(iter(s.texts.values()), None)
            title = text.title if text else s.slug
            out.append(Scope(code, s, f"{title} — {lang.feed_title or config.site.title}",
                             text.description if text else ""))
    return out


def translations_for(site: SiteData, config: Config | None = None,
                     ) -> dict[str, list[Translation]]:
    """Each entry's translations (language, URL, id), by entry id, from the site's links;
    with ``config``, the URL is where the settings send readers (``Entry.link``)."""
    out: dict[str, list[Translation]] = {}
    local = config is not None and local_pages(config)
    for e in site.entries:
        for other in site.links.get(e.seq or -1, []):
            o = site.linked[other]
            url = o.link(config.public_url, local) if config is not None else o.url
            if url and o.language != e.language and e.id:
                out.setdefault(e.id, []).append(Translation(o.language, url, o.id or ""))
    return out



def is_fallback_for(language: str, e: Entry,
                    translations: dict[str, list[Translation]]) -> bool:
    """Whether ``e`` is shown in ``language``'s feeds and pages under the "original"
    fallback policy: an original (not itself a translation) in another language with no
    translation into ``language``, so that no article is ever shown twice."""
    return e.language != language and e.translation_of is None and not any(
        t.language == language for t in translations.get(e.id or "", []))


def with_fallback(config: Config, everything: list[Entry],
                  translations: dict[str, list[Translation]],
                  by_scope: dict[tuple[str, str | None], list[Entry]], *,
                  series_only: bool = False) -> None:
    """Add to each language whose ``fallback`` is "original" the entries it has no
    translation of, newest first like the rest (``everything`` is newest first)."""
    for code in config.languages:
        if i18n.fallback_policy(config, code) != "original":
            continue
        keys: set[tuple[str, str | None]] = {(code, e.series) for e in everything}
        if not series_only:
            keys.add((code, None))
        for key in keys:
            by_scope[key] = [e for e in everything
                             if (key[1] is None or e.series == key[1])
                             and (e.language == code or is_fallback_for(code, e, translations))]


def entry_digests(site: SiteData, translations: dict[str, list[Translation]]
                  ) -> dict[int, str]:
    """Each entry's ``entry_key`` as a digest, by ``id(entry)``: equal in every process, so
    the keys that pages record on disk can name their entries. Computed once per build for
    the feeds and the pages together (a digest of each of 20,000 entries is a tenth of a
    build after one edit); the settings are in each page's own key."""
    return {id(e): digest(entry_key(e, translations)) for e in site.entries}


def settings_key(config: Config) -> str:
    """What the documents depend on besides the entries (a change rebuilds every piece):
    the settings, the version, and the templates and message catalogues as they are on
    disk (an operator's edited template, or a new checkout, changes every page)."""
    relevant = repr((config.public_url, config.site, config.languages, config.feeds,
                     config.websub, __version__, _look_files(config)))
    return hashlib.sha256(relevant.encode("utf-8")).hexdigest()


def _look_files(config: Config) -> tuple[tuple[str, int, int, int, int], ...]:
    """Each template and catalogue file the pages are made from: (path, size, mtime,
    inode, change time); size and mtime alone a same-size edit with ``touch -d`` (or an
    editor keeping times) puts back, the change time it cannot."""
    from seriesfeed.templating import templates_dir  # jinja2: only where pages are made

    folders = [templates_dir(config.resolve("templates")), i18n.LOCALE_DIR,
               *i18n.catalogue_folders(config)]
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".j2", ".po", ".css", ".html", ".txt") and path.is_file():
                st = path.stat()
                found.append((str(path), st.st_size, st.st_mtime_ns, st.st_ino,
                              st.st_ctime_ns))
    return tuple(found)


def plan_feeds(config: Config, site: SiteData, cache: FeedCache | None = None,
               on_disk: dict[str, str] | None = None,
               digests: dict[int, str] | None = None) -> list[FeedDocument]:
    """Every feed document of the site's data, deterministically.

    ``cache`` (by default one per process) keeps entries' pieces and full archive pages
    between builds, so a rebuild after a new entry rebuilds only what shows it.
    ``on_disk`` (URL path -> key digest) names the archive pages a folder already holds
    the bytes of, from an earlier build in any process: those with the same key are not
    made again (``FeedDocument.on_disk``), nor are the current feeds whose key it records.
    ``digests``: ``entry_digests`` of the same data, when the caller has them already."""
    cache = cache if cache is not None else _CACHE
    docs: list[FeedDocument] = []
    n = config.feeds.max_entries
    # one read of everything (store.entries.site_data), partitioned in memory: each entry
    # appears in its language's site-wide feed and its series' feed
    everything = site.entries
    translations = translations_for(site, config)
    if digests is None:
        digests = entry_digests(site, translations)
    all_scopes = scopes(config, site.series)
    with cache.lock:
        settings = cache.settings = settings_key(config)
        by_scope: dict[tuple[str, str | None], list[Entry]] = {}
        for e in everything:
            by_scope.setdefault((e.language, None), []).append(e)
            by_scope.setdefault((e.language, e.series), []).append(e)
        with_fallback(config, everything, translations, by_scope)
        for scope in all_scopes:
            slug = scope.series.slug if scope.series else None
            newest = by_scope.get((scope.language, slug), [])
            current = newest[:n]
            every = sorted(newest, key=lambda e: e.seq or 0)
            updated = _newest(every, EPOCH)
            others = [c for c in config.languages if c != scope.language]
            pages = len(every) // n if len(every) > n else 0
            # archives are whole pages in insertion order (stable as entries arrive); the rest
            # must be in the current Atom document, even a back-dated entry that is not among
            # the newest n by date, or RFC 5005 readers could never reach it
            shown = {e.seq for e in current}
            tail = [e for e in every[pages * n:] if e.seq not in shown]
            atom_current = current + tail if tail else current
            if tail:
                atom_current.sort(key=lambda e: (e.published, e.seq or 0), reverse=True)
            where = (settings, scope.base_path, scope.title, scope.description)
            # every input of the three current documents: most of them are unchanged after
            # one edit, and making them (feedgen, lxml) was a fifth of such a build
            now = "current " + digest((*where, updated, pages, others,
                                       tuple(digests[id(e)] for e in atom_current),
                                       tuple(digests[id(e)] for e in current)))
            currents = ((scope.base_path + "/atom.xml", ATOM, partial(
                build_atom, config, scope, atom_current, translations, updated=updated,
                other_languages=others, archive_count=pages, cache=cache)),
                (scope.base_path + "/rss.xml", RSS, partial(
                    build_rss, config, scope, current, translations, updated=updated)),
                (scope.base_path + "/feed.json", JSONFEED, partial(
                    build_json_feed, config, scope, atom_current, archive_count=pages,
                    cache=cache, translations=translations)))
            if on_disk and all(on_disk.get(p) == now for p, _, _ in currents):
                docs.extend(FeedDocument(p, media, b"", updated, now, True)
                            for p, media, _ in currents)
            else:
                docs.extend(FeedDocument(p, media, make(), updated, now)
                            for p, media, make in currents)
            for page in range(1, pages + 1):
                chunk = list(reversed(every[(page - 1) * n: page * n]))
                stamp = _newest(chunk, updated)
                # a full page never changes but for its entries' edits and for the
                # next-archive link it gains when the page after it appears
                # the same key for a build in another process: digests, not numbers
                stable = "feed " + digest((*where, page, page < pages,
                                           tuple(digests[id(e)] for e in chunk)))
                paths = (f"{scope.base_path}/archive/{page}.xml",
                         f"{scope.base_path}/archive/{page}.json")
                if on_disk and all(on_disk.get(p) == stable for p in paths):
                    docs.extend(FeedDocument(p, media, b"", stamp, stable, True)
                                for p, media in zip(paths, (ATOM, JSONFEED), strict=True))
                    continue
                # this process's cache key: numbers, only for a page that is made
                numbers = tuple(cache.key(e, translations) for e in chunk)
                key = (*where, page, page < pages, numbers)

                atom_page = partial(build_atom, config, scope, chunk, translations,
                                    updated=stamp, other_languages=[], archive=(page, pages),
                                    archive_count=pages, cache=cache)
                json_page = partial(build_json_feed, config, scope, chunk, archive=page,
                                    archive_count=pages, cache=cache, translations=translations)
                docs.append(FeedDocument(paths[0], ATOM, cache.page(("atom", *key), atom_page),
                                         stamp, stable))
                docs.append(FeedDocument(paths[1], JSONFEED,
                                         cache.page(("json", *key), json_page), stamp, stable))
        cache.sweep()
    return docs

"""The web pages built with the feeds: a series page per language (the articles in part
order, feed autodiscovery and the subscribe form), a page per article
``/{lang}/{series}/{entry}/``, a language index ``/{lang}/`` listing the series, and the
``/sitemap.xml`` and ``/robots.txt`` that name them all."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache, partial
from json.encoder import encode_basestring as _encode_string
from typing import Any, cast
from xml.sax.saxutils import escape, quoteattr

from seriesfeed import i18n
from seriesfeed.config import Config
from seriesfeed.feeds import (
    EPOCH,
    HTML,
    FeedDocument,
    digest,
    entry_digests,
    entry_key,
    local_pages,
    scopes,
    settings_key,
    translations_for,
    with_fallback,
)
from seriesfeed.models import AuthorKind, Entry, Series, SiteData
from seriesfeed.templating import (
    Template,
    localized_template,
    render,
    stock_template,
    templates_dir,
)
from seriesfeed.text import sanitize_html

__all__ = ["ROBOTS", "SITEMAP_LIMIT", "XML", "build_pages", "build_sitemap", "json_ld",
           "page_context", "render_page", "robots_txt", "series_text"]

XML = "application/xml; charset=utf-8"
ROBOTS = "text/plain; charset=utf-8"
SITEMAP_LIMIT = 50_000  # sitemaps.org: URLs per sitemap file, then a sitemap index
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
XHTML_NS = "http://www.w3.org/1999/xhtml"


def json_ld(data: dict[str, Any]) -> str:
    """JSON for a ``<script type="application/ld+json">``: ``<``, ``>`` and ``&`` as
    ``\\u`` escapes, so a title holding ``</script>`` cannot end the script (JSON
    parsers read the same text)."""
    try:
        text = _indented(data, "\n")
    except _NotPlain:
        text = json.dumps(data, ensure_ascii=False, indent=1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _NotPlain(Exception):
    """A value ``_indented`` does not write the way ``json.dumps`` would."""


def _indented(value: object, newline: str) -> str:
    """``json.dumps(value, ensure_ascii=False, indent=1)`` for plain data (dicts with
    string keys, lists, strings, integers, booleans, None), character for character.
    With an indent, ``json`` takes its pure-Python encoder, which was a tenth of a cold
    build's article pages; strings here go through its C escaping."""
    if type(value) is str:
        return _encode_string(value)
    if type(value) is dict:
        if not value:
            return "{}"
        inner = newline + " "
        parts = []
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            parts.append(f"{_encode_string(key)}: {_indented(item, inner)}")
        return "{" + inner + ("," + inner).join(parts) + newline + "}"
    if type(value) is list:
        if not value:
            return "[]"
        inner = newline + " "
        return "[" + inner + ("," + inner).join(_indented(v, inner) for v in value) + \
            newline + "]"
    if type(value) is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise _NotPlain


def page_context(config: Config, language: str) -> dict[str, Any]:
    """What every page template gets: the language's words and the site's texts in it."""
    return {
        **i18n.template_functions(config, language),
        "lang": language,
        "languages": config.languages,
        "site": config.site,
        "texts": i18n.site_texts(config, language),
        "public_url": config.public_url,
    }


def render_page(config: Config, language: str, name: str, context: dict[str, Any]) -> str:
    """Render ``web/{name}`` (or the language's own override) in ``language``."""
    folder = templates_dir(config.resolve("templates"))
    return render(folder, localized_template(folder, "web", language, name),
                  {**page_context(config, language), **context})


class _PageKit:
    """What every page of one template in one language shares within one run over many
    pages: the template (found once: which folder, whether the language overrides it)
    and ``page_context`` (the catalogue's functions and the site's texts). Resolving both
    per page was a fifth of rendering 20,000 article pages. ``owner`` is the object that
    marks the run (kept, so its identity is not reused); a new run looks again, so an
    edited or new override is seen by the next build, as ``render_page`` sees it."""

    def __init__(self, config: Config, language: str, name: str, owner: object) -> None:
        self.config, self.language, self.name, self.owner = config, language, name, owner
        folder = templates_dir(config.resolve("templates"))
        self.template = Template(folder, localized_template(folder, "web", language, name))
        self.context = page_context(config, language)

    def render(self, context: dict[str, Any]) -> str:
        return self.template.render({**self.context, **context})


_KIT: list[_PageKit] = []  # the last run's kit: one run of pages at a time (``_PAGES.lock``)


def _page_kit(config: Config, language: str, name: str, owner: object) -> _PageKit:
    found = _KIT[0] if _KIT else None
    if found is None or not (found.owner is owner and found.config is config
                             and found.language == language and found.name == name):
        found = _PageKit(config, language, name, owner)
        _KIT[:] = [found]
    return found


def series_text(config: Config, series: Series, language: str) -> tuple[str, str]:
    """The series' title and description in ``language``, else in the site's default."""
    text = series.texts.get(language) or series.texts.get(config.site.default_language) or \
        next(iter(series.texts.values()), None)
    return (text.title, text.description) if text else (series.slug, "")


def _reading_order(entries: list[Entry]) -> list[Entry]:
    """The way a series is read: part 1 first (entries without a part after, oldest
    first)."""
    return sorted(entries, key=lambda e: (e.part or 1 << 30, e.published, e.seq or 0))


def _person(config: Config, e: Entry) -> list[dict[str, str]]:
    people = [{"@type": "Organization" if a.kind is AuthorKind.ORGANIZATION else "Person",
               "name": a.name} for a in e.authors]
    return people or [{"@type": "Organization", "name": config.site.title}]


def _article_ref(config: Config, e: Entry) -> dict[str, str]:
    return {"@type": "Article", "@id": config.public_url + (e.page_path or "/"),
            "url": config.public_url + (e.page_path or "/"), "inLanguage": e.language,
            "name": e.title}


def build_pages(config: Config, site: SiteData, on_disk: dict[str, str] | None = None,
                digests: dict[int, str] | None = None,
                previous: Callable[[str], bytes | None] | None = None,
                ) -> list[FeedDocument]:
    """The series pages, article pages and language indexes of the site's data (the
    feeds' same read), then the sitemap and robots.txt that name them; ``on_disk`` as for
    ``feeds.plan_feeds``: article pages a folder already holds are not rendered again;
    ``digests`` too (``feeds.entry_digests``); ``previous`` reads that folder's file of a
    path (``publish.reader``), for article pages whose part numbers alone changed."""
    docs: list[FeedDocument] = []
    everything = site.entries
    translations = translations_for(site, config)
    all_scopes = scopes(config, site.series)
    by_scope: dict[tuple[str, str | None], list[Entry]] = {}
    for e in everything:
        by_scope.setdefault((e.language, e.series), []).append(e)
    with_fallback(config, everything, translations, by_scope, series_only=True)
    # each entry's key once per build, as a digest: the series page and the article pages
    # both need it, and their own keys are then digests of short tuples
    keys = digests if digests is not None else entry_digests(site, translations)
    # once per build, not per page list: it looks at every template and catalogue file
    # (a millisecond), and a site of 200 series has 400 lists
    settings = settings_key(config)
    listed: dict[str, list[dict[str, Any]]] = {code: [] for code in config.languages}
    article_scopes: list[tuple[str, str, Series, str, str]] = []
    by_listing: dict[tuple[str, str], list[Entry]] = {}
    for scope in all_scopes:
        if scope.series is None:
            continue
        slug = scope.series.slug
        entries = _reading_order(by_scope.get((scope.language, slug), []))
        title, description = series_text(config, scope.series, scope.language)
        updated = max((e.updated or e.published for e in entries), default=EPOCH)
        newest = max(entries, key=lambda e: (e.published, e.seq or 0), default=None)
        listed[scope.language].append({"slug": slug, "title": title,
                                       "description": description, "count": len(entries),
                                       "updated": updated})
        path = f"/{scope.language}/{slug}/"
        # every input of the page: the settings, the series, and what it lists of each entry
        key = "series " + digest((settings, config.digests.catch_up_max,
                                  scope.language, repr(scope.series), title, description,
                                  tuple([(keys[id(e)], e.part, e.parts,
                                          e.translation_of) for e in entries])))
        # and of its article pages: the same, and the translations each page names (which
        # may be outside the list); recorded in each page's key, so a build after an edit
        # elsewhere knows every page of this list unchanged without a key per page
        linked = tuple((e.seq, tuple(_shown(o) for o in _linked(site, e)))
                       for e in entries if e.seq in site.links)
        article_scopes.append((scope.language, slug, scope.series, title,
                               digest((key, linked))[:16]))
        by_listing[(scope.language, slug)] = entries
        if on_disk and on_disk.get(path) == key:  # the folder holds these bytes
            docs.append(FeedDocument(path, HTML, b"", updated, key, True))
            continue
        page_url = f"{config.public_url}/{scope.language}/{slug}/"
        data = {"@context": "https://schema.org", "@type": "CreativeWorkSeries",
                "name": title, "url": page_url, "inLanguage": scope.language,
                "hasPart": [{**_article_ref(config, e), "position": e.part,
                             "datePublished": e.published.isoformat()}
                            for e in entries if e.part]}
        if description:
            data["description"] = description
        body = render_page(config, scope.language, "series.html.j2", {
            "series": scope.series,
            "title": title,
            "description": description,
            "entries": entries,
            "newest": newest,
            "links": {e.seq: e.link(config.public_url, local_pages(config)) for e in entries},
            "translations": translations,
            "feed_base": config.public_url + scope.base_path,
            "json_ld": json_ld(data),
            "start_first": _start_first(config, entries),
        })
        docs.append(FeedDocument(path, HTML, body.encode("utf-8"), updated, key))
    for code, series in listed.items():
        body = render_page(config, code, "language.html.j2", {"series": series})
        updated = max((s["updated"] for s in series), default=EPOCH)
        docs.append(FeedDocument(f"/{code}/", HTML, body.encode("utf-8"), updated))
    # a splice knows where the shipped article template writes the part numbers, not
    # where an operator's may: with one, pages whose part numbers changed are rendered
    splices: dict[str, bool] = {}
    if previous is not None:
        folder = templates_dir(config.resolve("templates"))
        splices = {lang: stock_template(folder, localized_template(folder, "web", lang,
                                                                   "article.html.j2"))
                   for lang in {scope[0] for scope in article_scopes}}
    with _PAGES.lock:
        for lang, slug, shown, title, listing in article_scopes:
            docs.extend(_article_pages(config, site, shown, lang,
                                       by_listing[(lang, slug)], title, on_disk, keys,
                                       previous if splices.get(lang) else None, listing,
                                       settings))
        _PAGES.sweep()
    docs.extend(build_sitemap(config, site))
    docs.append(FeedDocument("/robots.txt", ROBOTS, robots_txt(config).encode("utf-8"),
                             EPOCH))
    return docs


def _linked(site: SiteData, e: Entry) -> list[Entry]:
    """The entry's translations (each linked entry in another language)."""
    return [site.linked[s] for s in site.links.get(e.seq or -1, [])
            if s in site.linked and site.linked[s].language != e.language]


def _alternates(config: Config, site: SiteData, e: Entry,
                linked: list[Entry] | None = None) -> list[tuple[str, str]]:
    """(hreflang, URL) of the article in every language it exists in, then x-default:
    the site's default language's version, else the original (``linked``: the entry's
    ``_linked``, when the caller has it)."""
    others = _linked(site, e) if linked is None else linked
    if not others:  # most entries: the article itself twice, without sorting or searching
        url = config.public_url + (e.page_path or "/")
        return [(e.language, url), ("x-default", url)]
    versions = sorted([e, *others], key=lambda v: v.language)
    out = [(v.language, config.public_url + (v.page_path or "/")) for v in versions]
    default = next((v for v in versions if v.language == config.site.default_language),
                   None) or next((v for v in versions if v.translation_of is None), e)
    return [*out, ("x-default", config.public_url + (default.page_path or "/"))]


class PageCache:
    """Article pages kept between builds in one process: a page's bytes change only when
    its entry, its neighbours, its translations, its series' title or the settings do, and
    rendering every article again (milliseconds each) on every change to the store would
    make a large store's server re-plan for most of a minute. Keys hold every input; what
    a build does not use is dropped after it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pages: dict[tuple[object, ...], bytes] = {}
        self.used: set[tuple[object, ...]] = set()

    def get(self, key: tuple[object, ...], make: Callable[[], bytes]) -> bytes:
        self.used.add(key)
        found = self.pages.get(key)
        if found is None:
            found = self.pages[key] = make()
        return found

    def sweep(self) -> None:
        self.pages = {k: v for k, v in self.pages.items() if k in self.used}
        self.used = set()


_PAGES = PageCache()


def _shown(e: Entry | None) -> tuple[object, ...]:
    """What an article page shows of another entry (a neighbour or a translation)."""
    if e is None:
        return ()
    return (e.id, e.title, e.language, e.page_path, e.translation_of)


def _start_first(config: Config, entries: list[Entry]) -> bool:
    """The subscribe form offers "from part 1" first while the series is short enough."""
    return max((e.parts or 0 for e in entries), default=0) < config.digests.catch_up_max


def _article_pages(config: Config, site: SiteData, series: Series, language: str,
                   listed: list[Entry], series_title: str,
                   on_disk: dict[str, str] | None = None,
                   keys: dict[int, str] | None = None,
                   previous: Callable[[str], bytes | None] | None = None,
                   listing: str = "",
                   settings: str | None = None,
                   ) -> list[FeedDocument]:
    """One page per entry of the series in ``language`` (fallback entries shown in this
    language's list have their page in their own language); prev and next follow this
    language's list, so a reader stays in their language. A page whose key ``on_disk``
    records for its path is not rendered: the folder already holds its bytes; one whose
    recorded key differs only in the part numbers is spliced from the file ``previous``
    reads (``_respliced``), not rendered. ``listing``: a digest of every input of every
    page of this list (``build_pages``), ending each page's key: a page whose recorded key
    ends with it is on disk as it is, without its own key worked out."""
    docs: list[FeedDocument] = []
    tail = f" {listing}" if listing else ""
    m = i18n.messages_for(config, language)
    # each (part, count)'s label once: a splice needs the old and the new of every page
    labels = lru_cache(maxsize=None)(cast(Callable[[int | None, int | None], str],
                                          i18n.template_functions(config, language)["part_label"]))
    if settings is None:
        settings = settings_key(config)
    # what each entry of the list shows as a neighbour, once (each is two pages' neighbour)
    # and only for the pages keyed: after a small edit most pages are known unchanged
    # from the list's digest alone
    shown: dict[int, tuple[object, ...]] = {}

    def neighbour(j: int) -> tuple[object, ...]:
        found = shown.get(j)
        if found is None:
            found = shown[j] = _shown(listed[j]) if 0 <= j <= last else ()
        return found

    last = len(listed) - 1
    for i, e in enumerate(listed):
        path = e.page_path
        if e.language != language or not path:
            continue
        recorded = on_disk.get(path) if on_disk else None
        if tail and recorded is not None and recorded.endswith(tail):  # the list's same
            docs.append(FeedDocument(path, HTML, b"", e.updated or e.published, recorded,
                                     True))
            continue
        others = _linked(site, e)
        alternates = _alternates(config, site, e, others)
        # every input but the part numbers, which an add into the series changes on every
        # page of it: those are recorded beside the digest, so such a page is spliced
        base = (settings, config.digests.catch_up_max, language, series.slug, series_title,
                keys[id(e)] if keys and id(e) in keys else digest(entry_key(e, {})), e.slug,
                neighbour(i - 1), neighbour(i + 1),
                tuple(_shown(o) for o in others), tuple(alternates))
        prev = listed[i - 1] if i > 0 else None
        after = listed[i + 1] if i < last else None
        stamp = e.updated or e.published
        head = "page " + digest(base) + " "
        stable = f"{head}{e.part} {e.parts}{tail}"
        if recorded is not None:
            # the folder has these bytes: the same key, or the same but for the list's
            # digest (another page of the list changed; the record takes the new one)
            same = recorded.startswith(head) and \
                recorded[len(head):].split(" ")[:2] == [str(e.part), str(e.parts)]
            if recorded == stable or same:
                docs.append(FeedDocument(path, HTML, b"", stamp, stable, True))
                continue
            if previous is not None and recorded.startswith(head):
                old = previous(path)
                spliced = _respliced(config.digests.catch_up_max, recorded[len(head):], e,
                                     labels, old)
                if spliced is not None:  # marked only when it differs: written unread
                    docs.append(FeedDocument(path, HTML, spliced, stamp, stable,
                                             spliced=spliced != old))
                    continue
        key = (*base, e.part, e.parts)
        body = _PAGES.get(key, partial(_article_page, config, series, language, e, prev,
                                       after, others, alternates, series_title, m))
        docs.append(FeedDocument(path, HTML, body, stamp, stable))
    return docs


def _escaped(text: str) -> str:
    """``text`` as Jinja2's autoescape writes it (markupsafe's five replacements)."""
    return (text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
            .replace("'", "&#39;").replace('"', "&#34;"))


def _label_span(label: Callable[[int | None, int | None], str], part: int,
                parts: int) -> bytes:
    """The part label as article.html.j2 writes it."""
    return f'<span class="part">{_escaped(label(part, parts))}</span>'.encode()


_LD_OPEN = b'<script type="application/ld+json">'


def _respliced(catch_up_max: int, recorded: str, e: Entry,
               label: Callable[[int | None, int | None], str],
               old: bytes | None) -> bytes | None:
    """An article page's new bytes from its earlier file ``old``, when only its part
    numbers changed (``recorded``: the old page key's "PART PARTS ..."): the part label
    ``<span class="part">`` and the JSON-LD ``"position"`` replaced, each only where it
    occurs exactly once (and the position inside the JSON-LD script). None when that
    cannot be told for sure (a body quoting the very text, a template without them, a part
    appearing or going, the subscribe form's default changing): render it instead."""
    if old is None or not e.part or not e.parts:
        return None
    try:
        was_part, was_parts = (int(v) for v in recorded.split(" ")[:2])
    except ValueError:  # "None", or a key of another shape
        return None
    if was_part <= 0 or was_parts <= 0:
        return None
    limit = catch_up_max
    if (was_parts < limit) != (e.parts < limit):  # _start_first: the form's checked radio
        return None
    body = old
    span, new_span = _label_span(label, was_part, was_parts), _label_span(label, e.part,
                                                                          e.parts)
    if span != new_span:
        if body.count(span) != 1:
            return None
        body = body.replace(span, new_span)
    if was_part != e.part:
        # json_ld's indent=1: a top-level key on a line of its own, then "," or the end
        lines = [b'\n "position": %d%s' % (was_part, end) for end in (b",", b"\n")]
        if sum(body.count(line) for line in lines) != 1:
            return None
        line = next(line for line in lines if line in body)
        at = body.find(line)
        # inside the JSON-LD script: after its opening tag, with no "</script>" between
        # (json_ld writes "<" as \u003c, so the script itself holds none)
        opened = body.rfind(_LD_OPEN, 0, at)
        if opened < 0 or body.find(b"</script>", opened, at) >= 0:
            return None
        body = (body[:at] + b'\n "position": %d' % e.part + line[-1:]
                + body[at + len(line):])
    return body


def _article_page(config: Config, series: Series, language: str, e: Entry,
                  prev: Entry | None, after: Entry | None, others: list[Entry],
                  alternates: list[tuple[str, str]], series_title: str,
                  m: i18n.Messages) -> bytes:
    assert e.page_path is not None
    # the template and the language's context once per run of a series' pages (``m`` is
    # made once per run), not per page
    kit = _page_kit(config, language, "article.html.j2", m)
    public_url = config.public_url
    series_url = f"{public_url}/{language}/{series.slug}/"
    url = public_url + e.page_path
    data: dict[str, Any] = {
        "@context": "https://schema.org", "@type": "Article", "@id": url,
        "headline": e.title, "name": e.title, "url": url, "mainEntityOfPage": url,
        "inLanguage": e.language, "author": _person(config, e),
        "publisher": {"@type": "Organization", "name": config.site.title,
                      "url": config.site.url},
        "datePublished": e.published.isoformat(),
        "dateModified": (e.updated or e.published).isoformat(),
        "isPartOf": {"@type": "CreativeWorkSeries", "name": series_title,
                     "url": series_url},
    }
    if e.summary:
        data["description"] = e.summary
    if e.part:
        data["position"] = e.part
    if e.url:
        data["sameAs"] = e.url
    original = next((o for o in others if o.id == e.translation_of), None)
    if original is not None:
        data["translationOfWork"] = _article_ref(config, original)
    translated = [o for o in others if o.translation_of == e.id]
    if translated:
        data["workTranslation"] = [_article_ref(config, o) for o in translated]
    lang = config.languages.get(language)
    body = kit.render({
        "entry": e,
        "series": series,
        "series_title": series_title,
        "series_url": series_url,
        "canonical": url,
        "part": kit.context["part_label"](e.part, e.parts),
        "content": sanitize_html(e.content_html) if e.content_html else "",
        "prev": prev, "next": after,
        "page_url": lambda x: public_url + (x.page_path or "/"),
        "translations": sorted(others, key=lambda o: o.language) if others else others,
        "alternates": alternates,
        "og_locale": (lang.locale or language) if lang is not None else language,
        "feed_base": f"{public_url}/feeds/{language}/{series.slug}",
        "json_ld": json_ld(data),
        "start_first": _start_first(config, [e]),
        "byline": i18n.format_byline([a.name for a in e.authors],
                                     config.languages[language].locale or language)
        if e.authors else "",
        "original_label": m.gettext("Read it on {site}", site=config.site.title),
    })
    return body.encode("utf-8")


def robots_txt(config: Config) -> str:
    """Everything may be crawled but the subscribe form, the token pages (confirm,
    unsubscribe, undo, preferences) and the console to come; the sitemap named by its
    absolute URL (robots.txt asks for one)."""
    return ("User-agent: *\n"
            "Disallow: /confirm/\nDisallow: /unsubscribe/\nDisallow: /undo/\n"
            "Disallow: /preferences/\n"
            "Disallow: /subscribe\nDisallow: /*/manage/\nDisallow: /admin/\n"
            f"\nSitemap: {config.public_url}/sitemap.xml\n")


def _sitemap_urls(config: Config, site: SiteData) -> list[tuple[str, datetime,
                                                                 list[tuple[str, str]]]]:
    """(URL, lastmod, alternates) of every page: language indexes, series pages, articles."""
    base = config.public_url
    codes = list(config.languages)
    default = config.site.default_language
    newest: dict[tuple[str, str | None], datetime] = {}
    for e in site.entries:
        stamp = e.updated or e.published
        for key in ((e.language, None), (e.language, e.series)):
            newest[key] = max(newest.get(key, stamp), stamp)
    every = max(newest.values(), default=EPOCH)
    out: list[tuple[str, datetime, list[tuple[str, str]]]] = []
    index_alts = [(c, f"{base}/{c}/") for c in codes] + [("x-default", f"{base}/{default}/")]
    for code in codes:
        out.append((f"{base}/{code}/", newest.get((code, None), every), index_alts))
    for s in site.series:
        alts = [(c, f"{base}/{c}/{s.slug}/") for c in codes] + \
            [("x-default", f"{base}/{default}/{s.slug}/")]
        stamp = max((v for k, v in newest.items() if k[1] == s.slug), default=EPOCH)
        for code in codes:
            out.append((f"{base}/{code}/{s.slug}/", newest.get((code, s.slug), stamp), alts))
    for e in sorted(site.entries, key=lambda e: e.seq or 0):
        if e.page_path and e.language in config.languages:
            alts = _alternates(config, site, e) if _linked(site, e) else []
            out.append((base + e.page_path, e.updated or e.published, alts))
    return out


def _urlset(urls: list[tuple[str, datetime, list[tuple[str, str]]]]) -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<urlset xmlns="{SITEMAP_NS}" xmlns:xhtml="{XHTML_NS}">']
    for loc, lastmod, alternates in urls:
        lines.append(f"<url><loc>{escape(loc)}</loc><lastmod>{lastmod.isoformat()}</lastmod>")
        for lang, href in alternates:
            lines.append(f'  <xhtml:link rel="alternate" hreflang={quoteattr(lang)} '
                         f'href={quoteattr(href)}/>')
        lines.append("</url>")
    lines.append("</urlset>\n")
    return "\n".join(lines).encode("utf-8")


def build_sitemap(config: Config, site: SiteData, *,
                  limit: int = SITEMAP_LIMIT) -> list[FeedDocument]:
    """``/sitemap.xml`` (sitemaps.org, with ``xhtml:link`` hreflang alternates); past
    ``limit`` URLs it becomes a sitemap index of ``/sitemaps/N.xml`` files."""
    urls = _sitemap_urls(config, site)
    newest = max((u[1] for u in urls), default=EPOCH)
    if len(urls) <= limit:
        return [FeedDocument("/sitemap.xml", XML, _urlset(urls), newest)]
    docs: list[FeedDocument] = []
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<sitemapindex xmlns="{SITEMAP_NS}">']
    for n, start in enumerate(range(0, len(urls), limit), start=1):
        chunk = urls[start:start + limit]
        stamp = max(u[1] for u in chunk)
        path = f"/sitemaps/{n}.xml"
        docs.append(FeedDocument(path, XML, _urlset(chunk), stamp))
        lines.append(f"<sitemap><loc>{escape(config.public_url + path)}</loc>"
                     f"<lastmod>{stamp.isoformat()}</lastmod></sitemap>")
    lines.append("</sitemapindex>\n")
    return [FeedDocument("/sitemap.xml", XML, "\n".join(lines).encode("utf-8"), newest), *docs]

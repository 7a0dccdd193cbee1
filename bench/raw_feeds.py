"""The raw baseline for bench/feeds.py: the same folder as `seriesfeed feeds build`, byte
for byte, written by the code a competent engineer would hand-roll: one sqlite3 read,
feedgen for Atom and RSS, json for JSON Feed and JSON-LD, f-strings for the HTML pages
and the sitemap, babel (CLDR) for dates, list patterns and plural rules, stdlib gettext
for the Spanish words; no seriesfeed import, no Jinja2.

    python bench/raw_feeds.py CONFIG.toml OUT_DIR

CONFIG.toml is the project's configuration (read with tomllib: the site's texts, the
languages, the public URL, the store's path, ``max_entries``); OUT_DIR gets every file
`seriesfeed feeds build --out OUT_DIR` writes but its dot-files (the manifest and the
stamp): Atom, RSS and JSON Feed for each language and language x series with their RFC
5005 archive pages, a series page per language x series, a page per article, a language
index per language, sitemap.xml and robots.txt. Each file is written as seriesfeed writes
its files (a temporary file, fsync, rename, in batches of 128), so both pay the same
durability and the same kernel work. A baseline
that wrote less would measure nothing: bench/feeds.py compares the two folders file by
file and refuses the ratio when they differ.

It handles what the bench's store (bench/feeds.py ``make_store``) holds and the shipped
config.toml says, and nothing more: entries with a title, summary, URL, date and authors,
in series with a title and description per language. Not handled (a real build's, not a
baseline's): article bodies (``content_html``), sections, translation links and the
"original" fallback, editor-set part numbers, entries held for later, texts that need
cleaning or look like markup (the store holds them clean), ``article_pages = "local"``,
a WebSub hub, a sitemap past 50,000 URLs, catalogues outside the package, per-language
template overrides, SERIESFEED_* environment overrides.

The HTML below is the project's templates (templates/web/base, series, article and
language .html.j2) written out as f-strings; change them together (tests/test_bench_raw.py
fails until they agree again). Prints the count of files and their bytes.
"""

from __future__ import annotations

import gettext
import io
import json
import os
import sqlite3
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "src" / "seriesfeed" / "locale"
GENERATOR_URI = "https://github.com/seriesfeed/seriesfeed"
EXTENSION_ABOUT = GENERATOR_URI + "#json-feed-extension"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ATOM_TYPE = "application/atom+xml"


def esc(value: object) -> str:
    """Jinja2's autoescape (markupsafe): quotes as numeric references."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


def hex_refs(body: bytes) -> bytes:
    """``&amp;``, ``&lt;``, ``&gt;`` as hexadecimal references, as the feeds write them."""
    return body.replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;").replace(
        b"&gt;", b"&#x3E;")


_PENDING: list[tuple[int, str, Path]] = []  # temporary files written, not yet in place


def write(out: Path, relative: str, body: bytes, totals: list[int]) -> None:
    """As seriesfeed writes: a temporary file beside the file; every 128 of them each is
    fsynced, then each renamed over its file (``flush``)."""
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.with_name(f".{path.name}.{os.getpid()}.tmp"))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view):]
    _PENDING.append((fd, tmp, path))
    if len(_PENDING) >= 128:
        flush()
    totals[0] += 1
    totals[1] += len(body)


def flush() -> None:
    for fd, _tmp, _path in _PENDING:
        os.fsync(fd)
        os.close(fd)
    for _fd, tmp, path in _PENDING:
        os.replace(tmp, path)
    _PENDING.clear()


# -- settings ---------------------------------------------------------------------------

@dataclass
class Lang:
    code: str
    name: str
    locale: str
    feed_title: str
    feed_description: str
    site_title: str
    rights: str
    rights_label: str
    words: gettext.NullTranslations


@dataclass
class Site:
    title: str
    url: str
    zone: ZoneInfo
    default: str
    rights_url: str
    public: str
    db: str
    n: int
    catch_up_max: int
    version: str
    languages: dict[str, Lang]


def words(code: str) -> gettext.NullTranslations:
    """The language's catalogue compiled in memory (the project ships .po files only)."""
    po = LOCALE_DIR / code / "LC_MESSAGES" / "seriesfeed.po"
    if not po.is_file():
        return gettext.NullTranslations()  # English: the msgids are the text
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=code)
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return gettext.GNUTranslations(mo)


def settings(config_path: Path) -> Site:
    config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    site, web = config["site"], config.get("web", {})
    public = (web.get("base_url") or "").rstrip("/") or \
        f"http://{web.get('host', '127.0.0.1')}:{web.get('port', 8080)}"
    db = str(config["database"]["url"]).removeprefix("sqlite:///")
    # a language's own texts, else the site's
    languages = {code: Lang(code, t.get("name", code), t.get("locale") or code,
                            t.get("feed_title", ""), t.get("feed_description", ""),
                            t.get("site_title", ""), t.get("rights") or site.get("rights", ""),
                            t.get("rights_label") or site.get("rights_label", ""), words(code))
                 for code, t in config["languages"].items()}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return Site(site["title"], site["url"], ZoneInfo(site["time_zone"]),
                site["default_language"], site.get("rights_url", ""), public,
                str(config_path.parent / db) if not db.startswith("/") else db,
                config["feeds"]["max_entries"], config["digests"]["catch_up_max"],
                version, languages)


# -- the store --------------------------------------------------------------------------

@dataclass
class Item:
    seq: int
    id: str
    series: str
    language: str
    title: str
    summary: str
    url: str
    published: datetime
    updated: datetime
    slug: str
    authors: list[tuple[str, str]]  # (name, kind)
    part: int = 0
    parts: int = 0

    @property
    def path(self) -> str:
        return f"/{self.language}/{self.series}/{self.slug}/"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)  # stored as naive UTC


def read(db: str) -> tuple[list[Item], dict[str, dict[str, tuple[str, str]]]]:
    """Every published entry, newest first, with its authors and part number; every
    series' texts by language."""
    conn = sqlite3.connect(db)
    conn.execute("BEGIN")
    authors: dict[int, list[tuple[str, str]]] = {}
    for seq, name, kind in conn.execute("SELECT entry_seq, name, kind FROM entry_authors "
                                        "ORDER BY entry_seq, position"):
        authors.setdefault(seq, []).append((name, kind))
    rows = conn.execute(
        "SELECT e.seq, e.id, s.slug, e.language, e.title, e.summary, e.url, e.published, "
        "e.updated, e.slug FROM entries e JOIN series s ON s.id = e.series_id "
        "WHERE e.seq NOT IN (SELECT entry_seq FROM held_entries) "
        "ORDER BY e.published DESC, e.seq DESC").fetchall()
    series: dict[str, dict[str, tuple[str, str]]] = {}
    for slug, language, title, description in conn.execute(
            "SELECT s.slug, t.language, t.title, t.description FROM series s LEFT JOIN "
            "series_texts t ON t.series_id = s.id ORDER BY s.slug, t.language"):
        texts = series.setdefault(slug, {})
        if language is not None:
            texts[language] = (title, description)
    conn.rollback()
    conn.close()
    items = [Item(r[0], r[1], r[2], r[3], r[4], r[5], r[6], when(r[7]), when(r[8]), r[9],
                  authors.get(r[0], [])) for r in rows]
    # parts: the originals of a series (both languages) in publication order
    per_series: dict[str, list[Item]] = {}
    for e in items:
        per_series.setdefault(e.series, []).append(e)
    for listed in per_series.values():
        for number, e in enumerate(sorted(listed, key=lambda e: (e.published, e.seq)), 1):
            e.part, e.parts = number, len(listed)
    return items, series


# -- words in a language ----------------------------------------------------------------

@cache
def list_patterns(locale: str) -> dict[str, str]:
    return {k: str(v) for k, v in Locale.parse(locale).list_patterns["standard"].items()}


def byline(names: list[str], locale: str) -> str:
    """CLDR's list pattern, the two-item one for the last join (no serial comma)."""
    if len(names) < 2:
        return names[0] if names else ""
    patterns = list_patterns(locale)
    head = patterns["start"].format(names[0], names[1]) if len(names) > 2 else names[0]
    for name in names[2:-1]:
        head = patterns["middle"].format(head, name)
    return patterns["2"].format(head, names[-1])


class Dates:
    """Long dates in the site's zone, each day formatted once."""

    def __init__(self, site: Site, locale: str) -> None:
        self.zone, self.locale = site.zone, Locale.parse(locale)
        self.seen: dict[date, str] = {}

    def __call__(self, value: datetime) -> str:
        day = value.astimezone(self.zone).date()
        found = self.seen.get(day)
        if found is None:
            found = self.seen[day] = str(format_date(day, format="long", locale=self.locale))
        return found


def json_ld(data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- feeds ------------------------------------------------------------------------------

@dataclass
class Scope:
    lang: Lang
    slug: str | None
    title: str
    description: str

    @property
    def base(self) -> str:
        return f"/feeds/{self.lang.code}" + (f"/{self.slug}" if self.slug else "")


def page_url(site: Site, scope: Scope) -> str:
    if scope.slug:
        return f"{site.public}/{scope.lang.code}/{scope.slug}/"
    if scope.lang.code != site.default:
        return f"{site.public}/{scope.lang.code}/"
    return site.url.rstrip("/") + "/"


def generator(site: Site, scope: Scope, updated: datetime) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(site.public + scope.base + "/")
    fg.title(scope.title)
    fg.subtitle(scope.description or scope.title)
    fg.language(scope.lang.code)
    fg.rights(scope.lang.rights or "")
    fg.generator("seriesfeed", site.version, GENERATOR_URI)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    return fg


def links(fg: FeedGenerator, site: Site, scope: Scope, self_url: str, self_type: str,
          others: list[str]) -> None:
    fg.link(href=self_url, rel="self", type=self_type)
    for code in others:
        fg.link(href=f"{site.public}/feeds/{code}" + (f"/{scope.slug}" if scope.slug else "")
                + "/atom.xml", rel="alternate", type=ATOM_TYPE, hreflang=code)
    fg.link(href=page_url(site, scope), rel="alternate", type="text/html")


def atom_entry(e: Item) -> bytes:
    """One ``<entry>``, made once and put in every document that lists the entry."""
    fe = FeedEntry()
    fe.id(e.id)
    fe.title(e.title)
    fe.summary(e.summary.strip() or e.title)
    fe.published(e.published)
    # distinct stamps for entries of one day: the sequence as microseconds
    fe.updated(e.updated + timedelta(microseconds=e.seq % 1_000_000)
               if e.updated.microsecond == 0 else e.updated)
    for name, _kind in e.authors:
        fe.author({"name": name})
    fe.link(href=e.url, rel="alternate")
    element = fe.atom_entry()
    element.set(XML_LANG, e.language)
    for old in [child for child in element if child.tag == "link"]:
        element.remove(old)  # feedgen 1.0 drops a link's rel, type and hreflang
    element.append(element.makeelement("link", {"href": e.url, "rel": "alternate",
                                                "type": "text/html",
                                                "hreflang": e.language}))
    fragment: bytes = etree.tostring(element, pretty_print=True, encoding="UTF-8")
    return fragment


def atom(site: Site, scope: Scope, entries: list[Item], pieces: dict[int, bytes], *,
         updated: datetime, others: list[str], pages: int,
         archive: int | None = None) -> bytes:
    base = site.public + scope.base
    self_url = f"{base}/archive/{archive}.xml" if archive else f"{base}/atom.xml"
    fg = generator(site, scope, updated)
    if any(not e.authors for e in entries):
        fg.author({"name": site.title})
    if archive:
        fg.id(f"{base}/archive/{archive}")
    links(fg, site, scope, self_url, ATOM_TYPE, others)
    if archive:
        fg.link(href=f"{base}/atom.xml", rel="current", type=ATOM_TYPE)
        if archive > 1:
            fg.link(href=f"{base}/archive/{archive - 1}.xml", rel="prev-archive",
                    type=ATOM_TYPE)
        if archive < pages:
            fg.link(href=f"{base}/archive/{archive + 1}.xml", rel="next-archive",
                    type=ATOM_TYPE)
    elif pages:
        fg.link(href=f"{base}/archive/{pages}.xml", rel="prev-archive", type=ATOM_TYPE)
    head: bytes = fg.atom_str(pretty=True)
    for e in entries:
        if e.seq not in pieces:
            pieces[e.seq] = atom_entry(e)
    end = head.rindex(b"</feed>")
    body = b"".join([head[:end], *(pieces[e.seq] for e in entries), head[end:]])
    if archive:  # RFC 5005's fh:archive, which feedgen does not know
        body = body.replace(b'<feed xmlns="http://www.w3.org/2005/Atom"',
                            b'<feed xmlns="http://www.w3.org/2005/Atom" '
                            b'xmlns:fh="http://purl.org/syndication/history/1.0"', 1)
        body = body.replace(b"<id>", b"<fh:archive/><id>", 1)
    return hex_refs(body)


def rss(site: Site, scope: Scope, entries: list[Item], updated: datetime) -> bytes:
    fg = generator(site, scope, updated)
    fg.description(scope.description or scope.title)
    links(fg, site, scope, site.public + scope.base + "/rss.xml", "application/rss+xml", [])
    for e in entries:
        fe = fg.add_entry(order="append")
        fe.id(e.id)
        fe.guid(e.id, permalink=e.id == e.url)
        fe.title(e.title)
        # RSS <description> is HTML: the text escaped once more
        fe.description(esc_text(e.summary.strip() or e.title))
        fe.published(e.published)
        fe.updated(e.updated)
        if e.authors:
            fe.dc.dc_creator(byline([n for n, _k in e.authors], scope.lang.locale))
        fe.link(href=e.url, rel="alternate", type="text/html", hreflang=e.language)
    body: bytes = fg.rss_str(pretty=True)
    return hex_refs(body)


def esc_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def json_item(e: Item) -> str:
    item: dict[str, object] = {
        "id": e.id, "url": e.url, "title": e.title, "summary": e.summary,
        "content_text": e.summary, "date_published": iso_z(e.published),
        "date_modified": iso_z(e.updated)}
    if e.authors:
        item["authors"] = [{"name": n} for n, _k in e.authors]
    item["language"] = e.language
    orgs = [{"name": n, "kind": k} for n, k in e.authors if k == "organization"]
    if orgs:
        item["_seriesfeed"] = {"about": EXTENSION_ABOUT, "authors": orgs}
    return json.dumps(item, ensure_ascii=False)


def json_feed(site: Site, scope: Scope, entries: list[Item], items: dict[int, str], *,
              following: int, archive: bool) -> bytes:
    base = site.public + scope.base
    doc: dict[str, object] = {"version": "https://jsonfeed.org/version/1.1",
                              "title": scope.title, "home_page_url": page_url(site, scope),
                              "feed_url": f"{base}/feed.json"}
    if scope.description:
        doc["description"] = scope.description
    if following >= 1:
        doc["next_url"] = f"{base}/archive/{following}.json"
    doc["language"] = scope.lang.code
    rights = {"rights": scope.lang.rights, "rights_url": site.rights_url}
    doc["_seriesfeed"] = {"about": EXTENSION_ABOUT, **{k: v for k, v in rights.items() if v}}
    head = json.dumps(doc, ensure_ascii=False)[:-1] + ', "items": ['
    for e in entries:
        if e.seq not in items:
            items[e.seq] = json_item(e)
    lines = [items[e.seq] for e in entries]
    return (head + ("\n" + ",\n".join(lines) + "\n" if lines else "") + "]}\n").encode()


def feeds(site: Site, items: list[Item], series: dict[str, dict[str, tuple[str, str]]],
          out: Path, totals: list[int]) -> None:
    n = site.n
    pieces: dict[int, bytes] = {}
    lines: dict[int, str] = {}
    for lang in site.languages.values():
        feed_title = lang.feed_title or site.title
        mine = [e for e in items if e.language == lang.code]
        scopes = [(Scope(lang, None, feed_title, lang.feed_description), mine)]
        for slug, texts in series.items():
            title, description = series_text(site, texts, lang.code, slug)
            scopes.append((Scope(lang, slug, f"{title} — {feed_title}", description),
                           [e for e in mine if e.series == slug]))
        others = [c for c in site.languages if c != lang.code]
        for scope, newest in scopes:
            rel = scope.base.lstrip("/")
            current = newest[:n]
            every = sorted(newest, key=lambda e: e.seq)
            updated = max((e.updated for e in every), default=EPOCH)
            pages = len(every) // n if len(every) > n else 0
            # whatever is neither archived nor among the newest n goes in the current Atom
            shown = {e.seq for e in current}
            tail = [e for e in every[pages * n:] if e.seq not in shown]
            atom_current = sorted(current + tail, key=lambda e: (e.published, e.seq),
                                  reverse=True) if tail else current
            write(out, f"{rel}/atom.xml", atom(site, scope, atom_current, pieces,
                                               updated=updated, others=others, pages=pages),
                  totals)
            write(out, f"{rel}/rss.xml", rss(site, scope, current, updated), totals)
            write(out, f"{rel}/feed.json", json_feed(site, scope, atom_current, lines,
                                                     following=pages, archive=False), totals)
            for page in range(1, pages + 1):
                chunk = list(reversed(every[(page - 1) * n: page * n]))
                stamp = max((e.updated for e in chunk), default=updated)
                write(out, f"{rel}/archive/{page}.xml",
                      atom(site, scope, chunk, pieces, updated=stamp, others=[], pages=pages,
                           archive=page), totals)
                write(out, f"{rel}/archive/{page}.json",
                      json_feed(site, scope, chunk, lines, following=page - 1, archive=True),
                      totals)


def series_text(site: Site, texts: dict[str, tuple[str, str]], code: str,
                slug: str) -> tuple[str, str]:
    found = texts.get(code) or texts.get(site.default) or next(iter(texts.values()), None)
    return found if found else (slug, "")


# -- pages ------------------------------------------------------------------------------

CSS = """:root{color-scheme:light dark;--fg:#1f1f1f;--bg:#ffffff;--muted:#595959;--rule:#d6d6d6;--link:#0b57a4;--accent:#a30d0d;--field:#ffffff;--focus:#1a5fb4}
@media (prefers-color-scheme:dark){:root{--fg:#ececec;--bg:#121212;--muted:#b3b3b3;--rule:#3a3a3a;--link:#8ec5ff;--accent:#ff9b93;--field:#1e1e1e;--focus:#8ec5ff}}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;font-size:1.0625rem;max-width:42rem;margin:0 auto;padding:1rem;line-height:1.6;color:var(--fg);background:var(--bg);overflow-wrap:break-word;hyphens:auto}
a{color:var(--link)}a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
h1{font-size:clamp(1.6rem,5vw,2.1rem);line-height:1.2;margin:.25rem 0}h2{line-height:1.3}
.byline{color:var(--muted);margin:0}
article{margin:1.5rem 0;border-bottom:1px solid var(--rule);padding-bottom:1rem}article h2{margin:.25rem 0;font-size:1.3rem}
time{color:var(--muted);font-size:.9rem}
form{margin:2rem 0;padding:1rem;border:1px solid var(--rule);border-radius:6px}
label{display:block;margin:.5rem 0}
input[type=email],input[type=text],select{display:block;width:100%;max-width:24rem;margin-top:.25rem;padding:.5rem;font:inherit;color:var(--fg);background:var(--field);border:1px solid var(--muted);border-radius:4px}
input[type=checkbox]{width:1.1rem;height:1.1rem;accent-color:var(--accent)}
button{font:inherit;padding:.55rem 1.2rem;color:var(--bg);background:var(--accent);border:0;border-radius:4px;cursor:pointer}
a,button,.cta{transition:color .15s,background-color .15s,outline-offset .15s}
fieldset{border:1px solid var(--rule);border-radius:4px}
.hp{position:absolute;left:-10000px}
footer{font-size:.9rem;color:var(--muted);margin-top:2rem;border-top:1px solid var(--rule)}
.site{margin:0 0 1rem;font-size:.95rem;display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:0 1rem}.site p{margin:.5rem 0}.site a{color:inherit;text-decoration:none}.site .langs a{color:var(--link);text-decoration:underline}.note{color:var(--muted);font-size:.9rem}
.about{border-left:3px solid var(--rule);padding-left:.75rem}
.part{color:var(--muted);font-size:.9rem;margin:0}.new{color:var(--accent)}
.cta{display:inline-block;padding:.45rem 1rem;border:2px solid var(--accent);border-radius:4px;color:var(--accent);font-weight:600;text-decoration:none}
nav.parts{margin:2rem 0;padding:1rem 0;border-top:1px solid var(--rule);border-bottom:1px solid var(--rule)}nav.parts p{margin:.25rem 0}
.content img,.content video{max-width:100%;height:auto}.summary{font-size:1.1rem}
@media print{header.site,form,nav.parts,.cta{display:none}body{max-width:none;color:#000;background:#fff;font-family:Georgia,serif}a{color:#000}a[rel=external]::after{content:" (" attr(href) ")"}}
@media (prefers-reduced-motion:reduce){*{transition:none!important;animation:none!important;scroll-behavior:auto!important}}
"""  # noqa: E501 - the stylesheet of templates/web/base.html.j2, line for line


class Skeleton:
    """base.html.j2 for one language: everything around a page's title, head and main."""

    def __init__(self, site: Site, lang: Lang) -> None:
        title = lang.site_title or site.title
        rights = lang.rights or ""
        label = lang.rights_label or site.rights_url
        self.site_title = title
        self.top = (f'<!doctype html>\n<html lang="{esc(lang.code)}">\n<head>\n'
                    '<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, '
                    'initial-scale=1">\n<title>')
        self.middle = (f"<style>\n{CSS}</style>\n</head>\n<body>\n<header class=\"site\"><p>"
                       f'<a href="{esc(site.public)}/{esc(lang.code)}/">{esc(title)}</a></p>\n'
                       '</header>\n<main id="main">\n')
        link = (f' <a href="{esc(site.rights_url)}" rel="license">{esc(label)}</a>'
                if site.rights_url else "")
        self.bottom = f"</main>\n<footer><p>{esc(rights)}{link}</p></footer>\n</body>\n</html>\n"

    def page(self, title: str, head: str, main: str) -> bytes:
        return "".join((self.top, title, "</title>\n", head, self.middle, main,
                        self.bottom)).encode()


def form(site: Site, lang: Lang, slug: str, start_first: bool) -> str:
    """The subscribe form of series and article pages (the same for every page of a series
    but for its checked start)."""
    _ = lang.words.gettext
    first, new = (" checked", "") if start_first else ("", " checked")
    return (f'<form method="post" action="{esc(site.public)}/subscribe" id="subscribe">\n'
            f"<h2>{esc(_('Get new articles by email'))}</h2>\n"
            f'<input type="hidden" name="language" value="{esc(lang.code)}">\n'
            f'<input type="hidden" name="series" value="{esc(slug)}">\n'
            f"<label>{esc(_('Email address'))} <input type=\"email\" name=\"email\" required "
            'autocomplete="email"></label>\n'
            f"<label>{esc(_('Name (optional)'))} <input type=\"text\" name=\"name\" "
            'maxlength="100" autocomplete="name"></label>\n'
            f"<label>{esc(_('How often'))} <select name=\"frequency\"><option value=\"daily\">"
            f"{esc(_('Daily'))}</option><option value=\"weekly\" selected>{esc(_('Weekly'))}"
            "</option></select></label>\n"
            f"<fieldset><legend>{esc(_('Start with'))}</legend>\n"
            f'<label><input type="radio" name="start" value="first"{first}> '
            f"{esc(_('Part 1: the series from the beginning, one part per email'))}</label>\n"
            f'<label><input type="radio" name="start" value="new"{new}> '
            f"{esc(_('Only new parts'))}</label>\n</fieldset>\n"
            f"<label class=\"hp\" aria-hidden=\"true\">{esc(_('Leave this empty'))} <input "
            'type="text" name="website" tabindex="-1" autocomplete="off"></label>\n'
            f"<button type=\"submit\">{esc(_('Subscribe'))}</button>\n</form>\n")


def part_label(lang: Lang, e: Item) -> str:
    if not e.part or not e.parts:
        return ""
    return lang.words.ngettext("Part {part} of {n}", "Part {part} of {n}", e.parts).format(
        part=e.part, n=e.parts)


def other_languages(site: Site, lang: Lang, path: str) -> str:
    """`` · <a>Español</a>`` for each other language, as the templates' loops write them."""
    return "".join(f' · <a href="{esc(site.public)}/{esc(c)}/{path}" hreflang="{esc(c)}" '
                   f'lang="{esc(c)}">{esc(o.name)}</a>'
                   for c, o in site.languages.items() if c != lang.code)


def series_page(site: Site, skeleton: Skeleton, lang: Lang, slug: str, title: str,
                description: str, entries: list[Item], dates: Dates) -> bytes:
    _ = lang.words.gettext
    public, code = site.public, lang.code
    feed_base = f"{public}/feeds/{code}/{slug}"
    page = f"{public}/{code}/{slug}/"
    data: dict[str, Any] = {
        "@context": "https://schema.org", "@type": "CreativeWorkSeries", "name": title,
        "url": page, "inLanguage": code,
        "hasPart": [{"@type": "Article", "@id": public + e.path, "url": public + e.path,
                     "inLanguage": e.language, "name": e.title, "position": e.part,
                     "datePublished": e.published.isoformat()} for e in entries if e.part]}
    if description:
        data["description"] = description
    t = esc(title)
    head = "".join([
        f'<link rel="alternate" type="application/atom+xml" title="{t} (Atom)" '
        f'href="{esc(feed_base)}/atom.xml">\n',
        f'<link rel="alternate" type="application/rss+xml" title="{t} (RSS)" '
        f'href="{esc(feed_base)}/rss.xml">\n',
        f'<link rel="alternate" type="application/feed+json" title="{t} (JSON Feed)" '
        f'href="{esc(feed_base)}/feed.json">\n',
        *(f'<link rel="alternate" hreflang="{esc(c)}" href="{esc(public)}/{esc(c)}/'
          f'{esc(slug)}/">\n' for c in site.languages),
        f'<link rel="alternate" hreflang="x-default" href="{esc(public)}/'
        f'{esc(site.default)}/{esc(slug)}/">\n',
        f'<link rel="canonical" href="{esc(public)}/{esc(code)}/{esc(slug)}/">\n',
        f'<script type="application/ld+json">{json_ld(data)}</script>\n'])
    newest = max(entries, key=lambda e: (e.published, e.seq), default=None)
    fb = esc(feed_base)
    label = lang.words.pgettext("the label above a series' title", "Series")
    main = [f"<header>\n<p>{esc(label)}</p>\n"
            f"<h1>{t}</h1>\n<p>{esc(description)}</p>\n"
            f"<p>{esc(_('Follow this series:'))} <a href=\"{fb}/atom.xml\">Atom</a> · "
            f"<a href=\"{fb}/rss.xml\">RSS</a> · <a href=\"{fb}/feed.json\">JSON Feed</a>\n"
            f"{other_languages(site, lang, esc(slug) + '/')}</p>\n"
            f"<p><a class=\"cta\" href=\"#subscribe\">{esc(_('Get new articles by email'))}"
            "</a></p>\n</header>\n"]
    newest_mark = f" · <strong class=\"new\">{esc(_('Newest'))}</strong>"
    for e in entries:
        main.append(
            f'<article lang="{esc(e.language)}">\n<p class="part" lang="{esc(code)}">'
            f"{esc(part_label(lang, e))}{newest_mark if e is newest else ''}</p>\n"
            f'<p class="byline">{esc(byline([n for n, _k in e.authors], lang.locale))}</p>\n'
            f'<h2><a href="{esc(e.url)}" hreflang="{esc(e.language)}">{esc(e.title)}</a></h2>\n'
            f"<p>{esc(e.summary)}</p>\n"
            f'<time datetime="{e.published.isoformat()}" lang="{esc(code)}">'
            f"{esc(dates(e.published))}</time>\n</article>\n")
    if not entries:
        main.append(f"<p>{esc(_('No articles yet.'))}</p>\n")
    start_first = max((e.parts for e in entries), default=0) < site.catch_up_max
    main.append(form(site, lang, slug, start_first))
    return skeleton.page(f"{t} — {esc(skeleton.site_title)}", head, "".join(main))


def article_page(site: Site, skeleton: Skeleton, lang: Lang, slug: str, series_title: str,
                 e: Item, prev: Item | None, after: Item | None, dates: Dates,
                 forms: dict[bool, str]) -> bytes:
    _ = lang.words.gettext
    public, code = site.public, lang.code
    series_url = f"{public}/{code}/{slug}/"
    url = public + e.path
    data: dict[str, Any] = {
        "@context": "https://schema.org", "@type": "Article", "@id": url,
        "headline": e.title, "name": e.title, "url": url, "mainEntityOfPage": url,
        "inLanguage": e.language,
        "author": [{"@type": "Organization" if k == "organization" else "Person", "name": n}
                   for n, k in e.authors] or [{"@type": "Organization", "name": site.title}],
        "publisher": {"@type": "Organization", "name": site.title, "url": site.url},
        "datePublished": e.published.isoformat(), "dateModified": e.updated.isoformat(),
        "isPartOf": {"@type": "CreativeWorkSeries", "name": series_title,
                     "url": series_url}}
    if e.summary:
        data["description"] = e.summary
    if e.part:
        data["position"] = e.part
    if e.url:
        data["sameAs"] = e.url
    u, st, ti, su = esc(url), esc(series_title), esc(e.title), esc(e.summary)
    head = [f'<link rel="canonical" href="{u}">\n',
            f'<link rel="alternate" hreflang="{esc(e.language)}" href="{u}">\n',
            f'<link rel="alternate" hreflang="x-default" href="{u}">\n']
    if prev:
        head.append(f'<link rel="prev" href="{esc(public + prev.path)}">\n')
    if after:
        head.append(f'<link rel="next" href="{esc(public + after.path)}">\n')
    head.append(
        f'<link rel="alternate" type="application/atom+xml" title="{st} (Atom)" '
        f'href="{esc(public)}/feeds/{esc(code)}/{esc(slug)}/atom.xml">\n'
        f'<meta name="description" content="{su}">\n'
        '<meta property="og:type" content="article">\n'
        f'<meta property="og:title" content="{ti}">\n'
        f'<meta property="og:description" content="{su}">\n'
        f'<meta property="og:url" content="{u}">\n'
        f'<meta property="og:site_name" content="{esc(skeleton.site_title)}">\n'
        f'<meta property="og:locale" content="{esc(lang.locale)}">\n'
        f'<meta property="article:published_time" content="{e.published.isoformat()}">\n'
        f'<meta property="article:modified_time" content="{e.updated.isoformat()}">\n'
        f'<meta property="article:section" content="{st}">\n'
        '<meta name="twitter:card" content="summary">\n'
        f'<meta name="twitter:title" content="{ti}">\n'
        f'<meta name="twitter:description" content="{su}">\n'
        f'<script type="application/ld+json">{json_ld(data)}</script>\n')
    part = part_label(lang, e)
    names = [n for n, _k in e.authors]
    main = [f'<header>\n<p><a href="{esc(series_url)}">{st}</a>'
            + (f' · <span class="part">{esc(part)}</span>' if part else "") + "</p>\n"
            f"<h1>{ti}</h1>\n"
            + (f'<p class="byline">{esc(byline(names, lang.locale))}</p>\n' if names else "")
            + f'<p><time datetime="{e.published.isoformat()}">{esc(dates(e.published))}'
            "</time></p>\n</header>\n"]
    if e.summary:
        main.append(f'<p class="summary"><strong>{su}</strong></p>\n')
    if e.url:
        main.append(f'<p><a href="{esc(e.url)}" rel="external">'
                    f"{esc(_('Read it on {site}').format(site=site.title))}</a></p>\n")
    main.append('<nav class="parts">\n')
    for other, rel, words_ in ((prev, "prev", "Previous: {title}"),
                               (after, "next", "Next: {title}")):
        if other:
            hreflang = f' hreflang="{esc(other.language)}"' if other.language != code else ""
            main.append(f'<p><a href="{esc(public + other.path)}" rel="{rel}"{hreflang}>'
                        f"{esc(_(words_).format(title=other.title))}</a></p>\n")
    main.append("</nav>\n")
    main.append(forms[e.parts < site.catch_up_max])
    return skeleton.page(f"{ti} — {st}", "".join(head), "".join(main))


def language_page(site: Site, skeleton: Skeleton, lang: Lang,
                  listed: list[tuple[str, str, str, int]]) -> bytes:
    _ = lang.words.gettext
    public, code = esc(site.public), esc(lang.code)
    t = esc(skeleton.site_title)
    head = "".join([
        f'<link rel="alternate" type="application/atom+xml" title="{t} (Atom)" '
        f'href="{public}/feeds/{code}/atom.xml">\n',
        f'<link rel="alternate" type="application/rss+xml" title="{t} (RSS)" '
        f'href="{public}/feeds/{code}/rss.xml">\n',
        f'<link rel="alternate" type="application/feed+json" title="{t} (JSON Feed)" '
        f'href="{public}/feeds/{code}/feed.json">\n',
        *(f'<link rel="alternate" hreflang="{esc(c)}" href="{public}/{esc(c)}/">\n'
          for c in site.languages),
        f'<link rel="alternate" hreflang="x-default" href="{public}/">\n'])
    main = [f"<h1>{t}</h1>\n"]
    if lang.feed_description:
        main.append(f"<p>{esc(lang.feed_description)}</p>\n")
    main.append(f"<p>{esc(_('Every article:'))} <a href=\"{public}/feeds/{code}/atom.xml\">Atom"
                f"</a> · <a href=\"{public}/feeds/{code}/rss.xml\">RSS</a> · <a href=\""
                f"{public}/feeds/{code}/feed.json\">JSON Feed</a>\n"
                f"{other_languages(site, lang, '')}</p>\n")
    def articles(count: int) -> str:
        return lang.words.ngettext("{n} article", "{n} articles", count).format(n=count)

    for slug, title, description, count in listed:
        s = esc(slug)
        main.append(f"<article>\n<h2><a href=\"{public}/{code}/{s}/\">{esc(title)}</a></h2>\n"
                    + (f"<p>{esc(description)}</p>\n" if description else "")
                    + f"<p class=\"note\">{esc(articles(count))}"
                    f" · <a href=\"{public}/feeds/{code}/{s}/atom.xml\">Atom</a> · <a href=\""
                    f"{public}/feeds/{code}/{s}/rss.xml\">RSS</a> · <a href=\"{public}/feeds/"
                    f"{code}/{s}/feed.json\">JSON Feed</a></p>\n</article>\n")
    if not listed:
        main.append(f"<p>{esc(_('No series yet.'))}</p>\n")
    return skeleton.page(t, head, "".join(main))


def pages(site: Site, items: list[Item], series: dict[str, dict[str, tuple[str, str]]],
          out: Path, totals: list[int]) -> None:
    for lang in site.languages.values():
        skeleton = Skeleton(site, lang)
        dates = Dates(site, lang.locale)
        listed: list[tuple[str, str, str, int]] = []
        for slug, texts in series.items():
            title, description = series_text(site, texts, lang.code, slug)
            # reading order: part 1 first
            entries = sorted((e for e in items if e.language == lang.code and e.series == slug),
                             key=lambda e: (e.part or 1 << 30, e.published, e.seq))
            listed.append((slug, title, description, len(entries)))
            write(out, f"{lang.code}/{slug}/index.html",
                  series_page(site, skeleton, lang, slug, title, description, entries, dates),
                  totals)
            forms = {first: form(site, lang, slug, first) for first in (True, False)}
            last = len(entries) - 1
            for i, e in enumerate(entries):
                write(out, f"{lang.code}/{slug}/{e.slug}/index.html",
                      article_page(site, skeleton, lang, slug, title, e,
                                   entries[i - 1] if i > 0 else None,
                                   entries[i + 1] if i < last else None, dates, forms),
                      totals)
        write(out, f"{lang.code}/index.html", language_page(site, skeleton, lang, listed),
              totals)


def sitemap(site: Site, items: list[Item], series: list[str]) -> bytes:
    base, codes, default = site.public, list(site.languages), site.default
    newest: dict[tuple[str, str | None], datetime] = {}
    for e in items:
        for key in ((e.language, None), (e.language, e.series)):
            newest[key] = max(newest.get(key, e.updated), e.updated)
    every = max(newest.values(), default=EPOCH)
    urls: list[tuple[str, datetime, list[tuple[str, str]]]] = []
    index_alts = [(c, f"{base}/{c}/") for c in codes] + [("x-default", f"{base}/{default}/")]
    for code in codes:
        urls.append((f"{base}/{code}/", newest.get((code, None), every), index_alts))
    for slug in series:
        alts = [(c, f"{base}/{c}/{slug}/") for c in codes] + \
            [("x-default", f"{base}/{default}/{slug}/")]
        stamp = max((v for k, v in newest.items() if k[1] == slug), default=EPOCH)
        for code in codes:
            urls.append((f"{base}/{code}/{slug}/", newest.get((code, slug), stamp), alts))
    for e in sorted(items, key=lambda e: e.seq):
        if e.language in site.languages:
            urls.append((base + e.path, e.updated, []))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
             'xmlns:xhtml="http://www.w3.org/1999/xhtml">']
    for loc, lastmod, alternates in urls:
        lines.append(f"<url><loc>{xml_escape(loc)}</loc><lastmod>{lastmod.isoformat()}"
                     "</lastmod>")
        for lang, href in alternates:
            lines.append(f'  <xhtml:link rel="alternate" hreflang={quoteattr(lang)} '
                         f"href={quoteattr(href)}/>")
        lines.append("</url>")
    lines.append("</urlset>\n")
    return "\n".join(lines).encode("utf-8")


def main() -> None:
    config_path, out_dir = sys.argv[1:3]
    site = settings(Path(config_path))
    out, totals = Path(out_dir), [0, 0]
    items, series = read(site.db)
    feeds(site, items, series, out, totals)
    pages(site, items, series, out, totals)
    write(out, "sitemap.xml", sitemap(site, items, list(series)), totals)
    write(out, "robots.txt", (
        "User-agent: *\nDisallow: /confirm/\nDisallow: /unsubscribe/\nDisallow: /undo/\n"
        "Disallow: /preferences/\nDisallow: /subscribe\nDisallow: /*/manage/\n"
        f"Disallow: /admin/\n\nSitemap: {site.public}/sitemap.xml\n").encode(), totals)
    flush()
    print(f"RESULT {totals[0]} {totals[1]}")


if __name__ == "__main__":
    main()

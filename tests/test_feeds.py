"""Feeds: what feedparser reads, what the XML says, determinism, publishing and HTTP caching."""

from __future__ import annotations

import gzip
import html
import json
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from seriesfeed import actions
from seriesfeed.actions import plan_feeds
from seriesfeed.config import Config, load_config
from seriesfeed.feeds import Scope, build_atom, build_rss
from seriesfeed.models import Author, AuthorKind, Entry, Series, SeriesText
from seriesfeed.store import Store
from seriesfeed.text import clean_line, clean_text
from seriesfeed.web import create_app
from tests.conftest import EXAMPLE_JSON, SEED_PAGE

ATOM = "{http://www.w3.org/2005/Atom}"
SLUG = "reflections-on-the-iso-crisis"


@pytest.fixture
def seeded(store: Store, config: Config) -> Store:
    actions.import_entries(store, config, SEED_PAGE)
    actions.import_entries(store, config, EXAMPLE_JSON)
    return store


def _docs(config: Config, store: Store) -> dict[str, bytes]:
    return {d.path: d.body for d in plan_feeds(config, store)}


def test_every_feed_parses_with_the_right_entries(seeded: Store, config: Config) -> None:
    docs = _docs(config, seeded)
    for lang, count in (("en", 18), ("es", 2)):
        for base in (f"/feeds/{lang}", f"/feeds/{lang}/{SLUG}"):
            for name in ("atom.xml", "rss.xml"):
                parsed = feedparser.parse(docs[f"{base}/{name}"])
                assert not parsed.bozo, (base, name, parsed.get("bozo_exception"))
                assert len(parsed.entries) == count
                assert parsed.feed.language == lang
                ids = [e.id for e in parsed.entries]
                assert all(i.startswith("tag:socialistworker.org,2019-") for i in ids)
                assert parsed.entries[0].published_parsed >= parsed.entries[-1].published_parsed
            data = json.loads(docs[f"{base}/feed.json"])
            assert data["version"] == "https://jsonfeed.org/version/1.1"
            assert len(data["items"]) == count
            assert data["feed_url"] == f"{config.public_url}{base}/feed.json"
    atom = feedparser.parse(docs[f"/feeds/en/{SLUG}/atom.xml"])
    canadian = next(e for e in atom.entries if e.title == "A letter from Canadian comrades")
    assert [a.name for a in canadian.authors] == ["David Camfield", "Todd Gordon",
                                                   "Brian McDougall", "Sandra Sarner"]
    assert canadian.link == "https://socialistworker.org/2019/03/21/a-letter-from-canadian-comrades/"
    carta = next(e for e in feedparser.parse(docs["/feeds/es/atom.xml"]).entries
                 if e.title == "Carta a las bases de la ISO")
    assert carta.link.endswith("/2019/03/26/carta-a-las-bases-de-la-iso/")
    assert {(lk.get("hreflang"), lk.href) for lk in carta.links} >= {
        ("en", "https://socialistworker.org/2019/03/15/letter-to-the-iso-membership/")}


def test_atom_xml_follows_the_rules(seeded: Store, config: Config) -> None:
    body = _docs(config, seeded)["/feeds/es/atom.xml"]
    root = ET.fromstring(body)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "es"
    links = root.findall(f"{ATOM}link")
    selfs = [lk for lk in links if lk.get("rel") == "self"]
    assert [lk.get("href") for lk in selfs] == [f"{config.public_url}/feeds/es/atom.xml"]
    assert any(lk.get("rel") == "alternate" and lk.get("hreflang") == "en" for lk in links)
    assert root.findtext(f"{ATOM}updated") == "2019-04-09T04:00:01+00:00"
    assert "by-nc-nd 3.0" in (root.findtext(f"{ATOM}rights") or "")
    assert root.find(f"{ATOM}generator") is not None
    for entry in root.findall(f"{ATOM}entry"):
        assert entry.findtext(f"{ATOM}published") and entry.findtext(f"{ATOM}updated")
        assert entry.find(f"{ATOM}category").get("term") == "Obrero Socialista"  # type: ignore[union-attr]
        alternates = [(lk.get("type"), lk.get("hreflang")) for lk in entry.findall(f"{ATOM}link")
                      if lk.get("rel") == "alternate"]
        assert len(alternates) == len(set(alternates)), "duplicate alternate links"
        assert alternates[-1] == ("text/html", "es")
    en = ET.fromstring(_docs(config, seeded)[f"/feeds/en/{SLUG}/atom.xml"])
    canadian = next(e for e in en.findall(f"{ATOM}entry")
                    if e.findtext(f"{ATOM}title") == "A letter from Canadian comrades")
    assert len(canadian.findall(f"{ATOM}author")) == 4
    ids = {ET.fromstring(b).findtext(f"{ATOM}id") for p, b in _docs(config, seeded).items()
           if p.endswith("atom.xml")}
    assert len(ids) == 4  # en, es, site-wide and per series: four distinct documents


def test_rss_xml_follows_the_rules(seeded: Store, config: Config) -> None:
    body = _docs(config, seeded)[f"/feeds/en/{SLUG}/rss.xml"]
    channel = ET.fromstring(body).find("channel")
    assert channel is not None
    assert channel.findtext("language") == "en"
    assert "by-nc-nd" in (channel.findtext("copyright") or "")
    self_link = channel.find("{http://www.w3.org/2005/Atom}link")
    assert self_link is not None and self_link.get("rel") == "self"
    assert self_link.get("href") == f"{config.public_url}/feeds/en/{SLUG}/rss.xml"
    assert parsedate_to_datetime(channel.findtext("lastBuildDate") or "") == \
        datetime(2019, 4, 19, 4, 0, tzinfo=UTC)
    for item in channel.findall("item"):
        assert item.find("author") is None  # names go to dc:creator, never <author>
        guid = item.find("guid")
        assert guid is not None and guid.get("isPermaLink") == "false"
        assert parsedate_to_datetime(item.findtext("pubDate") or "").tzinfo is not None
        assert item.findall("{http://purl.org/dc/elements/1.1/}creator")
        assert (item.findtext("link") or "").startswith("https://socialistworker.org/")


def test_same_store_gives_the_same_bytes_and_rebuild_writes_nothing(
        seeded: Store, config: Config, tmp_path: Path) -> None:
    assert _docs(config, seeded) == _docs(config, seeded)
    out = tmp_path / "public"
    first = actions.build_feeds(seeded, config, out)
    # 12 feeds, 2 series pages, 20 article pages, 2 language indexes, sitemap, robots.txt
    assert len(first.written) == 38
    assert (out / "feeds/es/reflections-on-the-iso-crisis/rss.xml").is_file()
    page = (out / "es/reflections-on-the-iso-crisis/index.html").read_text(encoding="utf-8")
    assert "26 de marzo de 2019" in page and 'hreflang="en"' in page
    assert 'type="application/atom+xml"' in page and 'name="website"' in page
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = actions.build_feeds(seeded, config, out)
    assert again.written == [] and again.skipped
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_archives_keep_the_full_history_reachable(store: Store, make_config, database_url: str  # type: ignore[no-untyped-def]
                                                  ) -> None:
    config = load_config(make_config(database={"url": database_url},
                                     feeds={"max_entries": 5, "out_dir": "var/public"}), env={})
    actions.import_entries(store, config, SEED_PAGE)
    docs = _docs(config, store)
    current = ET.fromstring(docs["/feeds/en/atom.xml"])
    assert len(current.findall(f"{ATOM}entry")) == 5
    seen: set[str] = set()
    link = next(lk.get("href") for lk in current.findall(f"{ATOM}link")
                if lk.get("rel") == "prev-archive")
    pages = 0
    while link and pages < 10:
        path = link.removeprefix(config.public_url)
        doc = ET.fromstring(docs[path])
        assert doc.find("{http://purl.org/syndication/history/1.0}archive") is not None
        seen |= {e.findtext(f"{ATOM}id") or "" for e in doc.findall(f"{ATOM}entry")}
        link = next((lk.get("href") for lk in doc.findall(f"{ATOM}link")
                     if lk.get("rel") == "prev-archive"), None)
        pages += 1
    seen |= {e.findtext(f"{ATOM}id") or "" for e in current.findall(f"{ATOM}entry")}
    assert pages == 3 and len(seen) == 18
    # an article stored late with an old date is in no full archive page and not among the
    # newest five: the current Atom document still carries it
    late = actions.add_entry(store, config, Entry(
        series=SLUG, language="en", title="Found in a drawer", summary="Old",
        published=datetime(2002, 2, 2, tzinfo=config.zone)))
    current = ET.fromstring(_docs(config, store)["/feeds/en/atom.xml"])
    ids = [e.findtext(f"{ATOM}id") for e in current.findall(f"{ATOM}entry")]
    assert late.id in ids and len(ids) == 6  # the newest five, and the late one
    assert ids[-1] == late.id  # still newest first


def test_an_entry_without_authors_inherits_the_feed_author(store: Store,
                                                           config: Config) -> None:
    actions.import_entries(store, config, SEED_PAGE)
    actions.add_entry(store, config, Entry(series=SLUG, language="es", title="Sin firma",
                                           summary="Anónimo",
                                           published=datetime(2019, 5, 1, tzinfo=config.zone)))
    root = ET.fromstring(_docs(config, store)["/feeds/es/atom.xml"])
    # RFC 4287 4.1.1: every entry has an author, its own or the feed's
    assert root.findtext(f"{ATOM}author/{ATOM}name") == config.site.title
    en = ET.fromstring(_docs(config, store)["/feeds/en/atom.xml"])
    assert en.find(f"{ATOM}author") is None  # every English entry has its own


_hostile = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60) | \
    st.sampled_from(["]]>", "&amp; <script>alert(1)</script>", "\u202eRTL", "emoji 🎉",
                     "\x00\x0b\x80 controls", "שלום עולם"])


def atom_text(entry: ET.Element, name: str) -> str:
    """An Atom text construct's text as a reader shows it: type="html" (what text that reads
    like markup is written as) is HTML whose every character is escaped text."""
    element = entry.find(f"{ATOM}{name}")
    assert element is not None
    text = element.text or ""
    if element.get("type") == "html":
        assert "<" not in text  # escaped: no element can reach a reader
        return html.unescape(text)
    assert element.get("type") in (None, "text")
    return text


def test_text_that_reads_like_markup_is_declared_html_and_shown_as_typed() -> None:
    config = load_config(Path("config.toml"), env={})
    scope = Scope("en", Series("s", {"en": SeriesText("S")}), "S", "D")
    for title, summary in [("<b>bold</b> and <i>it</i>", "<p>A paragraph</p>"),
                           ("Fish &amp; chips", "&copy; &#169; &0;"),
                           ("Plain", "a < b and c > d")]:
        entry = Entry(series="s", language="en", title=title, summary=summary,
                      published=datetime(2019, 3, 15, tzinfo=UTC),
                      id="tag:example.org,2019:1", url="https://example.org/1", seq=1)
        atom = build_atom(config, scope, [entry], {}, updated=entry.published,
                          other_languages=[])
        got = ET.fromstring(atom).find(f"{ATOM}entry")
        assert got is not None
        assert atom_text(got, "title") == title and atom_text(got, "summary") == summary
        markup = "<" in title or "&" in title
        assert (got.find(f"{ATOM}title").get("type") == "html") is markup  # type: ignore[union-attr]
        parsed = feedparser.parse(atom).entries[0]
        # a reader renders the HTML it is given: the typed characters, no element
        assert html.unescape(parsed.title) == title if markup else parsed.title == title


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_hostile, summary=_hostile, byline=_hostile)
def test_any_text_gives_well_formed_feeds(title: str, summary: str, byline: str) -> None:
    config = load_config(Path("config.toml"), env={})
    entry = Entry(series="s", language="en", title=title, summary=summary,
                  authors=(Author(byline, AuthorKind.PERSON),),
                  published=datetime(2019, 3, 15, tzinfo=UTC), id="tag:example.org,2019:1",
                  url="https://example.org/1", seq=1)
    scope = Scope("en", Series("s", {"en": SeriesText("S")}), "S", "D")
    for body in (build_atom(config, scope, [entry], {}, updated=entry.published,
                            other_languages=[]),
                 build_rss(config, scope, [entry], {}, updated=entry.published)):
        ET.fromstring(body)  # well-formed
        parsed = feedparser.parse(body)
        assert not parsed.bozo
        assert len(parsed.entries) == 1
    atom = build_atom(config, scope, [entry], {}, updated=entry.published, other_languages=[])
    assert b"<script>" not in atom  # markup is escaped text, never elements
    # the text survives: what XML 1.0 can carry comes back exactly as it went in
    got = ET.fromstring(atom).find(f"{ATOM}entry")
    assert got is not None
    title_text = clean_line(title) or "(untitled)"
    assert atom_text(got, "title") == title_text
    assert atom_text(got, "summary") == (clean_text(summary).strip() or title_text)
    assert [a.findtext(f"{ATOM}name") for a in got.findall(f"{ATOM}author")] == \
        ([clean_line(byline)] if clean_line(byline) else [])


def test_http_200_then_304_then_200_after_a_new_entry(seeded: Store, config: Config) -> None:
    client = TestClient(create_app(config, seeded))
    first = client.get("/feeds/en/atom.xml", headers={"Accept-Encoding": "identity"})
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/atom+xml; charset=utf-8"
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public")
    again = client.get("/feeds/en/atom.xml", headers={"If-None-Match": etag,
                                                       "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    since = client.get("/feeds/en/atom.xml", headers={
        "If-Modified-Since": first.headers["last-modified"], "Accept-Encoding": "identity"})
    assert since.status_code == 304
    actions.add_entry(seeded, config, Entry(
        series=SLUG, language="en", title="A new one", summary="New",
        published=datetime(2019, 5, 1, tzinfo=config.zone)))
    after = client.get("/feeds/en/atom.xml", headers={"If-None-Match": etag,
                                                       "Accept-Encoding": "identity"})
    assert after.status_code == 200 and b"A new one" in after.content
    assert after.headers["etag"] != etag


def test_if_modified_since_is_never_stale_after_a_back_dated_entry(seeded: Store,
                                                                   config: Config) -> None:
    """Last-Modified follows the bytes, not the entries' dates: an article imported today
    with a 2019 date changes the feed, and an If-Modified-Since poll must see it."""
    client = TestClient(create_app(config, seeded))
    first = client.get("/feeds/en/atom.xml")
    stamp = first.headers["last-modified"]
    assert client.get("/feeds/en/atom.xml",
                      headers={"If-Modified-Since": stamp}).status_code == 304
    actions.add_entry(seeded, config, Entry(
        series=SLUG, language="en", title="An old piece found today", summary="Old",
        published=datetime(2019, 1, 2, tzinfo=config.zone)))
    polled = client.get("/feeds/en/atom.xml", headers={"If-Modified-Since": stamp})
    assert polled.status_code == 200 and b"An old piece found today" in polled.content
    assert polled.headers["last-modified"] != stamp
    # a document whose bytes did not change keeps its time and still answers 304
    es = client.get("/feeds/es/atom.xml", headers={"If-Modified-Since": stamp})
    assert es.status_code == 304


def test_gzip_head_404_and_json_media_type(seeded: Store, config: Config) -> None:
    client = TestClient(create_app(config, seeded))
    zipped = client.get("/feeds/es/rss.xml", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert b"Obrero Socialista" in zipped.content  # httpx decodes it
    revalidated = client.get("/feeds/es/rss.xml", headers={
        "Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]})
    assert revalidated.status_code == 304
    head = client.head("/feeds/es/feed.json")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/feed+json; charset=utf-8"
    for missing in ("/feeds/xx/atom.xml", f"/feeds/en/{SLUG}-nope/atom.xml", "/xx/nope/"):
        response = client.get(missing)
        assert response.status_code == 404
        assert "text/html" in response.headers["content-type"]
    page = client.get(f"/es/{SLUG}/")
    assert page.status_code == 200 and "26 de marzo de 2019" in page.text
    assert client.get(f"/es/{SLUG}", follow_redirects=False).status_code == 308
    assert gzip.decompress(gzip.compress(b"x")) == b"x"


def test_websub_hub_is_linked_and_pinged(seeded: Store, make_config, database_url: str,  # type: ignore[no-untyped-def]
                                         tmp_path: Path) -> None:
    received: list[bytes] = []

    class Hub(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hub = f"http://127.0.0.1:{server.server_port}/hub"
        config = load_config(make_config(database={"url": database_url},
                                         websub={"hub": hub}), env={})
        report = actions.build_feeds(seeded, config, tmp_path / "pub")
        assert report.written
        atom = ET.fromstring((tmp_path / "pub/feeds/en/atom.xml").read_bytes())
        assert any(lk.get("rel") == "hub" and lk.get("href") == hub
                   for lk in atom.findall(f"{ATOM}link"))
        assert len(received) == 12  # 4 scopes x 3 formats
        assert any(b"hub.mode=publish" in r and b"feeds%2Fen%2Fatom.xml" in r for r in received)
        received.clear()
        actions.build_feeds(seeded, config, tmp_path / "pub")
        assert received == []  # nothing changed, nothing pinged
    finally:
        server.shutdown()
        server.server_close()

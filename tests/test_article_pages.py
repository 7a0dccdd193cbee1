"""Article pages, series pages in reading order, the sitemap and robots.txt, full text in
feeds and digests, and links to our own pages when [site] article_pages = "local"."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import feedparser
import html5lib
import pytest
from starlette.testclient import TestClient

from seriesfeed import actions
from seriesfeed.actions.feeds import plan_site, site_data
from seriesfeed.config import Config, load_config
from seriesfeed.models import Author, AuthorKind, Entry, Frequency
from seriesfeed.pages import build_sitemap
from seriesfeed.store import Store, open_store
from seriesfeed.web import create_app
from tests.conftest import EXAMPLE_JSON, SEED_PAGE, ConfigFactory
from tests.smtp_server import SmtpServer

SLUG = "reflections-on-the-iso-crisis"
BASE = "https://feeds.example.org"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
XHTML = "{http://www.w3.org/1999/xhtml}"
LETTER = f"{BASE}/en/{SLUG}/letter-to-the-iso-membership/"
CARTA = f"{BASE}/es/{SLUG}/carta-a-las-bases-de-la-iso/"


def _config(make_config: ConfigFactory, database_url: str, **extra: dict[str, Any]) -> Config:
    return load_config(make_config(database={"url": database_url},
                                   web={"host": "127.0.0.1", "port": 8080, "base_url": BASE},
                                   **extra), env={})


@pytest.fixture
def site(store: Store, make_config: ConfigFactory, database_url: str) -> tuple[Config, Store]:
    config = _config(make_config, database_url)
    actions.import_entries(store, config, SEED_PAGE)
    actions.import_entries(store, config, EXAMPLE_JSON)
    return config, store


def _docs(config: Config, store: Store) -> dict[str, bytes]:
    return {d.path: d.body for d in plan_site(store, config)}


def parse_html(body: bytes) -> Any:
    """The page as a browser's parser reads it; html5lib's own errors fail the test."""
    parser = html5lib.HTMLParser(strict=False, namespaceHTMLElements=False)
    tree = parser.parse(body)
    assert parser.errors == [], parser.errors[:3]
    return tree


def ld_of(tree: Any) -> list[dict[str, Any]]:
    return [json.loads(s.text) for s in tree.iter("script")
            if s.get("type") == "application/ld+json"]


def links(tree: Any, rel: str) -> list[dict[str, str]]:
    return [dict(x.attrib) for x in tree.iter("link") if x.get("rel") == rel]


def test_an_article_page_per_entry_per_language_with_its_json_ld(
        site: tuple[Config, Store]) -> None:
    config, store = site
    docs = _docs(config, store)
    found = actions.list_entries(store)
    assert len(found) == 20
    for e in found:
        path = f"/{e.language}/{SLUG}/{e.slug}/"
        tree = parse_html(docs[path])
        assert tree.find(".//html").get("lang") if tree.tag != "html" else tree.get("lang")
        (ld,) = ld_of(tree)
        assert ld["@type"] == "Article" and ld["headline"] == e.title
        assert ld["inLanguage"] == e.language and ld["position"] == e.part
        assert ld["isPartOf"]["@type"] == "CreativeWorkSeries"
        assert ld["isPartOf"]["url"] == f"{BASE}/{e.language}/{SLUG}/"
        assert ld["sameAs"] == e.url
        assert [a["name"] for a in ld["author"]] == [a.name for a in e.authors]
        kinds = {a.kind for a in e.authors}
        assert {a["@type"] for a in ld["author"]} == {
            "Organization" if k is AuthorKind.ORGANIZATION else "Person" for k in kinds}
        assert links(tree, "canonical") == [{"rel": "canonical", "href": BASE + path}]
        alternates = {a["hreflang"]: a["href"] for a in links(tree, "alternate")
                      if "hreflang" in a}
        assert alternates[e.language] == BASE + path and "x-default" in alternates
        metas = {m.get("property") or m.get("name"): m.get("content")
                 for m in tree.iter("meta")}
        assert metas["og:title"] == e.title and metas["og:url"] == BASE + path
        assert metas["og:type"] == "article" and metas["twitter:card"] == "summary"
        text = "".join(tree.itertext())
        assert e.title in text and e.summary in text
        label = f"Part {e.part} of 18" if e.language == "en" else f"Parte {e.part} de 18"
        assert label in text, (path, label)
        originals = [a.get("href") for a in tree.iter("a") if a.get("rel") == "external"]
        assert originals == [e.url]
        assert tree.find(".//form[@id='subscribe']") is not None
    # the pair of translations point at each other, both ways
    carta = parse_html(docs[CARTA.removeprefix(BASE)])
    (ld,) = ld_of(carta)
    assert ld["translationOfWork"]["url"] == LETTER and ld["translationOfWork"]["inLanguage"] \
        == "en"
    alternates = {a["hreflang"]: a["href"] for a in links(carta, "alternate") if "hreflang" in a}
    assert alternates == {"en": LETTER, "es": CARTA, "x-default": LETTER}
    (ld,) = ld_of(parse_html(docs[LETTER.removeprefix(BASE)]))
    assert [w["url"] for w in ld["workTranslation"]] == [CARTA]


def test_prev_and_next_stay_in_the_readers_language(site: tuple[Config, Store]) -> None:
    config, store = site
    docs = _docs(config, store)
    english = [e for e in actions.list_entries(store, "en")]
    first, second, last = english[0], english[1], english[-1]
    tree = parse_html(docs[f"/en/{SLUG}/{second.slug}/"])
    assert links(tree, "prev")[0]["href"] == f"{BASE}/en/{SLUG}/{first.slug}/"
    assert links(tree, "next")[0]["href"] == f"{BASE}/en/{SLUG}/{english[2].slug}/"
    assert links(parse_html(docs[f"/en/{SLUG}/{first.slug}/"]), "prev") == []
    assert links(parse_html(docs[f"/en/{SLUG}/{last.slug}/"]), "next") == []
    # the Spanish reader goes from one Spanish part to the next
    carta = parse_html(docs[CARTA.removeprefix(BASE)])
    (nxt,) = links(carta, "next")
    assert nxt["href"].startswith(f"{BASE}/es/{SLUG}/el-voto-de-la-iso")
    text = "".join(carta.itertext())
    assert "Siguiente:" in text and "Leer en inglés" in text


def test_the_series_page_lists_parts_in_reading_order_with_the_newest_marked(
        site: tuple[Config, Store]) -> None:
    config, store = site
    tree = parse_html(_docs(config, store)[f"/en/{SLUG}/"])
    parts = [p.text for p in tree.iter("p") if p.get("class") == "part"]
    assert parts[:2] == ["Part 1 of 18", "Part 2 of 18"] and len(parts) == 18
    assert "Part 18 of 18" in parts[-1]
    newest = [p for p in tree.iter("strong") if p.get("class") == "new"]
    assert [n.text for n in newest] == ["Newest"]
    (ld,) = ld_of(tree)
    assert ld["@type"] == "CreativeWorkSeries" and ld["url"] == f"{BASE}/en/{SLUG}/"
    assert [p["position"] for p in ld["hasPart"]] == list(range(1, 19))
    assert ld["hasPart"][0]["url"] == LETTER
    es = parse_html(_docs(config, store)[f"/es/{SLUG}/"])
    assert next(p.text for p in es.iter("p") if p.get("class") == "part") == "Parte 1 de 18"
    assert [n.text for n in es.iter("strong") if n.get("class") == "new"] == ["La más reciente"]


def test_a_title_holding_script_cannot_break_out_of_the_page_or_its_json_ld(
        site: tuple[Config, Store]) -> None:
    config, store = site
    evil = '</script><script>window.__xss=1</script><img src=x onerror=alert(1)> & "q"'
    stored = actions.add_entry(store, config, Entry(
        series=SLUG, language="en", title=evil, summary=evil,
        content_html="<p>Body<script>alert(2)</script></p>",
        published=datetime(2019, 5, 1, tzinfo=UTC), authors=(Author("A </script> B"),)))
    docs = _docs(config, store)
    body = docs[f"/en/{SLUG}/{stored.slug}/"]
    tree = parse_html(body)
    assert [s.get("type") for s in tree.iter("script")] == ["application/ld+json"]
    assert not any(i.get("onerror") for i in tree.iter("img"))
    (ld,) = ld_of(tree)
    assert ld["headline"] == evil and ld["author"][0]["name"] == "A </script> B"
    assert b"</script><script>" not in body
    series = parse_html(docs[f"/en/{SLUG}/"])
    assert [s.get("type") for s in series.iter("script")] == ["application/ld+json"]
    assert evil in [p["name"] for p in ld_of(series)[0]["hasPart"]]


def test_sitemap_names_every_page_with_its_translations_and_robots_names_the_sitemap(
        site: tuple[Config, Store]) -> None:
    config, store = site
    docs = _docs(config, store)
    root = ET.fromstring(docs["/sitemap.xml"])
    assert root.tag == f"{SM}urlset"
    urls = {u.findtext(f"{SM}loc"): u for u in root.findall(f"{SM}url")}
    # 2 language indexes, 2 series pages, 20 article pages
    assert len(urls) == 24 and LETTER in urls and CARTA in urls
    for loc, u in urls.items():
        assert loc is not None and loc.removeprefix(BASE) in docs
        assert datetime.fromisoformat(u.findtext(f"{SM}lastmod") or "").tzinfo is not None
    letter = {x.get("hreflang"): x.get("href") for x in urls[LETTER].findall(f"{XHTML}link")}
    assert letter == {"en": LETTER, "es": CARTA, "x-default": LETTER}
    carta = {x.get("hreflang"): x.get("href") for x in urls[CARTA].findall(f"{XHTML}link")}
    assert carta == letter
    robots = docs["/robots.txt"].decode()
    assert f"Sitemap: {BASE}/sitemap.xml" in robots.splitlines()
    assert "Disallow: /unsubscribe/" in robots.splitlines()
    # past the limit: an index of sitemaps, each within the limit, naming every URL once
    documents = build_sitemap(config, site_data(store), limit=10)
    index = ET.fromstring(documents[0].body)
    assert documents[0].path == "/sitemap.xml" and index.tag == f"{SM}sitemapindex"
    named = [s.findtext(f"{SM}loc") for s in index.findall(f"{SM}sitemap")]
    assert named == [f"{BASE}/sitemaps/{n}.xml" for n in (1, 2, 3)]
    parts = [ET.fromstring(d.body) for d in documents[1:]]
    counts = [len(p.findall(f"{SM}url")) for p in parts]
    assert counts == [10, 10, 4]
    assert {u.findtext(f"{SM}loc") for p in parts for u in p.findall(f"{SM}url")} == set(urls)


def test_the_web_app_serves_article_pages_sitemap_and_robots(
        site: tuple[Config, Store]) -> None:
    config, store = site
    client = TestClient(create_app(config, store))
    page = client.get(CARTA.removeprefix(BASE))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Parte 1 de 18" in page.text
    bare = client.get(CARTA.removeprefix(BASE).rstrip("/"), follow_redirects=False)
    assert bare.status_code == 308
    sitemap = client.get("/sitemap.xml")
    assert sitemap.status_code == 200 and sitemap.headers["content-type"].startswith(
        "application/xml")
    again = client.get("/sitemap.xml", headers={"If-None-Match": sitemap.headers["etag"]})
    assert again.status_code == 304
    robots = client.get("/robots.txt")
    assert robots.status_code == 200 and robots.headers["content-type"].startswith("text/plain")
    assert client.get(f"/en/{SLUG}/no-such-article/").status_code == 404


def test_feeds_build_writes_article_pages_sitemap_and_robots(
        site: tuple[Config, Store], tmp_path: Path) -> None:
    config, store = site
    out = tmp_path / "public"
    actions.build_feeds(store, config, out)
    for e in actions.list_entries(store):
        page = out / e.language / SLUG / str(e.slug) / "index.html"
        assert page.is_file(), page
    parse_html((out / "es" / SLUG / "carta-a-las-bases-de-la-iso" / "index.html").read_bytes())
    assert ET.parse(out / "sitemap.xml").getroot().tag == f"{SM}urlset"
    assert (out / "robots.txt").read_text().endswith(f"Sitemap: {BASE}/sitemap.xml\n")


def _with_body(store: Store, config: Config) -> Entry:
    return actions.add_entry(store, config, Entry(
        series=SLUG, language="en", title="With a body", summary="The summary.",
        content_html='<p>The whole <em>article</em> &amp; more.</p><script>x()</script>',
        published=datetime(2019, 5, 1, tzinfo=UTC), authors=(Author("A. Writer"),)))


@pytest.mark.parametrize("mode", ["summary", "full"])
def test_feeds_carry_the_body_only_when_content_is_full(
        store: Store, make_config: ConfigFactory, database_url: str, mode: str) -> None:
    config = _config(make_config, database_url, feeds={"content": mode})
    actions.import_entries(store, config, SEED_PAGE)
    body = _with_body(store, config)
    docs = _docs(config, store)
    for path in (f"/feeds/en/{SLUG}/atom.xml", f"/feeds/en/{SLUG}/rss.xml"):
        parsed = feedparser.parse(docs[path])
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        (item,) = [i for i in parsed.entries if i.title == "With a body"]
        if mode == "full":
            assert "<em>article</em>" in item.content[0].value and "script" not in \
                item.content[0].value
        else:
            assert "content" not in item
        others = [i for i in parsed.entries if i.title != "With a body"]
        assert all("content" not in i for i in others)  # no body stored: the summary only
    items = {i["id"]: i for i in json.loads(docs[f"/feeds/en/{SLUG}/feed.json"])["items"]}
    item = items[body.id]
    if mode == "full":
        assert "<em>article</em>" in item["content_html"] and "content_text" not in item
    else:
        assert "content_html" not in item and item["content_text"] == "The summary."
    rss = docs[f"/feeds/en/{SLUG}/rss.xml"]
    assert (b"content:encoded" in rss) == (mode == "full")


def test_local_article_pages_are_what_feeds_link(store: Store, make_config: ConfigFactory,
                                                 database_url: str) -> None:
    config = _config(make_config, database_url, site={"article_pages": "local"})
    actions.import_entries(store, config, SEED_PAGE)
    actions.import_entries(store, config, EXAMPLE_JSON)
    docs = _docs(config, store)
    for path in ("/feeds/en/atom.xml", "/feeds/es/rss.xml"):
        parsed = feedparser.parse(docs[path])
        assert not parsed.bozo
        wrong = [i.link for i in parsed.entries
                 if not (i.link.startswith(f"{BASE}/") and i.link.endswith("/"))]
        assert wrong == [], path
        for i in parsed.entries:
            assert i.link.removeprefix(BASE) in docs, i.link
    letter = next(i for i in feedparser.parse(docs["/feeds/en/atom.xml"]).entries
                  if i.title == "Letter to the ISO membership")
    assert {(lk.get("hreflang"), lk.href) for lk in letter.links} >= {("en", LETTER),
                                                                      ("es", CARTA)}
    items = json.loads(docs["/feeds/en/feed.json"])["items"]
    assert LETTER in {i["url"] for i in items}
    # the entry's id stays its tag URI whatever it links
    assert all(i["id"].startswith("tag:") for i in items)


@pytest.fixture
def mail_world(make_config: ConfigFactory, database_url: str,
               smtp_server: SmtpServer) -> Iterator[Callable[..., tuple[Config, Store]]]:
    opened: list[Store] = []

    def make(**extra: dict[str, Any]) -> tuple[Config, Store]:
        config = load_config(make_config(
            database={"url": database_url},
            smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
            web={"host": "127.0.0.1", "port": 8080, "base_url": BASE},
            security={"secret_key": "d" * 32}, **extra), env={})
        store = open_store(config.database.url, config.base_dir)
        opened.append(store)
        for email, lang in (("ann@example.org", "en"), ("bea@example.org", "es")):
            actions.subscribers.add_subscriber(store, config, email, language=lang,
                                               frequency="daily", confirmed=True)
        actions.import_entries(store, config, SEED_PAGE)
        actions.import_entries(store, config, EXAMPLE_JSON)
        return config, store

    yield make
    for s in opened:
        s.close()


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text, html


def test_every_digest_item_says_which_part_it_is(
        mail_world: Callable[..., tuple[Config, Store]], smtp_server: SmtpServer) -> None:
    config, store = mail_world()
    asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY, scheduled=False))
    got = {m.recipients[0]: m.message for m in smtp_server.recorder.wait_for(2)}
    text, html = _parts(got["ann@example.org"])
    for n in range(1, 19):
        assert f"Part {n} of 18" in text and f"Part {n} of 18" in html
    text, html = _parts(got["bea@example.org"])
    assert "Parte 1 de 18" in text and "Parte 14 de 18" in html, text
    # default: the publisher's pages, and no body
    assert "https://socialistworker.org/2019/03/26/carta-a-las-bases-de-la-iso/" in text


def test_a_full_text_digest_with_local_links(
        mail_world: Callable[..., tuple[Config, Store]], smtp_server: SmtpServer) -> None:
    config, store = mail_world(feeds={"content": "full"}, site={"article_pages": "local"})
    _with_body(store, config)
    asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY, scheduled=False))
    got = {m.recipients[0]: m.message for m in smtp_server.recorder.wait_for(2)}
    text, html = _parts(got["ann@example.org"])
    assert "<em>article</em>" in html and "<script" not in html
    assert "The whole article & more." in text and "<em>" not in text
    assert f"{LETTER}" in text and f'href="{LETTER}"' in html
    text, _html = _parts(got["bea@example.org"])
    assert CARTA in text


def test_robots_keeps_crawlers_off_every_token_page_the_app_serves(
        site: tuple[Config, Store]) -> None:
    """Each token page (confirm, unsubscribe, undo, preferences) and the subscribe form is
    disallowed: a crawler that follows a forwarded link must not even see them."""
    from starlette.routing import Route

    from seriesfeed.web import subscribe

    config, store = site
    robots = _docs(config, store)["/robots.txt"].decode().splitlines()
    paths = [r.path for r in subscribe.routes(config, store) if isinstance(r, Route)]
    assert "/undo/{token}" in paths
    for path in paths:
        if path.startswith("/{lang"):
            # a page under every language: RFC 9309's wildcard names them all; a digest's
            # public page and the archive hold no one's data and may be read (the digest
            # page says noindex itself)
            if "/digests/" not in path:
                assert f"Disallow: /*/{path.split('/')[2]}/" in robots, (path, robots)
            continue
        prefix = path.split("{", 1)[0]
        assert f"Disallow: {prefix}" in robots, (path, robots)
    assert "Disallow: /admin/" in robots  # kept for the console to come

"""Feeds as readers take them (issue 15): RSS descriptions that survive hostile text, one
byline per RSS item in the entry's language, JSON Feed 1.1 field by field with next_url
paging, same-day order without invented times, and WebSub discovery in every format."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest
from starlette.testclient import TestClient

from seriesfeed import actions
from seriesfeed.actions.feeds import plan_feeds
from seriesfeed.config import Config, load_config
from seriesfeed.models import Author, AuthorKind, Entry
from seriesfeed.store import Store
from seriesfeed.web import create_app
from tests.conftest import EXAMPLE_JSON, SEED_PAGE, ConfigFactory

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
SLUG = "reflections-on-the-iso-crisis"
HOSTILE = ["<", "&", "&amp;", "<![CDATA[", "]]>", "Los signos <menor> y <mayor>.",
           "a < b && c > d; &lt;not a tag&gt; ]]> <![CDATA[x]]> &#60; \"q\" 'a'"]
FOUR = "David Camfield, Todd Gordon, Brian McDougall and Sandra Sarner"


def _docs(config: Config, store: Store) -> dict[str, bytes]:
    return {d.path: d.body for d in plan_feeds(config, store)}


def _config(make_config: ConfigFactory, database_url: str, **sections: dict[str, Any]
            ) -> Config:
    return load_config(make_config(database={"url": database_url}, **sections), env={})


def _add_hostile(store: Store, config: Config) -> list[Entry]:
    start = datetime(2020, 1, 1, 12, tzinfo=UTC)
    return [actions.add_entry(store, config, Entry(
        series=SLUG, language="en", title=f"Hostile {i}", summary=text,
        published=start + timedelta(days=i), authors=(Author("A"),)))
        for i, text in enumerate(HOSTILE)]


def test_rss_description_is_the_stored_summary_for_hostile_text(
        store: Store, config: Config) -> None:
    stored = _add_hostile(store, config)
    docs = _docs(config, store)
    for path in ("/feeds/en/rss.xml", f"/feeds/en/{SLUG}/rss.xml"):
        body = docs[path]
        # RSS Best Practices: & and < in text as hexadecimal references, so the W3C
        # validator takes "&amp;" in a summary for text, not undeclared HTML
        assert b"&amp;" not in body and b"&lt;" not in body and b"&#x26;" in body
        parsed = feedparser.parse(body)
        assert not parsed.bozo, parsed.get("bozo_exception")
        by_title = {e.title: e for e in parsed.entries}
        items = {i.findtext("title"): i for i in ET.fromstring(body).iter("item")}
        for e in stored:
            got = by_title[e.title]
            # RSS description is HTML: what a reader displays is the HTML decoded once
            assert got.summary_detail.type == "text/html"
            assert html.unescape(got.summary) == e.summary, (e.summary, got.summary)
            description = items[e.title].findtext("description")
            assert description is not None
            assert html.unescape(description) == e.summary
            assert "<" not in description  # no tag for a reader to swallow
    # Atom carries the text as text, or, where it reads like markup, as HTML that shows it
    # as typed (type="html", every character escaped); JSON carries it as text
    atom = {e.title: e for e in feedparser.parse(docs["/feeds/en/atom.xml"]).entries}
    items = {i["title"]: i for i in json.loads(docs["/feeds/en/feed.json"])["items"]}
    for e in stored:
        detail = atom[e.title].summary_detail
        shown = html.unescape(detail.value) if detail.type == "text/html" else detail.value
        assert shown == e.summary, (detail.type, detail.value)
        assert items[e.title]["summary"] == e.summary


@pytest.fixture
def seeded(store: Store, config: Config) -> Store:
    actions.import_entries(store, config, SEED_PAGE)
    return store


def test_rss_has_one_dc_creator_with_the_whole_byline(seeded: Store, config: Config) -> None:
    docs = _docs(config, seeded)
    root = ET.fromstring(docs["/feeds/en/rss.xml"])
    for item in root.iter("item"):
        assert len(item.findall(f"{DC}creator")) == 1, item.findtext("title")
    canadian = next(i for i in root.iter("item")
                    if i.findtext("title") == "A letter from Canadian comrades")
    assert canadian.findtext(f"{DC}creator") == FOUR
    parsed = feedparser.parse(docs["/feeds/en/rss.xml"])
    entry = next(e for e in parsed.entries if e.title == "A letter from Canadian comrades")
    assert entry.author == FOUR
    two = next(e for e in parsed.entries if e.title == "Nothing can be changed until it is faced")
    assert two.author == "Maryam A and Nikki W"
    # Atom and JSON keep one author per person
    atom = feedparser.parse(docs["/feeds/en/atom.xml"])
    a = next(e for e in atom.entries if e.title == "A letter from Canadian comrades")
    assert [x.name for x in a.authors] == FOUR.replace(" and ", ", ").split(", ")
    item = next(i for i in json.loads(docs["/feeds/en/feed.json"])["items"]
                if i["title"] == "A letter from Canadian comrades")
    assert [x["name"] for x in item["authors"]] == FOUR.replace(" and ", ", ").split(", ")


def test_spanish_byline_is_joined_in_spanish(store: Store, config: Config) -> None:
    actions.add_entry(store, config, Entry(
        series=SLUG, language="es", title="Tres", summary="Resumen",
        published=datetime(2020, 5, 1, tzinfo=UTC),
        authors=(Author("Ana Pérez"), Author("Berta Díaz"), Author("Carla Ruiz"))))
    parsed = feedparser.parse(_docs(config, store)["/feeds/es/rss.xml"])
    assert parsed.entries[0].author == "Ana Pérez, Berta Díaz y Carla Ruiz"


_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_TOP = {"version", "title", "home_page_url", "feed_url", "description", "user_comment",
        "next_url", "icon", "favicon", "authors", "language", "expired", "hubs", "items"}
_ITEM = {"id", "url", "external_url", "title", "content_html", "content_text", "summary",
         "image", "banner_image", "date_published", "date_modified", "authors", "tags",
         "language", "attachments"}


def check_json_feed(doc: dict[str, Any], public_url: str) -> None:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1), field by field."""
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["title"]
    assert isinstance(doc["items"], list)
    for key, value in doc.items():
        assert key in _TOP or re.match(r"^_[A-Za-z]", key), key
        if key.startswith("_"):
            assert isinstance(value, dict) and value and "about" in value
    for key in ("home_page_url", "feed_url", "next_url"):
        if key in doc:
            assert isinstance(doc[key], str) and doc[key].startswith(("https://", "http://"))
    assert doc["feed_url"].startswith(public_url)
    if "next_url" in doc:
        assert doc["next_url"] != doc["feed_url"]
    if "description" in doc:
        assert isinstance(doc["description"], str) and doc["description"]
    assert "author" not in doc  # 1.0's field, deprecated in 1.1
    for hub in doc.get("hubs", []):
        assert set(hub) == {"type", "url"} and hub["type"] and hub["url"]
    ids = [i["id"] for i in doc["items"]]
    assert len(ids) == len(set(ids))
    for item in doc["items"]:
        for key, value in item.items():
            assert key in _ITEM or re.match(r"^_[A-Za-z]", key), key
            if key.startswith("_"):  # custom objects: never empty, and say what they are
                assert isinstance(value, dict) and value and "about" in value
        assert isinstance(item["id"], str) and item["id"]
        assert "content_html" in item or "content_text" in item
        if "content_html" in item:  # the body is the content: no summary repeated as text
            assert "content_text" not in item
        for key in ("title", "summary", "content_text", "content_html", "language"):
            if key in item:
                assert isinstance(item[key], str) and item[key]
        for key in ("date_published", "date_modified"):
            if key in item:
                assert _RFC3339.match(item[key]), item[key]
        if "url" in item:
            assert item["url"].startswith(("https://", "http://"))
        for author in item.get("authors", []):
            assert isinstance(author, dict) and author
            assert set(author) <= {"name", "url", "avatar"}
            assert isinstance(author.get("name"), str) and author["name"]
        assert "authors" not in item or item["authors"]
        assert "author" not in item
        for tag in item.get("tags", []):
            assert isinstance(tag, str) and tag


def test_json_feed_follows_version_1_1_and_pages_with_next_url(
        store: Store, make_config: ConfigFactory, database_url: str) -> None:
    config = _config(make_config, database_url,
                     feeds={"max_entries": 5, "out_dir": "var/public"})
    actions.import_entries(store, config, SEED_PAGE)
    actions.import_entries(store, config, EXAMPLE_JSON)
    docs = _docs(config, store)
    for path, body in docs.items():
        if path.endswith(".json"):
            check_json_feed(json.loads(body), config.public_url)
    stored = actions.list_entries(store)
    en = {e.id for e in stored if e.language == "en"}
    en_series = {e.id for e in stored if e.language == "en" and e.series == SLUG}
    es = {e.id for e in stored if e.language == "es"}
    assert len(en) > 10  # several pages of five
    for base, want in (("/feeds/en", en), (f"/feeds/en/{SLUG}", en_series), ("/feeds/es", es)):
        doc = json.loads(docs[f"{base}/feed.json"])
        seen = [i["id"] for i in doc["items"]]
        url, hops, visited = doc.get("next_url"), 0, set()
        while url and hops < 20:
            assert url not in visited
            visited.add(url)
            page = json.loads(docs[url.removeprefix(config.public_url)])
            assert page["feed_url"] == doc["feed_url"]
            seen += [i["id"] for i in page["items"]]
            url, hops = page.get("next_url"), hops + 1
        # every entry reachable; like RFC 5005, the current page may repeat an archived one
        assert set(seen) == want, base
        # the same entries the Atom document and its archives reach
        atom_ids = {e.id for e in feedparser.parse(docs[f"{base}/atom.xml"]).entries}
        assert atom_ids <= set(seen)
    assert json.loads(docs["/feeds/es/feed.json"])["home_page_url"] == \
        f"{config.public_url}/es/"
    assert json.loads(docs["/feeds/en/feed.json"])["home_page_url"] == \
        config.site.url.rstrip("/") + "/"


def test_json_items_carry_no_repeats_and_no_empty_extensions(
        store: Store, make_config: ConfigFactory, database_url: str) -> None:
    # the body is in feeds only with [feeds] content = "full" (the default is the summary)
    config = load_config(make_config(database={"url": database_url},
                                     feeds={"content": "full"}), env={})
    actions.import_entries(store, config, SEED_PAGE)
    body = actions.add_entry(store, config, Entry(
        series=SLUG, language="en", title="With a body", summary="The summary.",
        content_html="<p>The whole article.</p>", published=datetime(2021, 1, 1, tzinfo=UTC),
        authors=(Author("From SW", AuthorKind.ORGANIZATION),)))
    doc = json.loads(_docs(config, store)["/feeds/en/feed.json"])
    check_json_feed(doc, config.public_url)
    items = {i["id"]: i for i in doc["items"]}
    full = items[body.id]
    assert full["content_html"] == "<p>The whole article.</p>"
    assert "content_text" not in full and full["summary"] == "The summary."
    assert full["_seriesfeed"]["authors"] == [{"name": "From SW", "kind": "organization"}]
    people = [i for i in doc["items"] if "_seriesfeed" not in i]
    assert people and all(i["content_text"] == i["summary"] for i in people)
    assert b'"_seriesfeed": {}' not in _docs(config, store)["/feeds/en/feed.json"]


def test_same_day_entries_keep_their_date_and_the_store_order(
        seeded: Store, config: Config) -> None:
    docs = _docs(config, seeded)
    for path in ("/feeds/en/atom.xml", "/feeds/en/rss.xml"):
        parsed = feedparser.parse(docs[path])
        titles = [e.title for e in parsed.entries]
        # both of March 21: the one later on the page (stored later) is the newer
        assert titles.index("A letter from Canadian comrades") < \
            titles.index("Separating what’s good from what’s rotten")
        for e in parsed.entries:  # local midnight, 04:00 UTC in March/April (EDT)
            assert e.published_parsed[3:6] == (4, 0, 0), (e.title, e.published)
    items = json.loads(docs["/feeds/en/feed.json"])["items"]
    assert all(i["date_published"].endswith("T04:00:00Z") for i in items)
    root = ET.fromstring(docs["/feeds/en/atom.xml"])
    updated = [e.findtext(f"{ATOM}updated") for e in root.findall(f"{ATOM}entry")]
    assert len(updated) == len(set(updated))  # W3C validator: no two the same
    for stamp in updated:  # the seconds are the page's; only a fraction tells them apart
        assert stamp is not None and stamp[11:19] == "04:00:00", stamp
    # entries come out newest first even when the dates tie
    stamps = [datetime.fromisoformat(s or "") for s in updated]
    assert stamps == sorted(stamps, reverse=True)


def test_websub_discovery_in_every_format_and_in_link_headers(
        seeded: Store, make_config: ConfigFactory, database_url: str) -> None:
    hub = "https://hub.example.org/"
    config = _config(make_config, database_url, websub={"hub": hub})
    docs = _docs(config, seeded)
    for path in ("/feeds/en/rss.xml", f"/feeds/es/{SLUG}/rss.xml"):
        channel = ET.fromstring(docs[path]).find("channel")
        assert channel is not None
        links = {(lk.get("rel"), lk.get("href")) for lk in channel.findall(f"{ATOM}link")}
        assert links == {("hub", hub), ("self", config.public_url + path)}
        assert not feedparser.parse(docs[path]).bozo
    for path in ("/feeds/en/feed.json", f"/feeds/en/{SLUG}/feed.json"):
        assert json.loads(docs[path])["hubs"] == [{"type": "WebSub", "url": hub}]
    with TestClient(create_app(config, seeded)) as client:
        for path in ("/feeds/en/atom.xml", "/feeds/en/rss.xml", "/feeds/es/feed.json"):
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers["link"] == (
                f'<{hub}>; rel="hub", <{config.public_url}{path}>; rel="self"')
            again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
            assert again.status_code == 304 and "link" in again.headers
        page = client.get(f"/en/{SLUG}/")
        assert page.status_code == 200 and "link" not in page.headers


def test_no_hub_no_discovery(seeded: Store, config: Config) -> None:
    docs = _docs(config, seeded)
    assert b'rel="hub"' not in docs["/feeds/en/rss.xml"]
    assert "hubs" not in json.loads(docs["/feeds/en/feed.json"])
    with TestClient(create_app(config, seeded)) as client:
        assert "link" not in client.get("/feeds/en/rss.xml").headers

"""Translations linked in every feed format and page, rights in each feed's language, the
fallback policy both ways (feeds, pages, digests), and Accept-Language on / and errors."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from seriesfeed import actions
from seriesfeed.actions import subscribers
from seriesfeed.actions.digests import record_digests
from seriesfeed.actions.feeds import build_pages, plan_feeds
from seriesfeed.config import Config, load_config
from seriesfeed.models import Entry, Frequency
from seriesfeed.store import Store
from seriesfeed.store.digests import count_due
from seriesfeed.web import create_app
from tests.bilingual import SLUG, seed_like_quick_start
from tests.conftest import ConfigFactory

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DC = "{http://purl.org/dc/elements/1.1/}"
LETTER = "https://socialistworker.org/2019/03/15/letter-to-the-iso-membership/"
CARTA = "https://socialistworker.org/2019/03/26/carta-a-las-bases-de-la-iso/"
BCP47 = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@pytest.fixture
def seeded(store: Store, config: Config) -> Store:
    seed_like_quick_start(store, config)
    return store


def _docs(config: Config, store: Store) -> dict[str, bytes]:
    return {d.path: d.body for d in plan_feeds(config, store)}


def _with_es(make_config: ConfigFactory, database_url: str, **es: str) -> Config:
    path = make_config(database={"url": database_url})
    body = path.read_text(encoding="utf-8")
    for key, value in es.items():
        # the shipped [languages.es] table has each key once; the en table comes first
        head, _, tail = body.partition("\n[languages.es]\n")
        tail = re.sub(rf'(?m)^{key} = ".*"$', f'{key} = "{value}"', tail, count=1)
        body = head + "\n[languages.es]\n" + tail
    path.write_text(body, encoding="utf-8")
    return load_config(path, env={})


def test_rss_items_link_their_translations_and_feedparser_reads_them(
        seeded: Store, config: Config) -> None:
    docs = _docs(config, seeded)
    es = feedparser.parse(docs[f"/feeds/es/{SLUG}/rss.xml"])
    assert not es.bozo, es.get("bozo_exception")
    carta = next(e for e in es.entries if e.title == "Carta a las bases de la ISO")
    assert carta.link == CARTA  # the item's own <link> is still the article
    assert {"rel": "alternate", "type": "text/html", "hreflang": "en", "href": LETTER} in [
        dict(lk) for lk in carta.links]
    en = feedparser.parse(docs["/feeds/en/rss.xml"])
    letter = next(e for e in en.entries if e.link == LETTER)
    assert [lk.href for lk in letter.links if lk.get("hreflang") == "es"] == [CARTA]
    untranslated = [e for e in en.entries if not any(lk.get("hreflang") for lk in e.links)]
    assert len(untranslated) == 16
    assert letter.link == LETTER and carta.link == CARTA  # the own page stays the link
    # the XML itself: the Atom namespace is declared once, on the root; hreflang is BCP 47
    body = docs["/feeds/es/rss.xml"]
    assert body.count(b'xmlns:atom="http://www.w3.org/2005/Atom"') == 1
    for link in ET.fromstring(body).iter(f"{ATOM}link"):
        assert link.get("hreflang") is None or BCP47.match(link.get("hreflang") or "")


def test_json_feed_items_carry_translations_in_the_seriesfeed_extension(
        seeded: Store, config: Config) -> None:
    docs = _docs(config, seeded)
    es = json.loads(docs["/feeds/es/feed.json"])
    assert es["_seriesfeed"]["about"].startswith("https://")
    assert "licencia Creative Commons" in es["_seriesfeed"]["rights"]
    carta = next(i for i in es["items"] if i["url"] == CARTA)
    assert carta["_seriesfeed"]["about"] == es["_seriesfeed"]["about"]
    assert carta["_seriesfeed"]["translations"] == [{
        "url": LETTER, "language": "en",
        "id": "tag:socialistworker.org,2019-03-15:/2019/03/15/letter-to-the-iso-membership/"}]
    en = json.loads(docs[f"/feeds/en/{SLUG}/feed.json"])
    assert "licensed by SocialistWorker.org" in en["_seriesfeed"]["rights"]
    letter = next(i for i in en["items"] if i["url"] == LETTER)
    assert [t["url"] for t in letter["_seriesfeed"]["translations"]] == [CARTA]
    # an item with nothing to say has no extension object at all (not an empty one)
    plain = [i for i in en["items"] if "_seriesfeed" not in i]
    assert plain and all(i["authors"] for i in plain)
    assert all(i["_seriesfeed"].get("translations") or i["_seriesfeed"].get("authors")
               for i in en["items"] if "_seriesfeed" in i)


def test_each_feed_carries_the_rights_in_its_language(seeded: Store, config: Config) -> None:
    docs = _docs(config, seeded)
    for lang, words in (("es", "licencia Creative Commons"), ("en", "licensed by")):
        atom = ET.fromstring(docs[f"/feeds/{lang}/atom.xml"])
        assert words in (atom.findtext(f"{ATOM}rights") or "")
        channel = ET.fromstring(docs[f"/feeds/{lang}/rss.xml"]).find("channel")
        assert channel is not None and words in (channel.findtext("copyright") or "")
        assert words in json.loads(docs[f"/feeds/{lang}/feed.json"])["_seriesfeed"]["rights"]


def test_series_page_links_each_article_to_its_translation(seeded: Store,
                                                          config: Config) -> None:
    pages = {d.path: d.body.decode() for d in build_pages(config, seeded)}
    es = pages[f"/es/{SLUG}/"]
    assert f'<a href="{LETTER}" hreflang="en">Leer en inglés</a>' in es
    en = pages[f"/en/{SLUG}/"]
    assert f'<a href="{CARTA}" hreflang="es">Read in Spanish</a>' in en
    for page in (es, en):  # alternates between the pages, itself included
        for code in ("en", "es"):
            assert (f'<link rel="alternate" hreflang="{code}" '
                    f'href="{config.public_url}/{code}/{SLUG}/">') in page
    assert f'hreflang="es" href="{config.public_url}/es/">' in pages["/en/"]
    assert f'hreflang="x-default" href="{config.public_url}/">' in pages["/es/"]
    assert f'hreflang="x-default" href="{config.public_url}/en/{SLUG}/">' in es


def _english_only_entry(config: Config, store: Store, title: str = "Only in English") -> Entry:
    return actions.add_entry(store, config, Entry(
        series=SLUG, language="en", title=title, summary="No translation of this one.",
        published=datetime(2019, 4, 20, tzinfo=config.zone)))


def test_fallback_original_shows_untranslated_entries_as_what_they_are(
        make_config: ConfigFactory, database_url: str, store: Store) -> None:
    config = _with_es(make_config, database_url, fallback="original")
    seed_like_quick_start(store, config)
    docs = _docs(config, store)
    atom = ET.fromstring(docs[f"/feeds/es/{SLUG}/atom.xml"])
    entries = atom.findall(f"{ATOM}entry")
    assert len(entries) == 18  # 2 Spanish + 16 English originals without a translation
    langs = [e.get(XML_LANG) for e in entries]
    # every Atom entry names its language (the pieces are shared by the feeds it is in)
    assert langs.count("en") == 16 and langs.count("es") == 2
    titles = [e.findtext(f"{ATOM}title") for e in entries]
    # never shown twice: an original with a Spanish translation is replaced by it
    assert "Letter to the ISO membership" not in titles and "Carta a las bases de la ISO" in titles
    channel = ET.fromstring(docs["/feeds/es/rss.xml"]).find("channel")
    assert channel is not None
    items = channel.findall("item")
    assert len(items) == 18 and sum(i.findtext(f"{DC}language") == "en" for i in items) == 16
    assert not feedparser.parse(docs["/feeds/es/rss.xml"]).bozo
    jf = json.loads(docs["/feeds/es/feed.json"])
    assert sorted({i["language"] for i in jf["items"]}) == ["en", "es"] and len(jf["items"]) == 18
    page = {d.path: d.body.decode() for d in build_pages(config, store)}[f"/es/{SLUG}/"]
    assert page.count('<article lang="en">') == 16 and page.count("(en inglés)") == 16
    assert "Letter to the ISO membership" not in page
    # digests follow the same policy unless told otherwise
    subscribers.add_subscriber(store, config, "lee@example.org", language="es",
                                 confirmed=True)
    _english_only_entry(config, store)
    with store.read() as conn:
        assert count_due(conn, "es", Frequency.WEEKLY, fallback=True) == 1
    preview = actions.preview_digest(store, config, "es", Frequency.WEEKLY)
    assert preview is not None and not preview.sample and preview.rendered.count == 1
    assert "Only in English" in preview.text and "(en inglés)" in preview.text
    recorded = record_digests(store, config, Frequency.WEEKLY, datetime.now(UTC),
                              scheduled=False)
    assert [(d.language, d.recipients) for d in recorded] == [("es", 1)]


def test_fallback_none_keeps_a_language_to_its_own_entries(
        seeded: Store, config: Config) -> None:
    assert config.languages["es"].fallback == "none"
    docs = _docs(config, seeded)
    assert len(feedparser.parse(docs["/feeds/es/atom.xml"]).entries) == 2
    subscribers.add_subscriber(seeded, config, "lee@example.org", language="es",
                                 confirmed=True)
    _english_only_entry(config, seeded)
    with seeded.read() as conn:
        assert count_due(conn, "es", Frequency.WEEKLY) == 0
    assert record_digests(seeded, config, Frequency.WEEKLY, datetime.now(UTC),
                          scheduled=False) == []
    # a series with English entries only: nothing to show a Spanish reader
    actions.add_entry(seeded, config, Entry(
        series="english-only", language="en", title="Alone", summary="s",
        published=datetime(2020, 1, 1, tzinfo=config.zone)))
    pages = {d.path: d.body.decode() for d in build_pages(config, seeded)}
    assert "Todavía no hay artículos." in pages["/es/english-only/"]
    assert feedparser.parse(_docs(config, seeded)["/feeds/es/english-only/atom.xml"]).entries == []


def test_digest_fallback_is_set_apart_from_the_feeds(
        make_config: ConfigFactory, database_url: str, store: Store) -> None:
    config = _with_es(make_config, database_url, digest_fallback="original")
    subscribers.add_subscriber(store, config, "lee@example.org", language="es",
                                 confirmed=True)
    seed_like_quick_start(store, config)
    assert len(feedparser.parse(_docs(config, store)["/feeds/es/atom.xml"]).entries) == 2
    preview = actions.preview_digest(store, config, "es", Frequency.WEEKLY)
    assert preview is not None and preview.rendered.count == 18
    assert preview.text.count("(en inglés)") == 16
    assert "Letter to the ISO membership" not in preview.text  # its translation is there
    assert "Carta a las bases de la ISO" in preview.text


def test_a_translation_stored_with_its_original_replaces_it_in_the_digest(
        make_config: ConfigFactory, database_url: str, store: Store) -> None:
    config = _with_es(make_config, database_url, fallback="original")
    seed_like_quick_start(store, config)
    subscribers.add_subscriber(store, config, "lee@example.org", language="es",
                                 confirmed=True)
    original = _english_only_entry(config, store, "New in English")
    actions.add_entry(store, config, Entry(
        series=SLUG, language="es", title="Nuevo en español", summary="Traducción.",
        published=datetime(2019, 4, 21, tzinfo=config.zone), translation_of=original.id))
    preview = actions.preview_digest(store, config, "es", Frequency.WEEKLY)
    assert preview is not None and preview.rendered.count == 1
    assert "Nuevo en español" in preview.text and "New in English" not in preview.text


def test_accept_language_on_the_home_redirect(seeded: Store, config: Config) -> None:
    client = TestClient(create_app(config, seeded))
    for header, where in (("es-ES,es;q=0.9,en;q=0.8", "/es/"), ("fr, en;q=0.5", "/en/"),
                          ("de", "/en/"), (None, "/en/")):
        answer = client.get("/", headers={"Accept-Language": header} if header else {},
                            follow_redirects=False)
        assert answer.status_code == 302 and answer.headers["location"] == where, header
        assert "Accept-Language" in answer.headers["vary"]
    index = client.get("/", headers={"Accept-Language": "es"})
    assert index.status_code == 200 and '<html lang="es">' in index.text
    assert "Reflexiones sobre la crisis de la ISO" in index.text
    assert client.get("/es", follow_redirects=False).headers["location"] == "/es/"


def test_error_pages_speak_the_path_language_else_the_negotiated_one(
        seeded: Store, config: Config) -> None:
    client = TestClient(create_app(config, seeded))
    es = {"Accept-Language": "es"}
    negotiated = client.get("/nope", headers=es)
    assert negotiated.status_code == 404 and '<html lang="es">' in negotiated.text
    assert "Página no encontrada" in negotiated.text and negotiated.headers["vary"] == \
        "Accept-Language" and negotiated.headers["content-language"] == "es"
    by_path = client.get("/en/nope/", headers=es)  # the path says English
    assert by_path.status_code == 404 and '<html lang="en">' in by_path.text
    assert "Page not found" in by_path.text and "vary" not in by_path.headers
    assert "Página no encontrada" in client.get("/feeds/es/nope.json").text
    head = client.head("/es/nope/")
    assert head.status_code == 404 and head.content == b""
    wrong_method = client.post("/es/", headers=es)
    assert wrong_method.status_code == 405 and "Solicitud no permitida" in wrong_method.text
    forged = client.post("/subscribe?lang=xx", headers={**es, "Origin": "https://evil.example"},
                         data={"email": "a@example.org"})
    assert forged.status_code == 403 and "Este formulario solo se puede enviar" in forged.text
    bad_token = client.get("/unsubscribe/xyz", headers=es)
    assert bad_token.status_code == 400 and "ha caducado" in bad_token.text
    assert "token" not in bad_token.text.split("<body>")[1]


def test_an_internal_error_is_a_page_in_the_reader_language(make_config: ConfigFactory,
                                                           tmp_path: Path) -> None:
    # a store broken for real (its own SQLite file: the shared PostgreSQL schema stays whole)
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'broken.sqlite3'}"}), env={})
    broken = Store(config.database.url)
    broken.migrate()
    seed_like_quick_start(broken, config)
    with broken.write() as conn:  # the table the site reads first
        conn.execute(text("DROP TABLE content_version"))
    client = TestClient(create_app(config, broken), raise_server_exceptions=False)
    # a store that cannot answer is a 503 with Retry-After (RELIABILITY invariant 13),
    # still a page in the reader's language that names nothing internal
    answer = client.get("/es/", headers={"Accept-Language": "en"})
    assert answer.status_code == 503 and '<html lang="es">' in answer.text
    assert "Ahora mismo hay mucha carga" in answer.text and answer.headers["retry-after"]
    assert "Traceback" not in answer.text and "content_version" not in answer.text
    english = client.get("/feeds/en/atom.xml")
    assert english.status_code == 503 and "Busy right now" in english.text
    broken.close()


def test_subscription_pages_name_the_masked_address_and_the_series(
        seeded: Store, config: Config, tmp_path: Path) -> None:
    client = TestClient(create_app(config, seeded), base_url=config.public_url)
    done = client.post("/subscribe", data={"email": "lectora@example.org", "language": "es",
                                           "series": SLUG, "frequency": "weekly",
                                           "website": "x"})  # the honeypot: no mail
    assert done.status_code == 200 and "Dirección: •••@example.org" in done.text
    assert f'<a href="{config.public_url}/es/{SLUG}/">Reflexiones sobre la crisis de la ISO' \
        in done.text
    assert "lectora" not in done.text
    result = subscribers.add_subscriber(seeded, config, "lectora@example.org",
                                          language="es", confirmed=True)
    assert result.subscriber is not None and result.subscriber.id is not None
    from seriesfeed import tokens

    key = tokens.ensure_secret_key(config)
    for link in (tokens.unsubscribe_link(config, key, result.subscriber.id),
                 tokens.preferences_link(config, key, result.subscriber.id)):
        page = client.get(link.removeprefix(config.public_url))
        assert page.status_code == 200 and "Dirección: l•••a@example.org" in page.text
        assert f'href="{config.public_url}/es/{SLUG}/"' in page.text

"""A third language is configuration plus one catalogue: French with only a [languages.fr]
table and tests/data/locale/fr/LC_MESSAGES/seriesfeed.po in the folder [site] catalogues
names; no template copies, no code. French feeds, pages, confirmation mail and digest."""

from __future__ import annotations

import asyncio
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import feedparser
from starlette.testclient import TestClient

from seriesfeed import actions, i18n
from seriesfeed.actions import subscribers
from seriesfeed.actions.feeds import build_pages, plan_feeds
from seriesfeed.config import load_config
from seriesfeed.models import Frequency
from seriesfeed.store import open_store
from seriesfeed.web import create_app
from tests.bilingual import SLUG, english_fragments, english_in, seed_like_quick_start
from tests.conftest import ROOT, ConfigFactory
from tests.smtp_server import SmtpServer

FRENCH = """
[languages.fr]
name = "Français"
locale = "fr_FR"
feed_title = "SocialistWorker.org en français"
feed_description = "Articles en français de SocialistWorker.org"
rights = "Le contenu de ce site est publié sous une licence Creative Commons (by-nc-nd 3.0)."
"""
LETTER_ID = "tag:socialistworker.org,2019-03-15:/2019/03/15/letter-to-the-iso-membership/"


def _french_entries(folder: Path) -> Path:
    path = folder / "fr.json"
    path.write_text(json.dumps({"format": "seriesfeed/1", "series": [{
        "slug": SLUG, "texts": {"fr": {"title": "Réflexions sur la crise de l’ISO",
                                       "description": "Des contributeurs reviennent sur la "
                                                      "crise de 2019."}}}],
        "entries": [
            {"series": SLUG, "language": "fr", "title": "Lettre aux membres de l’ISO",
             "summary": "Le comité directeur écrit aux membres.", "authors": "Comité de "
             "rédaction", "published": "2019-03-26T09:00:00-04:00",
             "url": "https://example.org/fr/2019/03/26/lettre/", "translation_of": LETTER_ID},
            {"series": SLUG, "language": "fr", "title": "Un second article",
             "summary": "Rien que du français.", "authors": "Marie Curie",
             "published": "2019-04-02T09:00:00-04:00",
             "url": "https://example.org/fr/2019/04/02/second/"}]}), encoding="utf-8")
    return path


def test_french_is_a_config_table_and_one_catalogue(
        make_config: ConfigFactory, tmp_path: Path, smtp_server: SmtpServer
        ) -> None:
    path = make_config(extra=FRENCH,
                       database={"url": f"sqlite:///{tmp_path / 'fr.sqlite3'}"},
                       smtp={"host": smtp_server.host, "port": smtp_server.port,
                             "security": "none"},
                       web={"host": "127.0.0.1", "port": 8080,
                            "base_url": "https://feeds.example.org"},
                       security={"secret_key": "f" * 32})
    shutil.copytree(ROOT / "tests/data/locale", path.parent / "locale")
    path.write_text(path.read_text(encoding="utf-8").replace(
        'catalogues = ""', 'catalogues = "locale"', 1), encoding="utf-8")
    config = load_config(path, env={})
    assert list(config.languages) == ["en", "es", "fr"]
    assert not (ROOT / "templates/email/fr").exists() and not (ROOT / "templates/web/fr").exists()
    assert i18n.check_catalogues(config) == []  # every message translated, 3 plural forms
    store = open_store(config.database.url, config.base_dir)
    subscribers.add_subscriber(store, config, "abonnee@example.org", language="fr",
                                 confirmed=True)
    seed_like_quick_start(store, config)
    actions.import_entries(store, config, _french_entries(tmp_path))
    english = english_fragments(config, "fr")

    docs = {d.path: d.body for d in plan_feeds(config, store)}
    atom = ET.fromstring(docs[f"/feeds/fr/{SLUG}/atom.xml"])
    assert atom.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    assert "licence Creative Commons" in (atom.findtext("{http://www.w3.org/2005/Atom}rights")
                                          or "")
    rss = feedparser.parse(docs["/feeds/fr/rss.xml"])
    assert not rss.bozo and rss.feed.language == "fr" and len(rss.entries) == 2
    lettre = next(e for e in rss.entries if e.title == "Lettre aux membres de l’ISO")
    assert {(lk.get("hreflang"), lk.href) for lk in lettre.links} >= {
        ("en", "https://socialistworker.org/2019/03/15/letter-to-the-iso-membership/")}
    jf = json.loads(docs["/feeds/fr/feed.json"])
    assert jf["language"] == "fr" and "licence" in jf["_seriesfeed"]["rights"]
    # the English original now links its French translation too
    en_rss = feedparser.parse(docs["/feeds/en/rss.xml"])
    letter = next(e for e in en_rss.entries if e.title == "Letter to the ISO membership")
    assert {lk.get("hreflang") for lk in letter.links} >= {"es", "fr"}

    pages = {d.path: d.body.decode() for d in build_pages(config, store)}
    page = pages[f"/fr/{SLUG}/"]
    assert '<html lang="fr">' in page and "<h1>Réflexions sur la crise de l’ISO</h1>" in page
    assert "Série" in page and "Suivre cette série :" in page and "26 mars 2019" in page
    assert "S’abonner" in page and 'hreflang="fr"' in pages[f"/en/{SLUG}/"]
    assert english_in(page, english) == []
    assert "2 articles" in pages["/fr/"]

    client = TestClient(create_app(config, store), base_url=config.public_url)
    assert client.get("/", headers={"Accept-Language": "fr-CA,fr;q=0.9"},
                      follow_redirects=False).headers["location"] == "/fr/"
    missing = client.get("/fr/nope/")
    assert missing.status_code == 404 and "Page introuvable" in missing.text
    assert '<html lang="fr">' in missing.text
    done = client.post("/subscribe", data={"email": "lecteur@example.org", "language": "fr",
                                           "series": SLUG, "frequency": "daily"})
    assert done.status_code == 200 and "Consultez votre messagerie" in done.text
    confirmation = smtp_server.recorder.wait_for(1)[0].message
    assert str(confirmation["Subject"]) == "Confirmez votre abonnement à SocialistWorker.org"
    body = confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Ouvrez ce lien et appuyez sur le bouton pour confirmer :" in body
    assert english_in(body, english) == []

    asyncio.run(actions.send_digests(store, config, frequency=Frequency.WEEKLY,
                                     scheduled=False))
    digest = next(m.message for m in smtp_server.recorder.wait_for(2)
                  if m.message["To"] == "abonnee@example.org")
    assert str(digest["Subject"]) == "Réflexions sur la crise de l’ISO : 2 nouveaux articles"
    text = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "26 mars 2019" in text and "2 avril 2019" in text and "À lire :" in text
    assert "Se désabonner :" in text and "licence Creative Commons" in text
    assert english_in(text, english) == []
    html = digest.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert '<html lang="fr">' in html
    store.close()

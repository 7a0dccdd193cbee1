"""The reader's own words: language names and lists of authors from CLDR in the reader's
language, bylines split by every configured language's conjunction (a third and fourth
language by configuration alone), and mail that says its language."""

from __future__ import annotations

import asyncio
import email
import email.header
from email.message import EmailMessage
from pathlib import Path

import pytest

from seriesfeed import actions, i18n
from seriesfeed.actions import subscribers
from seriesfeed.actions.entries import byline_conjunctions, import_settings
from seriesfeed.config import load_config
from seriesfeed.importers.bylines import split_byline
from seriesfeed.models import AuthorKind
from seriesfeed.store import open_store
from tests.conftest import SEED_PAGE, ConfigFactory
from tests.smtp_server import SmtpServer

FRENCH_AND_GERMAN = """
[languages.fr]
name = "Français"
locale = "fr_FR"

[languages.de]
name = "Deutsch"
locale = "de_DE"
conjunctions = ["sowie"]
"""


@pytest.mark.parametrize(("code", "reader", "name"), [
    ("en", "es", "inglés"), ("es", "en", "Spanish"), ("en", "fr", "anglais"),
    ("es", "fr_FR", "espagnol"), ("de", "es", "alemán")])
def test_a_language_is_named_in_the_readers_language(code: str, reader: str,
                                                     name: str) -> None:
    assert i18n.language_name(code, reader) == name


@pytest.mark.parametrize(("locale", "names", "expected"), [
    ("en_US", ["Ana López", "Juan Pérez"], "Ana López and Juan Pérez"),
    ("es", ["Ana López", "Juan Pérez"], "Ana López y Juan Pérez"),
    ("fr_FR", ["Marie Dupont", "Jean Martin"], "Marie Dupont et Jean Martin"),
    ("en_US", ["A", "B", "C", "D"], "A, B, C and D"),
    ("es", ["A", "B", "C"], "A, B y C"),
    ("en_US", ["Solo"], "Solo")])
def test_authors_are_listed_by_cldr_patterns(locale: str, names: list[str],
                                             expected: str) -> None:
    assert i18n.format_byline(names, locale) == expected


def test_a_third_and_fourth_language_split_bylines_by_config_alone(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    config = load_config(make_config(extra=FRENCH_AND_GERMAN), env={})
    words = byline_conjunctions(config)
    assert {"and", "y", "et", "und", "sowie"} <= set(words)
    settings = import_settings(config)
    for byline, expected in [
            ("Marie Dupont et Jean Martin", ["Marie Dupont", "Jean Martin"]),
            ("Anna Schmidt und Karl Weber", ["Anna Schmidt", "Karl Weber"]),
            ("Anna Schmidt sowie Karl Weber", ["Anna Schmidt", "Karl Weber"]),
            ("A, B et C", ["A", "B", "C"]),
            # a conjunction is a word between names, never part of one
            ("Yvette Etienne", ["Yvette Etienne"]),
            ("Bettina Undine", ["Bettina Undine"])]:
        got = [a.name for a in split_byline(byline, settings.organizations,
                                            settings.conjunctions)]
        assert got == expected, byline
    # without the configuration, French stays one person: the split is data, not code
    shipped = load_config(make_config(), env={})
    assert [a.kind for a in split_byline("Marie Dupont et Jean Martin",
                                         conjunctions=byline_conjunctions(shipped))] == \
        [AuthorKind.PERSON]


def _received(smtp: SmtpServer, n: int) -> list[EmailMessage]:
    return [m.message for m in smtp.recorder.wait_for(n)]


def test_every_mail_says_its_language_and_names_its_list_in_it(
        make_config: ConfigFactory, tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'w.sqlite3'}"},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        security={"secret_key": "w" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        subscribers.add_subscriber(store, config, "lector@example.org", language="es",
                                   confirmed=True)
        subscribers.add_subscriber(store, config, "reader@example.org", language="en",
                                   confirmed=True)
        actions.import_entries(store, config, SEED_PAGE)
        pending = subscribers.add_subscriber(store, config, "nueva@example.org",
                                             language="es").subscriber
        assert pending is not None
        subscribers.send_confirmation(store, config, pending)
        asyncio.run(actions.send_digests(store, config))
        mails = _received(smtp_server, 3)
    finally:
        store.close()
    by_to = {str(m["To"]): m for m in mails}
    assert by_to["nueva@example.org"]["Content-Language"] == "es"
    assert by_to["lector@example.org"]["Content-Language"] == "es"
    assert by_to["reader@example.org"]["Content-Language"] == "en"
    es_list = str(email.header.make_header(email.header.decode_header(
        by_to["lector@example.org"]["List-Id"])))
    en_list = str(by_to["reader@example.org"]["List-Id"])
    assert es_list.startswith("Boletín de "), es_list
    assert en_list.split(" <")[0].endswith(" digest"), en_list
    assert es_list.split("<")[1] == en_list.split("<")[1]  # one list id, two labels

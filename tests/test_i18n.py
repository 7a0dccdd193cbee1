"""Catalogues: the template matches what the code and templates use, every shipped language
translates every message, plural forms follow CLDR, negotiation follows Accept-Language."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from seriesfeed import i18n
from seriesfeed.config import load_config
from tests.conftest import ROOT, CliResult, ConfigFactory

Run = Callable[..., CliResult]


def _extracted() -> set[tuple[str | None, str]]:
    """What `pybabel extract -F babel.cfg .` finds, by the same mapping file."""
    from babel.messages.frontend import parse_mapping_cfg

    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: set[tuple[str | None, str]] = set()
    for _file, _line, message, _comments, context in extract_from_dir(
            str(ROOT), method_map, options_map):
        msgid = message if isinstance(message, str) else message[0]
        found.add((context, msgid))
    return found


def test_pybabel_extract_reproduces_the_shipped_template() -> None:
    shipped = set(i18n.template_ids())
    extracted = _extracted()
    assert extracted - shipped == set(), "messages in the code missing from seriesfeed.pot " \
        "(run the pybabel extract command in the README)"
    assert shipped - extracted == set(), "seriesfeed.pot has messages nothing uses"


def test_every_shipped_catalogue_translates_every_message(run_cli: Run,
                                                          make_config: ConfigFactory) -> None:
    config = load_config(ROOT / "config.toml", env={})
    assert i18n.check_catalogues(config) == []
    result = run_cli("--config", make_config(), "i18n", "check")
    assert result.code == 0, result
    assert "all translated in es" in result.out


def _copy_es_without(folder: Path, msgid: str) -> None:
    with (i18n.LOCALE_DIR / "es/LC_MESSAGES/seriesfeed.po").open("rb") as fh:
        catalog = read_po(fh, locale="es")
    del catalog[msgid]
    target = folder / "es/LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "seriesfeed.po").open("wb") as fh:
        write_po(fh, catalog)


def test_i18n_check_fails_on_a_missing_message(run_cli: Run, make_config: ConfigFactory
                                               ) -> None:
    path = make_config()
    _copy_es_without(path.parent / "locale", "Page not found")
    text = path.read_text(encoding="utf-8").replace('catalogues = ""', 'catalogues = "locale"')
    path.write_text(text, encoding="utf-8")
    result = run_cli("--config", path, "i18n", "check")
    assert result.code != 0
    assert result.err.startswith("Error: 1 catalogue problems") and \
        "'Page not found' has no translation" in result.err
    # and what a reader would see: the English msgid, which is why the check exists
    config = load_config(path, env={})
    assert i18n.messages_for(config, "es")("Page not found") == "Page not found"
    assert i18n.messages_for(config, "es")("Subscribe") == "Suscribirse"


def _write_catalogue(folder: Path, code: str, plurals: tuple[str, ...]) -> None:
    catalog = Catalog(locale=code)
    catalog.add(("{n} article", "{n} articles"), plurals)
    target = folder / code / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "seriesfeed.po").open("wb") as fh:
        write_po(fh, catalog)


def test_plural_forms_follow_the_cldr_rule_polish_has_four(tmp_path: Path) -> None:
    _write_catalogue(tmp_path, "pl", ("{n} artykuł", "{n} artykuły", "{n} artykułów",
                                      "{n} artykułu"))
    m = i18n.Messages(i18n.load_catalogue("pl", (tmp_path,)))
    assert m.catalogue.plural_tags == ("one", "few", "many", "other")
    got = {n: m.ngettext("{n} article", "{n} articles", n) for n in (1, 2, 4, 5, 12, 22, 25)}
    assert got == {1: "1 artykuł", 2: "2 artykuły", 4: "4 artykuły", 5: "5 artykułów",
                   12: "12 artykułów", 22: "22 artykuły", 25: "25 artykułów"}
    # Spanish (CLDR: one, many, other) and English keep their rules
    es = i18n.Messages(i18n.load_catalogue("es"))
    assert es.ngettext("{n} article", "{n} articles", 1) == "1 artículo"
    assert es.ngettext("{n} article", "{n} articles", 0) == "0 artículos"
    assert es.ngettext("{n} article", "{n} articles", 1_000_000) == "1000000 artículos"
    en = i18n.Messages(i18n.load_catalogue("en"))
    assert en.ngettext("{n} article", "{n} articles", 1) == "1 article"


def test_a_catalogue_with_the_wrong_number_of_plural_forms_is_reported(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    folder = tmp_path / "cats"
    shutil.copytree(i18n.LOCALE_DIR / "es", folder / "pl")  # everything else translated
    po = folder / "pl/LC_MESSAGES/seriesfeed.po"
    po.write_text(po.read_text(encoding="utf-8").replace("Language: es", "Language: pl"),
                  encoding="utf-8")
    path = make_config(extra='[languages.pl]\nname = "Polski"\nlocale = "pl"\n')
    text = path.read_text(encoding="utf-8").replace('catalogues = ""', f'catalogues = "{folder}"')
    path.write_text(text, encoding="utf-8")
    problems = i18n.check_catalogues(load_config(path, env={}))
    assert any("'{n} article' has 3 plural forms; CLDR's rule for pl has 4" in p
               for p in problems), problems


@pytest.mark.parametrize(("header", "expected"), [
    ("es-ES,es;q=0.9,en;q=0.8", "es"),
    ("es-MX", "es"),
    ("fr-CH, fr;q=0.9, en;q=0.8, es;q=0.7", "en"),
    ("fr;q=1, es;q=0.5, en;q=0.2", "es"),
    ("en;q=0.1, es", "es"),
    ("de", "en"),  # nothing matches: the site's default
    ("*", "en"),
    ("", "en"),
    ("es;q=0, en", "en"),  # q=0 means "not this one"
    ("garbage;;;,,es", "es"),
])
def test_accept_language_negotiation(header: str, expected: str) -> None:
    assert i18n.negotiate(header, ["en", "es"], "en") == expected


def test_language_names_come_from_cldr() -> None:
    assert i18n.language_name("en", "es") == "inglés"
    assert i18n.language_name("es", "en_US") == "Spanish"
    assert i18n.language_name("fr", "es") == "francés"


def test_masked_addresses() -> None:
    from seriesfeed.addresses import mask_address

    assert mask_address("lectora@example.org") == "l•••a@example.org"
    assert mask_address("ab@example.org") == "a•••@example.org"
    assert mask_address("lectora@example.org", local_part=False) == "•••@example.org"
    assert mask_address("nonsense") == "•••"
    assert mask_address("correo@bücher.example") == "c•••o@bücher.example"
    # what the form echoes is a host name or nothing: no sentences through the domain
    assert mask_address("x@call us now at 555.example", local_part=False) == "•••"
    assert mask_address("x@<b>example.org</b>", local_part=False) == "•••"


def test_a_misspelt_placeholder_shows_english_and_is_reported(tmp_path: Path,
                                                              make_config: ConfigFactory) -> None:
    catalog = Catalog(locale="es")
    catalog.add("Read in {language}", "Leer en {idioma}")
    catalog.add(("{n} article", "{n} articles"), ("{n} artículo", "{n} de artículos",
                                                  "{num} artículos"))
    target = tmp_path / "es/LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "seriesfeed.po").open("wb") as fh:
        write_po(fh, catalog)
    m = i18n.Messages(i18n.load_catalogue("es", (tmp_path,)))
    assert m("Read in {language}", language="English") == "Read in English"
    assert m.ngettext("{n} article", "{n} articles", 3) == "3 articles"
    assert m.ngettext("{n} article", "{n} articles", 1) == "1 artículo"
    path = make_config()
    path.write_text(path.read_text(encoding="utf-8").replace(
        'catalogues = ""', f'catalogues = "{tmp_path}"'), encoding="utf-8")
    problems = i18n.check_catalogues(load_config(path, env={}))
    assert any("'Read in {language}': the translation uses a placeholder" in p
               for p in problems), problems


def test_a_language_may_override_one_template_in_its_own_folder(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    from seriesfeed import emails

    path = make_config()
    folder = path.parent / "templates"
    shutil.copytree(ROOT / "templates", folder)
    (folder / "email/es").mkdir()
    (folder / "email/es/confirm.txt.j2").write_text(
        "{{ _('Confirm my subscription') }} (plantilla propia): {{ confirm_url }}\n",
        encoding="utf-8")
    config = load_config(path, env={})
    asked = {"confirm_url": "U", "series": [], "address": "a•••@example.org", "asked_at": "T"}
    es_text, es_html = emails.render_email(config, "es", "confirm", asked)
    assert es_text == "Confirmar mi suscripción (plantilla propia): U\n"
    assert "Confirmar mi suscripción" in es_html  # the shared HTML template still serves es
    en_text, _ = emails.render_email(config, "en", "confirm", asked)
    assert en_text.startswith("Please confirm your subscription to SocialistWorker.org.")
    assert not (ROOT / "templates/email/es").exists()  # none of the shipped ones needs one

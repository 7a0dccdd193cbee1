"""Languages as data: message catalogues (gettext .po files read with babel), CLDR plural
rules, language negotiation, the site's texts per language and localized dates.

Each language's strings live in one catalogue, ``<code>/LC_MESSAGES/seriesfeed.po``, in the
folder ``[site] catalogues`` names (when it has one for that language) or else beside this
module. Catalogues are read and compiled into lookup tables when first used (never
compiled by hand); ``locale/seriesfeed.pot`` is their template, which ``pybabel extract``
reproduces (README: "Languages"). The msgids are the English text, so English needs no
catalogue; a missing translation falls back to the msgid. Plural forms follow the
language's CLDR rule (babel's data), not a two-form guess: Polish gets four, Arabic six.
A third language is a ``[languages.<code>]`` table plus one catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.dates import format_date as _babel_format_date
from babel.dates import format_time as _babel_format_time
from babel.dates import get_timezone_location
from babel.messages.pofile import read_po
from babel.plural import PluralRule

from seriesfeed.config import Config, error_at
from seriesfeed.errors import ConfigError

__all__ = [
    "DOMAIN",
    "LOCALE_DIR",
    "N_",
    "SOURCE_LANGUAGE",
    "TEMPLATE",
    "Catalogue",
    "Key",
    "Messages",
    "SiteTexts",
    "catalogue_file",
    "catalogue_folders",
    "check_catalogues",
    "check_languages",
    "fallback_policy",
    "format_date",
    "format_moment",
    "format_time",
    "language_name",
    "load_catalogue",
    "locale_for",
    "messages_for",
    "negotiate",
    "site_texts",
    "template_functions",
    "template_ids",
]

LOCALE_DIR = Path(__file__).parent / "locale"
TEMPLATE = LOCALE_DIR / "seriesfeed.pot"
DOMAIN = "seriesfeed"
SOURCE_LANGUAGE = "en"  # the msgids' language
_PLURAL_TAGS = ("zero", "one", "two", "few", "many", "other")  # gettext index order

Key = tuple[str | None, str]  # (msgctxt, msgid)


@dataclass(frozen=True)
class Catalogue:
    """One language's compiled messages: a plain msgid maps to its text, a plural msgid
    to one text per CLDR plural category present in the language."""

    language: str
    path: Path | None
    messages: Mapping[Key, str | tuple[str, ...]]
    rule: PluralRule

    @property
    def plural_tags(self) -> tuple[str, ...]:
        used = set(self.rule.tags) | {"other"}
        return tuple(t for t in _PLURAL_TAGS if t in used)

    def plural_index(self, n: int) -> int:
        return self.plural_tags.index(self.rule(n))


def _rule(language: str) -> PluralRule:
    try:
        return Locale.parse(language.replace("-", "_")).plural_form
    except (UnknownLocaleError, ValueError):
        return Locale.parse(SOURCE_LANGUAGE).plural_form


def catalogue_file(language: str, folders: tuple[Path, ...]) -> Path | None:
    """The first ``<folder>/<code>/LC_MESSAGES/seriesfeed.po`` that exists."""
    for folder in (*folders, LOCALE_DIR):
        candidate = folder / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if candidate.is_file():
            return candidate
    return None


def load_catalogue(language: str, folders: tuple[Path, ...] = ()) -> Catalogue:
    """Read and compile the language's catalogue (cached while its file is unchanged: a
    long-lived process, the daemon, builds pages after an edit to it, and their keys
    already hold the edited file's identity, ``feeds.settings_key``)."""
    path = catalogue_file(language, folders)
    identity: tuple[int, ...] = ()
    if path is not None:
        try:
            st = path.stat()
            identity = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        except OSError:
            pass
    return _compiled(language, path, identity)


@lru_cache(maxsize=64)
def _compiled(language: str, path: Path | None, identity: tuple[int, ...]) -> Catalogue:
    """``path`` (the language's catalogue file, or None) read and compiled, once per
    ``identity`` of the file."""
    del identity  # only the cache's key
    messages: dict[Key, str | tuple[str, ...]] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=language.replace("-", "_"), abort_invalid=True)
        except (OSError, ValueError, UnknownLocaleError) as exc:
            raise ConfigError(f"{path}: not a readable message catalogue ({exc})",
                              path=str(path)) from exc
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            key: Key = (message.context, message.id if isinstance(message.id, str)
                        else message.id[0])
            if isinstance(message.string, str):
                if message.string:
                    messages[key] = message.string
            elif message.string and all(message.string):
                messages[key] = tuple(message.string)
    return Catalogue(language, path, messages, _rule(language))


def catalogue_folders(config: Config) -> tuple[Path, ...]:
    return (config.resolve(config.site.catalogues),) if config.site.catalogues else ()


@dataclass(frozen=True)
class Messages:
    """The ``_``, ``ngettext`` and ``pgettext`` of one language, for code and templates.
    Placeholders are ``{name}`` (str.format), filled from the keyword arguments."""

    catalogue: Catalogue

    @property
    def language(self) -> str:
        return self.catalogue.language

    def gettext(self, message: str, /, **values: object) -> str:
        return self._lookup(None, message, values)

    __call__ = gettext

    def pgettext(self, context: str, message: str, /, **values: object) -> str:
        return self._lookup(context, message, values)

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        found = self.catalogue.messages.get((None, singular))
        if isinstance(found, tuple):
            index = min(self.catalogue.plural_index(n), len(found) - 1)
            text = found[index]
        else:  # the English rule for the msgids themselves
            text = singular if n == 1 else plural
        return _fill(text, singular if n == 1 else plural, {"n": n, **values})

    def _lookup(self, context: str | None, message: str, values: Mapping[str, object]) -> str:
        found = self.catalogue.messages.get((context, message))
        text = found if isinstance(found, str) else message
        return _fill(text, message, values) if values else text


def _fill(text: str, message: str, values: Mapping[str, object]) -> str:
    """A translation whose placeholder is misspelt (``{titulo}``) shows the English
    message rather than breaking the page or the mail; `seriesfeed i18n check` names it."""
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):
        return message.format(**values)


def N_(message: str) -> str:  # the gettext convention for "mark, do not translate"
    """Marks a message for extraction where it is defined; translate it where it is shown."""
    return message


def messages_for(config: Config, language: str) -> Messages:
    return Messages(load_catalogue(language, catalogue_folders(config)))


def template_functions(config: Config, language: str) -> dict[str, object]:
    """What every template (page or mail) gets to translate with: the catalogue's
    functions, ``format_date`` (in the site's time zone, ``long`` unless told),
    ``language_name`` and ``byline`` (CLDR's list pattern: "A, B y C"), all in the
    language's locale."""
    m = messages_for(config, language)
    lang = config.languages.get(language)
    locale = lang.locale if lang else language

    def local_date(value: date | datetime, fmt: str = "long") -> str:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(config.zone)
        return format_date(value, locale, fmt)

    def local_time(value: datetime) -> str:
        return format_time(value.astimezone(config.zone), locale)

    # a series page prints these for each of its entries, most of them alike: each
    # distinct value is formatted once per set of functions
    bylines: dict[tuple[str, ...], str] = {}
    labels: dict[tuple[int, int], str] = {}

    def byline(authors: Iterable[object]) -> str:
        names = tuple(str(getattr(a, "name", a)) for a in authors)
        found = bylines.get(names)
        if found is None:
            found = bylines[names] = format_byline(list(names), locale)
        return found

    def part_label(part: int | None, parts: int | None) -> str:
        if not part or not parts:
            return ""
        found = labels.get((part, parts))
        if found is None:
            # plural on the total: CLDR forms differ by language ("de 1" / "de 18")
            found = labels[(part, parts)] = m.ngettext("Part {part} of {n}",
                                                       "Part {part} of {n}", parts, part=part)
        return found

    return {"_": m.gettext, "gettext": m.gettext, "ngettext": m.ngettext,
            "pgettext": m.pgettext, "format_date": local_date,
            "language_name": lambda code: language_name(code, locale), "byline": byline,
            "part_label": part_label, "format_time": local_time}


# -- the site's texts per language ------------------------------------------------------

@dataclass(frozen=True)
class SiteTexts:
    """What pages, feeds and mails say about the site, in one language."""

    language: str
    title: str
    description: str
    rights: str
    rights_label: str
    rights_url: str


def site_texts(config: Config, language: str) -> SiteTexts:
    lang = config.languages.get(language)
    site = config.site
    if lang is None:
        return SiteTexts(language, site.title, "", site.rights, site.rights_label,
                         site.rights_url)
    return SiteTexts(language, lang.site_title or site.title, lang.feed_description,
                     lang.rights or site.rights, lang.rights_label or site.rights_label,
                     site.rights_url)


def fallback_policy(config: Config, language: str, *, digest: bool = False) -> str:
    """``"none"`` or ``"original"`` for entries with no translation into ``language``."""
    lang = config.languages[language]
    return lang.fallback_for_digests() if digest else lang.fallback


def language_name(code: str, in_language: str) -> str:
    """The name of language ``code`` in ``in_language`` (CLDR): ``inglés`` for en in es."""
    try:
        names = Locale.parse(in_language.replace("-", "_")).languages
    except (UnknownLocaleError, ValueError):
        return code
    return str(names.get(code.replace("-", "_")) or names.get(code.split("-")[0]) or code)


# -- negotiation --------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?"
                    r"\s*$")


def negotiate(accept_language: str | None, available: list[str], default: str) -> str:
    """The best of ``available`` for an ``Accept-Language`` header (RFC 9110 q-values,
    then babel's negotiation, which also matches ``es-MX`` to ``es``)."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:50]):
        match = _RANGE.match(part)
        if not match:
            continue
        try:
            q = float(match.group(2)) if match.group(2) is not None else 1.0
        except ValueError:
            continue
        if q > 0 and match.group(1) != "*":
            ranked.append((-q, position, match.group(1)))
    preferred = [tag for _q, _p, tag in sorted(ranked)]
    for tag in preferred:  # one by one, so a lower q never beats a higher one
        found = negotiate_locale([tag], available, sep="-")
        if found:
            return str(found)
    return default


# -- checks ---------------------------------------------------------------------------

def check_languages(config: Config) -> None:
    """Every configured language names a locale babel knows (dates are formatted with it)
    and its catalogue, when it has one, can be read."""
    for code, lang in config.languages.items():
        try:
            Locale.parse(lang.locale)
        except (UnknownLocaleError, ValueError):
            raise error_at(config, f"languages.{code}", "locale",
                           f"'{lang.locale}' is not a locale babel knows (e.g. es, es_MX, "
                           "pt_BR)") from None
        load_catalogue(code, catalogue_folders(config))


def template_ids(path: Path = TEMPLATE) -> list[Key]:
    """The (msgctxt, msgid) pairs of the catalogue template."""
    with path.open("rb") as fh:
        catalog = read_po(fh)
    return [(m.context, m.id if isinstance(m.id, str) else m.id[0])
            for m in catalog if m.id]


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def check_catalogues(config: Config) -> list[str]:
    """Problems that would show English (or a broken sentence) to a reader: for each
    configured language but English, a missing catalogue, a msgid of the template with
    no translation, a wrong number of plural forms for its CLDR rule, a placeholder
    that the translation drops or invents. Empty when all is well."""
    problems: list[str] = []
    wanted = template_ids()
    plural_ids = _plural_ids()
    for code in config.languages:
        if code.split("-")[0] == SOURCE_LANGUAGE:
            continue
        cat = load_catalogue(code, catalogue_folders(config))
        if cat.path is None:
            problems.append(f"{code}: no catalogue {code}/LC_MESSAGES/{DOMAIN}.po")
            continue
        for key in wanted:
            found = cat.messages.get(key)
            label = f"{cat.path}: msgid {key[1]!r}" + (f" (msgctxt {key[0]!r})" if key[0]
                                                       else "")
            if found is None:
                problems.append(f"{label} has no translation")
                continue
            forms = found if isinstance(found, tuple) else (found,)
            if key[1] in plural_ids and len(forms) != len(cat.plural_tags):
                problems.append(f"{label} has {len(forms)} plural forms; CLDR's rule for "
                                f"{code} has {len(cat.plural_tags)} "
                                f"({', '.join(cat.plural_tags)})")
            source = _placeholders(key[1]) | _placeholders(plural_ids.get(key[1], ""))
            for form in forms:
                if not _placeholders(form) <= source | {"n"}:
                    problems.append(f"{label}: the translation uses a placeholder the "
                                    "message does not have")
                    break
    return problems


def _plural_ids(path: Path = TEMPLATE) -> dict[str, str]:
    with path.open("rb") as fh:
        catalog = read_po(fh)
    return {m.id[0]: m.id[1] for m in catalog if m.id and not isinstance(m.id, str)}


# -- dates ------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def locale_for(code: str) -> Locale:
    try:
        return Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise ConfigError(f"languages: '{code}' is not a locale babel knows",
                          key="locale") from exc


def format_date(value: date | datetime, locale: str, fmt: str = "long") -> str:
    """``26 de marzo de 2019`` (es), ``March 26, 2019`` (en_US)."""
    day = value.date() if isinstance(value, datetime) else value
    return _format_day(day, locale, fmt)


def format_moment(value: datetime, locale: str, zone: tzinfo) -> str:
    """A day and hour in ``zone``, named the way ``locale`` writes them, with the zone's
    city so a reader elsewhere knows whose clock it is: ``lunes, 14 de diciembre de 2026,
    7:00 (Nueva York)`` (es), ``Monday, December 14, 2026, 7:00 AM (New York)`` (en)."""
    where = locale_for(locale)
    local = value.astimezone(zone)
    day = _babel_format_date(local.date(), format="full", locale=where)
    hour = _babel_format_time(local, format="short", tzinfo=zone, locale=where)
    joined = str(where.datetime_formats.get("medium", "{1}, {0}")).format(hour, day)
    try:
        city = get_timezone_location(zone, locale=where, return_city=True)
    except (LookupError, ValueError):  # a zone CLDR has no city for (UTC, Etc/GMT+5)
        return joined
    return f"{joined} ({city})"


@lru_cache(maxsize=8192)  # a series page formats thousands of dates, most of them shared
def _format_day(day: date, locale: str, fmt: str) -> str:
    return _babel_format_date(day, format=fmt, locale=locale_for(locale))


def format_time(value: datetime, locale: str) -> str:
    """The hour a reader reads: ``7:00 AM`` (en_US), ``7:00`` (es), in ``value``'s zone."""
    return str(_babel_format_time(value, format="short", locale=locale_for(locale)))


def format_byline(names: list[str], locale: str) -> str:
    """``A, B, C and D`` (en), ``A, B y C`` (es): CLDR's list patterns for the locale, with
    the two-item pattern for the last join, which is how bylines are printed (no serial
    comma: CLDR's en_US ``end`` pattern would give ``C, and D``)."""
    if len(names) < 2:
        return names[0] if names else ""
    patterns = _list_patterns(locale)
    if len(names) == 2:
        return patterns["2"].format(names[0], names[1])
    head = patterns["start"].format(names[0], names[1])
    for name in names[2:-1]:
        head = patterns["middle"].format(head, name)
    return patterns["2"].format(head, names[-1])


def list_conjunction(locale: str) -> str:
    """The word CLDR puts between the last two items of a list in ``locale`` (``and``,
    ``y``, ``et``, ``und``); empty where the pattern joins without a word between spaces."""
    try:
        between = _list_patterns(locale)["2"].replace("{0}", "").replace("{1}", "")
    except ConfigError:
        return ""
    word = between.strip()
    return word if word and between.startswith(" ") and between.endswith(" ") else ""


@lru_cache(maxsize=64)
def _list_patterns(locale: str) -> dict[str, str]:
    found = locale_for(locale).list_patterns.get("standard", {})
    keys = ("start", "middle", "2")
    return {k: str(found[k]) if k in found else "{0}, {1}" for k in keys}

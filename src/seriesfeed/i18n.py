"""Languages as data: message catalogues (gettext .po files read with babel) and localized dates.

Each language's strings live in ``locale/<code>/LC_MESSAGES/*.po`` beside this module
(one .po file per area: ``web.po``, ``email.po``, …; they are merged). Adding a language
is a ``[languages.<code>]`` table in config.toml, a folder of .po files here and one under
``templates/email/``. A missing translation falls back to the msgid (English).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _babel_format_date
from babel.dates import format_datetime as _babel_format_datetime
from babel.messages.pofile import read_po

from seriesfeed.config import Config, error_at
from seriesfeed.errors import ConfigError

LOCALE_DIR = Path(__file__).parent / "locale"

Translate = Callable[..., str]


@lru_cache(maxsize=32)
def _catalogue(language: str) -> dict[str, str]:
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    messages: dict[str, str] = {}
    if not folder.is_dir():
        return messages
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=language.replace("-", "_"))
        for message in catalog:
            if message.id and isinstance(message.id, str) and isinstance(message.string, str) \
                    and message.string:
                messages[message.id] = message.string
    return messages


def gettext(language: str, message: str, /, **values: object) -> str:
    """``message`` translated into ``language``, with ``{name}`` placeholders filled."""
    text = _catalogue(language).get(message, message)
    return text.format(**values) if values else text


def translator(language: str) -> Translate:
    """A ``_`` function bound to one language, for templates."""

    def _(message: str, /, **values: object) -> str:
        return gettext(language, message, **values)

    return _


def ngettext(language: str, singular: str, plural: str, n: int, /, **values: object) -> str:
    """Plural-aware message: the catalogue stores the plural as its own msgid."""
    chosen = singular if n == 1 else plural
    return gettext(language, chosen, n=n, **values)


def check_languages(config: Config) -> None:
    """Every configured language names a locale babel knows (dates are formatted with it)."""
    for code, lang in config.languages.items():
        try:
            Locale.parse(lang.locale)
        except (UnknownLocaleError, ValueError):
            raise error_at(config, f"languages.{code}", "locale",
                           f"'{lang.locale}' is not a locale babel knows (e.g. es, es_MX, "
                           "pt_BR)") from None


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


@lru_cache(maxsize=8192)  # a series page formats thousands of dates, most of them shared
def _format_day(day: date, locale: str, fmt: str) -> str:
    return _babel_format_date(day, format=fmt, locale=locale_for(locale))


def format_datetime(value: datetime, locale: str, fmt: str = "long") -> str:
    return _babel_format_datetime(value, format=fmt, locale=locale_for(locale),
                                  tzinfo=value.tzinfo)


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


@lru_cache(maxsize=64)
def _list_patterns(locale: str) -> dict[str, str]:
    found = locale_for(locale).list_patterns.get("standard", {})
    keys = ("start", "middle", "2")
    return {k: str(found[k]) if k in found else "{0}, {1}" for k in keys}

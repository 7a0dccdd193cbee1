"""Load and validate config.toml; environment variables override the file, the file the defaults.

Every key is a field of one of the section dataclasses below: adding a setting means adding
a field (with its default) and, if it needs more than a type check, a validator in
``_VALIDATORS``. An error names the key, the file and the line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from seriesfeed import passwords
from seriesfeed.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_LANGUAGES",
    "ENV_NOT_SETTINGS",
    "ENV_PREFIX",
    "SOURCE_FORMATS",
    "AdminConfig",
    "Config",
    "DatabaseConfig",
    "DigestsConfig",
    "FeedsConfig",
    "LanguageConfig",
    "MailConfig",
    "MetricsConfig",
    "NodesConfig",
    "ScheduleConfig",
    "SecurityConfig",
    "SiteConfig",
    "SmtpConfig",
    "SourceConfig",
    "WebConfig",
    "WebSubConfig",
    "error_at",
    "load_config",
]

ENV_PREFIX = "SERIESFEED_"
# SERIESFEED_ variables that are not settings: the config path and the test harness's
ENV_NOT_SETTINGS = ("SERIESFEED_CONFIG", "SERIESFEED_TEST_")
DEFAULT_CONFIG = Path("config.toml")


@dataclass(frozen=True)
class SiteConfig:
    title: str = "SocialistWorker.org"
    url: str = "https://socialistworker.org"
    time_zone: str = "America/New_York"
    default_language: str = "en"
    rights: str = (
        "Material on this Web site is licensed by SocialistWorker.org, under a Creative "
        "Commons (by-nc-nd 3.0) license."
    )
    rights_url: str = "https://creativecommons.org/licenses/by-nc-nd/3.0/"
    rights_label: str = "CC BY-NC-ND 3.0"
    catalogues: str = ""
    entry_url_pattern: str = "{site_url}/{yyyy}/{mm}/{dd}/{slug}/"
    tag_authority: str = ""
    organizations: list[str] = field(default_factory=list)
    article_pages: str = "publisher"


@dataclass(frozen=True)
class LanguageConfig:
    code: str
    name: str = ""
    locale: str = ""
    feed_title: str = ""
    feed_description: str = ""
    digest_subject: str = ""
    digest_subject_one: str = ""
    bylines: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    # words joining the last two names of a byline in this language, besides CLDR's own
    # ("and", "y", "et", "und"); for bylines a publisher writes differently ("&", "e")
    conjunctions: list[str] = field(default_factory=list)
    # the site's words in this language; empty: the [site] value
    site_title: str = ""
    rights: str = ""
    rights_label: str = ""
    # entries with no translation into this language: left out ("none") or shown as
    # they are ("original"); digest_fallback empty: the same as fallback
    fallback: str = "none"
    digest_fallback: str = ""

    def fallback_for_digests(self) -> str:
        return self.digest_fallback or self.fallback


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/seriesfeed.sqlite3"


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = ""
    store_timeout: float = 3.0
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    forwarded_allow_ips: str = "127.0.0.1"


@dataclass(frozen=True)
class SmtpConfig:
    host: str = ""
    port: int = 587
    username: str = ""
    password: str = ""
    security: str = "starttls"
    connections: int = 4
    rate: float = 0.0
    timeout: float = 30.0


@dataclass(frozen=True)
class MailConfig:
    from_: str = "SocialistWorker.org <digest@localhost>"
    maildir: str = "var/maildir"
    bounce_limit: int = 3
    max_attempts: int = 8
    retry_seconds: float = 60.0
    lease_seconds: float = 300.0
    batch_size: int = 200
    dkim_key: str = ""
    dkim_selector: str = ""
    dkim_domain: str = ""
    unsubscribe_mailto: str = ""
    bounce_address: str = ""
    bounce_maildir: str = ""


@dataclass(frozen=True)
class SecurityConfig:
    secret_key: str = ""


@dataclass(frozen=True)
class FeedsConfig:
    max_entries: int = 50
    out_dir: str = "var/public"
    content: str = "full"


@dataclass(frozen=True)
class WebSubConfig:
    hub: str = ""


@dataclass(frozen=True)
class ScheduleConfig:
    feeds: str = "*/10 * * * *"
    daily: str = "0 7 * * *"
    weekly: str = "0 7 * * mon"
    drain_seconds: float = 15.0
    watch_seconds: float = 5.0
    shutdown_timeout: float = 10.0
    bounces_seconds: float = 300.0
    check_seconds: float = 600.0


@dataclass(frozen=True)
class DigestsConfig:
    # a reader who starts from part 1 gets this many back-catalogue parts per digest slot
    catch_up_per_digest: int = 1
    # the web forms offer "from part 1" by default below this many parts, else "only new"
    catch_up_max: int = 30
    archive: bool = False


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = False
    token: str = ""
    listen: str = ""


@dataclass(frozen=True)
class AdminConfig:
    """The operator's console under /admin/ (off by default: no route at all)."""

    enabled: bool = False
    # made by `seriesfeed admin hash-password`; empty: nobody can log in
    password_hash: str = ""
    listen: str = ""  # "host:port": the console only there, never on the public port
    account: str = "admin"
    session_hours: float = 12.0


@dataclass(frozen=True)
class NodesConfig:
    """Several daemons on one PostgreSQL store: how long the leader's lease lasts."""

    lease_seconds: float = 15.0


@dataclass(frozen=True)
class SourceConfig:
    """One ``[sources.<name>]`` table: a publisher's feed or series page the daemon polls."""

    code: str  # the table's name
    url: str = ""
    series: str = ""  # slug the entries go to; empty: from the document's title
    language: str = ""  # empty: from the document (xml:lang, <language>, JSON Feed)
    format: str = ""  # page, json, csv, feed or jsonfeed; empty: detected
    schedule: str = "*/15 * * * *"
    prune: bool = False  # remove stored entries the source no longer lists
    # hosts or networks a redirect may lead to although they are internal (loopback,
    # private, link-local); the configured URL being internal allows them all
    allow_private: list[str] = field(default_factory=list)


SOURCE_FORMATS = ("page", "json", "csv", "feed", "jsonfeed")


@dataclass(frozen=True)
class Config:
    path: Path | None
    base_dir: Path
    site: SiteConfig
    languages: dict[str, LanguageConfig]
    database: DatabaseConfig
    web: WebConfig
    smtp: SmtpConfig
    mail: MailConfig
    security: SecurityConfig
    feeds: FeedsConfig
    schedule: ScheduleConfig
    websub: WebSubConfig
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    nodes: NodesConfig = field(default_factory=NodesConfig)
    digests: DigestsConfig = field(default_factory=DigestsConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.site.time_zone)

    @property
    def public_url(self) -> str:
        """The URL readers reach this server at, without a trailing slash."""
        if self.web.base_url:
            return self.web.base_url.rstrip("/")
        return f"http://{self.web.host}:{self.web.port}"

    def listening_on(self, host: str | None, port: int | None) -> Config:
        """This config with the command line's ``--host``/``--port`` in ``[web]``, so a
        ``public_url`` derived from them (no ``base_url``) names where the server listens;
        an explicit ``base_url`` (a proxy in front) still wins."""
        web = dataclasses.replace(self.web, host=self.web.host if host is None else host,
                                  port=self.web.port if port is None else port)
        return dataclasses.replace(self, web=web)

    def resolve(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p


_SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "database": DatabaseConfig,
    "web": WebConfig,
    "smtp": SmtpConfig,
    "mail": MailConfig,
    "security": SecurityConfig,
    "feeds": FeedsConfig,
    "schedule": ScheduleConfig,
    "websub": WebSubConfig,
    "metrics": MetricsConfig,
    "nodes": NodesConfig,
    "digests": DigestsConfig,
    "admin": AdminConfig,
}

DEFAULT_LANGUAGES: dict[str, dict[str, Any]] = {
    "en": {"name": "English", "locale": "en_US", "feed_title": "SocialistWorker.org",
           "feed_description": "Articles from SocialistWorker.org"},
    "es": {"name": "Español", "locale": "es", "feed_title": "Obrero Socialista",
           "feed_description": "Artículos en español de SocialistWorker.org",
           "bylines": ["Obrero Socialista"], "sections": ["Obrero Socialista"],
           "rights": "El material de este sitio web se publica con una licencia Creative "
                     "Commons (by-nc-nd 3.0) de SocialistWorker.org."},
}


def _toml_key(name: str) -> str:
    return name.rstrip("_")  # from_ -> from


def _check_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or \
            any(c.isspace() or ord(c) < 32 for c in value):
        return f"'{value}' is not an http(s) URL"
    return None


def _check_url_or_empty(value: str) -> str | None:
    return None if value == "" else _check_url(value)


def _check_zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"'{value}' is not a known time zone (use an IANA name like America/New_York)"
    return None


def _check_one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value in allowed:
            return None
        return f"must be {' or '.join(repr(a) for a in allowed)}, not {value!r}"
    return check


def _check_positive(value: int | float) -> str | None:
    return None if value > 0 else f"must be greater than 0, not {value}"


def _check_between(low: float, high: float) -> Callable[[int | float], str | None]:
    def check(value: int | float) -> str | None:
        return None if low <= value <= high else \
            f"must be between {low:g} and {high:g}, not {value}"
    return check


def _check_seconds(high: float) -> Callable[[int | float], str | None]:
    """A duration: more than 0 and at most ``high`` seconds (a timer or a date past that
    overflows, or waits for ever, at the first use instead of at load)."""
    def check(value: int | float) -> str | None:
        return None if 0 < value <= high else \
            f"must be more than 0 and at most {high:g} seconds, not {value}"
    return check


HOUR, DAY = 3600.0, 86_400.0


def _check_not_negative(value: int | float) -> str | None:
    return None if value >= 0 else f"must not be negative, not {value}"


def _check_port(value: int) -> str | None:
    # 0 would listen on a port the kernel picks, which no link names; a relay has none
    return None if 0 < value <= 65535 else f"{value} is not a TCP port (1-65535)"


def _check_security(value: str) -> str | None:
    choices = ("starttls", "tls", "none")
    return None if value in choices else f"'{value}' is not one of {', '.join(choices)}"


def _check_db_url(value: str) -> str | None:
    if re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
        return None
    return f"'{value}' is not a sqlite:/// or postgresql:// URL"


def _check_pattern(value: str) -> str | None:
    try:
        value.format(site_url="", yyyy="", mm="", dd="", slug="", series="", language="")
    except (KeyError, IndexError, ValueError) as exc:
        return (f"unknown placeholder {exc} (use {{site_url}} {{yyyy}} {{mm}} {{dd}} "
                "{slug} {series} {language})")
    return None


_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12),
                ("weekday", 0, 7))


def _check_fallback(value: str) -> str | None:
    return None if value in ("none", "original") else f"'{value}' is not none or original"


def _check_fallback_or_empty(value: str) -> str | None:
    return None if value == "" else _check_fallback(value)


def _check_subject(value: str) -> str | None:
    try:
        value.format(title="", n=0)
    except (KeyError, IndexError, ValueError) as exc:
        return f"unknown placeholder {exc} (use {{title}} and {{n}})"
    return None


def _check_cron(value: str) -> str | None:
    # APScheduler parses it for real in schedules.py (the only module importing it); this
    # catches at load, with the file line, what would otherwise fail only when the daemon
    # starts: a wrong field count, a number out of range, a stray character
    fields = value.split()
    if len(fields) not in (5, 6):
        return (f"'{value}' is not a cron expression of 5 fields (minute hour day month "
                "weekday; a 6th, leading field gives seconds)")
    spec = (("second", 0, 59), *_CRON_FIELDS) if len(fields) == 6 else _CRON_FIELDS
    for text, (name, low, high) in zip(fields, spec, strict=True):
        if not re.fullmatch(r"[0-9A-Za-z*/,\-]+", text):
            return f"'{value}': the {name} field '{text}' is not valid cron syntax"
        for number in re.findall(r"(?<![/0-9])[0-9]+", text):
            if not low <= int(number) <= high:
                return f"'{value}': {number} is out of range for the {name} ({low}-{high})"
    return None


def _check_from(value: str) -> str | None:
    _name, addr = parseaddr(value)
    if addr and not addr.isascii():
        # the envelope sender and From of every message: an ASCII address (the display
        # name may be in any script); relays without SMTPUTF8 could not take it at all
        return (f"'{addr}' is not an ASCII address (write the domain as A-labels, "
                "e.g. xn--...; the name before <...> may use any letters)")
    if not re.fullmatch(r"[^@\s<>\x00-\x1f]+@[^@\s<>\x00-\x1f]+", addr) or \
            any(c in value for c in "\r\n\x00"):
        return (f"'{value}' is not an address such as 'Site name <digest@example.org>' or "
                "'digest@example.org'")
    return None


def _check_listen(value: str) -> str | None:
    if value == "":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        return f"'{value}' is not a host:port address such as 10.0.0.5:9108, or empty"
    return None


def _check_forwarded(value: str) -> str | None:
    import ipaddress

    for part in (p.strip() for p in value.split(",")):
        if part == "*" or part == "":
            continue
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            return (f"'{part}' is not an IP address or network (a comma-separated list such "
                    "as '127.0.0.1, 10.0.0.0/8', or '*')")
    return None


def _check_address_or_empty(value: Any) -> str | None:
    # a bare addr-spec: it goes into a mailto: URL, so no display name, spaces or '?'
    if value == "":
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9.!#$%&'*+/=^_`{|}~-]+@"
                                                     r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}", value):
        return "must be a plain email address such as unsubscribe@example.org, or empty"
    return None


MIN_SECRET_KEY_BYTES = 32  # HMAC-SHA256's block of entropy: what a new key must have
# the shortest key links were ever signed with: a key of 16 to 31 bytes already signs the
# unsubscribe links in mail people keep (they must work for a year), so it is taken with a
# warning to rotate it, never refused; anything shorter never signed a link
LEGACY_SECRET_KEY_BYTES = 16


def _check_secret_key(value: str) -> str | None:
    # refused at load: a short key used to pass until the first link was signed, so a
    # confirmation was queued that could never be built
    if value == "" or len(value.encode("utf-8")) >= LEGACY_SECRET_KEY_BYTES:
        return None
    return (f"must be at least {MIN_SECRET_KEY_BYTES} bytes, not {len(value.encode('utf-8'))} "
            "(64 random hex characters are best; empty: one is generated into "
            "var/secret_key)")


def _check_source_format(value: str) -> str | None:
    if value in ("", *SOURCE_FORMATS):
        return None
    return f"'{value}' is not one of {', '.join(SOURCE_FORMATS)} (or empty: detected)"


def _check_slug_or_empty(value: str) -> str | None:
    if value == "" or re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", value):
        return None
    return f"'{value}' is not a series slug (lower-case letters, digits and single hyphens)"


def _check_hosts_or_networks(value: Any) -> str | None:
    for item in value:
        text = str(item).strip()
        if "/" in text:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                return f"'{text}' is not a network like '10.0.0.0/8'"
        elif not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", text):
            return f"'{text}' is not a host name or an address"
    return None


def _check_account(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9._@-]{1,100}", value):
        return None
    return f"'{value}' is not an account name (1-100 letters, digits, '.', '_', '@', '-')"


_VALIDATORS: dict[tuple[str, str], Callable[[Any], str | None]] = {
    ("admin", "password_hash"): passwords.problem,
    ("admin", "listen"): _check_listen,
    ("admin", "account"): _check_account,
    ("admin", "session_hours"): _check_between(0.05, 24 * 30),
    ("sources", "url"): _check_url,
    ("sources", "schedule"): _check_cron,
    ("sources", "format"): _check_source_format,
    ("sources", "series"): _check_slug_or_empty,
    ("sources", "allow_private"): _check_hosts_or_networks,
    ("site", "url"): _check_url,
    ("site", "time_zone"): _check_zone,
    ("site", "entry_url_pattern"): _check_pattern,
    ("site", "rights_url"): _check_url_or_empty,
    ("mail", "from"): _check_from,
    ("database", "url"): _check_db_url,
    ("web", "port"): _check_port,
    ("web", "base_url"): _check_url_or_empty,
    ("web", "store_timeout"): _check_seconds(HOUR),
    ("web", "header_timeout"): _check_seconds(HOUR),
    ("web", "body_timeout"): _check_seconds(HOUR),
    ("smtp", "port"): _check_port,
    ("smtp", "security"): _check_security,
    ("smtp", "connections"): _check_positive,
    ("smtp", "rate"): _check_not_negative,
    ("smtp", "timeout"): _check_seconds(HOUR),
    ("mail", "bounce_limit"): _check_positive,
    ("mail", "max_attempts"): _check_positive,
    ("mail", "retry_seconds"): _check_seconds(DAY),
    ("mail", "lease_seconds"): _check_between(10, 86_400),
    ("mail", "batch_size"): _check_between(1, 10_000),
    ("mail", "unsubscribe_mailto"): _check_address_or_empty,
    ("mail", "bounce_address"): _check_address_or_empty,
    ("web", "forwarded_allow_ips"): _check_forwarded,
    ("security", "secret_key"): _check_secret_key,
    ("metrics", "listen"): _check_listen,
    ("digests", "catch_up_per_digest"): _check_between(1, 100),
    ("digests", "catch_up_max"): _check_not_negative,
    ("schedule", "bounces_seconds"): _check_seconds(DAY),
    ("schedule", "check_seconds"): _check_seconds(DAY),
    # under a second the renewal (every third of it) races the store's own latency
    ("nodes", "lease_seconds"): _check_between(1, HOUR),
    ("feeds", "max_entries"): _check_positive,
    ("feeds", "content"): _check_one_of("summary", "full"),
    ("site", "article_pages"): _check_one_of("publisher", "local"),
    ("websub", "hub"): _check_url_or_empty,
    ("languages", "digest_subject"): _check_subject,
    ("languages", "digest_subject_one"): _check_subject,
    ("languages", "fallback"): _check_fallback,
    ("languages", "digest_fallback"): _check_fallback_or_empty,
    ("schedule", "feeds"): _check_cron,
    ("schedule", "daily"): _check_cron,
    ("schedule", "weekly"): _check_cron,
    ("schedule", "drain_seconds"): _check_seconds(DAY),
    ("schedule", "watch_seconds"): _check_seconds(DAY),
    ("schedule", "shutdown_timeout"): _check_seconds(HOUR),
}


class _Source:
    """Finds the line of a key in the TOML text, for error messages."""

    def __init__(self, path: Path | None, text: str) -> None:
        self.path = str(path) if path else None
        self.lines = text.splitlines()

    def line_of(self, table: str | None, key: str | None) -> int | None:
        current: str | None = None
        for number, raw in enumerate(self.lines, start=1):
            line = raw.strip()
            header = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
            if header:
                current = header.group(1).replace('"', "").replace(" ", "")
                if key is None and current == table:
                    return number
                continue
            if key is not None and current == table and re.match(
                rf'^"?{re.escape(key)}"?\s*=', line
            ):
                return number
        return None

    def error(self, message: str, table: str | None, key: str | None) -> ConfigError:
        dotted = ".".join(p for p in (table, key) if p)
        return ConfigError(f"{dotted}: {message}" if dotted else message, key=dotted or None,
                           line=self.line_of(table, key), path=self.path)


def error_at(config: Config, table: str, key: str, message: str) -> ConfigError:
    """A ConfigError for a check made after loading by the module that owns the library
    it needs (babel's locales in i18n), naming the key and its line when it is in the file."""
    text = ""
    if config.path is not None:
        try:
            text = config.path.read_text(encoding="utf-8")
        except OSError:
            text = ""
    return _Source(config.path, text).error(message, table, key)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list of strings"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, str(tp))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Return (ok, value converted to ``tp``)."""
    if typing.get_origin(tp) is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return ok, list(value) if ok else value
    if tp is float:  # inf and nan are TOML floats, but no setting means either
        if isinstance(value, int | float) and not isinstance(value, bool) and \
                math.isfinite(value):
            return True, float(value)
        return False, value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    if isinstance(tp, types.UnionType):  # not used by any field today
        return True, value
    return False, value


def _from_env(raw: str, tp: Any) -> Any:
    """Parse an environment variable's text as the field's type (lists: TOML array or commas)."""
    if tp is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        return raw
    if tp is int:
        try:
            return int(raw)
        except ValueError:
            return raw
    if tp is float:
        try:
            return float(raw)
        except ValueError:
            return raw
    if typing.get_origin(tp) is list:
        if raw.strip().startswith("["):
            try:
                return tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                return raw
        return [p.strip() for p in raw.split(",") if p.strip()]
    return raw


def _build(cls: type, table: str, data: Mapping[str, Any], env: Mapping[str, str],
           env_name: str, src: _Source, extra: dict[str, Any] | None = None) -> Any:
    hints = typing.get_type_hints(cls)
    known = {_toml_key(f.name): f for f in dataclasses.fields(cls) if f.name != "code"}
    for key in data:
        if key not in known:
            choices = ", ".join(sorted(known))
            raise src.error(f"unknown key (known keys: {choices})", table, key)
    values: dict[str, Any] = dict(extra or {})
    for key, f in known.items():
        tp = hints[f.name]
        where = "file"
        if f"{env_name}_{key.upper()}" in env:
            value = _from_env(env[f"{env_name}_{key.upper()}"], tp)
            where = "env"
        elif key in data:
            value = data[key]
        else:
            continue
        ok, value = _coerce(value, tp)
        if not ok:
            msg = f"must be {_type_name(tp)}, not {value!r}"
            if where == "env":
                raise ConfigError(f"{env_name}_{key.upper()}: {msg}", key=f"{table}.{key}")
            raise src.error(msg, table, key)
        check = _VALIDATORS.get((table.split(".")[0], key))
        problem = check(value) if check else None
        if problem:
            if where == "env":
                raise ConfigError(f"{env_name}_{key.upper()}: {problem}", key=f"{table}.{key}")
            raise src.error(problem, table, key)
        values[f.name] = value
    return cls(**values)


def _known_env_names(languages: list[str], sources: Sequence[str] = ()) -> set[str]:
    names = {"SERIESFEED_CONFIG"}
    for table, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            names.add(f"{ENV_PREFIX}{table.upper()}_{_toml_key(f.name).upper()}")
    for code in languages:
        for f in dataclasses.fields(LanguageConfig):
            names.add(f"{ENV_PREFIX}LANGUAGES_{code.upper()}_{f.name.upper()}")
    for name in sources:
        for f in dataclasses.fields(SourceConfig):
            names.add(f"{ENV_PREFIX}SOURCES_{_env_part(name)}_{f.name.upper()}")
    return names


def _env_part(name: str) -> str:
    return name.upper().replace("-", "_")


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (default ``./config.toml``; embedded defaults when that is absent).

    Raises ConfigError naming the key and line for anything invalid."""
    env = dict(os.environ if env is None else env)
    explicit = path is not None
    path = path if path is not None else DEFAULT_CONFIG
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the configuration: {exc}", path=str(path)) from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc
        base_dir = path.resolve().parent
    elif explicit:
        raise ConfigError("no such configuration file", path=str(path))
    else:
        text, data, base_dir, path = "", {}, Path.cwd(), None
    src = _Source(path, text)

    for table in data:
        if table not in _SECTIONS and table not in ("languages", "sources"):
            raise src.error(
                f"unknown section (known: "
                f"{', '.join(sorted([*_SECTIONS, 'languages', 'sources']))})",
                table, None)
        if not isinstance(data[table], dict):
            raise src.error("must be a table", table, None)

    lang_data = data.get("languages", {key: dict(v) for key, v in DEFAULT_LANGUAGES.items()})
    for code, body in lang_data.items():
        if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", code):
            raise src.error("a language code like 'en' or 'pt-BR' is expected", "languages", code)
        if not isinstance(body, dict):
            raise src.error("must be a table", f"languages.{code}", None)

    source_data = data.get("sources", {})
    for name, body in source_data.items():
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
            raise src.error("a source name of lower-case letters, digits, '-' and '_' is "
                            "expected", "sources", name)
        if not isinstance(body, dict):
            raise src.error("must be a table", f"sources.{name}", None)
    known_env = _known_env_names(list(lang_data), list(source_data))
    unknown_env = sorted(
        name for name in env
        if name.startswith(ENV_PREFIX) and name not in known_env
        and not name.startswith(ENV_NOT_SETTINGS)
    )
    if unknown_env:
        name = unknown_env[0]
        section = name.removeprefix(ENV_PREFIX).split("_")[0].lower()
        if section not in [*_SECTIONS, "languages", "sources"]:
            raise ConfigError(f"{name}: no such section [{section}] (known: "
                              f"{', '.join(sorted([*_SECTIONS, 'languages', 'sources']))})")
        raise ConfigError(f"{name}: no such setting (see config.toml for the keys)")

    sections = {
        table: _build(cls, table, data.get(table, {}), env, f"{ENV_PREFIX}{table.upper()}", src)
        for table, cls in _SECTIONS.items()
    }
    languages: dict[str, LanguageConfig] = {}
    for code, body in lang_data.items():
        table = f"languages.{code}"
        lang = _build(LanguageConfig, table, body, env,
                      f"{ENV_PREFIX}LANGUAGES_{code.upper().replace('-', '_')}", src,
                      extra={"code": code})
        languages[code] = dataclasses.replace(
            lang, name=lang.name or code, locale=lang.locale or code.replace("-", "_"))
    if not languages:
        raise src.error("at least one language is needed", "languages", None)
    source_configs: dict[str, SourceConfig] = {}
    for name, body in source_data.items():
        table = f"sources.{name}"
        source = _build(SourceConfig, table, body, env,
                        f"{ENV_PREFIX}SOURCES_{_env_part(name)}", src, extra={"code": name})
        if not source.url:
            raise src.error("url is required", table, None)
        if source.language and source.language not in languages:
            raise src.error(f"'{source.language}' is not one of the [languages] tables",
                            table, "language")
        source_configs[name] = source
    metrics: MetricsConfig = sections["metrics"]
    if metrics.enabled and len(metrics.token) < 16:
        problem = "set a token of at least 16 characters when metrics are enabled"
        if f"{ENV_PREFIX}METRICS_TOKEN" in env or f"{ENV_PREFIX}METRICS_ENABLED" in env:
            raise ConfigError(f"{ENV_PREFIX}METRICS_TOKEN: {problem}", key="metrics.token")
        raise src.error(problem, "metrics", "token" if "token" in data.get("metrics", {})
                        else "enabled")
    site: SiteConfig = sections["site"]
    if site.default_language not in languages:
        problem = f"'{site.default_language}' is not one of the [languages] tables"
        if f"{ENV_PREFIX}SITE_DEFAULT_LANGUAGE" in env:
            raise ConfigError(f"{ENV_PREFIX}SITE_DEFAULT_LANGUAGE: {problem}",
                              key="site.default_language")
        raise src.error(problem, "site", "default_language")
    return Config(path=path, base_dir=base_dir, languages=languages, sources=source_configs,
                  **sections)

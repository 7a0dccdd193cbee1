"""Checking and normalising the URLs and ids that entries and series bring in.

A URL that reaches the store ends up in feeds, pages, mail and (through the tag URI minted
from it) in entry ids, so it must be one a reader can follow and no document can be broken
by: absolute http(s), a host, no whitespace, quotes, angle brackets or control characters
(those mean a broken capture, not a URL), no user name or password. What merely has to be
escaped is escaped: a non-ASCII path or query is UTF-8 percent-encoded, an internationalised
host becomes its A-label (``bücher.example`` → ``xn--bcher-kva.example``).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "FORBIDDEN",
    "MAX_ID",
    "MAX_URL",
    "PATH_SAFE",
    "QUERY_SAFE",
    "STRAY_PERCENT",
    "BadURL",
    "check_id",
    "check_url",
]

MAX_URL = 65_536  # a sanity bound: B5 sends a 10 KB URL through mail
MAX_ID = 1000  # entries.id is String(1000)
FORBIDDEN = re.compile(r"[\s\"<>\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986: what may stay as it is in a path, a query and a fragment ('%' escapes kept)
PATH_SAFE = "/%:@!$&'()*+,;=-._~"
QUERY_SAFE = PATH_SAFE + "?"


class BadURL(ValueError):
    """Why a URL or id was refused (the message names no field: the caller does)."""


def _describe(value: str) -> str:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return repr(shown)


def _escape(part: str, safe: str) -> str:
    return quote(STRAY_PERCENT.sub("%25", part), safe=safe)


def check_url(value: str) -> str:
    """The URL, normalised (scheme and host lower-case, A-label host, percent-encoded
    path, query and fragment); BadURL when it cannot be one."""
    url = value.strip(" \t\r\n")
    if not url:
        raise BadURL("the URL is empty")
    bad = FORBIDDEN.search(url)
    if bad:
        what = "whitespace" if bad.group().isspace() else \
            "a quote" if bad.group() == '"' else \
            "'<' or '>'" if bad.group() in "<>" else "a control character"
        raise BadURL(f"{_describe(url)} contains {what}: not a URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadURL(f"{_describe(url)} is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise BadURL(f"{_describe(url)} is not an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise BadURL(f"{_describe(url)} carries a user name or password")
    host = parts.hostname.lower()  # lower-cased and without brackets by urlsplit
    if ":" in host:  # an IPv6 literal
        netloc = f"[{host}]"
    else:
        try:
            ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError:
            raise BadURL(f"{_describe(url)} has a host name that cannot be an "
                         "internationalised domain name") from None
        if not re.fullmatch(r"[a-z0-9_.-]+", ascii_host) or ".." in ascii_host:
            raise BadURL(f"{_describe(url)} has an invalid host name")
        netloc = ascii_host
    if port is not None:
        netloc += f":{port}"
    normal = urlunsplit((scheme, netloc, _escape(parts.path, PATH_SAFE),
                         _escape(parts.query, QUERY_SAFE), _escape(parts.fragment, QUERY_SAFE)))
    if len(normal) > MAX_URL:
        raise BadURL(f"the URL is longer than {MAX_URL} characters")
    return normal


def check_id(value: str) -> str:
    """An entry id as given (ids are compared verbatim, so nothing is rewritten): a URI
    with a scheme, without whitespace, quotes, angle brackets or control characters."""
    if len(value) > MAX_ID:
        raise BadURL(f"the id is longer than {MAX_ID} characters")
    bad = FORBIDDEN.search(value)
    parts = urlsplit(value) if not bad else None
    if bad or parts is None or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme) \
            or not (parts.netloc or parts.path):
        raise BadURL(f"{_describe(value)} is not a URI (ids are tag:, http(s): or urn: URIs, "
                     "without spaces, quotes or '<>')")
    return value

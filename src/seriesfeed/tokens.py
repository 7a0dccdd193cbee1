"""Signed tokens for the links in mail (confirm, unsubscribe, preferences) and for the CSRF
field of the pages those links open.

A token is ``base64url(payload).base64url(mac)``; the MAC is HMAC-SHA256 under a key derived
per purpose from the secret key, so a token made for one purpose is refused for another.
Payloads carry the subscriber's id, the issue time and a purpose-specific binding, never the
address. Lifetimes (``LIFETIME_S``): confirm links a week, and they are bound to the
confirmation request they came from, so they work once (the caller checks the binding);
unsubscribe links never expire (a year-old digest's button must still work, RFC 8058);
preferences links 400 days; CSRF fields two hours; the undo of an unsubscribe (offered on the
page that confirms it) a week, bound to that unsubscribe, so it works once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from seriesfeed.config import LEGACY_SECRET_KEY_BYTES, MIN_SECRET_KEY_BYTES, Config
from seriesfeed.errors import ConfigError, ValidationError


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    CSRF = "csrf"
    UNDO = "undo"  # of an unsubscribe: its own key, so no other link can restore anyone
    VIEW = "view"  # a digest's public page: names a digest and a language, never a person
    # the operator's console: its session cookie, the CSRF field of its forms, and the
    # pre-session cookie the login form's CSRF field is bound to
    ADMIN_SESSION = "admin-session"
    ADMIN_CSRF = "admin-csrf"
    ADMIN_LOGIN = "admin-login"


DAY = 24 * 3600
LIFETIME_S: dict[Purpose, int | None] = {
    Purpose.CONFIRM: 7 * DAY,
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: 400 * DAY,
    Purpose.CSRF: 2 * 3600,
    Purpose.UNDO: 7 * DAY,
    Purpose.VIEW: None,
    # the session row in the store decides when a console session ends; the cookie's
    # signature only proves we issued it (bounded by the longest [admin] session_hours)
    Purpose.ADMIN_SESSION: 30 * DAY,
    Purpose.ADMIN_CSRF: 30 * DAY,
    Purpose.ADMIN_LOGIN: 2 * 3600,
}
CLOCK_SKEW_S = 300  # tokens from a few minutes "in the future" (another host's clock) pass
MAX_TOKEN = 512
MIN_KEY = LEGACY_SECRET_KEY_BYTES  # the configured key is checked at load
log = logging.getLogger("seriesfeed.tokens")
_WARNED: set[str] = set()  # one warning a process, not one a link
INVALID = "this link is invalid or has expired"


_KEYS: dict[Path, bytes] = {}  # the generated key files read so far, by path

__all__ = [
    "INVALID",
    "LIFETIME_S",
    "Claims",
    "Purpose",
    "bound_token",
    "check_csrf",
    "confirm_link",
    "ensure_secret_key",
    "make_csrf",
    "make_token",
    "preferences_link",
    "read_bound",
    "read_token",
    "read_view_token",
    "undo_link",
    "unsubscribe_link",
    "view_token",
]


@dataclass(frozen=True)
class Claims:
    subscriber_id: int
    issued_at: int
    bound: str  # purpose-specific binding (e.g. the confirmation request's time)


def ensure_secret_key(config: Config) -> bytes:
    """The configured ``[security] secret_key``, or one generated once into
    ``var/secret_key`` (mode 0600) beside the config and reused from then on."""
    configured = config.security.secret_key
    if configured:
        size = len(configured.encode("utf-8"))
        if size < MIN_KEY:  # a Config built without load_config
            raise ConfigError(f"security.secret_key: use at least {MIN_SECRET_KEY_BYTES} bytes "
                              "(32 random bytes, hex-encoded, are best)",
                              key="security.secret_key")
        if size < MIN_SECRET_KEY_BYTES and configured not in _WARNED:
            _WARNED.add(configured)
            log.warning("security.secret_key has %d bytes, fewer than the %d a key should "
                        "have: rotate it when the unsubscribe links already sent (they last a "
                        "year) may stop working", size, MIN_SECRET_KEY_BYTES)
        return configured.encode("utf-8")
    path = config.resolve("var/secret_key")
    cached = _KEYS.get(path)
    if cached is not None:
        return cached  # read once per process: every link and form needs it
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        key = _create_key_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the secret key {path}: {exc}",
                          key="security.secret_key") from exc
    if len(key) < MIN_KEY:
        raise ConfigError(f"the secret key in {path} is shorter than {MIN_KEY} characters; "
                          "delete the file to generate a new one (links already sent stop "
                          "working)", key="security.secret_key")
    _KEYS[path] = key
    return key


def _create_key_file(target: Path) -> bytes:
    """Write a fresh key to a private temporary file, then link it into place: another
    process starting at the same moment either wins (and we read its key) or loses, and no
    one ever reads a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return target.read_bytes().strip()
        return key
    finally:
        tmp.unlink(missing_ok=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict decoding: the text must be the canonical encoding of the bytes it decodes to,
    so no two spellings of a token exist (stray characters or flipped padding bits would
    otherwise decode to the same bytes and pass the MAC)."""
    if not text.isascii():
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


@functools.lru_cache(maxsize=64)
def _purpose_key(key: bytes, purpose: Purpose) -> bytes:
    """The key of one purpose, derived from the secret key (derived once: a digest signs
    two links per recipient)."""
    return hmac.digest(key, f"seriesfeed/{purpose.value}".encode(), "sha256")


@functools.lru_cache(maxsize=64)
def _purpose_mac(key: bytes, purpose: Purpose) -> hmac.HMAC:
    """An HMAC keyed for one purpose, copied for each token (a digest signs two links per
    recipient: copying skips looking the hash up and keying it again each time)."""
    return hmac.new(_purpose_key(key, purpose), digestmod=hashlib.sha256)


def _mac(key: bytes, purpose: Purpose, payload: bytes) -> bytes:
    mac = _purpose_mac(key, purpose).copy()
    mac.update(payload)
    return mac.digest()


def make_token(key: bytes, purpose: Purpose, subscriber_id: int, *, bound: str = "",
               now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    if bound or type(subscriber_id) is not int:
        payload = json.dumps({"s": subscriber_id, "t": issued, "b": bound},
                             separators=(",", ":")).encode("utf-8")
    else:  # every digest link: json.dumps' very bytes, without its machinery
        payload = f'{{"s":{subscriber_id},"t":{issued},"b":""}}'.encode("ascii")
    return f"{_b64(payload)}.{_b64(_mac(key, purpose, payload))}"


def read_token(key: bytes, purpose: Purpose, token: str, *, now: float | None = None) -> Claims:
    """The token's claims, or ValidationError('this link is invalid or has expired') for
    anything else: one message for every failure, so a token cannot be probed."""
    invalid = ValidationError(INVALID, field="token")
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise invalid
    body, mac = token.split(".")
    try:
        payload, given = _unb64(body), _unb64(mac)
    except (ValueError, binascii.Error):
        raise invalid from None
    if not hmac.compare_digest(given, _mac(key, purpose, payload)):
        raise invalid
    try:
        data = json.loads(payload)
        claims = Claims(int(data["s"]), int(data["t"]), str(data.get("b", "")))
    except (ValueError, KeyError, TypeError):
        raise invalid from None
    lifetime = LIFETIME_S[purpose]
    current = now if now is not None else time.time()
    if claims.issued_at > current + CLOCK_SKEW_S:
        raise invalid
    if lifetime is not None and current > claims.issued_at + lifetime:
        raise invalid
    return claims


def _link_digest(link_token: str) -> str:
    return hashlib.sha256(link_token.encode("utf-8")).hexdigest()


def make_csrf(key: bytes, link_token: str, *, now: float | None = None) -> str:
    """The CSRF field for a page opened by ``link_token``: valid for that link only, for
    two hours. Stateless (no cookie): forging it needs the secret key."""
    return make_token(key, Purpose.CSRF, 0, bound=_link_digest(link_token), now=now)


def check_csrf(key: bytes, link_token: str, given: str, *, now: float | None = None) -> bool:
    try:
        claims = read_token(key, Purpose.CSRF, given, now=now)
    except ValidationError:
        return False
    return hmac.compare_digest(claims.bound, _link_digest(link_token))


def bound_token(key: bytes, purpose: Purpose, bound: str, *, now: float | None = None) -> str:
    """A token that names no subscriber, only ``bound`` (a console session's id, say)."""
    return make_token(key, purpose, 0, bound=bound, now=now)


def read_bound(key: bytes, purpose: Purpose, token: str, *, now: float | None = None
               ) -> str | None:
    """What a ``bound_token`` is bound to, or None for any token that is not one of ours
    for this purpose (forged, altered, expired)."""
    try:
        return read_token(key, purpose, token, now=now).bound
    except ValidationError:
        return None


def confirm_link(config: Config, key: bytes, subscriber_id: int, sent_at: datetime) -> str:
    """The confirm link of the confirmation request sent at ``sent_at`` (works once)."""
    token = make_token(key, Purpose.CONFIRM, subscriber_id, bound=sent_at.isoformat(),
                       now=sent_at.timestamp())
    return f"{config.public_url}/confirm/{token}"


def unsubscribe_link(config: Config, key: bytes, subscriber_id: int) -> str:
    return f"{config.public_url}/unsubscribe/{make_token(key, Purpose.UNSUBSCRIBE, subscriber_id)}"


def preferences_link(config: Config, key: bytes, subscriber_id: int) -> str:
    return f"{config.public_url}/preferences/{make_token(key, Purpose.PREFERENCES, subscriber_id)}"


def undo_link(config: Config, key: bytes, subscriber_id: int, unsubscribed_at: datetime) -> str:
    """The undo of the unsubscribe made at ``unsubscribed_at`` (works once: the caller
    checks the binding against the store)."""
    token = make_token(key, Purpose.UNDO, subscriber_id, bound=unsubscribed_at.isoformat())
    return f"{config.public_url}/undo/{token}"


def view_token(key: bytes, digest_id: int, language: str) -> str:
    """The digest's public page token: the same for every recipient and every render (no
    time in it, so each recipient's mail links the same page), unguessable without the
    key, and naming nobody."""
    payload = f"{digest_id}.{language}".encode()
    return f"{digest_id}-{_b64(_mac(key, Purpose.VIEW, payload))}"


def read_view_token(key: bytes, language: str, token: str) -> int:
    """The digest id a view token names for ``language``; ValidationError otherwise."""
    number, sep, _mac_text = token.partition("-")
    if not sep or len(token) > MAX_TOKEN or not number.isdigit() or len(number) > 12:
        raise ValidationError(INVALID, field="token")
    if not hmac.compare_digest(view_token(key, int(number), language), token):
        raise ValidationError(INVALID, field="token")
    return int(number)

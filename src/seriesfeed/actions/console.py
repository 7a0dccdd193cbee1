"""The operator's console: its one account's login, sessions, CSRF fields and lockout, and
the dashboard's one read.

Security model, in one place: the password is kept only as a scrypt hash
(``seriesfeed.passwords``), and every login attempt that is not locked out costs exactly
one scrypt run, whether the account is right, the password is right or no hash is
configured, so timing tells nothing. A locked client or account is answered without scrypt
(its 429 says it is locked, so an equal cost would hide nothing and only hand strangers 32
MiB and 0.1 s of CPU per request), and at most ``SCRYPT_AT_ONCE`` runs go side by side in
a process: a login beyond them is refused as busy (a 503) before scrypt. A login makes a
session row in the store (keyed by a hash of a random 32-byte id, see ``_stored_id``) and
a cookie holding that id signed under its own purpose key (``tokens``); the row, not the
cookie, says whether the session lives, so a logout ends it on every node. Every console
form carries a CSRF field bound to its session (the login form: to a pre-session cookie).
Five wrong passwords from one client address, or for one account, within ``WINDOW`` lock
that client or account for ``LOCK_FOR``; the counts are in the store, so every node
enforces the same lockout. Every login, failed login and logout is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from seriesfeed import passwords, tokens
from seriesfeed.actions import audit, charts, ops, sources
from seriesfeed.actions.status import health, status_report
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import ValidationError
from seriesfeed.store import Store
from seriesfeed.store import console as cq

__all__ = [
    "LOCK_AFTER", "LOCK_FOR", "SCRYPT_AT_ONCE", "SCRYPT_SLOTS", "WINDOW", "Login", "Operator",
    "csrf_field", "csrf_ok", "dashboard", "hash_new_password", "login", "login_csrf",
    "login_csrf_ok", "logout", "new_login_cookie", "operator_for", "record",
]

LOCK_AFTER = 5  # wrong passwords per client, and per account, within WINDOW
WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)
# scrypt runs side by side per process: each takes 32 MiB and a core for ~0.1 s, so a
# flood of logins must not take the machine's memory and CPU from the daemon. A process's
# own resources, so a process's own count (not the store's, as the lockout is)
SCRYPT_AT_ONCE = 2
SCRYPT_SLOTS = threading.BoundedSemaphore(SCRYPT_AT_ONCE)


@dataclass(frozen=True)
class Operator:
    """Whoever holds a live console session."""

    session: str  # the row's id (a hash), as the audit trail names it: never the cookie's
    account: str
    address: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Login:
    """A login attempt's outcome: the session cookie on success; ``retry_after`` seconds
    when the client or account is locked out; ``busy`` when scrypt already runs
    ``SCRYPT_AT_ONCE`` times (try again in a second)."""

    cookie: str | None = None
    retry_after: int | None = None
    busy: bool = False

    @property
    def ok(self) -> bool:
        return self.cookie is not None


def hash_new_password(password: str) -> str:
    """The hash string for ``[admin] password_hash``; refuses an empty or short password."""
    if password == "":
        raise ValidationError("the password is empty", field="password")
    if len(password) < passwords.MIN_LENGTH:
        raise ValidationError(f"the password is {len(password)} characters long: use at least "
                              f"{passwords.MIN_LENGTH}", field="password")
    if len(password) > passwords.MAX_LENGTH:
        raise ValidationError(f"the password is {len(password)} characters long: the console "
                              f"reads at most {passwords.MAX_LENGTH}", field="password")
    return passwords.hash_password(password)


def record(store: Store, *, account: str, session: str | None, address: str | None,
           action: str, target: str | None = None, detail: dict[str, Any] | None = None,
           ok: bool = True) -> None:
    """One audit row for a console action (``actions.audit`` keeps the trail)."""
    audit.record(store, account=account, session=session, address=address, action=action,
                 target=target, detail=detail, ok=ok)


def _key(config: Config) -> bytes:
    return tokens.ensure_secret_key(config)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _stored_id(config: Config, session: str) -> str:
    """The session's row id: sha256 of the id the cookie holds, bound to a short digest of
    the configured password hash. A dump of the store (even with the key file) then holds
    no id that makes a cookie, and a new hash names none of the old rows: every session
    ends when the password changes, checked on every request by the look-up itself."""
    bound = _digest(config.admin.password_hash or "")[:16]
    return _digest(f"{bound}:{session}")


def new_login_cookie(config: Config) -> str:
    """The pre-session cookie the login form's CSRF field is bound to."""
    return tokens.bound_token(_key(config), tokens.Purpose.ADMIN_LOGIN, secrets.token_hex(16))


def login_csrf(config: Config, login_cookie: str) -> str | None:
    """The login form's CSRF field for that cookie (None: the cookie is not ours)."""
    nonce = tokens.read_bound(_key(config), tokens.Purpose.ADMIN_LOGIN, login_cookie)
    if nonce is None:
        return None
    return tokens.bound_token(_key(config), tokens.Purpose.ADMIN_CSRF, "login:" + _digest(nonce))


def login_csrf_ok(config: Config, login_cookie: str | None, given: str) -> bool:
    if not login_cookie or not given:
        return False
    nonce = tokens.read_bound(_key(config), tokens.Purpose.ADMIN_LOGIN, login_cookie)
    bound = tokens.read_bound(_key(config), tokens.Purpose.ADMIN_CSRF, given)
    return nonce is not None and bound is not None and \
        hmac.compare_digest(bound, "login:" + _digest(nonce))


def csrf_field(config: Config, operator: Operator) -> str:
    """The CSRF field of every console form, bound to the operator's session."""
    return tokens.bound_token(_key(config), tokens.Purpose.ADMIN_CSRF,
                              "session:" + _digest(operator.session))


def csrf_ok(config: Config, operator: Operator, given: str) -> bool:
    bound = tokens.read_bound(_key(config), tokens.Purpose.ADMIN_CSRF, given) if given else None
    return bound is not None and hmac.compare_digest(bound,
                                                     "session:" + _digest(operator.session))


def _locked_for(found: dict[str, cq.Failures], now: datetime) -> int | None:
    until = [f.locked_until for f in found.values()
             if f.locked_until is not None and f.locked_until > now]
    return math.ceil((max(until) - now).total_seconds()) if until else None


def login(store: Store, config: Config, *, account: str, password: str,
          address: str | None) -> Login:
    """Check a login; every path that is not locked out or busy runs scrypt once and
    writes once, so all cost the same."""
    admin = config.admin
    account = account.strip()[:100]
    now = now_utc()
    client_key, account_key = f"client:{address or 'unknown'}", f"account:{account}"
    stranger = audit.Actor(account or "-", None, address)
    with store.read() as conn:
        locked = _locked_for(cq.failures(conn, [client_key, account_key]), now)
    if locked is not None:
        with store.write() as conn:
            audit.write(conn, stranger, "login", None, {"reason": "locked out"}, False, at=now)
        return Login(retry_after=locked)
    if not SCRYPT_SLOTS.acquire(blocking=False):
        # the machine's limit, not the client's mistake: counts towards no lockout
        with store.write() as conn:
            audit.write(conn, stranger, "login", None, {"reason": "busy"}, False, at=now)
        return Login(busy=True)
    try:
        # scrypt runs once on at most MAX_LENGTH characters whatever was typed; more than
        # the longest password a hash can be made of is wrong, not cut to a prefix that
        # matches
        right_password = passwords.verify(password[:passwords.MAX_LENGTH],
                                          admin.password_hash or None) \
            and len(password) <= passwords.MAX_LENGTH
    finally:
        SCRYPT_SLOTS.release()
    # compared in constant time too; the hash is checked whatever the account says
    right_account = hmac.compare_digest(account.encode("utf-8"), admin.account.encode("utf-8"))
    now = now_utc()
    with store.write() as conn:
        cq.prune(conn, now, window_start=now - WINDOW)
        found = cq.failures(conn, [client_key, account_key])
        locked = _locked_for(found, now)  # again: another attempt may have locked it since
        already = locked is not None
        if locked is None and right_account and right_password:
            session = secrets.token_hex(32)  # the cookie's; the store keeps only its hash
            expires = now + timedelta(hours=admin.session_hours)
            cq.new_session(conn, id=_stored_id(config, session), account=admin.account,
                           now=now, expires_at=expires, address=address)
            # a success forgives this client's typos, and the account's: only someone who
            # knows the password gets here
            cq.clear_failures(conn, client_key)
            cq.clear_failures(conn, account_key)
        elif locked is None:
            session = None
            for key in (client_key, account_key):
                counted = cq.add_failure(conn, key, now, window_start=now - WINDOW,
                                         limit=LOCK_AFTER, locked_until=now + LOCK_FOR)
                if counted.locked_until is not None:
                    locked = max(locked or 0, math.ceil(LOCK_FOR.total_seconds()))
        else:
            session = None
        # in the same transaction: a login is never without its audit row
        if session is not None:
            audit.write(conn, audit.Actor(admin.account, _stored_id(config, session),
                                          address), "login", None, None, True, at=now)
        else:
            detail: dict[str, Any] = {"reason": "locked out" if already
                                      else "wrong account or password"}
            if locked is not None and not already:
                detail["locked_for_s"] = locked  # this attempt was the one that locked
            audit.write(conn, stranger, "login", None, detail, False, at=now)
    if session is None:
        return Login(retry_after=locked)
    return Login(cookie=tokens.bound_token(_key(config), tokens.Purpose.ADMIN_SESSION, session))


def operator_for(store: Store, config: Config, cookie: str | None) -> Operator | None:
    """The live session a cookie names, or None (unsigned, altered, ended or expired)."""
    if not cookie:
        return None
    session = tokens.read_bound(_key(config), tokens.Purpose.ADMIN_SESSION, cookie)
    if session is None:
        return None
    with store.read() as conn:
        found = cq.get_session(conn, _stored_id(config, session))
    if found is None or not found.live(now_utc()) or found.account != config.admin.account:
        return None
    return Operator(found.id, found.account, found.address, found.expires_at)


def logout(store: Store, operator: Operator, address: str | None) -> None:
    """End the session everywhere (its row), and audit it."""
    with store.write() as conn:
        cq.end_session(conn, operator.session, now_utc())
        audit.write(conn, audit.Actor(operator.account, operator.session, address), "logout",
                    None, None, True)


def dashboard(config: Config, store: Store) -> dict[str, Any]:
    """Everything the console's first page shows, from the verbs `status`, `digests list`
    and `sources list` use, so the console never disagrees with them: health and its
    reasons, the status report (relay, jobs, outbox, subscribers, nodes), the last digests
    and every source."""
    judged = health(config, store)
    if judged.down:  # the store cannot be read: the reasons are all there is to show
        return {"health": {"state": judged.state, "reasons": judged.reasons}, "report": None,
                "digests": [], "sources": [], "charts": {}}
    return {
        "health": {"state": judged.state, "reasons": judged.reasons},
        "report": status_report(config, store),
        "digests": list(reversed(ops.list_digests(store, config)[-10:])),
        "sources": sources.list_sources(store, config),
        "charts": {
            "messages": charts.messages_per_day(store, config, days=30),
            "subscribers": charts.subscribers_over_time(store, config, days=30),
            "bounces": charts.bounces_per_week(store, config, weeks=12),
            "polls": charts.polls_per_day(store, config, days=30),
        },
    }

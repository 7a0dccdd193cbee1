"""The operator's console: its one account's login, sessions, CSRF fields and lockout, and
the dashboard's one read.

Security model, in one place: the password is kept only as a scrypt hash
(``seriesfeed.passwords``), and every login attempt costs exactly one scrypt run, whether
the account is right, the password is right, no hash is configured or the client is locked
out, so timing tells nothing. A login makes a session row in the store (a random 32-byte
id) and a cookie holding that id signed under its own purpose key (``tokens``); the row,
not the cookie, says whether the session lives, so a logout ends it on every node. Every
console form carries a CSRF field bound to its session (the login form: to a pre-session
cookie). Five wrong passwords from one client address, or for one account, within
``WINDOW`` lock that client or account for ``LOCK_FOR``; the counts are in the store, so
every node enforces the same lockout. Every login, failed login and logout is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
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
    "LOCK_AFTER", "LOCK_FOR", "WINDOW", "Login", "Operator", "csrf_field", "csrf_ok",
    "dashboard", "hash_new_password", "login", "login_csrf", "login_csrf_ok", "logout",
    "new_login_cookie", "operator_for", "record",
]

LOCK_AFTER = 5  # wrong passwords per client, and per account, within WINDOW
WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)


@dataclass(frozen=True)
class Operator:
    """Whoever holds a live console session."""

    session: str
    account: str
    address: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Login:
    """A login attempt's outcome: the session cookie on success; ``retry_after`` seconds
    when the client or account is locked out."""

    cookie: str | None = None
    retry_after: int | None = None

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
    """Check a login; every path runs scrypt once and writes once, so all cost the same."""
    admin = config.admin
    account = account.strip()[:100]
    # compared in constant time too; the hash is checked whatever the account says
    right_account = hmac.compare_digest(account.encode("utf-8"), admin.account.encode("utf-8"))
    # scrypt runs once on at most MAX_LENGTH characters whatever was typed; more than the
    # longest password a hash can be made of is wrong, not cut to a prefix that matches
    right_password = passwords.verify(password[:passwords.MAX_LENGTH],
                                      admin.password_hash or None) \
        and len(password) <= passwords.MAX_LENGTH
    now = now_utc()
    client_key, account_key = f"client:{address or 'unknown'}", f"account:{account}"
    with store.write() as conn:
        cq.prune(conn, now, window_start=now - WINDOW)
        found = cq.failures(conn, [client_key, account_key])
        locked = _locked_for(found, now)
        already = locked is not None
        if locked is None and right_account and right_password:
            session = secrets.token_hex(32)
            expires = now + timedelta(hours=admin.session_hours)
            cq.new_session(conn, id=session, account=admin.account, now=now,
                           expires_at=expires, address=address)
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
            audit.write(conn, audit.Actor(admin.account, session, address), "login", None,
                        None, True, at=now)
        else:
            detail: dict[str, Any] = {"reason": "locked out" if already
                                      else "wrong account or password"}
            if locked is not None and not already:
                detail["locked_for_s"] = locked  # this attempt was the one that locked
            audit.write(conn, audit.Actor(account or "-", None, address), "login", None,
                        detail, False, at=now)
    if session is None:
        return Login(retry_after=locked)
    return Login(cookie=tokens.bound_token(_key(config), tokens.Purpose.ADMIN_SESSION,
                                           f"{session}:{_password_mark(config)}"))


def _password_mark(config: Config) -> str:
    """What a session cookie carries of the password it was opened with: a new
    password_hash (a leaked password changed) ends every session of the old one."""
    return _digest(config.admin.password_hash)[:16]


def operator_for(store: Store, config: Config, cookie: str | None) -> Operator | None:
    """The live session a cookie names, or None (unsigned, altered, ended or expired)."""
    if not cookie:
        return None
    bound = tokens.read_bound(_key(config), tokens.Purpose.ADMIN_SESSION, cookie)
    if bound is None:
        return None
    session, _, mark = bound.partition(":")
    if not hmac.compare_digest(mark, _password_mark(config)):
        return None
    with store.read() as conn:
        found = cq.get_session(conn, session)
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

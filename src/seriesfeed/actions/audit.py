"""The audit trail: every operator action (the console's, and the CLI's that change what
the store remembers about people) recorded with who, from where, when and how it went.

A verb that must never lose its record (lifting a suppression: the reason is the only
trace left) writes the row in its own transaction through :func:`write`; the console
records its other actions with :func:`record` after calling the verb."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from seriesfeed.addresses import mask_address, normalize_email
from seriesfeed.clock import local_time, now_utc
from seriesfeed.errors import ValidationError, check_stored_int
from seriesfeed.store import Connection, Store
from seriesfeed.store import audit as aq
from seriesfeed.store import subscribers as sq

__all__ = ["CLI", "Actor", "AuditEntry", "count", "hide_addresses", "log", "record", "write"]

# the columns' lengths (store/tables.py admin_audit): longer values are cut, never refused,
# so an action is recorded whatever its arguments
_ACCOUNT, _SESSION, _ADDRESS, _ACTION = 100, 64, 64, 64
_TARGET, _DETAIL = 2000, 20_000


@dataclass(frozen=True)
class Actor:
    """Who acts: the console's account and session and the client's address, or the CLI."""

    account: str
    session: str | None = None
    address: str | None = None


CLI = Actor("cli")  # a command run on the host: no session, no client address


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime  # aware, UTC
    account: str
    session: str | None
    address: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    ok: bool

    def to_json(self, zone: tzinfo) -> dict[str, Any]:
        return {"id": self.id, "at": local_time(self.at, zone), "account": self.account,
                "session": self.session, "address": self.address, "action": self.action,
                "target": self.target, "detail": self.detail, "ok": self.ok}


# anything shaped like an address in what a row would keep (a form field, an error that
# quotes it): no quotes or brackets in the local part, so "no subscriber 'a@b.org'" yields
# the address alone
_AN_ADDRESS = re.compile(r"[\w.!#$%&*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*")


def _masked(found: str) -> tuple[str, str]:
    """(the address masked, its hash), one form whatever the case or script typed."""
    try:
        address = normalize_email(found)
    except ValidationError:
        address = found  # not deliverable as typed: still someone's, still hidden
    return mask_address(sq.email_key(address)), sq.email_hash(address)


def hide_addresses(target: str | None, detail: dict[str, Any] | None,
                   ) -> tuple[str | None, dict[str, Any]]:
    """``target`` and ``detail`` with every address in them masked (``b•••@example.org``)
    and the first one's hash added as ``email_hash``, so a row can still be matched to an
    address by whoever knows it. For rows about an address that is no subscriber's (a
    refusal, a test copy): an erasure scrubs only the addresses of the subscriber it
    removes, so a clear one written here would stay in the trail for good."""
    hashes: list[str] = []

    def one(match: re.Match[str]) -> str:
        shown, digest = _masked(match.group(0))
        hashes.append(digest)
        return shown

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _AN_ADDRESS.sub(one, value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    hidden_target = walk(target) if target is not None else None
    hidden: dict[str, Any] = walk(detail or {})
    if hashes and "email_hash" not in hidden:
        hidden["email_hash"] = hashes[0]
    return hidden_target, hidden


def _cut(value: str | None, n: int) -> str | None:
    return value[:n] if value is not None else None


def write(conn: Connection, actor: Actor, action: str, target: str | None,
          detail: dict[str, Any] | None, ok: bool, at: datetime | None = None) -> int:
    """The row, in the caller's transaction (all or nothing with the action itself)."""
    if not action:
        raise ValidationError("an audit row needs an action", field="action")
    text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > _DETAIL:  # still JSON, still saying what it was
        text = json.dumps({"truncated": text[:_DETAIL - 100]}, ensure_ascii=False)
    return aq.insert_row(conn, at=at or now_utc(), account=_cut(actor.account, _ACCOUNT) or "",
                         session=_cut(actor.session, _SESSION),
                         address=_cut(actor.address, _ADDRESS), action=action[:_ACTION],
                         target=_cut(target, _TARGET), detail=text, ok=ok)


def record(store: Store, *, account: str, session: str | None, address: str | None,
           action: str, target: str | None, detail: dict[str, Any] | None,
           ok: bool) -> int:
    """Record one action in its own transaction; the new row's id."""
    with store.write() as conn:
        return write(conn, Actor(account, session, address), action, target, detail, ok)


def _entry(row: aq.AuditRow) -> AuditEntry:
    try:
        detail = json.loads(row.detail) if row.detail else {}
    except ValueError:  # written by hand, or by an older version: shown as it is
        detail = {"text": row.detail}
    if not isinstance(detail, dict):
        detail = {"value": detail}
    return AuditEntry(row.id, row.at, row.account, row.session, row.address, row.action,
                      row.target, detail, row.ok)


def log(store: Store, *, limit: int = 50, offset: int = 0,
        action: str | None = None) -> list[AuditEntry]:
    """The trail, newest first."""
    check_stored_int(limit, "--limit", minimum=1)
    check_stored_int(offset, "--offset")
    with store.read() as conn:
        return [_entry(r) for r in aq.page(conn, limit=limit, offset=offset, action=action)]


def count(store: Store, *, action: str | None = None) -> int:
    with store.read() as conn:
        return aq.count(conn, action=action)

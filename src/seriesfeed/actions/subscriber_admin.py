"""The operator's verbs on subscribers, for the console and the CLI alike: find them
(search and filters, a page at a time, with the total), everything stored about one, a
change of status by hand, and lifting a suppression with a recorded reason.

A change of status and a lifted suppression are written to the audit trail in the same
transaction as the change (``actions.audit``): a lifted suppression leaves nothing else
behind, so its reason must never be lost. A refused change is recorded too, in its own
transaction, since the refused one wrote nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from seriesfeed.actions import audit
from seriesfeed.actions.audit import CLI, Actor
from seriesfeed.addresses import normalize_email
from seriesfeed.clock import local_time, now_utc
from seriesfeed.config import Config
from seriesfeed.errors import NotFoundError, SeriesfeedError, ValidationError, check_stored_int
from seriesfeed.flowlog import subscriber_event
from seriesfeed.models import (
    LISTING_MAX,
    OPERATOR_STATUSES,
    Frequency,
    Start,
    Subscriber,
    SubscriberStatus,
)
from seriesfeed.store import Connection, Store
from seriesfeed.store import catch_up as cq
from seriesfeed.store import entries as eq
from seriesfeed.store import ops as oq
from seriesfeed.store import subscribers as sq
from seriesfeed.text import clean_line

__all__ = [
    "MAX_PAGE", "MAX_REASON", "MAX_SEARCH", "SHOWN_OUTBOX", "StatusChange", "SubscriberDetail",
    "SubscriberPage", "Unsuppressed", "filters", "record_refusal", "search_subscribers",
    "set_status", "show_subscriber", "unsuppress",
]

MAX_PAGE = LISTING_MAX
SHOWN_OUTBOX = 100  # a subscriber's newest messages shown; the total says if there are more
MAX_REASON = 1000
MAX_SEARCH = 254  # the longest address RFC 5321 lets through (a path of 256 with <>)


def filters(*, search: str | None = None, status: str | None = None,
            language: str | None = None, frequency: str | None = None,
            languages: Collection[str] | None = None) -> sq.Filters:
    """The listing's filters from what a shell was given (text), checked; ``languages``:
    the configured ones, when the shell knows them (a typo is then an error, not an
    empty list that reads as "nobody")."""
    if language and languages is not None and language not in languages:
        raise ValidationError(f"unknown language '{language}' (configured: "
                              f"{', '.join(languages)})", field="language")
    try:
        chosen_status = SubscriberStatus(status) if status else None
    except ValueError:
        raise ValidationError(f"'{status}' is not a subscriber status (one of "
                              f"{', '.join(s.value for s in SubscriberStatus)})",
                              field="status") from None
    try:
        chosen_frequency = Frequency(frequency) if frequency else None
    except ValueError:
        raise ValidationError(f"'{frequency}' is not daily or weekly",
                              field="frequency") from None
    # only text a store can hold: a lone surrogate (an argument in another encoding) made
    # the driver raise
    text = clean_line(search or "")
    if len(text) > MAX_SEARCH:
        # no address is longer, and SQLite refuses a LIKE pattern of 50,000 bytes where
        # PostgreSQL answers: both stores must answer alike
        raise ValidationError(f"at most {MAX_SEARCH} characters (no address is longer)",
                              field="search")
    return sq.Filters(search=text or None, status=chosen_status,
                      language=language or None, frequency=chosen_frequency)


@dataclass(frozen=True)
class SubscriberPage:
    subscribers: list[Subscriber]
    total: int  # matching the filters, in all
    limit: int
    offset: int


def search_subscribers(store: Store, chosen: sq.Filters, *, limit: int = 50,
                       offset: int = 0) -> SubscriberPage:
    """One page of the subscribers ``chosen`` matches (oldest first), and the total."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"must be between 1 and {MAX_PAGE}", field="limit")
    check_stored_int(offset, "offset")
    with store.read() as conn:
        found, total = sq.search(conn, chosen, limit=limit, offset=offset)
    return SubscriberPage(found, total, limit, offset)


def _find(conn: Connection, who: str) -> tuple[str, Subscriber | None]:
    """(the address, the subscriber) WHO names: an address in any case, or an id."""
    text = who.strip()
    number = text.lstrip("#")
    # ASCII digits only: int() also reads other scripts' digits ("١" is 1), and a typo
    # in an address must not act on whoever has that number
    if number.isascii() and number.isdigit():
        sub = sq.get(conn, id=check_stored_int(int(number), "WHO", minimum=1))
        if sub is None:
            raise NotFoundError(f"no subscriber with id {number}")
        return sub.email, sub
    address = normalize_email(text, field="WHO")
    return address, sq.get(conn, email=address)


@dataclass(frozen=True)
class SubscriberDetail:
    """Everything the store keeps about one address: the subscriber's row (None when it
    was erased: then only a suppression is left), its newest messages and the total."""

    email: str
    subscriber: dict[str, Any] | None
    suppression: dict[str, Any] | None  # {"reason", "since"} when suppressed
    outbox: list[dict[str, Any]] = field(default_factory=list)
    outbox_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "subscriber": self.subscriber,
                "suppressed": self.suppression is not None,
                "suppression": self.suppression, "outbox": self.outbox,
                "outbox_total": self.outbox_total}


_TIMES = ("created_at", "confirmed_at", "unsubscribed_at", "consent_at", "confirm_sent_at")


def show_subscriber(store: Store, config: Config, who: str) -> SubscriberDetail:
    """One subscriber: status and its history (created, confirmed, unsubscribed and what
    that ended), the consent record, bounces, series, where mail starts, the digest cursor,
    any catch-up, whether the address is suppressed, and the messages sent to them
    (newest first; the total says how many in all). An erased address that is suppressed
    shows the suppression alone."""
    zone = config.zone
    with store.read() as conn:
        address, sub = _find(conn, who)
        suppressed = sq.suppression(conn, address)
        if sub is None and suppressed is None:
            raise NotFoundError(f"no subscriber {address}, and the address is not suppressed")
        record: dict[str, Any] | None = None
        rows: list[oq.OutboxRow] = []
        total = 0
        if sub is not None and sub.id is not None:
            stored = sq.record_of(conn, sub.id) or {}
            record = {
                "id": sub.id, "email": sub.email, "name": sub.name, "language": sub.language,
                "frequency": sub.frequency.value, "status": sub.status.value,
                "series": list(sub.series), "start": sub.start.value,
                **{k: local_time(stored.get(k), zone) for k in _TIMES},
                "unsubscribed_from": stored.get("unsubscribed_from"),
                "consent_ip": sub.consent_ip, "consent_source": sub.consent_source,
                "hard_bounces": int(stored.get("hard_bounces") or 0),
                "soft_bounces": int(stored.get("soft_bounces") or 0),
                "last_seq": sub.last_seq,
                "catching_up": sub.id in cq.catching_up(conn),
            }
            rows = oq.list_outbox(conn, subscriber_id=sub.id, limit=SHOWN_OUTBOX,
                                  newest_first=True)
            total = oq.count_outbox_of(conn, sub.id)
    return SubscriberDetail(
        email=address, subscriber=record,
        suppression={"reason": suppressed[0], "since": local_time(suppressed[1], zone)}
        if suppressed else None,
        outbox=[_message(r, zone) for r in rows], outbox_total=total)


def _message(r: oq.OutboxRow, zone: tzinfo) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "digest_id": r.digest_id, "state": r.state,
            "message_id": r.message_id, "attempts": r.attempts, "smtp_code": r.smtp_code,
            "error": r.last_error, "note": r.note, "bounce": r.bounce,
            "created_at": local_time(r.created_at, zone),
            "sent_at": local_time(r.sent_at, zone),
            "bounced_at": local_time(r.bounced_at, zone)}


@dataclass(frozen=True)
class StatusChange:
    email: str
    before: SubscriberStatus
    after: SubscriberStatus

    @property
    def changed(self) -> bool:
        return self.before is not self.after


# what an operator may set from each status (``_refusal`` says why the others are not)
SETTABLE = OPERATOR_STATUSES


def _refusal(conn: Connection, sub: Subscriber, status: SubscriberStatus) -> str | None:
    if status is SubscriberStatus.UNSUBSCRIBED or status is sub.status:
        return None  # anyone may be unsubscribed; the same status is no change
    # to confirmed:
    found = sq.suppression(conn, sub.email)
    if found is not None:
        return (f"the address is suppressed ({found[0]}): it is never confirmed; lift the "
                "suppression first (`subscribers unsuppress`), then the person subscribes")
    if sub.status is SubscriberStatus.UNSUBSCRIBED:
        return ("unsubscribed: only the person's own consent confirms them again "
                "(`subscribers add EMAIL` sends a new confirmation)")
    if sub.status is SubscriberStatus.BOUNCED and sub.confirmed_at is None:
        return "bounced before ever confirming: there is no consent to restore"
    return None


@subscriber_event("status set")
def set_status(store: Store, who: str, status: str, *, actor: Actor = CLI) -> StatusChange:
    """The operator's change of a subscriber's status: to ``unsubscribed`` from any
    status (durably, like every unsubscribe), or to ``confirmed`` from pending (consent
    recorded elsewhere) or bounced (the mailbox works again; its bounce count starts over,
    and its catch-up goes on from where it stood).
    Never confirmed: a suppressed address, an unsubscribed one (that takes the person's own
    consent), one that bounced before confirming. A confirmed reader's digests start from
    now, as at any confirmation."""
    try:
        wanted = SubscriberStatus(status)
    except ValueError:
        wanted = None
    if wanted not in SETTABLE:
        raise ValidationError(f"'{status}' cannot be set: choose "
                              f"{' or '.join(s.value for s in SETTABLE)}", field="status")
    assert wanted is not None
    try:
        with store.write(durable=wanted is SubscriberStatus.UNSUBSCRIBED) as conn:
            address, sub = _find(conn, who)
            if sub is None or sub.id is None:
                raise NotFoundError(f"no subscriber {address}")
            why = _refusal(conn, sub, wanted)
            if why is not None:
                raise ValidationError(why, field="status")
            now = now_utc()
            if wanted is not sub.status:
                if wanted is SubscriberStatus.UNSUBSCRIBED:
                    sq.unsubscribe(conn, sub.id, now)
                else:
                    sq.confirm(conn, sub.id, now)
                    sq.update_fields(conn, sub.id, hard_bounces=0, unsubscribed_from=None)
                    # only a first confirmation starts the back catalogue: a bounced
                    # reader got parts already (as catch-up and in digests), and starting
                    # again at part 1 would mail them a second time under new Message-IDs
                    if sub.start is Start.FIRST and sub.status is SubscriberStatus.PENDING:
                        cq.begin(conn, sub.id, eq.max_seq(conn))
            change = StatusChange(sub.email, sub.status, wanted)
            audit.write(conn, actor, "subscribers.set", sub.email,
                        {"from": sub.status.value, "to": wanted.value,
                         "changed": change.changed}, True, now)
            return change
    except SeriesfeedError as exc:
        # no subscriber has the address (erased since, or never one), or a refused change:
        # the trail keeps it masked with its hash either way (record_refusal)
        record_refusal(store, actor, "subscribers.set", who.strip(), {"to": status}, exc)
        raise


def record_refusal(store: Store, actor: Actor, action: str, target: str | None,
                   detail: dict[str, Any], exc: SeriesfeedError) -> None:
    """The refusal's audit row, every address in it (target, detail, the error quoting it)
    masked with its hash, never in clear: a refusal is often a stale page or a double
    submit about an address just erased, or one that was never a subscriber's, and an
    erasure scrubs only the addresses of the subscriber it removes, so a clear one written
    here would stay for good (or undo the erasure)."""
    shown, written = audit.hide_addresses(target, {**detail, "error": str(exc)})
    # the store itself failing here is not the user's news: the original error says more
    with contextlib.suppress(SeriesfeedError):
        audit.record(store, account=actor.account, session=actor.session,
                     address=actor.address, action=action, target=shown,
                     detail=written, ok=False)


@dataclass(frozen=True)
class Unsuppressed:
    shown: str  # the address masked, as the audit trail keeps it
    email_hash: str
    was: str  # the suppression's reason (removed, complaint, ...)
    since: datetime
    audit_id: int


@subscriber_event("unsuppressed")
def unsuppress(store: Store, email: str, reason: str, *,
               actor: Actor = CLI) -> Unsuppressed:
    """Lift an address's suppression, so it may subscribe again (through the form or
    `subscribers add`, with a confirmation: lifting confirms nobody, and a subscriber's
    status is left as it is). ``reason`` is required and recorded, with who lifted it,
    in the audit trail in the same transaction. The trail keeps the address masked and
    its hash, never the address: a suppression exists so that the store forgets an
    erased address, and lifting it must not write the address back."""
    # one line of text a store can hold (a lone surrogate made the driver raise, after
    # the suppression was lifted in the same transaction)
    why = clean_line(reason or "")
    try:  # refused before the store is asked is refused all the same: audited
        if not why:
            raise ValidationError("give the reason the suppression is lifted",
                                  field="--reason")
        if len(why) > MAX_REASON:
            raise ValidationError(f"at most {MAX_REASON} characters", field="--reason")
        address = normalize_email(email, field="EMAIL")
    except SeriesfeedError as exc:
        record_refusal(store, actor, "subscribers.unsuppress", email.strip(),
                       {"reason": why[:MAX_REASON]}, exc)
        raise
    # the reason is the operator's words, and may name the address: masked there too
    shown, hidden = audit.hide_addresses(address, {"reason": why})
    assert shown is not None
    why = hidden["reason"]
    try:
        with store.write(durable=True) as conn:
            lifted = sq.lift_suppression(conn, address)
            if lifted is None:
                raise ValidationError(f"{address} is not suppressed", field="EMAIL")
            digest = sq.email_hash(address)
            row = audit.write(conn, actor, "subscribers.unsuppress", shown,
                              {"reason": why, "email_hash": digest, "was": lifted[0],
                               "suppressed_since": lifted[1].isoformat()}, True)
            return Unsuppressed(shown, digest, lifted[0], lifted[1], row)
    except SeriesfeedError as exc:
        record_refusal(store, actor, "subscribers.unsuppress", address, {"reason": why}, exc)
        raise

"""The subscriber verbs: add, remove (erasure), list, confirm, unsubscribe, preferences, and
queueing the confirmation mail (sent through the outbox, like a digest), and the CSRF field
and unsubscribe link the web pages show. The CLI and the web app both call these; the CSV
import and export are ``actions.subscriber_csv``. Keys and signing stay in ``tokens``: a
shell never holds the secret key."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from seriesfeed import emails, tokens
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.addresses import mask_address, normalize_email
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import SeriesfeedError, ValidationError
from seriesfeed.flowlog import subscriber_event
from seriesfeed.models import (
    Frequency,
    OutboxKind,
    OutboxState,
    Start,
    Subscriber,
    SubscriberStatus,
)
from seriesfeed.store import Connection, Store
from seriesfeed.store import catch_up as cq
from seriesfeed.store import entries as eq
from seriesfeed.store import outbox as oq
from seriesfeed.store import subscribers as sq
from seriesfeed.store.erasure import address_variants, scrub_address
from seriesfeed.text import clean_line
from seriesfeed.tokens import Purpose  # the verbs' parameter type, for the shells

__all__ = [
    "MAX_NAME",
    "RESEND_AFTER",
    "AddResult",
    "ConfirmationMail",
    "Purpose",
    "add_subscriber",
    "check_choice",
    "check_start",
    "clean_name",
    "confirm",
    "csrf_field",
    "csrf_valid",
    "default_start",
    "list_subscribers",
    "preferences_url",
    "queue_confirmation",
    "remove_subscriber",
    "send_confirmation",
    "send_manage_link",
    "send_welcome",
    "shown_address",
    "subscriber_for",
    "undo_unsubscribe",
    "undo_url",
    "unsubscribe",
    "unsubscribe_address",
    "unsubscribe_target",
    "unsubscribe_url",
    "update_preferences",
]

log = logging.getLogger("seriesfeed.subscriptions")  # the logger's name operators filter on: kept
MAX_NAME = 100
# list-bombing: one confirmation per address per day, and one more after each unsubscribe
RESEND_AFTER = timedelta(hours=24)


def csrf_field(config: Config, link_token: str) -> str:
    """The CSRF field for the page a link opened: bound to that link's token."""
    return tokens.make_csrf(tokens.ensure_secret_key(config), link_token)


def csrf_valid(config: Config, link_token: str, given: str) -> bool:
    """Whether a POSTed CSRF field belongs to that link (compared in constant time)."""
    return tokens.check_csrf(tokens.ensure_secret_key(config), link_token, given)


def unsubscribe_url(config: Config, sub: Subscriber) -> str:
    """The subscriber's unsubscribe link, as every message carries it."""
    assert sub.id is not None
    return tokens.unsubscribe_link(config, tokens.ensure_secret_key(config), sub.id)


def preferences_url(config: Config, sub: Subscriber) -> str:
    """The subscriber's preferences link, as every digest carries it."""
    assert sub.id is not None
    return tokens.preferences_link(config, tokens.ensure_secret_key(config), sub.id)


def shown_address(address: str, *, local_part: bool = True) -> str:
    """An address as pages and mails show it back (``l•••a@example.org``): enough for its
    owner to recognise, little for anyone else; ``local_part=False`` keeps the domain
    only, for a page that answers whoever types an address."""
    return mask_address(address, local_part=local_part)


def clean_name(raw: str | None) -> str | None:
    name = clean_line(raw or "")[:MAX_NAME].strip()
    return name or None


def check_choice(config: Config, language: str, frequency: str) -> Frequency:
    if language not in config.languages:
        raise ValidationError(f"unknown language '{language}' (configured: "
                              f"{', '.join(config.languages)})", field="language")
    try:
        return Frequency(frequency)
    except ValueError:
        raise ValidationError(f"'{frequency}' is not daily or weekly",
                              field="frequency") from None


def check_start(start: str | Start | None) -> Start:
    try:
        return Start(start or Start.NEW)
    except ValueError:
        raise ValidationError(f"'{start}' is not first or new", field="start") from None


def default_start(store: Store, config: Config, series: tuple[str, ...] = ()) -> Start:
    """What the web forms offer first: from part 1 while the series is short enough to
    catch up on (fewer parts than ``[digests] catch_up_max``), else only new parts."""
    with store.read() as conn:
        lengths = cq.series_lengths(conn)
    longest = max((n for slug, n in lengths.items() if not series or slug in series),
                  default=0)
    return Start.FIRST if longest < config.digests.catch_up_max else Start.NEW


def _begin_catch_up(conn: Connection, sub_id: int) -> None:
    """From part 1 up to what is stored now: later entries come with the digests."""
    cq.begin(conn, sub_id, eq.max_seq(conn))


def _queue_welcome(conn: Connection, config: Config, sub: Subscriber, now: datetime) -> None:
    assert sub.id is not None
    oq.queue(conn, OutboxKind.WELCOME, sub.id, sub.email, emails.make_message_id(
        "welcome", f"{sub.id}.{int(now.timestamp() * 1_000_000)}", config), now)


@dataclass
class AddResult:
    subscriber: Subscriber | None
    created: bool
    send_confirmation: bool
    wrote: bool = False  # a row committed before returning (new or returning address)
    # time.monotonic() once the write transaction held the store's lock, and the seconds
    # from then to the end of its commit: the part of the answer's time that depends on
    # the address (S2); the wait for the lock before it is the same for every status
    began: float = 0.0
    write_s: float = 0.0


@subscriber_event("subscribe")  # one log line per event, after the commit
def add_subscriber(store: Store, config: Config, email: str, *, name: str | None = None,
                   language: str | None = None, frequency: str = "weekly",
                   confirmed: bool = False, source: str = "cli", ip: str | None = None,
                   series: tuple[str, ...] = (), resubscribe: bool = True,
                   start: str | Start | None = None, welcome: bool = False) -> AddResult:
    """Create a subscriber (pending unless ``confirmed``). An existing address is left as it
    is, except that a person asking again (``resubscribe``) after unsubscribing gets a new
    confirmation. Suppressed (removed) and bounced addresses get nothing. ``start``
    "first": from part 1 once confirmed; ``welcome``: a confirmed one gets the welcome
    mail (queued here; the confirm link's always does)."""
    address = normalize_email(email)
    lang = language or config.site.default_language
    freq = check_choice(config, lang, frequency)
    begins = check_start(start)
    now = now_utc()
    with store.write() as conn:
        # from here the store's write lock is ours: what follows is the cost that
        # depends on the address (a lock's wait before it is every status's alike)
        began = time.monotonic()
        result = _add(conn, config, address, name=name, lang=lang, freq=freq,
                      confirmed=confirmed, source=source, ip=ip, series=series,
                      resubscribe=resubscribe, begins=begins, welcome=welcome, now=now)
    result.began, result.write_s = began, time.monotonic() - began  # the commit included
    return result


def _add(conn: Connection, config: Config, address: str, *, name: str | None, lang: str,
         freq: Frequency, confirmed: bool, source: str, ip: str | None,
         series: tuple[str, ...], resubscribe: bool, begins: Start, welcome: bool,
         now: datetime) -> AddResult:
    # the series first, whoever the address is: a form's ``series`` is the visitor's to
    # fill, and looked up only for a new address a made-up slug told new from known (S2)
    for slug in series:
        if eq.series_id(conn, slug) is None:
            raise ValidationError(f"no series '{slug}'", field="series")
    if sq.is_suppressed(conn, address):
        return AddResult(None, False, False)
    existing = sq.get(conn, email=address, for_update=True)
    if existing is None:
        sub = Subscriber(email=address, name=clean_name(name), language=lang,
                         frequency=freq, series=series,
                         status=SubscriberStatus.CONFIRMED if confirmed
                         else SubscriberStatus.PENDING,
                         consent_ip=ip, consent_source=source, start=begins)
        added = sq.add(conn, sub, now)
        if added is not None:
            sub.id = added
            if confirmed and begins is Start.FIRST:
                _begin_catch_up(conn, sub.id)
            if confirmed and welcome:
                _queue_welcome(conn, config, sub, now)
            return AddResult(sub, True, not confirmed, wrote=True)
        # PostgreSQL: the same address asked twice at once (a double click, someone
        # probing); the other request stored it first. It is a known address now, as it
        # would have been a moment later: a 500 here told that it had been new (S2)
        existing = sq.get(conn, email=address, for_update=True)
        assert existing is not None  # add() saw it
    if existing.status is SubscriberStatus.UNSUBSCRIBED and resubscribe:
        assert existing.id is not None
        # a fresh consent: what this ask chose, series included
        sq.resubscribe(conn, existing.id, language=lang, frequency=freq,
                       series_slugs=series, ip=ip, source=source, now=now,
                       start=begins)
        existing.status, existing.language, existing.frequency = \
            SubscriberStatus.PENDING, lang, freq
        existing.series = series
        return AddResult(existing, False, True, wrote=True)
    wants_mail = existing.status is SubscriberStatus.PENDING
    return AddResult(existing, False, wants_mail)


def _claim_slot(conn: Connection, subscriber_id: int, now: datetime) -> bool:
    """Whether a confirmation may go now, taking the slot if so: none in the last 24 hours,
    or none since the address last unsubscribed (a person who unsubscribed by mistake and
    asks again that day must get one). Still bounded per target address: only the holder of
    the address's own signed link (or the operator) can unsubscribe it, and each unsubscribe
    frees one confirmation, not more."""
    last = sq.confirm_sent_at(conn, subscriber_id)
    if last is not None and now - last < RESEND_AFTER:
        sub = sq.get(conn, id=subscriber_id)
        left = sub.unsubscribed_at if sub is not None else None
        if left is None or left <= last:
            return False
    sq.update_fields(conn, subscriber_id, confirm_sent_at=now)
    return True


def queue_confirmation(store: Store, config: Config, sub: Subscriber, now: datetime) -> bool:
    """Queue the confirmation mail in the outbox if one is due: the day's slot is taken
    only together with the queued row (one transaction), and from then on the mail has
    the outbox's retries, backoff and Message-ID rules, like a digest."""
    assert sub.id is not None
    with store.write() as conn:
        # the address's row locked first (PostgreSQL; SQLite's writers take turns anyway):
        # asks for one address at once then take turns too, and only the first finds the
        # day's slot free; else each read it free before any took it, and each queued (S7)
        sq.get(conn, id=sub.id, for_update=True)
        waiting = oq.waiting(conn, OutboxKind.CONFIRM, sub.id)
        if waiting:
            # asked again while one waits for the relay: try that one now, never a second
            # beside it (after a day-long outage both would arrive together). A new day's
            # ask dates its link anew (the link is bound to the slot's time), unless a copy
            # is in flight right now with the old date, which would then arrive broken.
            if OutboxState.SENDING not in waiting:
                _claim_slot(conn, sub.id, now)
            return oq.hurry(conn, OutboxKind.CONFIRM, sub.id, now) > 0
        if not _claim_slot(conn, sub.id, now):
            return False
        # microseconds: asking again within the second after a failed one must not collide
        # with the failed row's Message-ID (unique in the outbox)
        oq.queue(conn, OutboxKind.CONFIRM, sub.id, sub.email, emails.make_message_id(
            "confirm", f"{sub.id}.{int(now.timestamp() * 1_000_000)}", config), now)
        return True


class ConfirmationMail(enum.Enum):
    SENT = "sent"
    NOT_DUE = "not sent: one was sent within the last 24 hours"
    QUEUED = "queued: the relay has not taken it yet; it is retried until it does"


@subscriber_event("confirmation")
def send_confirmation(store: Store, config: Config, sub: Subscriber) -> ConfirmationMail:
    """Queue the confirmation mail if one is due, then try to send it now. A relay that is
    down delays it (the daemon's outbox passes retry it), never loses it. Runs its own
    event loop: call it from a thread (the web app's background task) or a command."""
    if not queue_confirmation(store, config, sub, now_utc()):
        return ConfirmationMail.NOT_DUE
    try:
        report = asyncio.run(drain_outbox(store, config, kinds=(OutboxKind.CONFIRM,),
                                          lock_wait=2.0))
    except SeriesfeedError as exc:  # queued all the same: a later pass sends it
        log.warning("confirmation mail to subscriber %s queued, not sent yet: %s", sub.id, exc)
        return ConfirmationMail.QUEUED
    return ConfirmationMail.SENT if report.sent else ConfirmationMail.QUEUED


@subscriber_event("confirmed")
def confirm(store: Store, config: Config, token: str, *,
            start: str | None = None) -> Subscriber:
    """Confirm the token's pending subscriber; ``start`` (from the confirm page) replaces
    what they chose when subscribing."""
    begins = check_start(start) if start else None
    claims = tokens.read_token(tokens.ensure_secret_key(config), tokens.Purpose.CONFIRM, token)
    with store.write() as conn:
        sub = sq.get(conn, id=claims.subscriber_id, for_update=True)
        sent = sq.confirm_sent_at(conn, claims.subscriber_id)
        if sub is None or sub.status is not SubscriberStatus.PENDING or sent is None or \
                sent.isoformat() != claims.bound:
            raise ValidationError("this link is invalid or has expired", field="token")
        assert sub.id is not None
        now = now_utc()
        sq.confirm(conn, sub.id, now)
        sub.status = SubscriberStatus.CONFIRMED
        if begins is not None and begins is not sub.start:
            sq.update_fields(conn, sub.id, start=begins.value)
            sub.start = begins
        # with the confirmation, in one transaction: a confirm link works once, so the
        # reader gets one welcome and one start on part 1
        if sub.start is Start.FIRST:
            _begin_catch_up(conn, sub.id)
        _queue_welcome(conn, config, sub, now)
        return sub


def send_manage_link(store: Store, config: Config, email: str) -> None:
    """Mail the preferences link to ``email`` if it is a confirmed subscriber's, at most
    once per ``RESEND_AFTER`` per address (list-bombing is limited per target address, and
    the check lives in the store, which every process shares); nothing otherwise. The
    caller answers the same whatever happens here (enumeration): run it in the background,
    and it never raises for the address."""
    try:
        address = normalize_email(email)
    except ValidationError:
        return
    now = now_utc()
    with store.write() as conn:
        sub = sq.get(conn, email=address)
        if sub is None or sub.id is None or sub.status is not SubscriberStatus.CONFIRMED or \
                oq.queued_since(conn, OutboxKind.MANAGE, sub.id, now - RESEND_AFTER):
            return
        oq.queue(conn, OutboxKind.MANAGE, sub.id, sub.email, emails.make_message_id(
            "manage", f"{sub.id}.{int(now.timestamp() * 1_000_000)}", config), now)
    try:
        asyncio.run(drain_outbox(store, config, kinds=(OutboxKind.MANAGE,), lock_wait=2.0))
    except SeriesfeedError as exc:  # queued all the same: a later pass sends it
        log.warning("preferences link queued, not sent yet: %s", exc)


def send_welcome(store: Store, config: Config) -> None:
    """Try to send the queued welcome mail now (the daemon's outbox passes retry it);
    runs its own event loop, like ``send_confirmation``."""
    try:
        asyncio.run(drain_outbox(store, config, kinds=(OutboxKind.WELCOME,), lock_wait=2.0))
    except SeriesfeedError as exc:  # queued all the same: a later pass sends it
        log.warning("welcome mail queued, not sent yet: %s", exc)


def subscriber_for(store: Store, config: Config, purpose: tokens.Purpose,
                   token: str) -> Subscriber:
    claims = tokens.read_token(tokens.ensure_secret_key(config), purpose, token)
    with store.read() as conn:
        sub = sq.get(conn, id=claims.subscriber_id)
    if sub is None:
        raise ValidationError("this link is invalid or has expired", field="token")
    return sub


def _unsubscribed(conn: Connection, sub: Subscriber) -> Subscriber:
    assert sub.id is not None
    sq.unsubscribe(conn, sub.id, now_utc())
    sub.status = SubscriberStatus.UNSUBSCRIBED
    return sub


def unsubscribe_target(store: Store, config: Config, token: str) -> Subscriber | None:
    """Whom a genuine unsubscribe link names; None when they were removed since (nothing
    is sent to them any more, so the link has nothing left to do: it is not an error)."""
    claims = tokens.read_token(tokens.ensure_secret_key(config), tokens.Purpose.UNSUBSCRIBE,
                               token)
    with store.read() as conn:
        return sq.get(conn, id=claims.subscriber_id)


@subscriber_event("unsubscribed")
def unsubscribe(store: Store, config: Config, token: str) -> Subscriber | None:
    """Idempotent; committed durably before it returns (RELIABILITY invariant 4). None
    when the subscriber was removed since (RFC 8058 still gets its success)."""
    claims = tokens.read_token(tokens.ensure_secret_key(config), tokens.Purpose.UNSUBSCRIBE,
                               token)
    with store.write(durable=True) as conn:
        sub = sq.get(conn, id=claims.subscriber_id)
        if sub is None:
            return None
        return _unsubscribed(conn, sub)


def undo_url(store: Store, config: Config, sub: Subscriber) -> str | None:
    """The link that undoes the subscriber's standing unsubscribe, when there is one an
    undo may reverse (it ended a confirmed or pending subscription); None otherwise."""
    assert sub.id is not None
    with store.read() as conn:
        was = sq.unsubscribed_from(conn, sub.id)
        current = sq.get(conn, id=sub.id)
    if was is None or current is None or current.unsubscribed_at is None:
        return None
    return tokens.undo_link(config, tokens.ensure_secret_key(config), sub.id,
                            current.unsubscribed_at)


@subscriber_event("unsubscribe undone")
def undo_unsubscribe(store: Store, config: Config, token: str) -> Subscriber:
    """Put back the subscription the token's unsubscribe ended, as it was (status,
    language, frequency, series, cursor), without a new confirmation: the token is signed
    for that subscriber and that unsubscribe only, so it works once and never for another
    unsubscribe, and a suppressed address stays suppressed (a complaint suppresses it; a
    hard bounce, even one that came after the unsubscribe, leaves it bounced, which no undo
    reverses)."""
    claims = tokens.read_token(tokens.ensure_secret_key(config), tokens.Purpose.UNDO, token)
    with store.write(durable=True) as conn:
        sub = sq.get(conn, id=claims.subscriber_id, for_update=True)
        was = sq.unsubscribed_from(conn, claims.subscriber_id)
        if sub is None or was is None or sub.unsubscribed_at is None or \
                sub.unsubscribed_at.isoformat() != claims.bound or \
                sq.is_suppressed(conn, sub.email):
            raise ValidationError(tokens.INVALID, field="token")
        assert sub.id is not None
        sq.undo_unsubscribe(conn, sub.id, was)
        sub.status, sub.unsubscribed_at = was, None
        return sub


@subscriber_event("preferences")
def update_preferences(store: Store, config: Config, token: str, *, language: str,
                       frequency: str, series: tuple[str, ...] | None = None,
                       start: str | None = None) -> Subscriber:
    """Change language, frequency, (when given) the series followed and where the mail
    starts. Choosing every series stores "all", so a series started later is followed too.
    Switching to "from part 1" starts the back catalogue over; to "only new" stops it."""
    claims = tokens.read_token(tokens.ensure_secret_key(config), tokens.Purpose.PREFERENCES,
                               token)
    freq = check_choice(config, language, frequency)
    begins = check_start(start) if start else None
    with store.write() as conn:
        sub = sq.get(conn, id=claims.subscriber_id)
        if sub is None:
            raise ValidationError("this link is invalid or has expired", field="token")
        if sub.status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
            # preferences saved for nobody would read as a subscription that is not there
            raise ValidationError("not subscribed: there are no preferences to change",
                                  field="status")
        assert sub.id is not None
        sq.update_fields(conn, sub.id, language=language, frequency=freq.value)
        sub.language, sub.frequency = language, freq
        if series is not None:
            every = {s.slug for s in eq.list_series(conn)}
            chosen = set(series)
            if not chosen:
                raise ValidationError("choose at least one series (or unsubscribe)",
                                      field="series")
            if not chosen <= every:
                raise ValidationError(f"no series '{sorted(chosen - every)[0]}'",
                                      field="series")
            sub.series = () if chosen == every else tuple(sorted(chosen))
            sq.set_series(conn, sub.id, sub.series)
        if begins is not None and begins is not sub.start:
            sq.update_fields(conn, sub.id, start=begins.value)
            if begins is Start.NEW:
                cq.stop(conn, sub.id)
            elif sub.status is SubscriberStatus.CONFIRMED:
                _begin_catch_up(conn, sub.id)
            sub.start = begins
        return sub


@subscriber_event("unsubscribed")
def unsubscribe_address(store: Store, email: str) -> Subscriber:
    """The operator's unsubscribe (a request by mail or phone); idempotent and durable."""
    address = normalize_email(email)
    with store.write(durable=True) as conn:
        sub = sq.get(conn, email=address)
        if sub is None:
            raise ValidationError(f"no subscriber {address}", field="email")
        return _unsubscribed(conn, sub)


@subscriber_event("removed")
def remove_subscriber(store: Store, email: str) -> Subscriber:
    """Erase a subscriber: the row goes (a hash keeps the address suppressed), and the
    address goes from every other place the store kept it, in any case: outbox recipients,
    relay errors quoting it (``550 5.1.1 <a@example.org>``), job summaries. On SQLite the
    freed bytes are overwritten and the write-ahead log emptied, so the file holds no copy."""
    address = normalize_email(email)
    with store.write(durable=True, erase=True) as conn:
        sub = sq.remove(conn, address, now_utc())
        # erase the address from queued and past messages too
        oq.detach_subscriber(conn, sub.id)
        scrub_address(conn, address_variants(sub.email) | address_variants(address))
    store.checkpoint()
    return sub


def list_subscribers(store: Store, status: SubscriberStatus | None,
                     filters: sq.Filters | None = None) -> Iterator[Subscriber]:
    """Every subscriber (with ``status``, or matching ``filters``), streamed by id; one
    page with its total is ``subscriber_admin.search_subscribers``."""
    with store.read() as conn:
        yield from sq.iterate(conn, status, filters=filters)

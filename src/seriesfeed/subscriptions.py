"""The subscriber verbs: add, import, export, remove, confirm, unsubscribe, and the
confirmation mail. The CLI and the web app both call these."""

from __future__ import annotations

import csv
import enum
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, update

from seriesfeed import emails, i18n, mailer, tokens
from seriesfeed.config import Config
from seriesfeed.errors import (
    DeliveryError,
    ImportError_,
    ValidationError,
)
from seriesfeed.importers.csvfmt import neutralise
from seriesfeed.importers.seriespage import decode_text
from seriesfeed.models import Frequency, Subscriber, SubscriberStatus
from seriesfeed.store import Store
from seriesfeed.store import entries as eq
from seriesfeed.store import subscribers as sq
from seriesfeed.store.tables import outbox
from seriesfeed.text import clean_line

log = logging.getLogger("seriesfeed.subscriptions")
CSV_COLUMNS = ("email", "name", "language", "frequency", "status")
MAX_NAME = 100
RESEND_AFTER = timedelta(hours=24)  # list-bombing: one confirmation per address per day


def now_utc() -> datetime:
    return datetime.now(UTC)


def normalize_email(raw: str, field: str = "email") -> str:
    """A syntactically valid address, normalised (no DNS look-up); else ValidationError."""
    if len(raw) > 320 or any(c in raw for c in "\r\n\0"):
        raise ValidationError("not a valid email address", field=field)
    try:
        return str(validate_email(raw.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValidationError(f"not a valid email address ({exc})", field=field) from exc


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


@dataclass
class AddResult:
    subscriber: Subscriber | None
    created: bool
    send_confirmation: bool


def add_subscriber(store: Store, config: Config, email: str, *, name: str | None = None,
                   language: str | None = None, frequency: str = "weekly",
                   confirmed: bool = False, source: str = "cli", ip: str | None = None,
                   series: tuple[str, ...] = (), resubscribe: bool = True) -> AddResult:
    """Create a subscriber (pending unless ``confirmed``). An existing address is left as it
    is, except that a person asking again (``resubscribe``) after unsubscribing gets a new
    confirmation. Suppressed (removed) and bounced addresses get nothing."""
    address = normalize_email(email)
    lang = language or config.site.default_language
    freq = check_choice(config, lang, frequency)
    now = now_utc()
    with store.write() as conn:
        if sq.is_suppressed(conn, address):
            return AddResult(None, False, False)
        existing = sq.get(conn, email=address, for_update=True)
        if existing is None:
            sub = Subscriber(email=address, name=clean_name(name), language=lang,
                             frequency=freq, series=series,
                             status=SubscriberStatus.CONFIRMED if confirmed
                             else SubscriberStatus.PENDING,
                             consent_ip=ip, consent_source=source)
            sub.id = sq.add(conn, sub, now)
            return AddResult(sub, True, not confirmed)
        if existing.status is SubscriberStatus.UNSUBSCRIBED and resubscribe:
            assert existing.id is not None
            sq.update_fields(conn, existing.id, status=SubscriberStatus.PENDING.value,
                             language=lang, frequency=freq.value, consent_ip=ip,
                             consent_source=source, consent_at=now)
            existing.status = SubscriberStatus.PENDING
            return AddResult(existing, False, True)
        wants_mail = existing.status is SubscriberStatus.PENDING
        return AddResult(existing, False, wants_mail)


def confirmation_due(store: Store, subscriber_id: int,
                     now: datetime) -> tuple[bool, datetime | None]:
    """At most one confirmation mail per address per RESEND_AFTER (list-bombing).

    Claims the slot in the same transaction that checks it, so two concurrent posts send
    one mail; returns whether it is due and the claim it replaced (to undo on failure)."""
    with store.write() as conn:
        last = sq.confirm_sent_at(conn, subscriber_id)
        if last is not None and now - last < RESEND_AFTER:
            return False, last
        sq.update_fields(conn, subscriber_id, confirm_sent_at=now)
        return True, last


def confirm_link(config: Config, key: bytes, sub: Subscriber, sent_at: datetime) -> str:
    assert sub.id is not None
    token = tokens.make_token(key, tokens.Purpose.CONFIRM, sub.id,
                              bound=sent_at.isoformat(), now=sent_at.timestamp())
    return f"{config.public_url}/confirm/{token}"


class ConfirmationMail(enum.Enum):
    SENT = "sent"
    NOT_DUE = "not sent: one was sent within the last 24 hours"
    NOT_DELIVERED = "not delivered (the relay refused or was unreachable; try again later)"


def send_confirmation(store: Store, config: Config, sub: Subscriber) -> ConfirmationMail:
    """Send the confirmation mail if one is due. Delivery problems are logged, not raised
    (the person can ask again); whatever the failure, the day's claim is given back, so a
    mail that never left does not block the address for 24 hours."""
    assert sub.id is not None
    now = now_utc()
    due, previous = confirmation_due(store, sub.id, now)
    if not due:
        return ConfirmationMail.NOT_DUE
    try:
        key = tokens.ensure_secret_key(config)
        link = confirm_link(config, key, sub, now)
        text, html = emails.render_email(config, sub.language, "confirm",
                                         {"confirm_url": link})
        _ = i18n.messages_for(config, sub.language)
        subject = _("Confirm your subscription to {site}",
                    site=i18n.site_texts(config, sub.language).title)
        # no name in the headers of confirmation mail: it is unverified input (invariant 6)
        msg = emails.build_message(
            sender=emails.sender_address(config), to_email=sub.email, to_name=None,
            subject=subject, text=text, html=html,
            message_id=emails.make_message_id("confirm", f"{sub.id}.{int(now.timestamp())}",
                                              config))
        mailer.send_now(config, msg)
    except BaseException as exc:
        with store.write() as conn:
            sq.restore_confirm_sent(conn, sub.id, now, previous)
        if isinstance(exc, DeliveryError):
            log.warning("confirmation mail to subscriber %s not delivered: %s", sub.id, exc)
            return ConfirmationMail.NOT_DELIVERED
        raise
    return ConfirmationMail.SENT


def confirm(store: Store, config: Config, token: str) -> Subscriber:
    claims = tokens.read_token(tokens.ensure_secret_key(config), tokens.Purpose.CONFIRM, token)
    with store.write() as conn:
        sub = sq.get(conn, id=claims.subscriber_id, for_update=True)
        sent = sq.confirm_sent_at(conn, claims.subscriber_id)
        if sub is None or sub.status is not SubscriberStatus.PENDING or sent is None or \
                sent.isoformat() != claims.bound:
            raise ValidationError("this link is invalid or has expired", field="token")
        assert sub.id is not None
        sq.confirm(conn, sub.id, now_utc())
        sub.status = SubscriberStatus.CONFIRMED
        return sub


def unsubscribe_link(config: Config, key: bytes, subscriber_id: int) -> str:
    token = tokens.make_token(key, tokens.Purpose.UNSUBSCRIBE, subscriber_id)
    return f"{config.public_url}/unsubscribe/{token}"


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


def preferences_link(config: Config, key: bytes, subscriber_id: int) -> str:
    token = tokens.make_token(key, tokens.Purpose.PREFERENCES, subscriber_id)
    return f"{config.public_url}/preferences/{token}"


def update_preferences(store: Store, config: Config, token: str, *, language: str,
                       frequency: str, series: tuple[str, ...] | None = None) -> Subscriber:
    """Change language, frequency and (when given) the series followed. Choosing every
    series stores "all", so a series started later is followed too."""
    claims = tokens.read_token(tokens.ensure_secret_key(config), tokens.Purpose.PREFERENCES,
                               token)
    freq = check_choice(config, language, frequency)
    with store.write() as conn:
        sub = sq.get(conn, id=claims.subscriber_id)
        if sub is None:
            raise ValidationError("this link is invalid or has expired", field="token")
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
        return sub


def unsubscribe_address(store: Store, email: str) -> Subscriber:
    """The operator's unsubscribe (a request by mail or phone); idempotent and durable."""
    address = normalize_email(email)
    with store.write(durable=True) as conn:
        sub = sq.get(conn, email=address)
        if sub is None:
            raise ValidationError(f"no subscriber {address}", field="email")
        return _unsubscribed(conn, sub)


def remove_subscriber(store: Store, email: str) -> Subscriber:
    address = normalize_email(email)
    with store.write(durable=True) as conn:
        sub = sq.remove(conn, address, now_utc())
        # erase the address from queued and past messages too
        conn.execute(update(outbox).where(outbox.c.recipient == sub.email)
                     .values(recipient="erased@invalid", subscriber_id=None))
        return sub


def list_subscribers(store: Store, status: SubscriberStatus | None) -> Iterator[Subscriber]:
    with store.read() as conn:
        yield from sq.iterate(conn, status)


@dataclass
class SubscriberImport:
    added: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self, path: str) -> str:
        return f"{path}: {self.added} added, {len(self.skipped)} skipped"


def import_subscribers(store: Store, config: Config, path: Path) -> SubscriberImport:
    """Read ``email,name,language,frequency,status`` rows (only email required) in one
    transaction. Unsubscribed, bounced and removed addresses are never resubscribed."""
    try:
        text = decode_text(path.read_bytes(), str(path))
    except FileNotFoundError as exc:
        raise ImportError_("no such file", path=str(path)) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, Subscriber]] = []
    seen: dict[str, int] = {}
    try:
        header = reader.fieldnames or []
        if "email" not in header:
            raise ImportError_("the header lacks the column 'email'", path=str(path), line=1,
                               field="email")
        unknown = [c for c in header if c not in CSV_COLUMNS]
        if unknown:
            raise ImportError_(f"unknown column '{unknown[0]}'", path=str(path), line=1,
                               field=unknown[0])
        for row in reader:
            line = reader.line_num
            cells = {k: (v or "").strip().removeprefix("'") for k, v in row.items() if k}
            try:
                address = normalize_email(cells.get("email", ""))
                lang = cells.get("language") or config.site.default_language
                freq = check_choice(config, lang, cells.get("frequency") or "weekly")
                status = SubscriberStatus(cells.get("status") or "pending")
            except ValidationError as exc:
                raise ImportError_(str(exc).split(": ", 1)[-1], path=str(path), line=line,
                                   field=exc.field) from exc
            except ValueError:
                raise ImportError_("status must be pending or confirmed", path=str(path),
                                   line=line, field="status") from None
            if status not in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
                raise ImportError_("status must be pending or confirmed", path=str(path),
                                   line=line, field="status")
            if len(cells.get("name", "")) > MAX_NAME:
                raise ImportError_(f"the name is longer than {MAX_NAME} characters",
                                   path=str(path), line=line, field="name")
            if sq.email_key(address) in seen:
                raise ImportError_(f"'{address}' is already on line {seen[sq.email_key(address)]}",
                                   path=str(path), line=line, field="email")
            seen[sq.email_key(address)] = line
            rows.append((line, Subscriber(email=address, name=clean_name(cells.get("name")),
                                          language=lang, frequency=freq, status=status,
                                          consent_source=f"import:{path.name}")))
    except csv.Error as exc:
        raise ImportError_(f"not valid CSV: {exc}", path=str(path), line=reader.line_num) \
            from exc
    report = SubscriberImport()
    now = now_utc()
    with store.write() as conn:
        for _line, sub in rows:
            if sq.is_suppressed(conn, sub.email) or sq.get(conn, email=sub.email) is not None:
                report.skipped.append(sub.email)
                continue
            sq.add(conn, sub, now)
            report.added += 1
    return report


def export_rows(store: Store) -> Iterator[list[str]]:
    yield list(CSV_COLUMNS)
    for sub in list_subscribers(store, None):
        yield [neutralise(v) for v in (sub.email, sub.name or "", sub.language,
                                       sub.frequency.value, sub.status.value)]

"""Draining the outbox: claim, render, send through the pooled transport, mark.

A digest is rendered once per (digest, language, cursor range, series followed); the
per-recipient part (the unsubscribe link) is filled in by string substitution. Sends run
concurrently over the pool's connections and their outcomes are committed in groups of at
most ``MARK_GROUP`` as they arrive, so after a crash at most those in flight plus one
group can be sent twice, each time with the same Message-ID (README: "Digests"). Leases
are renewed while rows are in flight; a stop hands unsent rows back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from seriesfeed import bounces, crashpoints, emails, i18n, mailer, metrics, tokens
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.digest_mail import (
    PREFERENCES,
    UNSUBSCRIBE,
    Rendered,
    render_digest_mail,
)
from seriesfeed.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RelayError,
    SeriesfeedError,
    UncertainDeliveryError,
)
from seriesfeed.models import Entry, OutboxKind, OutboxState
from seriesfeed.store import Store
from seriesfeed.store import entries as eq
from seriesfeed.store import outbox as oq
from seriesfeed.store.locks import SenderLock
from seriesfeed.subscriptions import preferences_link

__all__ = [
    "BATCH",
    "HELD",
    "MARK_EVERY_S",
    "MARK_GROUP",
    "RELAY_PAUSE_MAX_S",
    "SYSTEMIC_AFTER",
    "DrainReport",
    "build_digest_message",
    "digest_entries",
    "drain_outbox",
    "duplicate_bound",
    "held",
    "relay_pause",
    "render_digest",
]

log = logging.getLogger("seriesfeed.outbox")
BATCH = 200


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    uncertain: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    busy: bool = False  # another drain held the outbox; nothing was sent here
    paused: str | None = None  # the relay refused the sender: why sending stopped

    def __str__(self) -> str:
        if self.busy:
            return "another process is draining the outbox and will send what is due"
        text = (f"{self.sent} sent, {self.retried} to retry, {self.failed} failed, "
                f"{self.uncertain} uncertain, {self.seconds:.1f} s")
        if self.paused:
            text += f"; paused, nothing counted against subscribers: {self.paused}"
        return text


def _translations(conn: Any, config: Config,
                  entries: list[Entry]) -> dict[str, list[dict[str, str]]]:
    links = eq.translations_of(conn, [e.seq for e in entries if e.seq is not None])
    out: dict[str, list[dict[str, str]]] = {}
    for e in entries:
        for other_seq in links.get(e.seq or -1, []):
            other = eq.get_entry(conn, str(other_seq))
            if other.url and other.language in config.languages and e.id:
                out.setdefault(e.id, []).append({
                    "language": other.language, "url": other.url,
                    "name": config.languages[other.language].name})
    return out


def digest_entries(conn: Any, config: Config, language: str, from_seq: int,
                   to_seq: int) -> list[Entry]:
    """The entries of a digest in ``language``: its own, and with the "original" digest
    fallback, originals in other languages that have no translation into it."""
    if i18n.fallback_policy(config, language, digest=True) != "original":
        return eq.list_entries(conn, language=language, after_seq=from_seq, upto_seq=to_seq,
                               newest_first=False)
    found = eq.list_entries(conn, after_seq=from_seq, upto_seq=to_seq, newest_first=False)
    others = [e for e in found if e.language != language and e.translation_of is None]
    links = eq.translations_of(conn, [e.seq for e in others if e.seq is not None])
    translated = {seq for seq, linked in links.items()
                  if any(eq.get_entry(conn, str(o)).language == language for o in linked)}
    return [e for e in found if e.language == language
            or (e.translation_of is None and e.seq not in translated)]


def render_digest(store: Store, config: Config, language: str, from_seq: int, to_seq: int,
                  series_ids: tuple[int, ...]) -> Rendered | None:
    """The digest of entries in (from_seq, to_seq] of one language (and series, if any)."""
    with store.read() as conn:
        found = digest_entries(conn, config, language, from_seq, to_seq)
        all_series = {s.slug: s for s in eq.list_series(conn)}
        if series_ids:
            wanted = {slug for slug in all_series if eq.series_id(conn, slug) in series_ids}
            found = [e for e in found if e.series in wanted]
        translations = _translations(conn, config, found)
    return render_digest_mail(config, language, found, all_series, translations)


def build_digest_message(config: Config, key: bytes, row: oq.Claimed,
                         rendered: Rendered, signer: emails.DkimSigner | None = None) -> bytes:
    """The recipient's message from the group's prebuilt template (the fast byte path)."""
    assert row.subscriber_id is not None
    token = tokens.make_token(key, tokens.Purpose.UNSUBSCRIBE, row.subscriber_id)
    link = f"{config.public_url}/unsubscribe/{token}"
    prefs = preferences_link(config, key, row.subscriber_id)
    unsubscribe = f"<{link}>"
    if config.mail.unsubscribe_mailto:  # tokens are URL-safe base64: no escaping needed
        unsubscribe += (f", <mailto:{config.mail.unsubscribe_mailto}"
                        f"?subject=unsubscribe%20{token}>")
    data = rendered.template.build(
        to_email=row.recipient, to_name=row.name, message_id=row.message_id,
        text=rendered.text.replace(UNSUBSCRIBE, link).replace(PREFERENCES, prefs),
        html=rendered.html.replace(UNSUBSCRIBE, link).replace(PREFERENCES, prefs),
        per_recipient_headers=(("List-Unsubscribe", unsubscribe),
                               # issue 16: Gmail's feedback loop; digest and list only
                               ("Feedback-ID", bounces.feedback_id(
                                   config, row.digest_id, row.language))))
    return signer.sign(data) if signer else data


_ADDRESSES = re.compile(r"<[^>]*>|\S+@\S+")
# rows some drain of this process holds, per store: never claimed again by this process
HELD: dict[str, set[int]] = {}


def held(store: Store) -> set[int]:
    return HELD.setdefault(store.url, set())
MARK_GROUP = 16  # outcomes committed together: a crash re-sends at most this many + in flight
MARK_EVERY_S = 0.25
SYSTEMIC_AFTER = 5  # the same 5xx for this many recipients in a row is the relay's problem
RELAY_PAUSE_MAX_S = 3600.0
_relay_streak = 0  # drains in a row paused by the relay (this process): the pause grows


def _reply_key(exc: DeliveryError) -> str:
    """The reply without what names the recipient, to see "the same refusal for all"."""
    text = str(exc)
    if exc.recipient:
        text = text.replace(exc.recipient, "")
    return f"{exc.code} {_ADDRESSES.sub('', text)}"


async def _send(transport: mailer.Transport, sender: str, row: oq.Claimed,
                data: bytes) -> tuple[oq.Outcome, str | None]:
    """Send one row; every failure becomes this row's outcome (invariant 10). The second
    value is the reply key of a recipient 5xx, for the systemic check."""
    try:
        await transport.send(data, sender=sender, recipients=[row.recipient])
    except RelayError as exc:
        return oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY, row.attempts, str(exc),
                          exc.code, sender_fault=True), None
    except PermanentDeliveryError as exc:
        key = _reply_key(exc) if exc.code else None
        return oq.Outcome(row.id, row.subscriber_id, OutboxState.FAILED, row.attempts, str(exc),
                          exc.code), key
    except DeliveryError as exc:
        return oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY, row.attempts, str(exc),
                          exc.code, uncertain=isinstance(exc, UncertainDeliveryError)), None
    except Exception as exc:  # a bug: this row retries (and fails at max_attempts) alone
        log.exception("sending outbox row %s failed unexpectedly", row.id)
        return oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY, row.attempts,
                          f"{type(exc).__name__}: {exc}"), None
    crashpoints.hit("after_smtp_250")
    return oq.Outcome(row.id, row.subscriber_id, OutboxState.SENT, row.attempts), None


class _Verdicts:
    """Decides, as outcomes arrive, which failures are the recipients' and which are the
    relay's (invariant 11). A recipient 5xx is held back while a run of identical ones
    grows: ``SYSTEMIC_AFTER`` of them in a row (or two or more with no success in the
    whole drain) means the relay refuses everybody, and they wait instead of bouncing."""

    def __init__(self) -> None:
        self.delivered = False
        self.held: list[oq.Outcome] = []
        self.held_key: str | None = None
        self.paused: str | None = None  # why sending stopped (a sender-side failure)

    def _release(self) -> list[oq.Outcome]:
        out, self.held, self.held_key = self.held, [], None
        return out

    def _systemic(self, why: str) -> list[oq.Outcome]:
        self.paused = self.paused or why
        return [dataclasses.replace(o, state=OutboxState.RETRY, sender_fault=True)
                for o in self._release()]

    def add(self, outcome: oq.Outcome, key: str | None) -> list[oq.Outcome]:
        """The outcomes that can be marked now."""
        if outcome.sender_fault:
            self.paused = self.paused or (outcome.error or "relay error")
            return [outcome]
        if key is None:
            if outcome.state is OutboxState.SENT:
                self.delivered = True
                return [*self._release(), outcome]
            return [outcome]
        if self.held and key != self.held_key:
            released = self._release()
            self.held, self.held_key = [outcome], key
            return released
        self.held.append(outcome)
        self.held_key = key
        if len(self.held) >= SYSTEMIC_AFTER:
            return self._systemic(f"the relay refused {len(self.held)} recipients in a row "
                                  f"the same way: {outcome.error}")
        return []

    def finish(self) -> list[oq.Outcome]:
        if len(self.held) >= 2 and not self.delivered:
            return self._systemic(f"the relay refused every recipient the same way: "
                                  f"{self.held[-1].error}")
        return self._release()


class _Marker:
    """Commits outcomes in small groups while sending goes on (invariant 12), one commit
    at a time, in a worker thread (invariant 13)."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store, self.config = store, config
        self.pending: list[oq.Outcome] = []
        self.lock = asyncio.Lock()
        self.first_at = 0.0

    async def add(self, outcomes: list[oq.Outcome]) -> None:
        if not outcomes:
            return
        if not self.pending:
            self.first_at = time.monotonic()
        self.pending += outcomes
        if len(self.pending) >= MARK_GROUP or \
                time.monotonic() - self.first_at >= MARK_EVERY_S:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            group, self.pending = self.pending, []
            if group:
                crashpoints.hit("before_mark_commit")
                await asyncio.to_thread(_mark, self.store, self.config, group)
                crashpoints.hit("after_mark_commit")
                held(self.store).difference_update(o.id for o in group)


async def drain_outbox(store: Store, config: Config, *, stopping: asyncio.Event | None = None,
                       transport: mailer.Transport | None = None, batch: int | None = None,
                       progress: Callable[[int], None] | None = None,
                       lock_wait: float = 30.0,
                       kinds: tuple[OutboxKind, ...] = tuple(OutboxKind)) -> DrainReport:
    """Send every due outbox row; returns when none is due, when ``stopping`` is set, or
    when the relay refuses the sender (the rows wait, uncounted, and the report says why).

    On SQLite one drain runs at a time; this one waits up to ``lock_wait`` seconds for
    another to finish. If it is still busy the rows are left to that drain (which claims
    until none is due) and the report says ``busy``. Rows this drain claimed but did not
    send (a stop, a pause, a cancel) are handed back, queued, before it returns."""
    global _relay_streak
    started = time.monotonic()
    report = DrainReport()
    own = transport is None
    transport = metrics.timed(transport or mailer.make_transport(config))  # issue 16
    key = tokens.ensure_secret_key(config)
    signer = emails.dkim_signer(config)
    sender = mailer.envelope_sender(config)
    cache: dict[tuple[object, ...], Rendered | None] = {}
    limit = asyncio.Semaphore(max(config.smtp.connections, 1))
    lease = timedelta(seconds=config.mail.lease_seconds)
    verdicts = _Verdicts()
    marker = _Marker(store, config)
    mine: set[int] = set()  # claimed by this drain and not yet marked

    def count(outcomes: list[oq.Outcome]) -> None:
        for o in outcomes:
            mine.discard(o.id)
            if o.uncertain:
                report.uncertain += 1
            if o.state is OutboxState.SENT:
                report.sent += 1
            elif o.sender_fault or (o.state is OutboxState.RETRY and
                                    o.attempts < config.mail.max_attempts):
                report.retried += 1
            else:
                report.failed += 1
            if o.error:
                report.errors.append(o.error)

    async def settle(outcomes: list[oq.Outcome]) -> None:
        count(outcomes)
        await marker.add(outcomes)

    def build(row: oq.Claimed, rendered: Rendered | None) -> bytes:
        if rendered is None:
            assert row.subscriber_id is not None and row.confirm_sent_at is not None
            from seriesfeed.subscriptions import confirmation_message

            return confirmation_message(config, key, row.subscriber_id, row.recipient,
                                        row.language, row.confirm_sent_at, row.message_id)
        return build_digest_message(config, key, row, rendered, signer)

    async def one(row: oq.Claimed, rendered: Rendered | None) -> None:
        async with limit:
            if verdicts.paused or (stopping and stopping.is_set()):
                return  # handed back below, untried
            try:
                data = build(row, rendered)
            except Exception as exc:  # one bad row fails alone, never the batch
                if not isinstance(exc, SeriesfeedError):
                    log.exception("building the message of outbox row %s failed", row.id)
                await settle([oq.Outcome(row.id, row.subscriber_id, OutboxState.FAILED,
                                         row.attempts, f"cannot build the message: {exc}")])
                return
            # with [mail] bounce_address, a VERP envelope sender naming the row
            envelope = bounces.envelope_sender(config, key, row.id) \
                if config.mail.bounce_address else sender
            outcome, reply = await _send(transport, envelope, row, data)
            # inside the slot: a connection sends again only once its outcome is taken,
            # which bounds what a crash can leave unmarked (duplicate_bound)
            await settle(verdicts.add(outcome, reply))

    lock = SenderLock(store)
    renewer: asyncio.Task[None] | None = None
    try:
        # inside the try: a failure here (a full disk, say) must not keep the lock held
        if lock.needed and not await _take(lock, lock_wait, stopping):
            report.busy = True
            return report
        if lock.exclusive:
            await asyncio.to_thread(_release_orphans, store)
        renewer = asyncio.create_task(_renew_leases(store, mine, lease))
        while not (stopping and stopping.is_set()) and not verdicts.paused:
            now = now_utc()
            claimed = await asyncio.to_thread(_claim, store, config, now,
                                              batch or config.mail.batch_size, lease, kinds)
            if not claimed:
                break
            mine.update(r.id for r in claimed)
            held(store).update(r.id for r in claimed)
            crashpoints.hit("after_claim_commit")
            jobs = []
            for row in claimed:
                if row.kind is OutboxKind.CONFIRM:
                    jobs.append(one(row, None))
                    continue
                group = (row.digest_id, row.language, row.from_seq, row.to_seq, row.series_ids)
                if group not in cache:
                    cache[group] = await asyncio.to_thread(
                        render_digest, store, config, row.language, row.from_seq, row.to_seq,
                        row.series_ids)
                rendered = cache[group]
                if rendered is None:  # nothing left to send (entries removed since)
                    await settle([oq.Outcome(row.id, row.subscriber_id, OutboxState.SENT,
                                             row.attempts)])
                    continue
                jobs.append(one(row, rendered))
            await asyncio.gather(*jobs)
            await settle(verdicts.finish() if verdicts.paused else [])
            await marker.flush()
            if progress:
                progress(len(claimed))
        await settle(verdicts.finish())
        await marker.flush()
    finally:
        if renewer is not None:
            renewer.cancel()
        try:
            rest = verdicts.finish()
            count(rest)
            await _finish(store, marker, rest, mine)
        finally:
            lock.release()
            if own:
                await transport.aclose()
    _note_relay(verdicts.paused, report)
    if verdicts.paused:
        _relay_streak += 1
        report.paused = verdicts.paused
    elif report.sent:
        _relay_streak = 0
    report.seconds = time.monotonic() - started
    return report


async def _finish(store: Store, marker: _Marker, rest: list[oq.Outcome],
                  mine: set[int]) -> None:
    """Mark what is known, hand back what was not sent (also when cancelled: the worker
    thread completes even if this task is cancelled again, and the loop waits for it)."""
    marker.pending += rest
    await marker.flush()
    if mine:
        back = list(mine)
        mine.clear()
        handed = await asyncio.to_thread(_hand_back, store, back)
        if handed:
            log.info("%s claimed messages handed back unsent (queued, same Message-ID)",
                     handed)


_last_pause: list[str | None] = [None]


def _note_relay(paused: str | None, report: DrainReport) -> None:
    """Tell the operator once per change, not once per drain."""
    if paused and paused != _last_pause[0]:
        log.warning("sending paused: the relay refuses the sender, not the recipients "
                    "(nothing is counted against subscribers; the messages wait): %s", paused)
    elif not paused and _last_pause[0] and report.sent:
        log.info("the relay accepts mail again; sending resumed")
    if paused or report.sent:
        _last_pause[0] = paused


async def _renew_leases(store: Store, mine: set[int], lease: timedelta) -> None:
    """Keep the leases of rows in flight ahead of the work (invariant 12)."""
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        if mine:
            try:
                await asyncio.to_thread(_renew, store, set(mine), lease)
            except SeriesfeedError as exc:  # the next pass tries again; marks still commit
                log.warning("renewing outbox leases failed: %s", exc)


def _renew(store: Store, ids: set[int], lease: timedelta) -> None:
    with store.write() as conn:
        oq.renew(conn, ids, now_utc() + lease)


def _hand_back(store: Store, ids: list[int]) -> int:
    try:
        with store.write() as conn:
            return oq.hand_back(conn, ids)
    finally:
        held(store).difference_update(ids)


async def _take(lock: SenderLock, wait: float, stopping: asyncio.Event | None) -> bool:
    """Poll for the sender lock without a thread, so a stop or a cancel ends the wait."""
    deadline = time.monotonic() + wait
    while not lock.try_acquire():
        if (stopping and stopping.is_set()) or time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def _release_orphans(store: Store) -> None:
    with store.write() as conn:
        released = oq.release_orphans(conn, now_utc())
    if released:
        log.warning("%s messages left in flight by a stopped sender will be sent again "
                    "(same Message-ID)", released)


def _claim(store: Store, config: Config, now: datetime, batch: int, lease: timedelta,
           kinds: tuple[OutboxKind, ...]) -> list[oq.Claimed]:
    with store.write() as conn:
        return oq.claim(conn, now, batch, max_attempts=config.mail.max_attempts, lease=lease,
                        exclude=set(held(store)), kinds=kinds)


def duplicate_bound(config: Config) -> int:
    """At most this many messages can be sent twice after a crash: those in flight and
    those whose outcome was not committed yet (a group being committed, one filling)."""
    return 2 * MARK_GROUP + max(config.smtp.connections, 1)


def relay_pause(config: Config) -> timedelta:
    """How long rows wait after the relay refused the sender: it grows with each drain in
    a row that the relay stopped, up to an hour."""
    return timedelta(seconds=min(config.mail.retry_seconds * 2 ** _relay_streak,
                                 RELAY_PAUSE_MAX_S))


def _mark(store: Store, config: Config, outcomes: list[oq.Outcome]) -> None:
    with store.write() as conn:
        oq.mark(conn, outcomes, now_utc(), max_attempts=config.mail.max_attempts,
                bounce_limit=config.mail.bounce_limit, retry_seconds=config.mail.retry_seconds,
                pause=relay_pause(config))

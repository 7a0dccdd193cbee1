"""Draining the outbox (digests and confirmation mail): claim, render, send through the pooled
transport, mark.

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
import enum
import logging
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from seriesfeed import crashpoints, emails, i18n, mailer, messages, metrics, tokens
from seriesfeed.actions import bounces
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RelayError,
    SeriesfeedError,
    StoreError,
    UncertainDeliveryError,
    ValidationError,
)
from seriesfeed.messages import Rendered
from seriesfeed.models import OutboxKind, OutboxState
from seriesfeed.store import Store
from seriesfeed.store import digests as dq
from seriesfeed.store import outbox as oq
from seriesfeed.store.locks import SenderLock

__all__ = [
    "HELD",
    "MARK_EVERY_S",
    "MARK_GROUP",
    "RELAY_DOWN_PAUSE_MAX_S",
    "RELAY_PAUSE_MAX_S",
    "SYSTEMIC_AFTER",
    "DrainReport",
    "Reply",
    "classify",
    "drain_outbox",
    "duplicate_bound",
    "held",
    "relay_pause",
    "render_digest",
]

log = logging.getLogger("seriesfeed.outbox")  # the logger's name operators filter on: kept


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


def render_digest(store: Store, config: Config, language: str, from_seq: int, to_seq: int,
                  series_ids: tuple[int, ...]) -> Rendered | None:
    """The digest of entries in (from_seq, to_seq] of one language (and series, if any)."""
    originals = i18n.fallback_policy(config, language, digest=True) == "original"
    names = {code: lang.name for code, lang in config.languages.items()}
    with store.read() as conn:
        content = dq.digest_content(conn, language, from_seq, to_seq, series_ids,
                                    originals=originals, language_names=names)
    return messages.render_digest_mail(config, language, content.entries, content.series,
                                       content.translations)


_ADDRESSES = re.compile(r"<[^>]*>|\S+@\S+")
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# rows some drain of this process holds, per store: never claimed again by this process
HELD: dict[str, set[int]] = {}


def held(store: Store) -> set[int]:
    return HELD.setdefault(store.url, set())


MARK_GROUP = 16  # outcomes committed together: a crash re-sends at most this many + in flight
MARK_EVERY_S = 0.25
MARK_RETRY_S = 60.0  # a mark that meets a locked store is tried again this long
SYSTEMIC_AFTER = 5  # the same refusal for this many recipients in a row: the relay's problem
RELAY_PAUSE_MAX_S = 3600.0
# a relay that answers nothing (refused, timed out, dropped) is simply down: asking again
# each minute costs one connection attempt, and the send resumes within a minute of its
# return; one that answers with a refusal (a wrong password) backs off up to the hour
RELAY_DOWN_PAUSE_MAX_S = 60.0
_relay_streak = 0  # drains in a row paused by the relay (this process): the pause grows


class Reply(enum.Enum):
    """What a failed reply says about whom (RFC 3463 enhanced status codes)."""

    RECIPIENT = "recipient"  # x.1.x addressing, x.2.x mailbox: this address, a bounce
    POLICY = "policy"  # x.7.x security or policy: the sender's standing, not a bounce
    SYSTEM = "system"  # x.3/x.4/x.5/x.6: the relay or the message, often for everyone
    UNKNOWN = "unknown"  # no enhanced code: judged by how often it repeats


def classify(exc: DeliveryError) -> tuple[Reply, str]:
    """The class of a reply, and a key that is equal for "the same refusal" whoever the
    recipient (the enhanced code when there is one; else the text without addresses)."""
    # RFC 3463: the enhanced code is in the reply text (first, by convention); only the
    # reply is searched, since the message names the relay's host, whose digits could match
    match = _ENHANCED.search(exc.reply or "")
    if match is None:
        text = str(exc).replace(exc.recipient or "\0", "")
        return Reply.UNKNOWN, f"{exc.code} {_ADDRESSES.sub('', text)}"
    subject = match.group(2)
    kind = {"1": Reply.RECIPIENT, "2": Reply.RECIPIENT, "7": Reply.POLICY}.get(
        subject, Reply.SYSTEM)
    return kind, f"{exc.code} {match.group(0)}"


@dataclass(frozen=True)
class _Sent:
    """One row's outcome as the sender saw it, and what it may say about the relay."""

    outcome: oq.Outcome
    key: str | None = None  # equal for the same refusal: a run of them is systemic
    pause: bool = False  # the relay refuses the sender: stop this drain
    decisive: bool = False  # a system-class refusal: two alike in a drain with no success


async def _send(transport: mailer.Transport, sender: str, row: oq.Claimed,
                data: bytes) -> _Sent:
    """Send one row; every failure becomes this row's outcome (invariant 10)."""
    try:
        await transport.send(data, sender=sender, recipients=[row.recipient])
    except RelayError as exc:
        return _Sent(oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY, row.attempts,
                                str(exc), exc.code, sender_fault=True), pause=True)
    except DeliveryError as exc:
        uncertain = isinstance(exc, UncertainDeliveryError)
        permanent = isinstance(exc, PermanentDeliveryError)
        if exc.code is None:  # a timeout or a dropped connection (or no SMTPUTF8)
            outcome = oq.Outcome(row.id, row.subscriber_id,
                                 OutboxState.FAILED if permanent else OutboxState.RETRY,
                                 row.attempts, str(exc), None, uncertain=uncertain)
            return _Sent(outcome, None if permanent else f"lost {uncertain}")
        kind, key = classify(exc)
        # a 5xx is tried once; it counts as a bounce only when it names the address (or
        # says nothing more): a policy or system refusal is not the subscriber's doing
        outcome = oq.Outcome(row.id, row.subscriber_id,
                             OutboxState.FAILED if permanent else OutboxState.RETRY,
                             row.attempts, str(exc), exc.code, uncertain=uncertain,
                             bounce=kind in (Reply.RECIPIENT, Reply.UNKNOWN))
        if kind is Reply.RECIPIENT:
            return _Sent(outcome)
        return _Sent(outcome, key, decisive=kind is not Reply.UNKNOWN)
    except Exception as exc:  # a bug: this row retries (and fails at max_attempts) alone
        log.exception("sending outbox row %s failed unexpectedly", row.id)
        return _Sent(oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY, row.attempts,
                                f"{type(exc).__name__}: {exc}"))
    crashpoints.hit("after_smtp_250")
    return _Sent(oq.Outcome(row.id, row.subscriber_id, OutboxState.SENT, row.attempts))


class _Verdicts:
    """Decides, as outcomes arrive, which failures are the recipients' and which are the
    relay's (invariant 11). A failure that could be the relay's (not one naming the
    address, RFC 3463 x.1/x.2) is held back while a run of the same refusal grows:
    ``SYSTEMIC_AFTER`` in a row (or, for a system-class code, two or more in a drain that
    delivered nothing) means the relay refuses everybody, and they wait, uncounted,
    instead of bouncing or using up their attempts."""

    def __init__(self) -> None:
        self.delivered = False
        self.held: list[_Sent] = []
        self.paused: str | None = None  # why sending stopped (a sender-side failure)

    def _release(self) -> list[oq.Outcome]:
        out, self.held = [s.outcome for s in self.held], []
        return out

    def _systemic(self, why: str) -> list[oq.Outcome]:
        self.paused = self.paused or why
        out, self.held = self.held, []
        return [dataclasses.replace(s.outcome, state=OutboxState.RETRY, sender_fault=True)
                for s in out]

    def add(self, sent: _Sent) -> list[oq.Outcome]:
        """The outcomes that can be marked now."""
        outcome = sent.outcome
        if sent.pause:
            self.paused = self.paused or (outcome.error or "relay error")
            return [outcome]
        if sent.key is None:
            if outcome.state is OutboxState.SENT:
                self.delivered = True
                return [*self._release(), outcome]
            return [outcome]
        released = self._release() if self.held and sent.key != self.held[0].key else []
        self.held.append(sent)
        if len(self.held) >= SYSTEMIC_AFTER:
            return released + self._systemic(
                f"the relay refused {len(self.held)} recipients in a row the same way: "
                f"{outcome.error}")
        return released

    def finish(self) -> list[oq.Outcome]:
        if len(self.held) >= 2 and not self.delivered and self.held[0].decisive:
            return self._systemic(f"the relay refused every recipient the same way: "
                                  f"{self.held[-1].outcome.error}")
        return self._release()


class _Marker:
    """Commits outcomes in small groups while sending goes on (invariant 12), one commit
    at a time, in a worker thread (invariant 13). A store that is locked for a while
    (another process writing) is waited for: sending stops meanwhile, because a
    connection takes its next message only once its outcome is accepted here."""

    def __init__(self, store: Store, config: Config, mine: set[int]) -> None:
        self.store, self.config, self.mine = store, config, mine
        self.pending: list[oq.Outcome] = []
        self.unmarked: set[int] = set()  # known outcomes whose commit failed for good
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
            if not group:
                return
            crashpoints.hit("before_mark_commit")
            deadline = time.monotonic() + MARK_RETRY_S
            while True:
                try:
                    await asyncio.to_thread(_mark, self.store, self.config, group)
                    break
                except StoreError as exc:
                    if time.monotonic() >= deadline:
                        # left ``sending``: their lease runs out and they are sent again
                        # (same Message-ID), never handed back as if unsent
                        self.unmarked.update(o.id for o in group)
                        raise
                    log.warning("marking %s sent messages waits for the store: %s",
                                len(group), exc)
                    await asyncio.sleep(1.0)
            crashpoints.hit("after_mark_commit")
            ids = {o.id for o in group}
            self.mine.difference_update(ids)
            held(self.store).difference_update(ids)


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
    mine: set[int] = set()  # claimed by this drain and not yet marked (leases renewed)
    marker = _Marker(store, config, mine)

    def count(outcomes: list[oq.Outcome]) -> None:
        for o in outcomes:
            if o.uncertain:
                report.uncertain += 1
            if o.state is OutboxState.SENT:
                report.sent += 1
            elif (o.sender_fault and not o.uncertain) or (
                    o.state is OutboxState.RETRY and o.attempts < config.mail.max_attempts):
                report.retried += 1
            else:
                report.failed += 1
                if not oq.is_bounce(o):  # the relay's or the message's: the operator's to fix
                    log.warning("outbox row %s failed for good, not counted against the "
                                "subscriber: %s", o.id, o.error)
            if o.error:
                report.errors.append(o.error)

    async def settle(outcomes: list[oq.Outcome]) -> None:
        count(outcomes)
        await marker.add(outcomes)

    def build(row: oq.Claimed, rendered: Rendered | None) -> bytes:
        if rendered is None:
            assert row.subscriber_id is not None and row.confirm_sent_at is not None
            return messages.confirmation_message(config, key, row.subscriber_id, row.recipient,
                                                 row.language, row.confirm_sent_at,
                                                 row.message_id)
        assert row.subscriber_id is not None
        return messages.digest_message(config, key, messages.Recipient(
            row.subscriber_id, row.recipient, row.name, row.message_id, row.digest_id,
            row.language), rendered, signer)

    async def one(row: oq.Claimed, rendered: Rendered | None) -> None:
        async with limit:
            if verdicts.paused or (stopping and stopping.is_set()):
                return  # handed back below, untried
            try:
                data = build(row, rendered)
            except ValidationError as exc:  # this row's address: it fails alone
                await settle([oq.Outcome(row.id, row.subscriber_id, OutboxState.FAILED,
                                         row.attempts, f"cannot build the message: {exc}")])
                return
            except Exception as exc:  # a template or a key: every row would fail alike
                if not verdicts.paused:
                    log.exception("building the message of outbox row %s failed", row.id)
                await settle(verdicts.add(_Sent(oq.Outcome(
                    row.id, row.subscriber_id, OutboxState.RETRY, row.attempts,
                    f"cannot build the message: {type(exc).__name__}: {exc}",
                    sender_fault=True), pause=True)))
                return
            # with [mail] bounce_address, a VERP envelope sender naming the row
            envelope = bounces.envelope_sender(config, key, row.id) \
                if config.mail.bounce_address else sender
            sent = await _send(transport, envelope, row, data)
            # inside the slot: a connection sends again only once its outcome is taken,
            # which bounds what a crash can leave unmarked (duplicate_bound)
            await settle(verdicts.add(sent))

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
            await _all(jobs)
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


async def _all(jobs: list[Coroutine[Any, Any, None]]) -> None:
    """Run the sends; if one fails (a store that stays locked past every mark retry) or
    this drain is cancelled, the others stop too before anything is handed back, so no
    row is sent by a straggler after it was queued again."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _finish(store: Store, marker: _Marker, rest: list[oq.Outcome],
                  mine: set[int]) -> None:
    """Mark what is known, hand back what was not sent (also when cancelled: the worker
    thread completes even if this task is cancelled again, and the loop waits for it).
    Rows whose outcome is known but could not be committed are not handed back: they may
    have been delivered; their lease runs out and they are sent again, same Message-ID."""
    marker.pending += rest
    failure: StoreError | None = None
    try:
        await marker.flush()
    except StoreError as exc:
        failure = exc
    known = marker.unmarked | {o.id for o in marker.pending}
    held(store).difference_update(known)
    mine.difference_update(known)
    if mine:
        back = list(mine)
        mine.clear()
        handed = await asyncio.to_thread(_hand_back, store, back)
        if handed:
            log.info("%s claimed messages handed back unsent (queued, same Message-ID)",
                     handed)
    if failure is not None:
        raise failure


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


def relay_pause(config: Config, *, answered: bool = True) -> timedelta:
    """How long rows wait after the relay refused the sender: it grows with each drain in
    a row that the relay stopped, up to an hour when the relay answered with a refusal,
    up to a minute (or ``retry_seconds``) when it answered nothing at all."""
    cap = RELAY_PAUSE_MAX_S if answered else max(RELAY_DOWN_PAUSE_MAX_S,
                                                 config.mail.retry_seconds)
    return timedelta(seconds=min(config.mail.retry_seconds * 2 ** _relay_streak, cap))


def _mark(store: Store, config: Config, outcomes: list[oq.Outcome]) -> None:
    with store.write() as conn:
        oq.mark(conn, outcomes, now_utc(), max_attempts=config.mail.max_attempts,
                bounce_limit=config.mail.bounce_limit, retry_seconds=config.mail.retry_seconds,
                pause=relay_pause(config, answered=any(
                    o.sender_fault and o.code is not None for o in outcomes)))

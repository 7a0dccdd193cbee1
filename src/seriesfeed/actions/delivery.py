"""Draining the outbox (digests and confirmation mail): claim, build, send through the pooled
transport, judge, mark; :class:`Drain` holds the steps and :func:`drain_outbox` is the
one-call façade.

A digest is rendered once per (digest, language, cursor range, series followed); the
per-recipient part (the unsubscribe link) is filled in by string substitution. Sends run
concurrently over the pool's connections and their outcomes are committed in groups of at
most ``MARK_GROUP`` as they arrive, so after a crash at most those in flight plus one
group can be sent twice, each time with the same Message-ID (README: "Digests"). Leases
are renewed while rows are in flight; a stop hands unsent rows back. Whether the relay may be
tried at all is the relay's state in the store (``actions.relay``), shared by every sender.
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

from seriesfeed import crashpoints, i18n, mailer, messages, metrics, tokens
from seriesfeed.actions import bounces, relay, welcome
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
from seriesfeed.models import OutboxKind, OutboxState, SeriesText
from seriesfeed.smtpcodes import ENHANCED_STATUS
from seriesfeed.store import Store
from seriesfeed.store import catch_up as cq
from seriesfeed.store import digests as dq
from seriesfeed.store import entries as eq
from seriesfeed.store import outbox as oq
from seriesfeed.store.locks import SenderLock

__all__ = [
    "HELD",
    "MARK_EVERY_S",
    "MARK_GROUP",
    "SYSTEMIC_AFTER",
    "Drain",
    "DrainReport",
    "Reply",
    "classify",
    "drain_outbox",
    "duplicate_bound",
    "held",
    "render_digest",
    "series_titles",
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
    paused: str | None = None  # the relay (or every message's build) failed: why sending stopped

    def __str__(self) -> str:
        if self.busy:
            return "another process is draining the outbox and will send what is due"
        text = (f"{self.sent} sent, {self.retried} to retry, {self.failed} failed, "
                f"{self.uncertain} uncertain, {self.seconds:.1f} s")
        if self.paused:
            text += f"; paused, nothing counted against subscribers: {self.paused}"
        return text


def render_digest(store: Store, config: Config, language: str, from_seq: int, to_seq: int,
                  series_ids: tuple[int, ...], *, catch_up: bool = False,
                  view_url: str | None = None, web: bool = False) -> Rendered | None:
    """The digest of entries in (from_seq, to_seq] of one language (and series, if any);
    with ``catch_up``, the one back-catalogue part such a range holds, said as such."""
    originals = i18n.fallback_policy(config, language, digest=True) == "original"
    names = {code: lang.name for code, lang in config.languages.items()}
    to_come = None
    with store.read() as conn:
        content = dq.digest_content(conn, language, from_seq, to_seq, series_ids,
                                    originals=originals, language_names=names)
        first = content.entries[0] if content.entries else None
        if catch_up and first is not None and first.part is not None:
            to_come = cq.parts_after(conn, first.series, language, originals, first.part)
    return messages.render_digest_mail(config, language, content.entries, content.series,
                                       content.translations, catch_up=catch_up,
                                       view_url=view_url, web=web, to_come=to_come)


def series_titles(store: Store, config: Config, language: str,
                  series_ids: tuple[int, ...]) -> tuple[str, ...]:
    """The titles (in ``language``, else the site's default) of the series a pending
    subscriber asked for, as their confirmation mail names them; none chosen: ()."""
    if not series_ids:
        return ()
    with store.read() as conn:
        chosen = [s for s in eq.list_series(conn) if eq.series_id(conn, s.slug) in series_ids]
    return tuple((s.text(language) or s.text(config.site.default_language)
                  or next(iter(s.texts.values()), None) or SeriesText(s.slug, "", "")).title
                 for s in chosen)


_ADDRESSES = re.compile(r"<[^>]*>|\S+@\S+")
# rows some drain of this process holds, per store: never claimed again by this process
HELD: dict[str, set[int]] = {}


def held(store: Store) -> set[int]:
    return HELD.setdefault(store.url, set())


MARK_GROUP = 16  # outcomes committed together: a crash re-sends at most this many + in flight
MARK_EVERY_S = 0.25
MARK_RETRY_S = 60.0  # a mark that meets a locked store is tried again this long
# the same refusal (or the same error building the message) for this many different
# recipients in a row: the relay's or the configuration's problem, not theirs
SYSTEMIC_AFTER = 5


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
    match = ENHANCED_STATUS.search(exc.reply or "")
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
    recipient: str = ""  # a run counts only different recipients


def _judge(row: oq.Claimed, exc: Exception) -> _Sent:
    """A failed send as this row's outcome, whatever the error (invariant 10)."""
    if isinstance(exc, RelayError):
        return _Sent(oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY, row.attempts,
                                str(exc), exc.code, sender_fault=True), pause=True,
                     key=f"relay {exc.code}", recipient=row.recipient)
    if isinstance(exc, DeliveryError):
        uncertain = isinstance(exc, UncertainDeliveryError)
        permanent = isinstance(exc, PermanentDeliveryError)
        if exc.code is None:  # a timeout or a dropped connection (or no SMTPUTF8)
            outcome = oq.Outcome(row.id, row.subscriber_id,
                                 OutboxState.FAILED if permanent else OutboxState.RETRY,
                                 row.attempts, str(exc), None, uncertain=uncertain)
            return _Sent(outcome, None if permanent else f"lost {uncertain}",
                         recipient=row.recipient)
        kind, key = classify(exc)
        # a 5xx is tried once; it counts as a bounce only when it names the address (or
        # says nothing more): a policy or system refusal is not the subscriber's doing
        outcome = oq.Outcome(row.id, row.subscriber_id,
                             OutboxState.FAILED if permanent else OutboxState.RETRY,
                             row.attempts, str(exc), exc.code, uncertain=uncertain,
                             bounce=kind in (Reply.RECIPIENT, Reply.UNKNOWN))
        if kind is Reply.RECIPIENT:
            return _Sent(outcome, recipient=row.recipient)
        return _Sent(outcome, key, decisive=kind is not Reply.UNKNOWN,
                     recipient=row.recipient)
    # a bug: this row retries (and fails at max_attempts) alone
    log.error("sending outbox row %s failed unexpectedly", row.id, exc_info=exc)
    return _Sent(oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY, row.attempts,
                            f"{type(exc).__name__}: {exc}"), recipient=row.recipient)


def _accepted(row: oq.Claimed) -> _Sent:
    crashpoints.hit("after_smtp_250")
    return _Sent(oq.Outcome(row.id, row.subscriber_id, OutboxState.SENT, row.attempts))


class _Verdicts:
    """Decides, as outcomes arrive, which failures are the recipients' and which are the
    relay's (invariant 11). A failure that could be the relay's (not one naming the
    address, RFC 3463 x.1/x.2) is held back while a run of the same refusal grows:
    ``SYSTEMIC_AFTER`` different recipients in a row at more than one domain (or, in a
    drain that delivered nothing, as many at any domains, or two for a system- or
    policy-class code) means the relay refuses everybody, and they
    wait, uncounted, instead of bouncing or using up their attempts. While probing a
    paused relay, the refusal that paused it is systemic at once."""

    def __init__(self, probe_key: str | None = None) -> None:
        self.delivered = False
        self.held: list[_Sent] = []
        self.paused: str | None = None  # why sending stopped (a sender-side failure)
        self.pause_key: str | None = None
        self.pause_code: int | None = None
        self.probe_key = probe_key

    def _release(self) -> list[oq.Outcome]:
        out, self.held = [s.outcome for s in self.held], []
        return out

    def _pause(self, why: str, sent: _Sent) -> None:
        if self.paused is None:
            self.paused, self.pause_key, self.pause_code = why, sent.key, sent.outcome.code

    def _systemic(self, why: str) -> list[oq.Outcome]:
        self._pause(why, self.held[-1])
        out, self.held = self.held, []
        return [dataclasses.replace(s.outcome, state=OutboxState.RETRY, sender_fault=True)
                for s in out]

    def _recipients(self) -> int:
        return len({s.recipient for s in self.held})

    def _domains(self) -> int:
        return len({s.recipient.rpartition("@")[2].lower() for s in self.held})

    def _everyone(self) -> bool:
        """Whether the run held is the same refusal for everyone this drain tried: nothing
        was delivered, and enough recipients (two for a system- or policy-class code) were
        refused alike, even if all are at one domain (every subscriber may be)."""
        return bool(self.held) and not self.delivered and (
            self._recipients() >= SYSTEMIC_AFTER
            or (self._recipients() >= 2 and self.held[0].decisive))

    def add(self, sent: _Sent) -> list[oq.Outcome]:
        """The outcomes that can be marked now."""
        outcome = sent.outcome
        if sent.pause:
            self._pause(outcome.error or "relay error", sent)
            return [outcome]
        if sent.key is None:
            if outcome.state is OutboxState.SENT:
                self.delivered = True
                return [*self._release(), outcome]
            return [outcome]
        released = self._release() if self.held and sent.key != self.held[0].key else []
        self.held.append(sent)
        building = sent.key.startswith(relay.BUILD_KEY)  # the message's fault, not the relay's
        if self.probe_key is not None and sent.key == self.probe_key:
            return released + self._systemic(
                f"the message still cannot be built: {outcome.error}" if building else
                f"the relay still refuses the same way: {outcome.error}")
        # a run at one domain proves nothing about the relay: that domain (or the relay's
        # rule for it) refuses those recipients, and mail to everyone else must go on; it
        # is the relay's only when the same refusal comes for recipients at different
        # domains, or for everyone this drain tried (see ``_everyone``)
        if self._recipients() >= SYSTEMIC_AFTER and (building or self._domains() >= 2):
            return released + self._systemic(
                f"the same error building the message for {len(self.held)} recipients in a "
                f"row: {outcome.error}" if building else
                f"the relay refused {len(self.held)} recipients in a row the same way: "
                f"{outcome.error}")
        return released

    def checkpoint(self) -> list[oq.Outcome]:
        """After a batch: a run that is everything this drain tried is the relay's now,
        so a relay refusing everyone at one domain is not asked for the whole outbox."""
        if self._everyone():
            return self._systemic(f"the relay refused every recipient the same way: "
                                  f"{self.held[-1].outcome.error}")
        return []

    def finish(self) -> list[oq.Outcome]:
        return self.checkpoint() or self._release()


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


def _build_key(exc: BaseException, recipient: str) -> str:
    """Equal for the same error on different rows: the recipient's address left out."""
    text = str(exc).replace(recipient, "") if recipient else str(exc)
    return f"{relay.BUILD_KEY}{type(exc).__name__}: {_ADDRESSES.sub('', text)}"


class Drain:
    """One pass over the outbox: the steps of :func:`drain_outbox`, which is how callers
    run it. :meth:`claim` takes due rows (one, when probing a paused relay), :meth:`build`
    makes a row's bytes, :meth:`send` sends them, :class:`_Verdicts` judges whose each
    failure is, :meth:`settle` counts and marks; :meth:`run` drives them and records
    what the relay did."""

    def __init__(self, store: Store, config: Config, *,
                 stopping: asyncio.Event | None = None,
                 transport: mailer.Transport | None = None, batch: int | None = None,
                 progress: Callable[[int], None] | None = None, lock_wait: float = 30.0,
                 kinds: tuple[OutboxKind, ...] = tuple(OutboxKind)) -> None:
        self.store, self.config, self.stopping = store, config, stopping
        self.batch = batch or config.mail.batch_size
        self.progress, self.lock_wait, self.kinds = progress, lock_wait, kinds
        self.report = DrainReport()
        self.own = transport is None
        # every message goes through the transport, which signs it (DKIM) when configured
        self.transport = metrics.timed(transport or mailer.make_transport(config))
        self.key = tokens.ensure_secret_key(config)
        self.sender = mailer.envelope_sender(config)
        self.cache: dict[tuple[object, ...], Rendered | None] = {}
        # groups whose digest could not be rendered, and why (one error per group)
        self.unrendered: dict[tuple[object, ...], str] = {}
        # the series titles a confirmation names, per set of series asked for
        self.titles: dict[tuple[int, ...], tuple[str, ...]] = {}
        self.welcomes: dict[int, messages.Welcome | None] = {}
        self.slots = asyncio.Semaphore(max(config.smtp.connections, 1))
        self.lease = timedelta(seconds=config.mail.lease_seconds)
        self.verdicts = _Verdicts()
        self.mine: set[int] = set()  # claimed by this drain and not yet marked (renewed)
        self.marker = _Marker(store, config, self.mine)
        self.probing = False
        # the relay took a message or judged a recipient (RCPT/DATA) in this drain: only
        # that ends a pause, never a probe row that failed or was skipped before the relay
        self.relay_answered = False

    @property
    def stopped(self) -> bool:
        return bool(self.stopping and self.stopping.is_set())

    async def run(self) -> DrainReport:
        started = time.monotonic()
        lock = SenderLock(self.store)
        renewer: asyncio.Task[None] | None = None
        try:
            # inside the try: a failure here (a full disk, say) must not keep the lock held
            if lock.needed and not await _take(lock, self.lock_wait, self.stopping):
                self.report.busy = True
                return self.report
            if lock.exclusive:
                await asyncio.to_thread(_release_orphans, self.store)
            gate, state = await asyncio.to_thread(relay.gate, self.store, self.config)
            if gate is relay.Gate.WAIT:
                self.report.paused = state.reason or "the relay is being tried by another sender"
                return self.report
            self.probing = gate is relay.Gate.PROBE
            self.verdicts.probe_key = state.refusal_key if self.probing else None
            renewer = asyncio.create_task(_renew_leases(self.store, self.mine, self.lease))
            while not self.stopped and not self.verdicts.paused:
                claimed = await self.claim(1 if self.probing else self.batch)
                if not claimed:
                    break
                await _all([job for row in claimed if (job := await self.job(row))])
                await self.settle(self.verdicts.finish() if self.verdicts.paused
                                  else self.verdicts.checkpoint())
                await self.marker.flush()
                if self.progress:
                    self.progress(len(claimed))
                if self.probing and self.relay_answered and not self.verdicts.paused:
                    # the relay answered the probe: everything due goes now, in this drain
                    await asyncio.to_thread(relay.answered, self.store)
                    self.probing = False
                    self.verdicts.probe_key = None
            await self.settle(self.verdicts.finish())
            await self.marker.flush()
        finally:
            if renewer is not None:
                renewer.cancel()
            try:
                rest = self.verdicts.finish()
                self.count(rest)
                await _finish(self.store, self.marker, rest, self.mine)
            finally:
                lock.release()
                if self.own:
                    await self.transport.aclose()
        await self.record_relay()
        self.report.seconds = time.monotonic() - started
        return self.report

    async def claim(self, limit: int) -> list[oq.Claimed]:
        claimed = await asyncio.to_thread(_claim, self.store, self.config, now_utc(), limit,
                                          self.lease, self.kinds)
        self.mine.update(r.id for r in claimed)
        held(self.store).update(r.id for r in claimed)
        if claimed:
            crashpoints.hit("after_claim_commit")
        return claimed

    async def job(self, row: oq.Claimed) -> Coroutine[Any, Any, None] | None:
        """The send of one claimed row, its digest rendered first (once per group); None
        when there is nothing left to send (its entries were removed since)."""
        if row.kind is OutboxKind.CONFIRM and row.series_ids not in self.titles:
            self.titles[row.series_ids] = await asyncio.to_thread(
                series_titles, self.store, self.config, row.language, row.series_ids)
        if row.kind is OutboxKind.WELCOME:
            # read here, in a thread: building runs on the event loop (invariant 13)
            self.welcomes[row.id] = await asyncio.to_thread(
                welcome.welcome_for, self.store, self.config, row.subscriber_id)
            return self.one(row, None)
        if row.kind in (OutboxKind.CONFIRM, OutboxKind.MANAGE):
            return self.one(row, None)
        catch_up = row.kind is OutboxKind.CATCH_UP
        group = (row.kind, row.digest_id, row.language, row.from_seq, row.to_seq,
                 row.series_ids)
        if group not in self.cache and group not in self.unrendered:
            view = None if catch_up or row.digest_id is None else (
                f"{self.config.public_url}/{row.language}/digests/"
                f"{tokens.view_token(self.key, row.digest_id, row.language)}/")
            try:
                self.cache[group] = await asyncio.to_thread(
                    render_digest, self.store, self.config, row.language, row.from_seq,
                    row.to_seq, () if catch_up else row.series_ids, catch_up=catch_up,
                    view_url=view)
            except StoreError:
                raise  # the store's trouble, not this group's: the drain stops, rows go back
            except Exception as exc:  # a template fails only its own group
                # an operator's template (one language's override, say) that fails is the
                # operator's to fix: only this group's rows wait (an ordinary retry with
                # backoff, never a bounce), every other group and language still goes, and
                # the relay is not paused, since it did nothing wrong (invariant 10)
                log.error("the %s digest (entries %s..%s) cannot be rendered; its messages "
                          "wait and are retried: %s", row.language, row.from_seq, row.to_seq,
                          exc, exc_info=exc)
                self.unrendered[group] = (f"cannot render the {row.language} digest (a "
                                          f"template or configuration problem, not the "
                                          f"subscriber's): {type(exc).__name__}: {exc}")
        if group in self.unrendered:
            await self.settle([oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY,
                                          row.attempts, self.unrendered[group])])
            return None
        rendered = self.cache[group]
        if rendered is None:
            await self.settle([oq.Outcome(row.id, row.subscriber_id, OutboxState.SENT,
                                          row.attempts)])
            return None
        return self.one(row, rendered)

    def build(self, row: oq.Claimed, rendered: Rendered | None) -> bytes:
        assert row.subscriber_id is not None
        if row.kind is OutboxKind.WELCOME:
            about = self.welcomes.get(row.id)
            if about is None:
                raise ValidationError("the subscriber is gone", field="subscriber")
            return messages.welcome_message(self.config, self.key, row.subscriber_id,
                                            row.recipient, row.message_id, about)
        if row.kind is OutboxKind.MANAGE:
            return messages.manage_message(self.config, self.key, row.subscriber_id,
                                           row.recipient, row.language, row.message_id)
        if rendered is None:
            assert row.confirm_sent_at is not None
            return messages.confirmation_message(self.config, self.key, row.subscriber_id,
                                                 row.recipient, row.language,
                                                 row.confirm_sent_at, row.message_id,
                                                 self.titles.get(row.series_ids, ()))
        return messages.digest_message(self.config, self.key, messages.Recipient(
            row.subscriber_id, row.recipient, row.name, row.message_id, row.digest_id,
            row.language), rendered)

    async def send(self, row: oq.Claimed, data: bytes) -> _Sent:
        # with [mail] bounce_address, a VERP envelope sender naming the row
        envelope = bounces.envelope_sender(self.config, self.key, row.id) \
            if self.config.mail.bounce_address else self.sender
        try:
            await self.transport.send(data, sender=envelope, recipients=[row.recipient])
        except Exception as exc:  # noqa: BLE001 - every failure is this row's (invariant 10)
            if isinstance(exc, DeliveryError) and not isinstance(exc, RelayError) and \
                    exc.code is not None and exc.recipient is not None:
                self.relay_answered = True  # a verdict on this recipient (RCPT or DATA)
            return _judge(row, exc)
        self.relay_answered = True
        return _accepted(row)

    async def one(self, row: oq.Claimed, rendered: Rendered | None) -> None:
        async with self.slots:
            if self.verdicts.paused or self.stopped:
                return  # handed back at the end, untried
            try:
                data = self.build(row, rendered)
            except ValidationError as exc:  # this row's address: it fails alone
                await self.settle([oq.Outcome(row.id, row.subscriber_id, OutboxState.FAILED,
                                              row.attempts, f"cannot build the message: {exc}")])
                return
            except Exception as exc:
                # this row's, whatever its type (a name the header code chokes on), unless
                # the same error comes back for different recipients: then it is the
                # template's or the configuration's, and the verdicts pause the send
                log.exception("building the message of outbox row %s failed", row.id)
                await self.settle(self.verdicts.add(_Sent(oq.Outcome(
                    row.id, row.subscriber_id, OutboxState.RETRY, row.attempts,
                    f"cannot build the message: {type(exc).__name__}: {exc}"),
                    key=_build_key(exc, row.recipient), recipient=row.recipient)))
                return
            sent = await self.send(row, data)
            # inside the slot: a connection sends again only once its outcome is taken,
            # which bounds what a crash can leave unmarked (duplicate_bound)
            await self.settle(self.verdicts.add(sent))

    def count(self, outcomes: list[oq.Outcome]) -> None:
        report, max_attempts = self.report, self.config.mail.max_attempts
        for o in outcomes:
            if o.uncertain:
                report.uncertain += 1
            if o.state is OutboxState.SENT:
                report.sent += 1
            elif (o.sender_fault and not o.uncertain) or (
                    o.state is OutboxState.RETRY and o.attempts < max_attempts):
                report.retried += 1
            else:
                report.failed += 1
                if not oq.is_bounce(o):  # the relay's or the message's: the operator's to fix
                    log.warning("outbox row %s failed for good, not counted against the "
                                "subscriber: %s", o.id, o.error)
            if o.error:
                report.errors.append(o.error)

    async def settle(self, outcomes: list[oq.Outcome]) -> None:
        self.count(outcomes)
        await self.marker.add(outcomes)

    async def record_relay(self) -> None:
        """The relay's state for every sender: paused (the clock starts or runs on) when
        this drain stopped on the relay; nothing changes otherwise (a drain that met no
        refusal and was not probing had found the relay open)."""
        v = self.verdicts
        if v.paused is None:
            return
        self.report.paused = v.paused
        # a refusal (5xx) backs off to the hour; no answer, a 4xx or an error of our own
        # while building is tried again each retry interval
        refusal = v.pause_code is not None and v.pause_code >= 500
        await asyncio.to_thread(relay.refused, self.store, self.config, v.paused,
                                v.pause_key, refusal=refusal)


async def drain_outbox(store: Store, config: Config, *, stopping: asyncio.Event | None = None,
                       transport: mailer.Transport | None = None, batch: int | None = None,
                       progress: Callable[[int], None] | None = None,
                       lock_wait: float = 30.0,
                       kinds: tuple[OutboxKind, ...] = tuple(OutboxKind)) -> DrainReport:
    """Send every due outbox row; returns when none is due, when ``stopping`` is set, or
    when the relay refuses the sender (the rows wait, uncounted, and the report says why).
    While the relay is paused (its state in the store, shared by every sender) a drain
    sends nothing until the pause runs out, then one probe; when the probe goes through,
    everything due goes in the same drain.

    On SQLite one drain runs at a time; this one waits up to ``lock_wait`` seconds for
    another to finish. If it is still busy the rows are left to that drain (which claims
    until none is due) and the report says ``busy``. Rows this drain claimed but did not
    send (a stop, a pause, a cancel) are handed back, queued, before it returns."""
    return await Drain(store, config, stopping=stopping, transport=transport, batch=batch,
                       progress=progress, lock_wait=lock_wait, kinds=kinds).run()


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


def _mark(store: Store, config: Config, outcomes: list[oq.Outcome]) -> None:
    with store.write() as conn:
        oq.mark(conn, outcomes, now_utc(), max_attempts=config.mail.max_attempts,
                bounce_limit=config.mail.bounce_limit, retry_seconds=config.mail.retry_seconds)

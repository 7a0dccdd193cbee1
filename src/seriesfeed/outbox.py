"""Draining the outbox: claim, render, send through the pooled transport, mark.

A digest is rendered once per (digest, language, cursor range, series followed); the
per-recipient part (the unsubscribe link) is filled in by string substitution. Marks are
committed per claimed batch (the batch's sends run concurrently over the pool's
connections), so after a crash at most one batch, ``BATCH`` messages, can be sent twice,
each time with the same Message-ID (README: "Digests").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from seriesfeed import crashpoints, emails, i18n, mailer, tokens
from seriesfeed.config import Config
from seriesfeed.errors import DeliveryError, PermanentDeliveryError, SeriesfeedError
from seriesfeed.models import Entry, OutboxState
from seriesfeed.qp import PreparedBody
from seriesfeed.runlock import SenderLock
from seriesfeed.store import Store
from seriesfeed.store import entries as eq
from seriesfeed.store import outbox as oq
from seriesfeed.subscriptions import preferences_link

log = logging.getLogger("seriesfeed.outbox")
UNSUBSCRIBE = "SERIESFEED-UNSUBSCRIBE-URL"
PREFERENCES = "SERIESFEED-PREFERENCES-URL"
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

    def __str__(self) -> str:
        if self.busy:
            return "another process is draining the outbox and will send what is due"
        return (f"{self.sent} sent, {self.retried} to retry, {self.failed} failed, "
                f"{self.uncertain} uncertain, {self.seconds:.1f} s")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    count: int
    template: emails.FastTemplate
    # the bodies quoted-printable once; only the lines with a link are encoded per message
    text_qp: PreparedBody
    html_qp: PreparedBody


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


def render_digest(store: Store, config: Config, language: str, from_seq: int, to_seq: int,
                  series_ids: tuple[int, ...]) -> Rendered | None:
    """The digest of entries in (from_seq, to_seq] of one language (and series, if any)."""
    with store.read() as conn:
        found = eq.list_entries(conn, language=language, after_seq=from_seq, upto_seq=to_seq,
                                newest_first=False)
        all_series = {s.slug: s for s in eq.list_series(conn)}
        if series_ids:
            wanted = {slug for slug in all_series if eq.series_id(conn, slug) in series_ids}
            found = [e for e in found if e.series in wanted]
        translations = _translations(conn, config, found)
    if not found:
        return None
    slugs = {e.series for e in found}
    title = config.site.title
    if len(slugs) == 1:
        s = all_series[next(iter(slugs))]
        text = s.texts.get(language) or s.texts.get(config.site.default_language)
        title = text.title if text else title
    subject = digest_subject(config, language, title, len(found))
    items = [{"title": e.title, "url": e.url, "summary": e.summary, "authors": e.authors,
              "published": e.published.astimezone(config.zone),
              "translations": translations.get(e.id or "", [])} for e in found]
    text_body, html = emails.render_email(config, language, "digest", {
        "heading": subject, "entries": items, "unsubscribe_url": UNSUBSCRIBE,
        "preferences_url": PREFERENCES})
    template = emails.fast_template(config, subject, (
        ("List-Id", f"{emails.safe_display_name(config.site.title) or 'Digest'} digest "
                    f"<digest.{emails.message_domain(config)}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")))
    markers = (UNSUBSCRIBE, PREFERENCES)
    return Rendered(subject, text_body, html, len(found), template,
                    PreparedBody(text_body, markers), PreparedBody(html, markers))


def digest_subject(config: Config, language: str, title: str, n: int) -> str:
    """The configured subject for the language, else the catalogue's plural-aware one."""
    lang = config.languages[language]
    custom = lang.digest_subject_one if n == 1 else lang.digest_subject
    if custom:
        return custom.format(title=title, n=n)
    return i18n.ngettext(language, "{title}: 1 new article", "{title}: {n} new articles", n,
                         title=title)


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
    values = {UNSUBSCRIBE: link, PREFERENCES: prefs}
    data = rendered.template.build_encoded(
        to_email=row.recipient, to_name=row.name, message_id=row.message_id,
        text_qp=rendered.text_qp.encode(values), html_qp=rendered.html_qp.encode(values),
        per_recipient_headers=(("List-Unsubscribe", unsubscribe),))
    return signer.sign(data) if signer else data


async def _send(transport: mailer.Transport, sender: str, row: oq.Claimed,
                data: bytes) -> oq.Outcome:
    try:
        await transport.send(data, sender=sender, recipients=[row.recipient])
    except PermanentDeliveryError as exc:
        return oq.Outcome(row.id, row.subscriber_id, OutboxState.FAILED, row.attempts, str(exc),
                          exc.code)
    except DeliveryError as exc:
        return oq.Outcome(row.id, row.subscriber_id, OutboxState.RETRY, row.attempts, str(exc),
                          exc.code, uncertain=isinstance(exc, mailer.UncertainDeliveryError))
    crashpoints.hit("after_smtp_250")
    return oq.Outcome(row.id, row.subscriber_id, OutboxState.SENT, row.attempts)


async def drain_outbox(store: Store, config: Config, *, stopping: asyncio.Event | None = None,
                       transport: mailer.Transport | None = None, batch: int = BATCH,
                       progress: Callable[[int], None] | None = None,
                       lock_wait: float = 30.0) -> DrainReport:
    """Send every due outbox row; returns when none is due (or when ``stopping`` is set).

    On SQLite one drain runs at a time; this one waits up to ``lock_wait`` seconds for
    another to finish. If it is still busy the rows are left to that drain (which claims
    until none is due) and the report says ``busy``."""
    started = time.monotonic()
    report = DrainReport()
    own = transport is None
    transport = transport or mailer.make_transport(config)
    key = tokens.ensure_secret_key(config)
    signer = emails.dkim_signer(config)
    sender = mailer.envelope_sender(config)
    cache: dict[tuple[object, ...], Rendered | None] = {}
    limit = asyncio.Semaphore(max(config.smtp.connections, 1))

    async def bounded(row: oq.Claimed, data: bytes) -> oq.Outcome:
        async with limit:
            return await _send(transport, sender, row, data)

    lock = SenderLock(store)
    try:
        # inside the try: a failure here (a full disk, say) must not keep the lock held
        if lock.needed and not await _take(lock, lock_wait, stopping):
            report.busy = True
            return report
        if lock.exclusive:
            await asyncio.to_thread(_release_orphans, store)
        while not (stopping and stopping.is_set()):
            now = datetime.now(UTC)
            claimed = await asyncio.to_thread(_claim, store, now, batch)
            if not claimed:
                break
            crashpoints.hit("after_claim_commit")
            jobs, outcomes = [], []
            for row in claimed:
                group = (row.digest_id, row.language, row.from_seq, row.to_seq, row.series_ids)
                if group not in cache:
                    cache[group] = await asyncio.to_thread(
                        render_digest, store, config, row.language, row.from_seq, row.to_seq,
                        row.series_ids)
                rendered = cache[group]
                if rendered is None:  # nothing left to send (entries removed since)
                    outcomes.append(oq.Outcome(row.id, row.subscriber_id, OutboxState.SENT,
                                               row.attempts))
                    continue
                try:
                    data = build_digest_message(config, key, row, rendered, signer)
                except SeriesfeedError as exc:  # one bad address fails one row, not the batch
                    outcomes.append(oq.Outcome(row.id, row.subscriber_id, OutboxState.FAILED,
                                               row.attempts, str(exc)))
                    continue
                jobs.append(bounded(row, data))
            outcomes += await asyncio.gather(*jobs)
            crashpoints.hit("before_mark_commit")
            await asyncio.to_thread(_mark, store, config, outcomes)
            crashpoints.hit("after_mark_commit")
            for o in outcomes:
                if o.uncertain:
                    report.uncertain += 1
                if o.state is OutboxState.SENT:
                    report.sent += 1
                elif o.state is OutboxState.RETRY and o.attempts < config.mail.max_attempts:
                    report.retried += 1
                else:
                    report.failed += 1
                if o.error:
                    report.errors.append(o.error)
            if progress:
                progress(len(outcomes))
    finally:
        lock.release()
        if own:
            await transport.aclose()
    report.seconds = time.monotonic() - started
    return report


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
        released = oq.release_orphans(conn, datetime.now(UTC))
    if released:
        log.warning("%s messages left in flight by a stopped sender will be sent again "
                    "(same Message-ID)", released)


def _claim(store: Store, now: datetime, batch: int) -> list[oq.Claimed]:
    with store.write() as conn:
        return oq.claim(conn, now, batch)


def _mark(store: Store, config: Config, outcomes: list[oq.Outcome]) -> None:
    with store.write() as conn:
        oq.mark(conn, outcomes, datetime.now(UTC), max_attempts=config.mail.max_attempts,
                bounce_limit=config.mail.bounce_limit, retry_seconds=config.mail.retry_seconds)

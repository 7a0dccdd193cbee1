"""Digest verbs: record the due digests and drain the outbox, preview the next digest,
say who would get one, and send a test message.

Recording happens in one transaction that records the digest, queues one outbox row per
recipient and advances the cursors (the queries: store/digests.py). "Not sent" is a cursor
on the store's insertion sequence per subscriber (``last_seq``), so a back-dated article
stored today is still sent once and an edited one is not sent again. Digests are unique on
(language, frequency, period): the period is the schedule's slot (``2026-11-24`` daily,
``2026-W48`` weekly, in the site's time zone), so the scheduler can never record two for
one slot. A manual ``digest send`` after the slot's digest records ``<slot>+<last seq>``
instead: new articles go out, a re-run with nothing new adds nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from seriesfeed import crashpoints, emails, i18n, mailer, tokens
from seriesfeed.actions.delivery import drain_outbox, render_digest
from seriesfeed.actions.releases import release_due
from seriesfeed.addresses import normalize_email
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.emails import message_id_affixes
from seriesfeed.errors import ValidationError
from seriesfeed.mailer import Transport
from seriesfeed.messages import PREFERENCES, UNSUBSCRIBE, Rendered
from seriesfeed.models import Frequency
from seriesfeed.store import Store
from seriesfeed.store import catch_up as cq
from seriesfeed.store import digests as dq
from seriesfeed.store import entries as q
from seriesfeed.store import subscribers as subq
from seriesfeed.store.digests import RecordedDigest, count_due, next_range
from seriesfeed.store.nodes import unfenced

__all__ = [
    "Preview",
    "RecordedDigest",
    "SentCopy",
    "digest_archive",
    "digest_dry_run",
    "digest_fallback",
    "digest_page",
    "preview_digest",
    "record_catch_ups",
    "record_digests",
    "send_digests",
    "send_test_copy",
    "send_test_message",
    "slot_period",
]


def slot_period(frequency: Frequency, now: datetime, config: Config) -> str:
    local = now.astimezone(config.zone)
    if frequency is Frequency.DAILY:
        return local.strftime("%Y-%m-%d")
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def digest_fallback(config: Config, language: str) -> bool:
    """Whether the language's digest also carries originals nobody translated into it."""
    return config.languages[language].fallback_for_digests() == "original"


def record_digests(store: Store, config: Config, frequency: Frequency, now: datetime, *,
                   scheduled: bool) -> list[RecordedDigest]:
    """Record the digests of one frequency for every language, all or nothing."""
    out: list[RecordedDigest] = []
    with store.write() as conn:
        dq.lock_entries(conn)
        period = slot_period(frequency, now, config)
        for language in config.languages:
            fallback = digest_fallback(config, language)
            recorded = dq.record_group(conn, language, frequency, period, now, fallback,
                                       scheduled=scheduled)
            if recorded is not None:
                # <digest.ID.SUBSCRIBER@domain>: the store puts each recipient's id between
                dq.queue_group(conn, recorded, now, message_id_affixes(
                    "digest", f"{recorded.id}.", config))
                out.append(recorded)
    crashpoints.hit("after_record_commit")
    return out


def record_catch_ups(store: Store, config: Config, frequency: Frequency,
                     now: datetime) -> cq.CatchUpRecorded:
    """Queue this slot's back-catalogue parts for the readers of ``frequency`` who started
    from part 1, and move their cursors, in one transaction (invariant 18). The slot is
    the digests' (``slot_period``): however often it is recorded, each reader gets at most
    ``[digests] catch_up_per_digest`` parts of a series from it."""
    with store.write() as conn:
        return cq.record_slot(
            conn, frequency, slot_period(frequency, now, config), now,
            per_digest=config.digests.catch_up_per_digest,
            originals={lang: digest_fallback(config, lang) for lang in config.languages},
            message_id=message_id_affixes("catchup", "", config))


async def send_digests(store: Store, config: Config, *, frequency: Frequency | None = None,
                       stopping: asyncio.Event | None = None, scheduled: bool = True,
                       transport: Transport | None = None,
                       progress: Callable[[int, int], None] | None = None) -> str:
    """Record the due digests (one frequency, or all) and drain the outbox."""
    recorded: list[RecordedDigest] = []
    parts = 0
    await asyncio.to_thread(release_due, store)
    for freq in [frequency] if frequency else list(Frequency):
        now = now_utc()
        recorded += await asyncio.to_thread(record_digests, store, config, freq, now,
                                            scheduled=scheduled)
        caught = await asyncio.to_thread(record_catch_ups, store, config, freq, now)
        parts += caught.queued
    queued = sum(d.recipients for d in recorded) + parts
    step = (lambda done: progress(done, queued)) if progress else None
    with unfenced():  # any node may send what is recorded; see store.nodes.unfenced
        report = await drain_outbox(store, config, stopping=stopping, transport=transport,
                                    progress=step)
    text = f"{len(recorded)} digests recorded ({queued} messages queued)"
    if parts:
        text += f", {parts} catch-up parts queued"
    return f"{text}; {report}"


@dataclass(frozen=True)
class Preview:
    rendered: Rendered
    text: str  # the parts with sample links in place of each recipient's own
    html: str
    sample: bool  # True: nobody is due, so these are the newest entries, as an example


def preview_digest(store: Store, config: Config, language: str, frequency: Frequency,
                   sample_size: int = 10, *, release: bool = True) -> Preview | None:
    """What the next digest of the language and frequency would be (the largest one, for
    the subscriber furthest behind); when nobody is due, the newest entries as a sample.
    Records nothing, but first publishes the scheduled entries that have come due, unless
    ``release`` is false (the console's GET, which must not write: the daemon releases
    them on its own clock)."""
    if release:
        release_due(store)
    with store.read() as conn:
        found = next_range(conn, language, frequency, digest_fallback(config, language))
        sample = found is None
        if found is None:
            newest = q.list_entries(conn, language=language, limit=sample_size)
            if newest:
                found = (min(e.seq or 0 for e in newest) - 1, q.max_seq(conn))
    rendered = render_digest(store, config, language, *found, ()) if found else None
    if rendered is None:
        return None
    text, html = rendered.text, rendered.html
    for marker, link in ((UNSUBSCRIBE, f"{config.public_url}/unsubscribe/PREVIEW"),
                         (PREFERENCES, f"{config.public_url}/preferences/PREVIEW")):
        text, html = text.replace(marker, link), html.replace(marker, link)
    return Preview(rendered, text, html, sample)


def digest_dry_run(store: Store, config: Config, frequency: Frequency | None) -> str:
    """Who would get a digest now, per language and frequency; records nothing."""
    lines = []
    with store.read() as conn:
        for freq in [frequency] if frequency else list(Frequency):
            for language in config.languages:
                lines.append(f"{language} {freq.value}: "
                             f"{count_due(conn, language, freq, digest_fallback(config, language))}"
                             " subscribers would get a digest")
    return "\n".join(lines)


@dataclass(frozen=True)
class SentCopy:
    """A test copy of the next digest, sent to one address."""

    address: str
    message_id: str
    subject: str
    sample: bool  # nobody was due: the copy shows the newest entries, as the preview does


def send_test_copy(store: Store, config: Config, *, language: str, to: str,
                   frequency: Frequency = Frequency.WEEKLY) -> SentCopy:
    """Render the next digest of ``language`` and ``frequency`` (what ``preview_digest``
    shows) and send it to ``to`` alone, straight through the mailer (not the outbox), with
    a Message-ID of its own (``<test.…>``) and "[test]" before the subject. Nothing is
    recorded: no digest, no outbox row, no cursor moves, so the real digest still goes to
    every subscriber when it is due. A refusal by the relay is the caller's error; a
    suppressed address is refused before anything is sent."""
    if language not in config.languages:
        raise ValidationError(f"unknown language '{language}' (configured: "
                              f"{', '.join(config.languages)})", field="--language")
    address = normalize_email(to, field="--to")
    with store.read() as conn:
        suppressed = subq.suppression(conn, address)
    if suppressed is not None:
        # a suppression (a complaint, an erasure, a hard bounce) promises that no mail
        # reaches the address again: an operator's test copy is mail too
        raise ValidationError(f"the address is suppressed ({suppressed[0]}): no mail goes "
                              "to it, not even a test copy", field="--to")
    shown = preview_digest(store, config, language, frequency)
    if shown is None:
        raise ValidationError(f"there are no {language} entries to send", field="--language")
    subject = f"[test] {shown.rendered.subject}"
    message_id = emails.make_message_id("test", str(time.time_ns()), config)
    msg = emails.build_message(
        sender=emails.sender_address(config), to_email=address, to_name=None,
        subject=subject, text=shown.text, html=shown.html, message_id=message_id)
    mailer.send_now(config, msg)
    return SentCopy(address, message_id, subject, shown.sample)


def send_test_message(store: Store, config: Config, to: str, language: str,
                      frequency: Frequency) -> str:
    """Send the next digest's preview to one address only (``digest send --to``); no
    cursor or outbox row is touched. Returns the normalised address."""
    return send_test_copy(store, config, language=language, to=to,
                          frequency=frequency).address


def _view_url(config: Config, key: bytes, digest_id: int, language: str) -> str:
    return (f"{config.public_url}/{language}/digests/"
            f"{tokens.view_token(key, digest_id, language)}/")


def digest_page(store: Store, config: Config, language: str, token: str) -> str | None:
    """The public page of the digest a view token names (its HTML, the mail's own body
    without any reader's links); None when its entries were all removed since.
    ValidationError for a token that names no digest of ``language``."""
    key = tokens.ensure_secret_key(config)
    digest_id = tokens.read_view_token(key, language, token)
    with store.read() as conn:
        found = dq.get_digest(conn, digest_id)
    if found is None or found.language != language:
        raise ValidationError(tokens.INVALID, field="token")
    rendered = render_digest(store, config, language, found.from_seq, found.to_seq, (),
                             web=True)
    return rendered.html if rendered is not None else None


def digest_archive(store: Store, config: Config, language: str) -> list[tuple[str, str]]:
    """(label, public page URL) of the language's past digests, newest first (the archive
    page, when ``[digests] archive`` is on)."""
    key = tokens.ensure_secret_key(config)
    with store.read() as conn:
        found = dq.list_digests(conn, language)
    fns = i18n.template_functions(config, language)
    return [(str(fns["format_date"](d.created_at)),  # type: ignore[operator]
             _view_url(config, key, d.id, language)) for d in found]

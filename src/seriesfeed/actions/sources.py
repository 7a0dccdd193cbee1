"""The store fills itself: `import URL`, and polling the configured ``[sources.<name>]``.

A poll is: take the source's lease (one request per source at a time, across processes),
a conditional GET (``fetch.py``), and, only for a 200, the same parse and one-transaction
store as ``import FILE``. Anything wrong (an HTTP error, a timeout, a wrong content type, a
malformed or oversized document) stores nothing, keeps the validators of the last good
response, and is recorded on the source's row: ``sources list`` and ``/healthz`` show it,
and the log says it once per change of error, not once per poll. Repeated failures back
off exponentially (capped at a day); ``Retry-After`` is honoured; ``410 Gone`` stops the
source until its ``url`` changes in config.toml.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from seriesfeed import metrics
from seriesfeed.actions import entries
from seriesfeed.clock import local_time, now_utc
from seriesfeed.config import Config, SourceConfig
from seriesfeed.errors import (
    FetchError,
    ImportError_,
    NotFoundError,
    SeriesfeedError,
    check_stored_int,
)
from seriesfeed.fetch import TOTAL_TIMEOUT_S, Fetched, fetch
from seriesfeed.importers import FORMATS, MAX_IMPORT_BYTES, ImportBatch, detect_format
from seriesfeed.importers.parse import check_media_type, format_for_media_type, parse_bytes
from seriesfeed.models import Series
from seriesfeed.schedules import make_trigger, next_fire
from seriesfeed.store import Connection, Store
from seriesfeed.store import entries as eq
from seriesfeed.store import sources as sq
from seriesfeed.urls import BadURL, check_id, check_url

__all__ = [
    "BACKOFF_CAP_S", "BACKOFF_FIRST_S", "LEASE_S", "PollResult", "backoff_seconds",
    "failing_sources", "import_url", "is_url", "list_sources", "next_poll", "poll_source",
    "poll_sources", "source_history", "store_fetched",
]

log = logging.getLogger("seriesfeed.sources")  # the logger's name operators filter on: kept

BACKOFF_FIRST_S = 60.0
BACKOFF_CAP_S = 86_400.0  # a day
LEASE_S = TOTAL_TIMEOUT_S + 60.0
CONFLICTED = "200 imported, entries not imported:"


def backoff_seconds(failures: int) -> float:
    """1, 2, 4 … minutes after 1, 2, 3 … consecutive failures, at most a day."""
    return float(min(BACKOFF_FIRST_S * 2.0 ** max(0, failures - 1), BACKOFF_CAP_S))


def is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


# -- parsing what was fetched ---------------------------------------------------------

def _format_of(fetched: Fetched, wanted: str | None, source: str) -> str:
    if wanted:
        check_media_type(wanted, fetched.content_type, source)
        return wanted
    by_type = format_for_media_type(fetched.content_type)
    if by_type is None and fetched.content_type not in ("", "application/octet-stream"):
        raise ImportError_(f"the server sent {fetched.content_type}, which is none of the "
                           "formats seriesfeed reads (a feed, JSON, CSV or a series page)",
                           path=source, field="content-type")
    sniffed = detect_format(_path_of(fetched.url), fetched.body[:512])
    if by_type is None:
        return sniffed
    if by_type == "page" and sniffed in ("json", "feed") and fetched.content_type == \
            "text/plain":
        return sniffed
    return by_type


def _path_of(url: str) -> Any:
    from pathlib import PurePosixPath
    return PurePosixPath(urlsplit(url).path or "/")


def _apply_source(batch: ImportBatch, source: SourceConfig | None, fmt: str,
                  default_language: str) -> ImportBatch:
    """A source's ``series`` and ``language`` settings over what the document says."""
    if source is None:
        return batch
    if source.series:
        _apply_series(batch, source.series, fmt)
    if source.language:
        for item in batch.entries:
            # a series page marks its other languages by byline: those stay
            if fmt == "page" and item.entry.language != default_language:
                continue
            item.entry = dataclasses.replace(item.entry, language=source.language)
        for s in batch.series:
            if len(s.texts) == 1:
                s.texts = {source.language: next(iter(s.texts.values()))}
    return batch


def _apply_series(batch: ImportBatch, slug: str, fmt: str) -> None:
    """The document's series (its texts merged) and its entries in series ``slug``."""
    old = {s.slug for s in batch.series}
    merged: dict[str, Any] = {}
    for s in batch.series:
        merged.update(s.texts)
    batch.series = [Series(slug, merged)] if batch.series else []
    for item in batch.entries:
        if item.entry.series in old or fmt in ("feed", "jsonfeed", "page"):
            item.entry = dataclasses.replace(item.entry, series=slug)


def _as_utf8(fetched: Fetched, fmt: str) -> bytes:
    """Text formats in the charset the server declared, as the UTF-8 the parsers read
    (XML declares its own encoding, which the XML parsers honour)."""
    charset = fetched.charset
    if fmt == "feed" or not charset or charset.replace("-", "") in ("utf8", "usascii"):
        return fetched.body
    try:
        return fetched.body.decode(charset).encode("utf-8")
    except LookupError as exc:
        raise ImportError_(f"unknown charset '{charset}'", path=fetched.url,
                           field="content-type") from exc
    except UnicodeDecodeError as exc:
        raise ImportError_(f"not valid {charset} (byte {exc.start})", path=fetched.url,
                           field="content-type") from exc


def _is_uri(raw: str) -> bool:
    try:
        check_id(raw)
    except BadURL:
        return False
    return True


def _ids_as_uris(batch: ImportBatch, base: str) -> None:
    """A feed's ids need not be URIs (an RSS guid "1234", a JSON Feed id "42"): such an id
    becomes ``<the source's url>#id=<it>``, stable as long as the source's url is, so that
    re-polls still match it instead of failing the whole document."""
    for item in batch.entries:
        raw = item.entry.id
        if raw and not _is_uri(raw):
            item.entry = dataclasses.replace(item.entry,
                                             id=f"{base}#id={quote(raw, safe='')}")


def _adopt_minted_ids(conn: Connection, batch: ImportBatch) -> None:
    """An item whose minted id is not stored, at the URL of a stored entry minted from the
    same guid by another feed (a site's main feed and its series feed, or the feed before
    it moved to another host), is that entry: the guid and the article's address agree.
    It takes the stored id instead of being refused, on every poll, as another entry."""
    for item in batch.entries:
        raw, url = item.entry.id, item.entry.url
        if not raw or "#id=" not in raw or not url:
            continue
        try:
            url = check_url(url)
        except BadURL:
            continue  # the import's check says so, for this entry
        found = eq.match_entry(conn, entry_id=raw, url=url)
        if found is None:
            # a site that moved to https (or back) changed every article's address with
            # its feed's: the same address under the other scheme is the same article
            found = eq.match_entry(conn, entry_id=None, url=_other_scheme(url))
        if found is None or found.by_id or found.language != item.entry.language:
            continue
        if found.id != raw and found.id.rsplit("#id=", 1)[-1] == raw.rsplit("#id=", 1)[1] \
                and "#id=" in found.id:
            item.entry = dataclasses.replace(item.entry, id=found.id)


def _other_scheme(url: str) -> str | None:
    if url.startswith("https://"):
        return "http://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "https://" + url.removeprefix("http://")
    return None


def _keep_series(batch: ImportBatch, stored: dict[str, str]) -> None:
    for item in batch.entries:
        slug = stored.get(item.entry.id or "")
        if slug is not None and slug != item.entry.series:
            item.entry = dataclasses.replace(item.entry, series=slug)


def _soft_links(batch: ImportBatch) -> dict[int, str]:
    """Take ``translation_of`` out of the entries (a source may name an original stored
    later, by another source): linked after storing when found, skipped when not."""
    explicit: dict[int, str] = {}
    for n, item in enumerate(batch.entries):
        if item.entry.translation_of:
            explicit[n] = item.entry.translation_of
            item.entry = dataclasses.replace(item.entry, translation_of=None)
    return explicit


def _link_translations(conn: Connection, config: Config, stored: entries.StoredEntries,
                       explicit: dict[int, str], report: entries.ImportReport,
                       source_name: str = "") -> None:
    default = config.site.default_language
    for n, (seq, entry, item) in enumerate(stored):
        refs = ([explicit[n]] if n in explicit else []) + list(item.translations)
        for ref in refs:
            other = eq.find_seq(conn, entry_id=ref, url=ref)
            if other is None or other == seq:
                continue
            mine, theirs = eq.get_entry(conn, str(seq)), eq.get_entry(conn, str(other))
            if mine.language == theirs.language:
                continue
            if theirs.translation_of == mine.id or mine.translation_of == theirs.id:
                continue  # linked already, one way or the other
            if (n in explicit and ref == explicit[n]) or entry.language != default:
                changed = eq.set_translation(conn, seq, other)
            elif theirs.translation_of is not None:
                # the original's document names a translation already linked to another
                # original: the translation's own document (or an editor) decided that
                continue
            else:  # the entry in the site's language is the original
                changed = eq.set_translation(conn, other, seq)
                if changed and theirs.id is not None:
                    # the translation's own feed may have named its original before that
                    # was stored (a link it could not set then) and answer 304 from now
                    # on: it is read in full at its next poll, and what it says decides
                    others = [n for n in sq.listing(conn, theirs.id) if n != source_name]
                    sq.forget_validators(conn, others)
            report.linked += changed


def store_fetched(store: Store, config: Config, fetched: Fetched, *, source_name: str,
                  fmt: str | None, series_slug: str | None = None,
                  source: SourceConfig | None = None) -> entries.ImportReport:
    """Parse a fetched document and store it in one transaction (with a source's
    bookkeeping when it comes from one)."""
    label = fetched.url
    use = _format_of(fetched, fmt, label)
    settings = entries.import_settings(config)
    base = source.url if source else label
    # a source without a series: its document's series is a default, not an order
    follows_document = source is not None and not source.series
    batch = parse_bytes(_as_utf8(fetched, use), use, settings, source=label,
                        series_slug=series_slug or (source.series if source else None) or None)
    batch = _apply_source(batch, source, use, config.site.default_language)
    # ids are minted from the source's url as it is now: a feed followed to a new address
    # keeps its entries through _adopt_minted_ids (guid and article address agree), never
    # by reusing the old address, which on one host may be another feed's (medium.com/@a
    # and medium.com/@b each have a post "42")
    _ids_as_uris(batch, base)
    explicit = _soft_links(batch) if source is not None else {}
    report = entries.ImportReport(label, use)

    def prepare(conn: Connection) -> None:
        # in the write transaction: a series move an editor committed while the document
        # was fetched and parsed is what this poll sees, never overwritten by it
        if follows_document:
            kept = sq.series_of_entries(conn, source_name)
            if kept is not None:
                # the document's title names the series only until the source has stored
                # entries; then it keeps theirs: a retitled feed moves and renames nothing
                _apply_series(batch, kept, use)
        _adopt_minted_ids(conn, batch)
        if follows_document:
            # and each stored entry keeps its own series: one an editor moved to
            # another series stays there (its page's URL too), not pulled back
            _keep_series(batch, sq.series_by_entry(
                conn, [i.entry.id for i in batch.entries if i.entry.id]))

    def within(conn: Connection, stored: entries.StoredEntries) -> None:
        _link_translations(conn, config, stored, explicit, report, source_name)
        if source is None:
            return
        ids = [e.id for _, e, _ in stored if e.id]
        # every id the document lists (as adopted), stored or not: an entry left out for
        # a conflict is still listed (that entry's error), and pruning it would delete it
        listed = {item.entry.id for item in batch.entries if item.entry.id}
        if source.prune and ids:  # an empty document prunes nothing: more likely a fault
            gone = sq.entry_ids(conn, source_name) - set(ids) - listed
            # an entry another source still lists stays: that source may answer 304 for
            # ever, and what it lists would never come back
            for entry_id in sorted(gone - sq.listed_elsewhere(conn, source_name, gone)):
                with contextlib.suppress(NotFoundError):  # removed by hand since
                    eq.remove_entry(conn, entry_id)
            sq.forget_entries(conn, source_name, gone)
            report.pruned = len(gone)
        sq.remember_entries(conn, source_name, ids)
        sq.add_entries_count(conn, source_name, report.added)

    return entries.store_batch(store, config, batch, label, report, within,
                               from_source=source is not None,
                               prepare=prepare if source is not None else None)


# -- import URL -----------------------------------------------------------------------

def import_url(store: Store, config: Config, url: str, fmt: str | None = None,
               series_slug: str | None = None) -> entries.ImportReport:
    """`seriesfeed import URL`: one GET (no validators), then as `import FILE`."""
    if fmt is not None and fmt not in FORMATS:
        raise ImportError_(f"unknown format '{fmt}' (choose {', '.join(FORMATS)})",
                           path=url, field="format")
    try:
        fetched = asyncio.run(fetch(url, site_url=config.site.url, max_bytes=MAX_IMPORT_BYTES))
    except FetchError as exc:
        raise ImportError_(exc.reason, path=exc.url) from exc
    if fetched.moved_to:
        log.warning("%s moved permanently to %s", url, fetched.moved_to)
    return store_fetched(store, config, fetched, source_name="", fmt=fmt,
                         series_slug=series_slug)


# -- polling sources ------------------------------------------------------------------

@dataclass
class PollResult:
    name: str
    outcome: str  # imported, not-modified, failed, gone, waiting, busy, interrupted
    message: str
    added: int = 0
    updated: int = 0

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


def _prepare(store: Store, config: Config, source: SourceConfig, now: datetime,
             force: bool) -> tuple[sq.SourceState | None, PollResult | None]:
    with store.write() as conn:
        state = sq.ensure_state(conn, source.code, source.url)
        if state.stopped:
            return None, PollResult(source.code, "gone", f"stopped: {state.last_error} "
                                    "(change its url in config.toml to poll it again)")
        if not force and state.not_before is not None and state.not_before > now:
            until = state.not_before.astimezone(config.zone).isoformat(timespec="seconds")
            return None, PollResult(source.code, "waiting", f"not polled before {until} "
                                    f"({state.last_error or 'backing off'})")
        if not sq.claim(conn, source.code, now, now + timedelta(seconds=LEASE_S)):
            return None, PollResult(source.code, "busy", "a poll is already in flight")
    return state, None


def _log_change(state: sq.SourceState, error: str | None, loud: bool = False) -> None:
    if error == state.last_error:
        return  # once per change of error, not once per poll
    if error is None:
        log.info("source %s: working again (%s)", state.name, state.url)
    elif loud:
        log.critical("source %s: %s", state.name, error)
    else:
        log.error("source %s: %s", state.name, error)


def _failed(store: Store, state: sq.SourceState, exc: SeriesfeedError, now: datetime,
            status: str) -> PollResult:
    message = str(exc)
    failures = state.failures + 1
    values: dict[str, Any] = {"last_poll_at": now, "last_error": message,
                              "last_status": status, "failures": failures}
    outcome = "failed"
    if isinstance(exc, FetchError) and exc.status == 410:
        values["stopped"] = True
        outcome = "gone"
        message = f"{message}: the source is gone; polling stopped"
        values["last_error"] = message
    elif isinstance(exc, FetchError) and exc.retry_after is not None and \
            exc.status in (429, 503):
        values["not_before"] = now + timedelta(seconds=min(exc.retry_after, BACKOFF_CAP_S))
    else:
        values["not_before"] = now + timedelta(seconds=backoff_seconds(failures))
    _log_change(state, values["last_error"], loud=outcome == "gone")
    with store.write() as conn:
        sq.record(conn, state.name, **values)
        sq.record_poll(conn, state.name, at=now, result="gone" if outcome == "gone"
                       else "error", status=status, error=values["last_error"])
    return PollResult(state.name, outcome, message)


async def poll_source(store: Store, config: Config, source: SourceConfig, *,
                      stopping: asyncio.Event | None = None, force: bool = False,
                      now: datetime | None = None) -> PollResult:
    """Poll one source now (unless it is waiting out a backoff, ``force`` aside)."""
    now = now or now_utc()
    state, early = await asyncio.to_thread(_prepare, store, config, source, now, force)
    if early is not None:
        return early  # not asked (waiting, busy, stopped): not a poll
    assert state is not None
    result = await _poll(store, config, source, state, stopping, now)
    metrics.record_source_poll(result.name, result.outcome)  # operators graph polls by outcome
    return result


async def _poll(store: Store, config: Config, source: SourceConfig, state: sq.SourceState,
                stopping: asyncio.Event | None, now: datetime) -> PollResult:
    try:
        fetched = await _fetch_unless_stopping(state, config, stopping, now, source)
    except FetchError as exc:
        status = str(exc.status) if exc.status else "error"
        return await asyncio.to_thread(_failed, store, state, exc, now, status)
    except asyncio.CancelledError:
        await asyncio.to_thread(_release, store, state.name)
        raise
    if fetched is None:  # the daemon is stopping
        await asyncio.to_thread(_release, store, state.name)
        return PollResult(state.name, "interrupted", "stopped before the answer came")
    return await asyncio.to_thread(_after_fetch, store, config, source, state, fetched, now)


async def _fetch_unless_stopping(state: sq.SourceState, config: Config,
                                 stopping: asyncio.Event | None, now: datetime,
                                 source: SourceConfig) -> Fetched | None:
    # state.url may be one learned from a 301: only the configured URL (the operator's)
    # may open the way to internal addresses
    request = asyncio.ensure_future(fetch(
        state.url, site_url=config.site.url, max_bytes=MAX_IMPORT_BYTES, etag=state.etag,
        last_modified=state.last_modified, now=now, allow_private=source.allow_private,
        configured_url=source.url))
    if stopping is None:
        return await request
    waiter = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({request, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not request.done():
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError, FetchError):
            await request
        return None
    return request.result()


def _release(store: Store, name: str) -> None:
    with store.write() as conn:
        sq.record(conn, name)


def _after_fetch(store: Store, config: Config, source: SourceConfig, state: sq.SourceState,
                 fetched: Fetched, now: datetime) -> PollResult:
    moved: dict[str, Any] = {}
    if fetched.moved_to and fetched.moved_to != state.url:
        log.warning("source %s: %s moved permanently to %s; polling the new URL from now on",
                    state.name, state.url, fetched.moved_to)
        moved["url"] = fetched.moved_to
    if fetched.not_modified:
        # the document that had conflicting entries is unchanged: so are its conflicts
        kept = state.last_error if (state.last_status or "").startswith(CONFLICTED) else None
        _log_change(state, kept)
        with store.write() as conn:
            sq.record(conn, state.name, last_poll_at=now, last_success_at=now,
                      last_status=state.last_status if kept else "304 not modified",
                      last_error=kept, failures=0,
                      not_before=None, etag=fetched.etag or state.etag,
                      last_modified=fetched.last_modified or state.last_modified, **moved)
            sq.record_poll(conn, state.name, at=now, result="unchanged", status="304")
        return PollResult(state.name, "not-modified", "not modified")
    try:
        report = store_fetched(store, config, fetched, source_name=state.name,
                               fmt=source.format or None, source=source)
    except Exception as exc:  # one source's failure (even a bug) must not stall it
        if not isinstance(exc, SeriesfeedError):
            # a bug (or a constraint the checks missed): keep the traceback in the log,
            # record the failure, give the lease back
            log.exception("source %s: importing %s failed", state.name, fetched.url)
            exc = ImportError_(f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                               path=fetched.url)
        if moved:  # the move is real even when the document is not good
            with store.write() as conn:
                sq.record(conn, state.name, **moved)
            state = dataclasses.replace(state, url=moved["url"])
        return _failed(store, state, exc, now, "200 refused")
    # entries left out for a conflict are the poll's error (shown by `sources list` and
    # /healthz, logged once per change), though the rest of the document was stored
    error = None
    if report.conflicts:
        error = f"{fetched.url}: {len(report.conflicts)} not imported: " + \
            "; ".join(report.conflicts[:3]) + ("; …" if len(report.conflicts) > 3 else "")
    _log_change(state, error)
    with store.write() as conn:
        sq.record(conn, state.name, last_poll_at=now, last_success_at=now,
                  last_status=f"{CONFLICTED} {len(report.conflicts)}" if error else
                  "200 imported", last_error=error, failures=0, not_before=None,
                  etag=fetched.etag, last_modified=fetched.last_modified, **moved)
        # "partial": stored, but some entries were left out for a conflict (the error)
        sq.record_poll(conn, state.name, at=now, result="partial" if error else "ok",
                       status=str(fetched.status), added=report.added,
                       updated=report.updated, error=error)
    summary = (f"{report.added} added, {report.updated} updated, {report.unchanged} "
               f"unchanged, {report.linked} translation links set")
    if report.pruned:
        summary += f", {report.pruned} pruned"
    if report.conflicts:
        summary += f", {len(report.conflicts)} not imported ({report.conflicts[0]})"
    return PollResult(state.name, "imported", summary, report.added, report.updated)


async def poll_sources(store: Store, config: Config, names: list[str] | None = None, *,
                       force: bool = False) -> list[PollResult]:
    """`seriesfeed sources poll [NAME]`: every source (or the one named), one at a time."""
    chosen = names or list(config.sources)
    for name in chosen:
        if name not in config.sources:
            raise NotFoundError(f"no source '{name}' in [sources] (configured: "
                                f"{', '.join(config.sources) or 'none'})")
    return [await poll_source(store, config, config.sources[name], force=force)
            for name in chosen]


# -- listing --------------------------------------------------------------------------

def next_poll(config: Config, source: SourceConfig, state: sq.SourceState | None,
              now: datetime) -> datetime | None:
    """The schedule's next fire at which the source will be asked (none when stopped)."""
    if state is not None and state.stopped:
        return None
    trigger = make_trigger(source.schedule, config, f"sources.{source.code}.schedule")
    after = now.astimezone(config.zone)
    if state is not None and state.not_before is not None and state.not_before > now:
        after = state.not_before.astimezone(config.zone)
    return next_fire(trigger, after)


def list_sources(store: Store, config: Config, now: datetime | None = None,
                 ) -> list[dict[str, Any]]:
    now = now or now_utc()
    with store.read() as conn:
        states = sq.all_states(conn)
    out: list[dict[str, Any]] = []
    for name, source in config.sources.items():
        state = states.get(name)
        if state is not None and state.config_url != source.url:
            state = None  # reset at its next poll
        out.append({
            "name": name,
            "url": state.url if state else source.url,
            "config_url": source.url,
            "series": source.series or None,
            "format": source.format or None,
            "schedule": source.schedule,
            "prune": source.prune,
            "last_poll": local_time(state.last_poll_at, config.zone) if state else None,
            "last_success": local_time(state.last_success_at, config.zone) if state else None,
            "last_status": state.last_status if state else None,
            "entries_added": state.entries_added if state else 0,
            "last_error": state.last_error if state else None,
            "failures": state.failures if state else 0,
            "stopped": state.stopped if state else False,
            "not_before": local_time(state.not_before, config.zone) if state else None,
            "next_poll": local_time(next_poll(config, source, state, now), config.zone),
        })
    return out


def failing_sources(store: Store, config: Config) -> dict[str, str]:
    """Configured sources whose last poll failed, with the error (for /healthz)."""
    with store.read() as conn:
        states = sq.all_states(conn)
    return {name: str(state.last_error) for name, state in states.items()
            if name in config.sources and state.last_error
            and state.config_url == config.sources[name].url}


def source_history(store: Store, config: Config, name: str, *, limit: int = 50,
                   offset: int = 0) -> dict[str, Any]:
    """One source's polls, newest first (at most ``sources.KEEP_POLLS`` are kept): when,
    the result (ok, partial, unchanged, error, gone), the HTTP status, entries added and
    updated, and the error. A name neither configured nor with a history is an error."""
    check_stored_int(limit, "--limit", minimum=1)
    check_stored_int(offset, "--offset")
    with store.read() as conn:
        rows, total = sq.poll_history(conn, name, limit=limit, offset=offset)
    if name not in config.sources and not total:
        raise NotFoundError(f"no source '{name}' in [sources] (configured: "
                            f"{', '.join(config.sources) or 'none'})")
    return {"name": name, "total": total, "limit": limit, "offset": offset, "polls": [
        {"at": local_time(r.at, config.zone), "result": r.result, "status": r.status,
         "added": r.added, "updated": r.updated, "error": r.error} for r in rows]}

"""The verbs the CLI, the web app and the scheduler call: one function per thing a user does."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Connection

from seriesfeed import __version__
from seriesfeed.config import Config
from seriesfeed.digest import (
    RecordedDigest,
    count_due,
    digest_fallback,
    next_range,
    record_digests,
)
from seriesfeed.errors import ImportError_, NotFoundError, ValidationError
from seriesfeed.feeds import FeedDocument, plan_feeds
from seriesfeed.importers import ImportBatch, ImportedEntry, ImportSettings
from seriesfeed.importers.parse import parse_file
from seriesfeed.mailer import Transport
from seriesfeed.models import Entry, Frequency, Series, SeriesText
from seriesfeed.outbox import PREFERENCES, UNSUBSCRIBE, Rendered, drain_outbox, render_digest
from seriesfeed.pages import build_pages
from seriesfeed.publish import PublishReport, publish, write_if_changed
from seriesfeed.store import Store
from seriesfeed.store import entries as q
from seriesfeed.text import clean_line, clean_text, sanitize_html, slugify
from seriesfeed.urls import BadURL, check_id, check_url
from seriesfeed.websub import notify_hub


def now_utc() -> datetime:
    return datetime.now(UTC)


def import_settings(config: Config) -> ImportSettings:
    markers = {code: tuple(lang.bylines) + tuple(lang.sections)
               for code, lang in config.languages.items() if lang.bylines or lang.sections}
    return ImportSettings(time_zone=config.zone, default_language=config.site.default_language,
                          language_markers=markers,
                          organizations=tuple(config.site.organizations))


def tag_authority(config: Config) -> str:
    return config.site.tag_authority or (urlsplit(config.site.url).hostname or "localhost")


def derive_url(config: Config, entry: Entry) -> str:
    local = entry.published.astimezone(config.zone)
    return config.site.entry_url_pattern.format(
        site_url=config.site.url.rstrip("/"), yyyy=f"{local.year:04d}", mm=f"{local.month:02d}",
        dd=f"{local.day:02d}", slug=slugify(entry.title) or "entry", series=entry.series,
        language=entry.language)


def mint_id(config: Config, entry: Entry) -> str:
    """A tag URI (RFC 4151) from the authority, the publication date and the URL's path.

    Minted once, when the entry is first stored, and never recomputed: fixing a title or
    moving the URL later leaves the id alone."""
    assert entry.url is not None
    local = entry.published.astimezone(config.zone)
    parts = urlsplit(entry.url)
    specific = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.hostname and parts.hostname != tag_authority(config):
        specific = f"{parts.hostname}{specific}"
    return f"tag:{tag_authority(config)},{local:%Y-%m-%d}:{specific or '/'}"


@dataclass
class ImportReport:
    path: str
    format: str | None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    linked: int = 0
    pruned: int = 0
    series: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.path}: {self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.linked} translation links set")


SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _check_slug(slug: str, source: str, line: int | None, field: str) -> None:
    # a slug becomes a URL path and a folder under feeds build --out
    if not SLUG.fullmatch(slug) or len(slug) > 80:
        raise ImportError_(f"'{slug}' is not a series slug (lower-case letters, digits and "
                           f"single hyphens, e.g. '{slugify(slug) or 'my-series'}')",
                           path=source, line=line, field=field)


def _check_series(config: Config, series: Series, n: int, source: str) -> None:
    _check_slug(series.slug, source, None, f"series[{n}].slug")
    for lang, words in list(series.texts.items()):
        if lang not in config.languages:
            raise ImportError_(f"series '{series.slug}': unknown language '{lang}' in texts "
                               f"(configured: {', '.join(config.languages)})", path=source,
                               field=f"series[{n}].texts")
        if words.url:
            try:
                url = check_url(words.url)
            except BadURL as exc:
                raise ImportError_(str(exc), path=source,
                                   field=f"series[{n}].texts.{lang}.url") from None
            series.texts[lang] = dataclasses.replace(words, url=url)


def _check_entry(config: Config, item: ImportedEntry, source: str) -> Entry:
    e = item.entry
    _check_slug(e.series, source, item.line, "series")
    if e.language not in config.languages:
        raise ImportError_(f"unknown language '{e.language}' (configured: "
                           f"{', '.join(config.languages)})", path=source, line=item.line,
                           field="language")
    if not e.title:
        raise ImportError_("the title is empty", path=source, line=item.line, field="title")
    if e.published.tzinfo is None:
        raise ImportError_("the date has no time zone", path=source, line=item.line,
                           field="published")
    # every import path comes through here: page captures, JSON, CSV, feeds, entries add
    try:
        url = check_url(e.url or derive_url(config, e))
    except BadURL as exc:
        raise ImportError_(str(exc), path=source, line=item.line, field="url") from None
    if e.id is not None:
        try:
            check_id(e.id)
        except BadURL as exc:
            raise ImportError_(str(exc), path=source, line=item.line, field="id") from None
    content = sanitize_html(e.content_html) if e.content_html else None
    translation_of = _ref(e.translation_of) if e.translation_of else e.translation_of
    return dataclasses.replace(e, url=url, content_html=content or None,
                               translation_of=translation_of)


StoredEntries = list[tuple[int, Entry, ImportedEntry]]


def store_batch(store: Store, config: Config, batch: ImportBatch, source: str,
                report: ImportReport,
                within: Callable[[Connection, StoredEntries], None] | None = None,
                ) -> ImportReport:
    """Store a parsed batch in one transaction: all of it, or (on any error) none of it.

    ``within`` runs in the same transaction after the entries are stored (a source's
    bookkeeping: which entries it gave, links it states, pruning)."""
    for n, series in enumerate(batch.series, start=1):
        _check_series(config, series, n, source)
    checked = [(_check_entry(config, item, source), item) for item in batch.entries]
    seen_ids: dict[str, int | None] = {}
    seen_urls: dict[str, int | None] = {}
    for e, item in checked:
        if e.id is not None:
            if e.id in seen_ids:
                raise ImportError_(f"the id '{e.id}' appears twice (first at {seen_ids[e.id]})",
                                   path=source, line=item.line, field="id")
            seen_ids[e.id] = item.line
        assert e.url is not None
        if e.url in seen_urls:
            raise ImportError_(f"the URL '{e.url}' appears twice (first at {seen_urls[e.url]})",
                               path=source, line=item.line, field="url")
        seen_urls[e.url] = item.line
    now = now_utc()
    with store.write() as conn:
        series_ids = {s.slug: q.upsert_series(conn, s, now) for s in batch.series}
        report.series = sorted(series_ids)
        stored: StoredEntries = []
        for e, item in checked:
            sid = series_ids.get(e.series)
            if sid is None:
                if not e.series or slugify(e.series) != e.series:
                    raise ImportError_(f"'{e.series}' is not a series slug (lower-case words "
                                       "joined by '-')", path=source, line=item.line,
                                       field="series")
                sid = q.series_id(conn, e.series)
                if sid is None:
                    # a CSV carries no series list: name the series after its slug; a JSON
                    # import or `entries add --series-title` can set the real title later
                    title = e.series.replace("-", " ").capitalize()
                    sid = q.upsert_series(conn, Series(e.series, {e.language: SeriesText(
                        title)}), now)
                series_ids[e.series] = sid
            if e.id is None:
                assert e.url is not None
                existing = q.find_seq(conn, url=e.url)
                e = dataclasses.replace(
                    e, id=q.get_entry(conn, str(existing)).id if existing else mint_id(config, e))
            row = q.save_entry(conn, e, sid, now)
            q.sync_hold(conn, row.seq, e.published, now, created=row.created)
            if row.created:
                report.added += 1
            elif row.changed:
                report.updated += 1
            else:
                report.unchanged += 1
            stored.append((row.seq, e, item))
        for seq, e, item in stored:
            if e.translation_of is None:
                continue
            other = q.find_seq(conn, entry_id=e.translation_of, url=e.translation_of)
            if other is None:
                raise ImportError_(f"no entry with id or URL '{e.translation_of}'",
                                   path=source, line=item.line, field="translation_of")
            if other == seq:
                raise ImportError_("an entry cannot be its own translation", path=source,
                                   line=item.line, field="translation_of")
            if q.set_translation(conn, seq, other):
                report.linked += 1
        if within is not None:
            within(conn, stored)
    return report


def import_entries(store: Store, config: Config, path: Path, fmt: str | None = None,
                   series_slug: str | None = None,
                   titles: dict[str, str] | None = None) -> ImportReport:
    """Import a file; ``titles`` ({language: title}) names the file's series in languages
    the file does not (a series page gives one title only)."""
    batch = parse_file(path, fmt, import_settings(config), series_slug=series_slug)
    if titles:
        if not batch.series:  # formats without a series list: the entries' series
            batch.series = [Series(slug) for slug in dict.fromkeys(
                item.entry.series for item in batch.entries)]
        series_titles(config, titles, batch.series, str(path))
    return store_batch(store, config, batch, str(path), ImportReport(str(path), fmt))


def add_entry(store: Store, config: Config, entry: Entry,
              series_title: str | None = None) -> Entry:
    """Add (or update) one entry given on the command line."""
    batch = ImportBatch(entries=[ImportedEntry(entry, None)])
    if series_title:
        batch.series.append(Series(entry.series, {entry.language: SeriesText(series_title)}))
    try:
        store_batch(store, config, batch, "entry", ImportReport("entry", None))
    except ImportError_ as exc:
        raise ValidationError(str(exc).split(": ", 1)[-1], field=exc.field) from exc
    with store.read() as conn:  # by the URL as stored (normalised by the import check)
        return q.get_entry(conn, entry.id or check_url(entry.url or derive_url(config, entry)))


def _ref(ref: str) -> str:
    """An entry reference (id, URL or number), a URL written as the store keeps it."""
    if ref.lower().startswith(("http://", "https://")):
        try:
            return check_url(ref)
        except BadURL:
            return ref  # then nothing is stored under it: the lookup says so
    return ref


def link_translations(store: Store, first: str, second: str) -> tuple[Entry, Entry]:
    """Link two entries as translations of each other (``second`` translates ``first``)."""
    with store.write() as conn:
        a = q.get_entry(conn, _ref(first))
        b = q.get_entry(conn, _ref(second))
        if a.seq == b.seq:
            raise ValidationError("an entry cannot be its own translation", field="ID")
        if a.language == b.language:
            raise ValidationError(f"both entries are in '{a.language}'; a translation is in "
                                  "another language", field="ID")
        assert a.seq is not None and b.seq is not None
        q.set_translation(conn, b.seq, a.seq)
        return a, q.get_entry(conn, str(b.seq))


def remove_entry(store: Store, ref: str) -> Entry:
    with store.write() as conn:
        return q.remove_entry(conn, _ref(ref))


def show_entry(store: Store, ref: str) -> Entry:
    with store.read() as conn:
        return q.get_entry(conn, _ref(ref))


def list_entries(store: Store, language: str | None = None,
                 series_slug: str | None = None) -> list[Entry]:
    with store.read() as conn:
        if series_slug is not None and q.series_id(conn, series_slug) is None:
            raise NotFoundError(f"no series '{series_slug}'")
        return q.list_entries(conn, language=language, series_slug=series_slug,
                              newest_first=False, include_held=True)


def release_due(store: Store, now: datetime | None = None) -> int:
    """Publish the scheduled entries whose time has come; return how many."""
    now = now or now_utc()
    with store.read() as conn:
        due = q.next_release(conn)
    if due is None or due > now:
        return 0  # the common case costs one indexed read, no write transaction
    with store.write() as conn:
        return len(q.release_due(conn, now))


def next_release(store: Store) -> datetime | None:
    """When the next scheduled entry is due (None: nothing is scheduled)."""
    with store.read() as conn:
        return q.next_release(conn)


def localized(entry: Entry, config: Config) -> Entry:
    """The entry with its dates in the site's time zone (for output)."""
    zone = config.zone
    return dataclasses.replace(entry, published=entry.published.astimezone(zone),
                               updated=(entry.updated or entry.published).astimezone(zone))


def list_all_series(store: Store) -> list[Series]:
    with store.read() as conn:
        return q.list_series(conn)


def plan_site(store: Store, config: Config) -> list[FeedDocument]:
    """Every feed document and series page, as bytes, in a stable order."""
    # read once for both: it is the most expensive part of a build
    with store.read() as conn:
        everything = q.list_entries(conn)
    return plan_feeds(config, store, everything) + build_pages(config, store, everything)


def build_feeds(store: Store, config: Config, out_dir: Path) -> PublishReport:
    """Write every feed and page under ``out_dir`` (only files whose bytes changed).

    When neither the store nor the settings changed since the last build into ``out_dir``
    (a stamp file records both), nothing is generated at all."""
    release_due(store)
    with store.read() as conn:
        stamp = f"{q.fingerprint(conn)!r} {_settings_digest(config)}"
    stamp_file = out_dir / ".seriesfeed-build"
    try:
        if stamp_file.read_text(encoding="utf-8") == stamp:
            return PublishReport(out_dir, skipped=True)
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    report = publish(plan_site(store, config), out_dir)
    if report.written:
        notify_hub(config, report.written)
    write_if_changed(stamp_file, stamp.encode("utf-8"))
    return report


def _settings_digest(config: Config) -> str:
    """What, besides the store, the built files depend on."""
    relevant = repr((config.public_url, config.site, config.languages, config.feeds,
                     config.websub, __version__))
    return hashlib.sha256(relevant.encode("utf-8")).hexdigest()[:16]


async def send_digests(store: Store, config: Config, *, frequency: Frequency | None = None,
                       stopping: asyncio.Event | None = None, scheduled: bool = True,
                       transport: Transport | None = None,
                       progress: Callable[[int, int], None] | None = None) -> str:
    """Record the due digests (one frequency, or all) and drain the outbox."""
    recorded: list[RecordedDigest] = []
    await asyncio.to_thread(release_due, store)
    for freq in [frequency] if frequency else list(Frequency):
        recorded += await asyncio.to_thread(record_digests, store, config, freq, now_utc(),
                                            scheduled=scheduled)
    queued = sum(d.recipients for d in recorded)
    step = (lambda done: progress(done, queued)) if progress else None
    report = await drain_outbox(store, config, stopping=stopping, transport=transport,
                                progress=step)
    return f"{len(recorded)} digests recorded ({queued} messages queued); {report}"


@dataclass(frozen=True)
class Preview:
    rendered: Rendered
    text: str  # the parts with sample links in place of each recipient's own
    html: str
    sample: bool  # True: nobody is due, so these are the newest entries, as an example


def preview_digest(store: Store, config: Config, language: str, frequency: Frequency,
                   sample_size: int = 10) -> Preview | None:
    """What the next digest of the language and frequency would be (the largest one, for
    the subscriber furthest behind); when nobody is due, the newest entries as a sample.
    Records nothing (but publishes the scheduled entries that have come due)."""
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


# -- series texts per language (issue 13) -------------------------------------------------

@dataclass(frozen=True)
class SeriesInfo:
    series: Series
    entries: dict[str, int]  # entries per language

    def to_json(self) -> dict[str, object]:
        return {"slug": self.series.slug,
                "texts": {code: {"title": t.title, "description": t.description, "url": t.url}
                          for code, t in sorted(self.series.texts.items())},
                "entries": dict(sorted(self.entries.items()))}


def list_series_info(store: Store) -> list[SeriesInfo]:
    with store.read() as conn:
        counts: dict[str, dict[str, int]] = {}
        for e in q.list_entries(conn):
            by_lang = counts.setdefault(e.series, {})
            by_lang[e.language] = by_lang.get(e.language, 0) + 1
        return [SeriesInfo(s, counts.get(s.slug, {})) for s in q.list_series(conn)]


def show_series(store: Store, slug: str) -> SeriesInfo:
    found = next((s for s in list_series_info(store) if s.series.slug == slug), None)
    if found is None:
        raise NotFoundError(f"no series '{slug}'")
    return found


def set_series_text(store: Store, config: Config, slug: str, language: str, *,
                    title: str | None = None, description: str | None = None,
                    url: str | None = None) -> SeriesInfo:
    """Set a series' title, description or URL in one language; what is not given stays.
    A language the series has no text in yet needs a title."""
    if language not in config.languages:
        raise ValidationError(f"unknown language '{language}' (configured: "
                              f"{', '.join(config.languages)})", field="--lang")
    if title is not None and not clean_line(title):
        raise ValidationError("the title is empty", field="--title")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(f"'{url}' is not an http(s) URL", field="--url")
    with store.write() as conn:
        current = q.get_series(conn, slug)
        if current is None:
            raise NotFoundError(f"no series '{slug}'")
        old = current.texts.get(language)
        if old is None and title is None:
            raise ValidationError(f"the series has no {language} text yet: give --title",
                                  field="--title")
        new = SeriesText(clean_line(title) if title is not None else old.title if old else "",
                         clean_text(description).strip() if description is not None
                         else old.description if old else "",
                         (url or None) if url is not None else old.url if old else None)
        q.upsert_series(conn, Series(slug, {language: new}), now_utc())
    return show_series(store, slug)


def series_titles(config: Config, given: dict[str, str], batch_series: list[Series],
                  source: str) -> None:
    """Add ``{language: title}`` given on the command line to the series of a batch (a
    series page names its series in one language only)."""
    for code, title in given.items():
        if code not in config.languages:
            raise ImportError_(f"unknown language '{code}' in --series-title (configured: "
                               f"{', '.join(config.languages)})", path=source,
                               field="--series-title")
        for s in batch_series:
            old = s.texts.get(code)
            s.texts[code] = SeriesText(clean_line(title), old.description if old else "",
                                       old.url if old else None)

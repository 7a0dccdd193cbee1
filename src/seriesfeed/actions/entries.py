"""Entry verbs: import a file, add, link, remove, show and list entries, publish the
scheduled ones. Every import path (page captures, JSON, CSV, feeds, ``entries add``,
sources) checks and stores through ``store_batch``, in one transaction."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from seriesfeed import i18n
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import ImportError_, NotFoundError, ValidationError
from seriesfeed.importers import FORMATS, ImportBatch, ImportedEntry, ImportSettings
from seriesfeed.importers.bylines import split_byline
from seriesfeed.importers.jsonfmt import MAX_PART, dump_json
from seriesfeed.models import Author, AuthorKind, Entry, Series, SeriesText
from seriesfeed.parts import number_parts
from seriesfeed.store import Connection, Store
from seriesfeed.store import entries as q
from seriesfeed.text import clean_line, clean_text, sanitize_html, slugify
from seriesfeed.urls import BadURL, check_id, check_url

__all__ = [
    "FORMATS",
    "ImportReport",
    "SeriesInfo",
    "StoredEntries",
    "add_entry",
    "changed_texts",
    "derive_url",
    "export_entries",
    "import_entries",
    "import_settings",
    "link_translations",
    "list_all_series",
    "list_entries",
    "list_series_info",
    "localized",
    "mint_id",
    "new_entry",
    "remove_entry",
    "series_titles",
    "set_entry",
    "set_entry_texts",
    "set_series_text",
    "show_entry",
    "show_series",
    "store_batch",
    "tag_authority",
]


def import_settings(config: Config) -> ImportSettings:
    markers = {code: tuple(lang.bylines) + tuple(lang.sections)
               for code, lang in config.languages.items() if lang.bylines or lang.sections}
    return ImportSettings(time_zone=config.zone, default_language=config.site.default_language,
                          language_markers=markers,
                          organizations=tuple(config.site.organizations),
                          conjunctions=byline_conjunctions(config))


def byline_conjunctions(config: Config) -> tuple[str, ...]:
    """The words that join two names in every configured language: CLDR's for each
    language's locale, and the language's own ``conjunctions``."""
    words: list[str] = []
    for lang in config.languages.values():
        found = i18n.list_conjunction(lang.locale or lang.code)
        words += ([found] if found else []) + [w.strip() for w in lang.conjunctions]
    return tuple(dict.fromkeys(w for w in words if w))


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
    # the fragment too: link blogs give items at page#1, page#2, which are different
    # entries (RFC 4151 allows a fragment after the specific part)
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"tag:{tag_authority(config)},{local:%Y-%m-%d}:{specific or '/'}{fragment}"


def _unused_id(conn: Connection, minted: str) -> str:
    """``minted``, or, when a stored entry at another URL already has it (the same path
    over http and https, on the same day), the first free ``minted;2``, ``minted;3`` …:
    a new entry must never take a stored entry's identity."""
    candidate, n = minted, 1
    while q.match_entry(conn, entry_id=candidate, url=None) is not None:
        n += 1
        candidate = f"{minted};{n}"
    return candidate


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
    # entries a source gave that clash with a stored one (invariant 14): each one's error,
    # the entry left out and the rest stored
    conflicts: list[str] = field(default_factory=list)

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


def _conflict(e: Entry, found: q.Match | None) -> tuple[str, str] | None:
    """Why ``e`` may not be stored over the entry it matched, and the field to blame
    (None: it may).

    No match ever changes an entry's language: the same id in another language (a
    translation's export that kept its original's id) is that entry's conflict, not a
    rewrite of the stored one. A match by URL never changes an entry's id either: a
    translation whose link names its original, or another publisher's entry at the same
    URL, is not that entry. An entry matched by id may not move onto a URL another stored
    entry has."""
    if found is None:
        return None
    if found.by_id:
        if found.language != e.language:
            return (f"the id {e.id} belongs to the stored entry in {found.language}, not to "
                    f"this one in {e.language}: not imported", "id")
        if found.at_url is not None:
            _seq, other_id, other_language = found.at_url
            return (f"the entry {e.id} moved to {e.url}, which the stored entry "
                    f"{other_id} ({other_language}) has: not imported", "url")
        return None
    if found.language != e.language or (e.id is not None and found.id != e.id):
        return (f"the URL {e.url} belongs to the stored entry {found.id} "
                f"({found.language}), not to {e.id or 'this entry'} ({e.language}): "
                "not imported", "url")
    return None


def _release_traded_urls(conn: Connection, batch: list[Entry]) -> dict[int, str]:
    """Entries of one document may trade URLs (a publisher fixes a mix-up of two
    addresses): each stored entry, matched by id, that moves away from a URL another entry
    of the same document (also matched by id, in its own language) moves onto lets go of
    it first, so neither move is refused against the other's old URL (a new entry of the
    document may take a URL a stored one leaves too). Returns the released seqs with their
    old URLs (each is saved again, with its new URL, in the same transaction)."""
    by_id = {e.id: e for e in batch if e.id is not None}
    if not by_id or len(batch) < 2:
        return {}
    found = q.stored_by_id(conn, list(by_id))
    # an entry stored in another language is refused whatever its URL: it takes none
    settled = {i: row for i, row in found.items() if row[2] == by_id[i].language}
    # who in the document takes each URL; an item with no id is a new entry too (a feed
    # item without a guid): matched by the URL a stored entry of the same document leaves,
    # it was stored over that entry, which then moved away, and the item was lost
    wanted: dict[str | None, str | None] = {
        e.url: e.id for e in batch if e.id is None or e.id in settled or e.id not in found}
    release = {seq: url for i, (seq, url, _language) in settled.items()
               if url != by_id[i].url and wanted.get(url, i) != i}
    q.release_urls(conn, list(release))
    return release


def _settle_traded_urls(conn: Connection, moving: dict[int, str], source: str,
                        why: list[str]) -> None:
    """An entry that let go of its URL and was then refused (its new URL is a third
    entry's) takes its old URL back; if the entry that wanted it has it now, the document
    cannot be stored in part: it is refused as a whole."""
    for seq in q.still_moving(conn, list(moving)):
        if q.find_seq(conn, url=moving[seq]) is not None:
            because = f" ({'; '.join(why)})" if why else ""
            raise ImportError_(f"entries of this document trade URLs, and the one at "
                               f"{moving[seq]} could not move{because}: nothing imported",
                               path=source, field="url")
        q.restore_url(conn, seq, moving[seq])


def _keep_precise_time(config: Config, e: Entry, item: ImportedEntry,
                       found: q.Match | None) -> Entry:
    """A date-only input (a series page) of an entry stored with a time on the same local
    day keeps that time: re-importing the page must not move it to midnight."""
    if not item.date_only or found is None:
        return e
    stored = found.published
    if stored.tzinfo is None:  # SQLite gives back naive UTC
        stored = stored.replace(tzinfo=UTC)
    if stored.astimezone(config.zone).date() != e.published.astimezone(config.zone).date():
        return e
    return dataclasses.replace(e, published=stored,
                               updated=e.updated if e.updated and e.updated > stored else None)


def store_batch(store: Store, config: Config, batch: ImportBatch, source: str,
                report: ImportReport,
                within: Callable[[Connection, StoredEntries], None] | None = None,
                *, from_source: bool = False,
                title_only: dict[str, set[str]] | None = None,
                prepare: Callable[[Connection], None] | None = None) -> ImportReport:
    """Store a parsed batch in one transaction: all of it, or (on any error) none of it.

    ``within`` runs in the same transaction after the entries are stored (a source's
    bookkeeping: which entries it gave, links it states, pruning). ``from_source`` (a
    poll): series texts are only filled where empty, and an entry that clashes with a
    stored one is left out with its error in ``report.conflicts``, the rest stored; a part
    number it states is stored only where no editor set one, and one that another entry
    holds is left out the same way (that entry stored without it).
    ``title_only`` ({slug: languages}): texts that carry only a title (given with
    ``--series-title``), which leave a stored description and URL alone.
    ``prepare`` runs first in the same transaction and may change the batch: what it
    decides from the store (a source's series, ids to adopt) is what this transaction
    sees, so a change committed while the document was fetched and parsed is kept."""
    if prepare is None:
        checked = _checked(config, batch, source)
    now = now_utc()
    with store.write() as conn:
        q.one_batch_at_a_time(conn)
        if prepare is not None:
            prepare(conn)
            checked = _checked(config, batch, source)
        return _store_checked(conn, config, batch, checked, source, report, within,
                              from_source=from_source, title_only=title_only, now=now)


def _checked(config: Config, batch: ImportBatch, source: str,
             ) -> list[tuple[Entry, ImportedEntry]]:
    """The batch's entries as they will be stored, each with its input; an id or URL the
    batch gives twice refuses it whole."""
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
    return checked


def _store_checked(conn: Connection, config: Config, batch: ImportBatch,
                   checked: list[tuple[Entry, ImportedEntry]], source: str,
                   report: ImportReport,
                   within: Callable[[Connection, StoredEntries], None] | None, *,
                   from_source: bool, title_only: dict[str, set[str]] | None,
                   now: datetime) -> ImportReport:
    """Store ``checked`` in ``conn``'s transaction (the body of ``store_batch``)."""
    series_ids = {s.slug: q.upsert_series(conn, s, now, fill_only=from_source,
                                          title_only=(title_only or {}).get(s.slug, ()))
                  for s in batch.series}
    report.series = sorted(series_ids)
    stored: StoredEntries = []
    untouched: set[int] = set()  # stored unchanged: a new part makes them updated
    moving = _release_traded_urls(conn, [e for e, _ in checked])
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
        found = q.match_entry(conn, entry_id=e.id, url=e.url)
        conflict = _conflict(e, found)
        if conflict is not None:
            clash, blamed = conflict
            if not from_source:  # a file is all or nothing: the editor fixes it
                raise ImportError_(clash, path=source, line=item.line, field=blamed)
            where = f"item {item.line}: " if item.line is not None else ""
            report.conflicts.append(where + clash)
            continue
        if e.id is None:
            e = dataclasses.replace(
                e, id=found.id if found else _unused_id(conn, mint_id(config, e)))
        e = _keep_precise_time(config, e, item, found)
        row = q.save_entry(conn, e, sid, now, found=found, from_source=from_source)
        q.sync_hold(conn, row.seq, e.published, now, created=row.created)
        if row.created:
            report.added += 1
        elif row.changed:
            report.updated += 1
        else:
            report.unchanged += 1
            untouched.add(row.seq)
        stored.append((row.seq, e, item))
    _settle_traded_urls(conn, moving, source, report.conflicts)
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
    wanted = [(seq, e.part, item.line) for seq, e, item in stored if e.part is not None]
    if wanted:
        moved = _apply_parts(conn, wanted, source, editor=not from_source, report=report)
        # a part an import changes is a change to that entry
        report.updated += len(moved & untouched)
        report.unchanged -= len(moved & untouched)
    return report


def _apply_parts(conn: Connection, wanted: list[tuple[int, int, int | None]], source: str,
                 *, editor: bool, report: ImportReport | None = None) -> set[int]:
    """Pin the part numbers asked for ({seq, part, line}); return the seqs whose stored
    number changed. A stated part is what an editor set, stored as such (an export states
    only those, so reading one back pins nothing new). A number another entry of the
    series holds is refused (the whole input, from an editor; from a source, that entry's
    part is left out with the reason in ``report.conflicts``); numbers the same input moves
    off other entries are free. A translation carries its original's number and cannot be
    given another. Worked out from one read of every entry, whatever the input's size."""
    rows = {r.seq: r for r in q.part_rows(conn, include_held=True)}
    if not editor:  # what an editor set is never overwritten by a source
        wanted = [w for w in wanted if rows[w[0]].pinned is None]
    # a translation's number is its original's, as the same input leaves the originals
    translations = [w for w in wanted if rows[w[0]].original in rows]
    wanted = [w for w in wanted if rows[w[0]].original not in rows]
    moving = {seq for seq, part, _line in wanted if rows[seq].pinned != part}
    holders = {(r.series, r.pinned): r.seq for r in rows.values()
               if r.pinned is not None and r.seq not in moving}
    changed: set[int] = set()

    def refuse(reason: str, line: int | None) -> None:
        if editor or report is None:
            raise ImportError_(reason, path=source, line=line, field="part")
        where = f"item {line}: " if line is not None else ""
        report.conflicts.append(f"{where}{reason}: that part left out")

    for seq, part, line in wanted:
        row = rows[seq]
        if row.pinned == part:
            continue
        holder = holders.get((row.series, part))
        if holder is not None and holder != seq:
            refuse(f"part {part} of '{q.get_entry(conn, str(seq)).series}' is already set "
                   f"on {q.get_entry(conn, str(holder)).id}", line)
            continue
        holders[(row.series, part)] = seq
        if q.set_part(conn, seq, part):
            changed.add(seq)
            rows[seq] = dataclasses.replace(row, pinned=part)
    if translations:
        numbers = number_parts(rows.values())
        for seq, part, line in translations:
            current = numbers.get(seq, (None, None))[0]
            if current != part:
                refuse(f"a translation carries its original's part ({current}); set the "
                       "part on the original", line)
    return changed


def set_entry(store: Store, ref: str, *, part: int | str | None = None,
              from_source: Collection[str] = ()) -> Entry:
    """Set fields an editor owns on one entry. ``part``: a number from 1, or "auto" to
    go back to the computed number. ``from_source``: texts ("title", "summary") whose
    editor's fix is lifted, so the next poll of the entry's source sets them again."""
    unknown = sorted(set(from_source) - set(q.TEXT_PINS))
    if unknown:
        raise ValidationError(f"'{unknown[0]}' is not title or summary", field="from_source")
    with store.write() as conn:
        entry = q.get_entry(conn, _ref(ref))
        assert entry.seq is not None
        q.unpin_texts(conn, entry.seq, from_source)
        if part == "auto":
            q.set_part(conn, entry.seq, None)
        elif isinstance(part, int):
            if not 1 <= part <= MAX_PART:
                raise ValidationError(f"a part is a whole number from 1 to {MAX_PART}",
                                      field="--part")
            try:
                _apply_parts(conn, [(entry.seq, part, None)], "entries set", editor=True)
            except ImportError_ as exc:
                raise ValidationError(exc.reason, field="--part") from exc
        return q.get_entry(conn, str(entry.seq), parts=True)


def set_entry_texts(store: Store, config: Config, ref: str, *, title: str | None = None,
                    summary: str | None = None) -> Entry:
    """An editor's fix of one entry's title or summary (what is not given stays): stored
    in place by the import path, so the entry keeps its id, sequence number and part and
    is not sent again; its ``updated`` time moves so feed readers see the change. What is
    given is pinned: a poll of the entry's source leaves it (``set_entry`` with
    ``from_source`` gives it back)."""
    if title is not None and not clean_line(title):
        raise ValidationError("the title is empty", field="--title")
    current = show_entry(store, ref)
    if title is None and summary is None:
        raise ValidationError("nothing to set: give --title or --summary", field="--title")
    changed = dataclasses.replace(
        current, title=clean_line(title) if title is not None else current.title,
        summary=clean_text(summary).strip() if summary is not None else current.summary,
        updated=now_utc().astimezone(config.zone),
        # an import that states a part pins it: state none, and the stored one stays
        part=None, pinned=None, parts=None,
        texts_pinned=tuple(name for name, given in (("title", title), ("summary", summary))
                           if given is not None or name in current.texts_pinned))
    if (changed.title, changed.summary, changed.texts_pinned) == (
            current.title, current.summary, current.texts_pinned):
        return current
    return add_entry(store, config, changed)


def changed_texts(current: Entry, *, title: str | None = None,
                  summary: str | None = None) -> dict[str, str]:
    """Of the texts a form sent back, those that differ from ``current`` when stored as
    ``set_entry_texts`` would store them: a form sends every field, a textarea's lines
    with CRLF, an absent summary as "", and a text that did not change must not move the
    entry's ``updated`` in the feeds nor be recorded as an edit."""
    def fold(field: str, text: str) -> str:
        return clean_line(text) if field == "title" else clean_text(text).strip()

    given = {"title": title, "summary": summary}
    return {k: v for k, v in given.items()
            if v is not None and fold(k, v) != fold(k, getattr(current, k) or "")}


def import_entries(store: Store, config: Config, path: Path, fmt: str | None = None,
                   series_slug: str | None = None,
                   titles: dict[str, str] | None = None) -> ImportReport:
    """Import a file; ``titles`` ({language: title}) names the file's series in languages
    the file does not (a series page gives one title only)."""
    # here, not at the top: the parsers bring feedparser and defusedxml, which every other
    # entry verb would load for nothing
    from seriesfeed.importers.parse import parse_file

    batch = parse_file(path, fmt, import_settings(config), series_slug=series_slug)
    title_only: dict[str, set[str]] = {}
    if titles:
        if not batch.series:  # formats without a series list: the entries' series
            batch.series = [Series(slug) for slug in dict.fromkeys(
                item.entry.series for item in batch.entries)]
        # a title for a language the file has no text in: the stored description stays
        # (re-importing a one-language page must not blank another language's words)
        title_only = {s.slug: {code for code in titles if code not in s.texts}
                      for s in batch.series}
        series_titles(config, titles, batch.series, str(path))
    return store_batch(store, config, batch, str(path), ImportReport(str(path), fmt),
                       title_only=title_only)


def new_entry(config: Config, *, series_slug: str, title: str, summary: str,
              published: datetime, language: str | None = None, byline: str = "",
              orgs: tuple[str, ...] = (), section: str | None = None, url: str | None = None,
              content_file: Path | None = None, translation_of: str | None = None) -> Entry:
    """An entry from what `entries add` was given: the byline split into authors, every
    text cleaned, the content read from its file; ValidationError names the option."""
    if slugify(series_slug) != series_slug:
        raise ValidationError(f"'{series_slug}' is not a slug (try '{slugify(series_slug)}')",
                              field="--series")
    authors: list[Author] = list(split_byline(byline, tuple(config.site.organizations),
                                              byline_conjunctions(config)))
    authors += [Author(clean_line(o), AuthorKind.ORGANIZATION) for o in orgs if clean_line(o)]
    content = None
    if content_file is not None:
        try:
            content = clean_text(content_file.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ValidationError("the file is not UTF-8", field="--content-file") from exc
    return Entry(
        series=series_slug, language=language or config.site.default_language,
        title=clean_line(title), summary=clean_text(summary).strip(), published=published,
        authors=tuple(authors), section=clean_line(section) if section else None,
        content_html=content, url=url, translation_of=translation_of)


def add_entry(store: Store, config: Config, entry: Entry,
              series_title: str | None = None) -> Entry:
    """Add (or update) one entry given on the command line."""
    batch = ImportBatch(entries=[ImportedEntry(entry, None)])
    if series_title:
        batch.series.append(Series(entry.series, {entry.language: SeriesText(series_title)}))
    try:
        store_batch(store, config, batch, "entry", ImportReport("entry", None))
    except ImportError_ as exc:
        raise ValidationError(exc.reason, field=exc.field) from exc
    with store.read() as conn:  # by the URL as stored (normalised by the import check)
        return q.get_entry(conn, entry.id or check_url(entry.url or derive_url(config, entry)),
                           parts=True)


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
        return q.get_entry(conn, _ref(ref), parts=True)


def list_entries(store: Store, language: str | None = None,
                 series_slug: str | None = None) -> list[Entry]:
    with store.read() as conn:
        if series_slug is not None and q.series_id(conn, series_slug) is None:
            raise NotFoundError(f"no series '{series_slug}'")
        return q.list_entries(conn, language=language, series_slug=series_slug,
                              newest_first=False, include_held=True)


def localized(entry: Entry, config: Config) -> Entry:
    """The entry with its dates in the site's time zone (for output)."""
    zone = config.zone
    return dataclasses.replace(entry, published=entry.published.astimezone(zone),
                               updated=(entry.updated or entry.published).astimezone(zone))


def list_all_series(store: Store) -> list[Series]:
    with store.read() as conn:
        return q.list_series(conn)


def export_entries(store: Store, config: Config, fmt: str,
                   series_slug: str | None = None) -> tuple[bytes, int]:
    """The entries (one series, or all) as JSON or CSV that `import` reads back, and how
    many. CSV carries a series' title only on rows of its language: refused when that
    would drop a series' words."""
    # here, not at the top: the CSV writer (and the csv module) only for an export
    from seriesfeed.importers.csvfmt import dump_csv, lost_series_texts

    found = [localized(e, config) for e in list_entries(store, None, series_slug)]
    series = [s for s in list_all_series(store) if series_slug is None or s.slug == series_slug]
    if fmt == "csv":
        lost = lost_series_texts(series, found)
        if lost:  # a CSV would drop a series' words silently
            raise ValidationError(
                f"CSV carries a series' title on the rows of its language, and "
                f"{', '.join(lost[:3])} has none: use --format json, which keeps every "
                "series text", field="--format")
    data = dump_json(series, found) if fmt == "json" else dump_csv(found, series)
    return data, len(found)
# -- series texts per language ----------------------------------------------------------

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

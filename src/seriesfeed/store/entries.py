"""Queries for series and entries. Every function takes an open connection."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Select,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from seriesfeed.errors import MAX_STORED_INT, NotFoundError, StoreError
from seriesfeed.models import Author, AuthorKind, Entry, Series, SeriesText, SiteData
from seriesfeed.parts import PartRow, number_parts
from seriesfeed.store.slugs import entry_slug, slug_base
from seriesfeed.store.tables import (
    content_version,
    entries,
    entry_authors,
    held_entries,
    series,
    series_texts,
)

__all__ = [
    "MOVING", "TEXT_PINS", "Match", "StoredRow", "bump_version", "count_entries", "find_seq",
    "fingerprint",
    "get_entry", "get_series", "list_entries", "list_series", "match_entry", "max_seq",
    "next_release", "one_batch_at_a_time", "part_numbers", "part_rows", "pinned_holder",
    "pinned_part", "release_due",
    "release_urls", "remove_entry", "restore_url", "save_entry", "series_id", "series_of",
    "set_part", "set_translation", "site_data", "still_moving", "stored_by_id", "sync_hold",
    "translations_of", "unpin_texts", "upsert_series",
]

_CHUNK = 500
_WHOLE_TABLE = 5000  # above this many entries, authors are read in one scan


# -- series ---------------------------------------------------------------------------

def list_series(conn: Connection) -> list[Series]:
    rows = conn.execute(
        select(series.c.id, series.c.slug, series_texts)
        .select_from(series.outerjoin(series_texts, series_texts.c.series_id == series.c.id))
        .order_by(series.c.slug, series_texts.c.language)
    ).all()
    out: dict[str, Series] = {}
    for row in rows:
        item = out.setdefault(row.slug, Series(slug=row.slug))
        if row.language is not None:
            item.texts[row.language] = SeriesText(row.title, row.description, row.url)
    return list(out.values())


def get_series(conn: Connection, slug: str) -> Series | None:
    return next((s for s in list_series(conn) if s.slug == slug), None)


def series_id(conn: Connection, slug: str) -> int | None:
    return conn.execute(select(series.c.id).where(series.c.slug == slug)).scalar()


def upsert_series(conn: Connection, item: Series, now: datetime, *,
                  fill_only: bool = False, title_only: Collection[str] = ()) -> int:
    """Create the series or merge the given languages' texts into it.

    ``fill_only`` (a polled source): a text is set only where the stored one is empty, so
    a feed's title (often a section's name) never replaces what an editor set.
    ``title_only``: languages for which only a title was given (``--series-title``): a
    stored description and URL stay."""
    sid = series_id(conn, item.slug)
    if sid is None:
        sid = conn.execute(
            insert(series).values(slug=item.slug, created_at=now).returning(series.c.id)
        ).scalar_one()
        bump_version(conn)
    for language, t in item.texts.items():
        current = conn.execute(
            select(series_texts).where(series_texts.c.series_id == sid,
                                       series_texts.c.language == language)
        ).first()
        values = {"title": t.title, "description": t.description, "url": t.url}
        if current is not None and fill_only:
            values = {k: current._mapping[k] or v for k, v in values.items()}
        elif current is not None and language in title_only:
            values.update(description=current.description, url=current.url)
        if current is None:
            conn.execute(insert(series_texts).values(series_id=sid, language=language, **values))
            bump_version(conn)
        elif (current.title, current.description, current.url) != (
                values["title"], values["description"], values["url"]):
            conn.execute(update(series_texts)
                         .where(series_texts.c.series_id == sid,
                                series_texts.c.language == language)
                         .values(**values))
            bump_version(conn)
    return sid


# -- entries --------------------------------------------------------------------------

_other = entries.alias("other")
_ENTRY_COLUMNS = (
    entries.c.seq, entries.c.id, series.c.slug.label("series"), entries.c.language,
    entries.c.section, entries.c.title, entries.c.summary, entries.c.content_html,
    entries.c.url, entries.c.published, entries.c.updated,
    _other.c.id.label("translation_of"), entries.c.slug, entries.c.part,
    entries.c.title_pinned, entries.c.summary_pinned,
    # what part numbers are worked out from besides the above (part_rows' columns)
    entries.c.series_id, entries.c.translation_of.label("original_seq"),
)


def _entry_select() -> Select[tuple[object, ...]]:
    return select(*_ENTRY_COLUMNS).select_from(
        entries.join(series, series.c.id == entries.c.series_id)
        .outerjoin(_other, _other.c.seq == entries.c.translation_of)
    )


def _load(conn: Connection, query: Select[tuple[object, ...]],
          part_rows: list[PartRow] | None = None) -> list[Entry]:
    """The entries ``query`` (an ``_entry_select``) finds; ``part_rows``, when given,
    receives each one's ``PartRow`` too (the whole site: no second scan for the parts)."""
    rows: Sequence[Any] = conn.execute(query).all()  # one fetchall; Rows unpack like tuples
    authors = _authors_for(conn, [r[0] for r in rows])
    if part_rows is not None:
        part_rows.extend(PartRow(r[0], r[16], r[9], r[17], r[13]) for r in rows)
    no_authors: tuple[Author, ...] = ()
    # positional: the order of _ENTRY_COLUMNS (a feed build loads every entry)
    found = [
        Entry(seq=seq, id=id_, series=slug, language=language, section=section, title=title,
              summary=summary, content_html=content_html, url=url, published=published,
              updated=updated, translation_of=translation_of,
              authors=authors.get(seq, no_authors), slug=entry_slug_, pinned=pinned,
              texts_pinned=_texts_pinned(title_pinned, summary_pinned)
              if title_pinned or summary_pinned else ())
        for (seq, id_, slug, language, section, title, summary, content_html, url, published,
             updated, translation_of, entry_slug_, pinned, title_pinned, summary_pinned, _, _)
        in rows
    ]
    return found


# the texts an editor may pin, and the column that records each pin
TEXT_PINS = {"title": entries.c.title_pinned, "summary": entries.c.summary_pinned}


def _texts_pinned(title: object, summary: object) -> tuple[str, ...]:
    return tuple(name for name, pinned in (("title", title), ("summary", summary)) if pinned)


def unpin_texts(conn: Connection, seq: int, names: Iterable[str]) -> bool:
    """Give the texts ``names`` back to the entry's source (the next poll sets them);
    return whether a pin was lifted."""
    values = {TEXT_PINS[n].name: False for n in names}
    if not values:
        return False
    changed = conn.execute(update(entries).where(entries.c.seq == seq).values(**values)
                           .where(or_(*(TEXT_PINS[n] for n in names)))).rowcount > 0
    if changed:
        bump_version(conn)
    return changed


def part_numbers(conn: Connection, *, include_held: bool = False,
                 series_ids: Iterable[int] | None = None) -> dict[int, tuple[int, int]]:
    """seq -> (part, parts in its series) for every entry (of ``series_ids`` when given):
    one scan of narrow columns. Held entries count only with ``include_held``: a reader
    must not see "Part 3 of 19" while part 19 is still scheduled."""
    return number_parts(part_rows(conn, include_held=include_held, series_ids=series_ids))


def part_rows(conn: Connection, *, include_held: bool = False,
              series_ids: Iterable[int] | None = None) -> list[PartRow]:
    """What part numbers are worked out from (``parts.number_parts``), one row per entry."""
    query = select(entries.c.seq, entries.c.series_id, entries.c.published,
                   entries.c.translation_of, entries.c.part)
    if not include_held:
        query = query.where(_public())
    if series_ids is not None:
        query = query.where(entries.c.series_id.in_(_with_originals(conn, series_ids)))
    return [PartRow(*row) for row in conn.execute(query)]


def _with_originals(conn: Connection, series_ids: Iterable[int]) -> list[int]:
    """``series_ids`` and the series of every entry one of theirs translates, through
    translations of translations: a translation carries its original's number wherever
    the original is (``entries link`` accepts one in another series), so those rows are
    read too, as the whole site's read has them."""
    found = set(series_ids)
    new = set(found)
    original = entries.alias("original")
    while new:
        query = (select(original.c.series_id).distinct()
                 .select_from(entries.join(original,
                                           original.c.seq == entries.c.translation_of))
                 .where(entries.c.series_id.in_(sorted(new)),
                        original.c.series_id.notin_(sorted(found))))
        new = set(conn.execute(query).scalars()) - found
        found |= new
    return sorted(found)


def _with_parts(conn: Connection, found: list[Entry], *, include_held: bool) -> list[Entry]:
    if not found:
        return found
    sids = conn.execute(select(entries.c.series_id).where(
        entries.c.seq.in_([e.seq for e in found[:_CHUNK]])).distinct()).scalars().all() \
        if len(found) <= _CHUNK else None
    return _fill_parts(found, part_numbers(conn, include_held=include_held, series_ids=sids))


def _fill_parts(found: list[Entry], numbers: dict[int, tuple[int, int]]) -> list[Entry]:
    for e in found:
        e.part, e.parts = numbers.get(e.seq or -1, (None, None))
    return found


def pinned_part(conn: Connection, seq: int) -> int | None:
    """The part an editor set on the entry (None: computed)."""
    value = conn.execute(select(entries.c.part).where(entries.c.seq == seq)).scalar()
    return int(value) if value is not None else None


def set_part(conn: Connection, seq: int, part: int | None) -> bool:
    """Store (or with None, clear) the part an editor set; return whether it changed."""
    result = conn.execute(update(entries).where(
        entries.c.seq == seq, entries.c.part.is_distinct_from(part)).values(part=part))
    if result.rowcount:
        bump_version(conn)
    return bool(result.rowcount)


def pinned_holder(conn: Connection, seq: int, part: int) -> str | None:
    """The id of another entry of ``seq``'s series whose part an editor set to ``part``."""
    sid = select(entries.c.series_id).where(entries.c.seq == seq).scalar_subquery()
    return conn.execute(select(entries.c.id).where(
        entries.c.series_id == sid, entries.c.part == part, entries.c.seq != seq)).scalar()


def series_of(conn: Connection, seq: int) -> int:
    return int(conn.execute(select(entries.c.series_id).where(entries.c.seq == seq))
               .scalar_one())


def _authors_for(conn: Connection, seqs: Sequence[int]) -> dict[int, tuple[Author, ...]]:
    found: dict[int, list[Author]] = {}
    kinds = {k.value: k for k in AuthorKind}
    made: dict[tuple[str, str], Author] = {}  # Author is frozen: one object per name and kind
    columns = (entry_authors.c.entry_seq, entry_authors.c.name, entry_authors.c.kind)
    order = (entry_authors.c.entry_seq, entry_authors.c.position)
    if len(seqs) > _WHOLE_TABLE:
        # most of the table (a feed build reads every entry): one scan, not many IN lists
        wanted = set(seqs)
        queries = [select(*columns).order_by(*order)]
    else:
        wanted = None
        queries = [select(*columns).where(entry_authors.c.entry_seq.in_(seqs[i:i + _CHUNK]))
                   .order_by(*order) for i in range(0, len(seqs), _CHUNK)]
    for query in queries:
        for seq, name, kind in conn.execute(query).all():
            if wanted is not None and seq not in wanted:
                continue
            author = made.get((name, kind))
            if author is None:
                author = made[(name, kind)] = Author(name, kinds[kind])
            found.setdefault(seq, []).append(author)
    return {seq: tuple(a) for seq, a in found.items()}


def _public() -> Any:
    """Not held back for a future publication time (scheduled publishing)."""
    return entries.c.seq.notin_(select(held_entries.c.entry_seq))


def list_entries(conn: Connection, *, language: str | None = None,
                 series_slug: str | None = None, limit: int | None = None,
                 after_seq: int | None = None, upto_seq: int | None = None,
                 newest_first: bool = True, include_held: bool = False) -> list[Entry]:
    """Entries filtered as asked; newest published first (ties broken by seq) by default.

    Entries held for a future publication time are left out (feeds, pages and digests
    must not show them) unless ``include_held``; those are marked ``scheduled``."""
    query = _entry_select()
    if not include_held:
        query = query.where(_public())
    if language is not None:
        query = query.where(entries.c.language == language)
    if series_slug is not None:
        query = query.where(series.c.slug == series_slug)
    if after_seq is not None:
        query = query.where(entries.c.seq > after_seq)
    if upto_seq is not None:
        query = query.where(entries.c.seq <= upto_seq)
    if newest_first:
        query = query.order_by(entries.c.published.desc(), entries.c.seq.desc())
    else:
        query = query.order_by(entries.c.published, entries.c.seq)
    if limit is not None:
        query = query.limit(limit)
    if (language, series_slug, after_seq, upto_seq, limit) == (None,) * 5:
        # every entry part_rows would read (held ones left out alike): number them from
        # the rows just loaded instead of scanning the table again
        rows: list[PartRow] = []
        found = _load(conn, query, rows)
        _fill_parts(found, number_parts(rows))
    else:
        found = _with_parts(conn, _load(conn, query), include_held=include_held)
    if include_held:
        held = set(conn.execute(select(held_entries.c.entry_seq)).scalars())
        for e in found:
            e.scheduled = e.seq in held
    return found


def get_entry(conn: Connection, ref: str, *, parts: bool = False) -> Entry:
    """An entry by its id, its URL or its sequence number; with ``parts``, its part number
    too (a scan of its series: imports look entries up one by one and do not need it)."""
    cond = or_(entries.c.id == ref, entries.c.url == ref)
    # ASCII digits that fit a 64-bit column: int() also reads "²" (raising) and "١", and a
    # larger number made the driver raise; neither can be a stored number
    if ref.isascii() and ref.isdigit() and int(ref) <= MAX_STORED_INT:
        cond = or_(cond, entries.c.seq == int(ref))
    found = _load(conn, _entry_select().where(cond))
    if not found:
        raise NotFoundError(f"no entry with id, URL or number '{ref}'")
    return _with_parts(conn, found[:1], include_held=True)[0] if parts else found[0]


@dataclass(frozen=True)
class Match:
    """The stored entry an incoming one matches, and whether by its id; ``at_url``: another
    stored entry (seq, id, language) at the incoming URL, when the match is by id."""

    seq: int
    id: str
    language: str
    published: datetime
    by_id: bool
    series_id: int
    slug: str | None
    at_url: tuple[int, str, str] | None = None


def match_entry(conn: Connection, *, entry_id: str | None, url: str | None) -> Match | None:
    """The stored entry with ``entry_id``, else the one at ``url``."""
    conds = []
    if entry_id is not None:
        conds.append(entries.c.id == entry_id)
    if url is not None:
        conds.append(entries.c.url == url)
    if not conds:
        return None
    rows = conn.execute(select(entries.c.seq, entries.c.id, entries.c.language,
                               entries.c.published, entries.c.series_id, entries.c.slug,
                               entries.c.url).where(or_(*conds))).all()
    if not rows:
        return None
    # an id match wins over a URL match; the one query also finds who has the URL
    row = next((r for r in rows if entry_id is not None and r.id == entry_id), rows[0])
    other = next((r for r in rows if r.seq != row.seq and url is not None and r.url == url),
                 None)
    return Match(int(row.seq), row.id, row.language, row.published,
                 entry_id is not None and row.id == entry_id, int(row.series_id), row.slug,
                 (int(other.seq), other.id, other.language) if other is not None else None)


# a URL an entry holds for a moment within one transaction, while the entries of one
# document trade their URLs (never a real link: the scheme is ours)
MOVING = "urn:seriesfeed:moving:"


# the key of the transaction-level advisory lock that imports and polls take on PostgreSQL
_BATCH_LOCK = 734592


def one_batch_at_a_time(conn: Connection) -> None:
    """PostgreSQL: imports and polls (each one transaction that reads what it will write:
    which entry is where, in which series, at which URL) run one after another, as SQLite's
    write lock already makes them; otherwise an editor's move committed between a poll's
    read and its write is overwritten, and row locks taken in two orders deadlock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BATCH_LOCK})


def stored_by_id(conn: Connection, ids: Collection[str]) -> dict[str, tuple[int, str, str]]:
    """The stored entries among ``ids``: id -> (seq, url, language)."""
    out: dict[str, tuple[int, str, str]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        for r in conn.execute(select(entries.c.id, entries.c.seq, entries.c.url,
                                     entries.c.language)
                              .where(entries.c.id.in_(ordered[start:start + _CHUNK]))):
            out[r.id] = (int(r.seq), r.url, r.language)
    return out


def release_urls(conn: Connection, seqs: Collection[int]) -> None:
    """Let go of these entries' URLs until they are saved again in the same transaction
    (the URL column is unique: two entries swapping URLs need one to let go first)."""
    for seq in seqs:
        conn.execute(update(entries).where(entries.c.seq == seq)
                     .values(url=f"{MOVING}{seq}"))


def restore_url(conn: Connection, seq: int, url: str) -> None:
    conn.execute(update(entries).where(entries.c.seq == seq).values(url=url))


def still_moving(conn: Connection, seqs: Collection[int]) -> list[int]:
    """Which of ``seqs`` still hold a placeholder URL."""
    if not seqs:
        return []
    return [int(s) for s in conn.execute(select(entries.c.seq).where(
        entries.c.seq.in_(list(seqs)), entries.c.url.startswith(MOVING))).scalars()]


def find_seq(conn: Connection, *, entry_id: str | None = None,
             url: str | None = None) -> int | None:
    """The seq of the stored entry with ``entry_id``, else the one at ``url``."""
    found = match_entry(conn, entry_id=entry_id, url=url)
    return found.seq if found is not None else None


def max_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(entries.c.seq), 0))).scalar_one())


def site_data(conn: Connection, everything: list[Entry] | None = None) -> SiteData:
    """Everything the feeds and pages show: one read of the entries, their series and
    translation links (and the linked entries a feed names but does not list)."""
    if everything is None:
        everything = list_entries(conn)
    linked = {e.seq: e for e in everything if e.seq is not None}
    links = _links_among(everything)
    if links is None:  # a link to an entry not in the list: ask the store
        links = translations_of(conn, list(linked))
        for seq in {s for v in links.values() for s in v} - set(linked):
            linked[seq] = get_entry(conn, str(seq))
    return SiteData(everything, list_series(conn), links, linked)


def _links_among(found: list[Entry]) -> dict[int, list[int]] | None:
    """``translations_of`` for entries that carry every link themselves (each entry's
    ``translation_of`` names another in the list): no query. None when one does not."""
    by_id = {e.id: e.seq for e in found if e.id is not None and e.seq is not None}
    out: dict[int, set[int]] = {}
    for e in found:
        if e.translation_of is None or e.seq is None:
            continue
        other = by_id.get(e.translation_of)
        if other is None:
            return None
        out.setdefault(e.seq, set()).add(other)
        out.setdefault(other, set()).add(e.seq)
    return {k: sorted(v) for k, v in out.items()}


def fingerprint(conn: Connection) -> tuple[object, ...]:
    """Changes whenever anything a feed or page shows changes: one primary-key read."""
    return (conn.execute(select(content_version.c.version)
                         .where(content_version.c.id == 1)).scalar(),)


def bump_version(conn: Connection) -> None:
    """Record that series or entries changed (call inside the changing transaction)."""
    conn.execute(update(content_version).where(content_version.c.id == 1)
                 .values(version=content_version.c.version + 1))


def count_entries(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(entries.c.language, func.count()).group_by(entries.c.language))
    return {lang: int(n) for lang, n in rows}


@dataclass(frozen=True)
class StoredRow:
    seq: int
    created: bool
    changed: bool


def _row_values(e: Entry, sid: int) -> dict[str, object]:
    return {
        "series_id": sid, "language": e.language, "section": e.section, "title": e.title,
        "summary": e.summary, "content_html": e.content_html, "url": e.url,
        "published": e.published,
    }


def save_entry(conn: Connection, e: Entry, sid: int, now: datetime, *,
               found: Match | Literal["look"] | None = "look",
               from_source: bool = False) -> StoredRow:
    """Insert ``e`` or update the stored entry with the same id (else the same URL);
    ``found``: that entry as the caller already matched it (``match_entry``), so an import
    asks once per entry.

    ``updated`` is kept when nothing changed; on a change it becomes ``e.updated`` if the
    input carried one newer than the stored value, else ``now``. A slug is minted when the
    entry is first stored and again only when it moves to another series or language
    (its old slug may be another entry's there).

    A text an editor pinned (``e.texts_pinned`` from an editor's input, kept until
    ``unpin_texts``) is never overwritten ``from_source``; an editor's input adds its
    pins and never lifts one."""
    assert e.id is not None and e.url is not None
    if found == "look":
        found = match_entry(conn, entry_id=e.id, url=e.url)
    values = _row_values(e, sid)
    if not from_source:
        values.update({TEXT_PINS[n].name: True for n in e.texts_pinned})
    if found is None:
        seq = _with_free_slug(conn, sid, e, None, lambda slug: int(conn.execute(
            insert(entries).values(id=e.id, updated=e.updated or e.published, created_at=now,
                                   slug=slug, **values).returning(entries.c.seq)
        ).scalar_one()))
        _write_authors(conn, seq, e.authors)
        bump_version(conn)
        return StoredRow(seq, created=True, changed=True)
    seq = found.seq
    current = conn.execute(select(entries).where(entries.c.seq == seq)).one()._mapping
    for name, column in TEXT_PINS.items():
        if from_source and current[column.name]:
            del values[name]  # what an editor set is never overwritten by a source
    stored_authors = _authors_for(conn, [seq]).get(seq, ())
    changed = any(current[k] != v for k, v in values.items()) or stored_authors != e.authors
    if changed:
        stamp = e.updated if e.updated is not None and e.updated > current["updated"] else now
        change = update(entries).where(entries.c.seq == seq).values(updated=stamp, **values)
        if current["series_id"] != sid or current["language"] != e.language:
            _with_free_slug(conn, sid, e, seq,
                            lambda slug: conn.execute(change.values(slug=slug)).rowcount)
        else:
            conn.execute(change)
        if stored_authors != e.authors:
            conn.execute(delete(entry_authors).where(entry_authors.c.entry_seq == seq))
            _write_authors(conn, seq, e.authors)
        bump_version(conn)
    return StoredRow(seq, created=False, changed=changed)


_SLUG_BATCH = 8  # candidates looked up at once: base, base-2 … base-8
_SLUG_TRIES = 5  # writers racing for the same slug (PostgreSQL): each try takes a later one


def _free_slug(conn: Connection, sid: int, language: str, url: str | None, title: str,
              seq: int | None = None) -> str:
    """The slug an entry (``seq``, or a new one) gets in a series and language: its base
    when free there, else the first free ``-2``, ``-3`` …. Looked up by equality on the
    unique index, a few candidates at a time: a range (``>= 'base-'``) depends on the
    database's collation, and the whole series would make a large import quadratic."""
    base = slug_base(url, title)
    taken: set[str] = set()
    start = 1
    while True:
        wanted = [base if n == 1 else f"{base}-{n}" for n in range(start, start + _SLUG_BATCH)]
        query = select(entries.c.slug).where(entries.c.series_id == sid,
                                             entries.c.language == language,
                                             entries.c.slug.in_(wanted))
        if seq is not None:
            query = query.where(entries.c.seq != seq)
        taken.update(conn.execute(query).scalars())
        slug = entry_slug(url, title, taken)
        if slug in wanted:
            return slug
        start += _SLUG_BATCH


def _with_free_slug(conn: Connection, sid: int, e: Entry, seq: int | None,
                    write: Callable[[str], int]) -> int:
    """``write`` with a free slug. On SQLite writers take turns (BEGIN IMMEDIATE), so
    what was read is what is there. On PostgreSQL another writer may commit the same slug
    between the read and the write: the unique index refuses it, and inside a savepoint
    the slug is minted again (the read now sees the other's row)."""
    if conn.dialect.name == "sqlite":
        return write(_free_slug(conn, sid, e.language, e.url, e.title, seq))
    slug = ""
    for _ in range(_SLUG_TRIES):
        slug = _free_slug(conn, sid, e.language, e.url, e.title, seq)
        try:
            with conn.begin_nested():
                return write(slug)
        except IntegrityError:
            taken = conn.execute(select(entries.c.seq).where(
                entries.c.series_id == sid, entries.c.language == e.language,
                entries.c.slug == slug)).first()
            if taken is None:  # another unique key (id, URL): not ours to retry
                raise
    raise StoreError(f"the entry {e.id}: other writers kept taking the slug '{slug}' "
                     f"({_SLUG_TRIES} tries): import it again")


def _write_authors(conn: Connection, seq: int, authors: Iterable[Author]) -> None:
    rows = [{"entry_seq": seq, "position": i, "name": a.name, "kind": a.kind.value}
            for i, a in enumerate(authors)]
    if rows:
        conn.execute(insert(entry_authors), rows)


def set_translation(conn: Connection, seq: int, other_seq: int | None) -> bool:
    """Record that entry ``seq`` translates ``other_seq``; return whether anything changed."""
    result = conn.execute(
        update(entries).where(entries.c.seq == seq,
                              or_(entries.c.translation_of.is_(None),
                                  entries.c.translation_of != other_seq)
                              if other_seq is not None else entries.c.translation_of.isnot(None))
        .values(translation_of=other_seq)
    )
    if result.rowcount:
        bump_version(conn)
    return bool(result.rowcount)


def translations_of(conn: Connection, seqs: Sequence[int]) -> dict[int, list[int]]:
    """For each seq, the seqs of entries linked to it in either direction."""
    out: dict[int, list[int]] = {}
    for start in range(0, len(seqs), _CHUNK):
        chunk = list(seqs[start:start + _CHUNK])
        held = select(held_entries.c.entry_seq)
        rows = conn.execute(
            select(entries.c.seq, entries.c.translation_of).where(
                and_(entries.c.translation_of.isnot(None),
                     or_(entries.c.seq.in_(chunk), entries.c.translation_of.in_(chunk)),
                     entries.c.seq.notin_(held), entries.c.translation_of.notin_(held)))
        )
        for seq, other in rows:
            if seq in chunk:
                out.setdefault(seq, []).append(other)
            if other in chunk:
                out.setdefault(other, []).append(seq)
    return {k: sorted(set(v)) for k, v in out.items()}


def remove_entry(conn: Connection, ref: str) -> Entry:
    entry = get_entry(conn, ref)
    conn.execute(update(entries).where(entries.c.translation_of == entry.seq)
                 .values(translation_of=None))
    conn.execute(delete(entry_authors).where(entry_authors.c.entry_seq == entry.seq))
    conn.execute(delete(entries).where(entries.c.seq == entry.seq))
    bump_version(conn)
    return entry


# -- scheduled publishing ---------------------------------------------------------------

def sync_hold(conn: Connection, seq: int, published: datetime, now: datetime, *,
              created: bool) -> bool:
    """Hold a new entry whose publication time is in the future; move a held entry's
    release with its date. An entry already published is never held again (it may have
    been sent). Return whether the entry is held."""
    held = conn.execute(select(held_entries.c.release_at)
                        .where(held_entries.c.entry_seq == seq)).first()
    if held is None:
        if created and published > now:
            conn.execute(insert(held_entries).values(entry_seq=seq, release_at=published))
            return True
        return False
    if held.release_at != published:
        conn.execute(update(held_entries).where(held_entries.c.entry_seq == seq)
                     .values(release_at=published))
    return True


def next_release(conn: Connection) -> datetime | None:
    value = conn.execute(select(func.min(held_entries.c.release_at))).scalar()
    return value if isinstance(value, datetime) else None


def release_due(conn: Connection, now: datetime) -> list[int]:
    """Publish the held entries whose time has come: each gets a new (higher) seq, so the
    digest cursors, which passed it while it was held, see it as new exactly once.
    Return the new seqs."""
    due = conn.execute(select(held_entries.c.entry_seq).where(held_entries.c.release_at <= now)
                       .order_by(held_entries.c.release_at, held_entries.c.entry_seq)
                       ).scalars().all()
    out: list[int] = []
    for old in due:
        row = dict(conn.execute(select(entries).where(entries.c.seq == old)).one()._mapping)
        # free the unique id, URL and slug for the copy, then move everything onto it
        conn.execute(update(entries).where(entries.c.seq == old).values(
            id=f"releasing:{old}", url=f"releasing:{old}", slug=None))
        row.pop("seq")
        new = int(conn.execute(insert(entries).values(**row).returning(entries.c.seq))
                  .scalar_one())
        conn.execute(update(entry_authors).where(entry_authors.c.entry_seq == old)
                     .values(entry_seq=new))
        conn.execute(update(entries).where(entries.c.translation_of == old)
                     .values(translation_of=new))
        conn.execute(delete(held_entries).where(held_entries.c.entry_seq == old))
        conn.execute(delete(entries).where(entries.c.seq == old))
        out.append(new)
    if out:
        bump_version(conn)
    return out

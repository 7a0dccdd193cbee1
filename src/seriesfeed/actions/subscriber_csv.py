"""Subscribers as CSV, both ways, so that export then import restores every row: status
(unsubscribed, bounced and complained rows stay suppressed), series followed, consent
record and dates.

Columns (only ``email`` required on import): ``email,name,language,frequency,status,
series,created_at,confirmed_at,unsubscribed_at,consent_at,consent_ip,consent_source,
hard_bounces,suppressed,start``. ``series`` is the slugs followed, space-separated (empty:
all); dates are ISO 8601 with an offset; ``suppressed`` is why an address may never be mailed
again (``complaint``), empty otherwise; ``start`` is ``first`` (the series from part 1, once
confirmed: an imported confirmed row starts at once) or ``new`` (empty: new). An export
says ``first`` only while the reader still has back-catalogue parts to come, so exporting
and importing a list never sends anyone their back catalogue twice.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from seriesfeed import emails
from seriesfeed.actions.subscribers import MAX_NAME, check_choice, check_start, clean_name
from seriesfeed.addresses import normalize_email
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import ImportError_, ValidationError
from seriesfeed.importers.csvfmt import FORMULA_START, neutralise
from seriesfeed.importers.seriespage import decode_text
from seriesfeed.models import OutboxKind, Start, Subscriber, SubscriberStatus
from seriesfeed.store import Store
from seriesfeed.store import catch_up as cq
from seriesfeed.store import entries as eq
from seriesfeed.store import ops as oq
from seriesfeed.store import outbox as outq
from seriesfeed.store import subscribers as sq

__all__ = [
    "COLUMNS",
    "DATES",
    "SUPPRESSION_REASONS",
    "Row",
    "SubscriberImport",
    "export_rows",
    "import_subscribers",
]

COLUMNS = ("email", "name", "language", "frequency", "status", "series", "created_at",
           "confirmed_at", "unsubscribed_at", "consent_at", "consent_ip", "consent_source",
           "hard_bounces", "suppressed", "start")
DATES = ("created_at", "confirmed_at", "unsubscribed_at", "consent_at")
SUPPRESSION_REASONS = ("complaint", "bounced", "removed")


@dataclass
class Row:
    line: int
    subscriber: Subscriber
    hard_bounces: int
    suppressed: str


@dataclass
class SubscriberImport:
    added: int = 0
    skipped: list[str] = field(default_factory=list)
    pending: list[Subscriber] = field(default_factory=list)  # added as pending
    welcomed: int = 0  # welcome mails queued

    def summary(self, path: str) -> str:
        return f"{path}: {self.added} added, {len(self.skipped)} skipped"


def _restore(cell: str) -> str:
    """Undo :func:`neutralise`: one leading ``'`` before a formula character goes."""
    if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_START):
        return cell[1:]
    return cell


def _date(value: str, path: str, line: int, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ImportError_(f"'{value}' is not an ISO 8601 date and time", path=path,
                           line=line, field=name) from None
    if parsed.tzinfo is None:
        raise ImportError_(f"'{value}' has no UTC offset", path=path, line=line, field=name)
    return parsed.astimezone(UTC)


class _Lines:
    """The file's lines for the CSV reader, noting where each record starts: a quoted cell
    may hold line breaks, and the reader counts only the line a record ends on, so an
    error would name the wrong line (blank lines, which the reader skips, are not starts)."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.number = 0
        self.start: int | None = None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        if self.start is None and line.strip("\r\n"):
            self.start = self.number
        return line


def _parse(config: Config, path: Path, known_series: set[str]) -> list[Row]:
    try:
        text = decode_text(path.read_bytes(), str(path))
    except FileNotFoundError as exc:
        raise ImportError_("no such file", path=str(path)) from exc
    where = str(path)
    lines = _Lines(text)
    reader = csv.DictReader(lines, strict=True)
    rows: list[Row] = []
    seen: dict[str, int] = {}
    try:
        header = reader.fieldnames or []
        if "email" not in header:
            raise ImportError_("the header lacks the column 'email'", path=where, line=1,
                               field="email")
        unknown = [c for c in header if c not in COLUMNS]
        if unknown:
            raise ImportError_(f"unknown column '{unknown[0]}' (columns: {', '.join(COLUMNS)})",
                               path=where, line=1, field=unknown[0])
        lines.start = None
        for row in reader:
            line = lines.start or reader.line_num
            lines.start = None
            if None in row:
                raise ImportError_("more cells than columns", path=where, line=line)
            cells = {k: _restore((v or "").strip()) for k, v in row.items() if k}
            try:
                address = normalize_email(cells.get("email", ""))
                lang = cells.get("language") or config.site.default_language
                freq = check_choice(config, lang, cells.get("frequency") or "weekly")
            except ValidationError as exc:
                raise ImportError_(exc.reason, path=where, line=line,
                                   field=exc.field) from exc
            try:
                start = check_start(cells.get("start") or None)
            except ValidationError as exc:
                raise ImportError_(exc.reason, path=where, line=line, field="start") from exc
            try:
                status = SubscriberStatus(cells.get("status") or "pending")
            except ValueError:
                raise ImportError_(f"status must be one of "
                                   f"{', '.join(s.value for s in SubscriberStatus)}",
                                   path=where, line=line, field="status") from None
            if len(cells.get("name", "")) > MAX_NAME:
                raise ImportError_(f"the name is longer than {MAX_NAME} characters",
                                   path=where, line=line, field="name")
            key = sq.email_key(address)
            if key in seen:
                raise ImportError_(f"'{address}' is already on line {seen[key]}", path=where,
                                   line=line, field="email")
            seen[key] = line
            followed = tuple(sorted(set(cells.get("series", "").split())))
            for slug in followed:
                if slug not in known_series:
                    raise ImportError_(f"no series '{slug}' (import the entries first)",
                                       path=where, line=line, field="series")
            dates = {name: _date(cells.get(name, ""), where, line, name) for name in DATES}
            bounces = cells.get("hard_bounces") or "0"
            if not bounces.isdigit() or len(bounces) > 6:
                raise ImportError_(f"'{bounces}' is not a count", path=where, line=line,
                                   field="hard_bounces")
            suppressed = cells.get("suppressed", "")
            if suppressed and suppressed not in SUPPRESSION_REASONS:
                raise ImportError_(f"suppressed must be empty or one of "
                                   f"{', '.join(SUPPRESSION_REASONS)}", path=where, line=line,
                                   field="suppressed")
            if suppressed and status in (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED):
                raise ImportError_(f"a suppressed address ({suppressed}) cannot be "
                                   f"{status.value}", path=where, line=line, field="suppressed")
            rows.append(Row(line, Subscriber(
                email=address, name=clean_name(cells.get("name")), language=lang,
                frequency=freq, status=status, series=followed,
                created_at=dates["created_at"], confirmed_at=dates["confirmed_at"],
                unsubscribed_at=dates["unsubscribed_at"], consent_at=dates["consent_at"],
                consent_ip=cells.get("consent_ip") or None,
                consent_source=cells.get("consent_source") or f"import:{path.name}",
                start=start),
                int(bounces), suppressed))
    except csv.Error as exc:
        raise ImportError_(f"not valid CSV: {exc}", path=where, line=reader.line_num) from exc
    return rows


def import_subscribers(store: Store, config: Config, path: Path, *,
                       welcome: bool = False) -> SubscriberImport:
    """Read the rows in one transaction: all of them or (on any error) none. An address
    already stored or suppressed is skipped: an import never resubscribes anyone.
    ``welcome``: each confirmed row added gets the welcome mail (queued here)."""
    with store.read() as conn:
        known = {s.slug for s in eq.list_series(conn)}
    rows = _parse(config, path, known)
    report = SubscriberImport()
    now = now_utc()
    with store.write() as conn:
        for row in rows:
            sub = row.subscriber
            if sq.is_suppressed(conn, sub.email) or sq.get(conn, email=sub.email) is not None:
                report.skipped.append(sub.email)
                continue
            sub.id = oq.restore_subscriber(conn, sub, now, hard_bounces=row.hard_bounces,
                                           suppressed=row.suppressed or None)
            report.added += 1
            if sub.status is SubscriberStatus.CONFIRMED and sub.start is Start.FIRST:
                cq.begin(conn, sub.id, eq.max_seq(conn))
            if sub.status is SubscriberStatus.CONFIRMED and welcome:
                report.welcomed += 1
                outq.queue(conn, OutboxKind.WELCOME, sub.id, sub.email, emails.make_message_id(
                    "welcome", f"{sub.id}.{int(now.timestamp() * 1_000_000)}", config), now)
            if sub.status is SubscriberStatus.PENDING:
                report.pending.append(sub)
    return report


def export_rows(store: Store, config: Config) -> Iterator[list[str]]:
    zone = config.zone
    yield list(COLUMNS)
    with store.read() as conn:
        reasons = oq.suppression_reasons(conn)
        bounces = oq.hard_bounce_counts(conn)
        catching_up = cq.catching_up(conn)
        for sub in sq.iterate(conn, None):
            assert sub.id is not None
            values = [sub.email, sub.name or "", sub.language, sub.frequency.value,
                      sub.status.value, " ".join(sub.series),
                      *(_stamp(getattr(sub, name), zone) for name in DATES),
                      sub.consent_ip or "", sub.consent_source or "",
                      str(bounces.get(sub.id, 0)), reasons.get(sq.email_hash(sub.email), ""),
                      Start.FIRST.value if sub.start is Start.FIRST and (
                          sub.id in catching_up or sub.status is SubscriberStatus.PENDING)
                      else Start.NEW.value]
            yield [neutralise(v) for v in values]


def _stamp(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat() if value else ""

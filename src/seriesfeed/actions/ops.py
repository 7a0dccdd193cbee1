"""Operator verbs: the outbox and digest records, operator retries, backups and restores,
the store check (without migrating) and the single-runner lock; opening and migrating the
store is ``actions.opening``. The drain (``actions.delivery``) and bounce processing
(``actions.bounces``) are named here too, for the shells that run them beside these; the
status report is ``actions.status``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seriesfeed.actions.opening import refuse_missing
from seriesfeed.clock import local_time, now_utc
from seriesfeed.config import Config
from seriesfeed.errors import (
    ConfigError,
    LockError,
    NotFoundError,
    StoreDamagedError,
    ValidationError,
    check_stored_int,
)
from seriesfeed.models import OutboxState
from seriesfeed.store import Connection, Store, backup
from seriesfeed.store import ops as oq
from seriesfeed.store import outbox as outq
from seriesfeed.store import subscribers as sq
from seriesfeed.store.check import CheckReport
from seriesfeed.store.check import check_store as _check
from seriesfeed.store.locks import RunnerLock, SenderLock

if TYPE_CHECKING:
    from seriesfeed.actions.bounces import BounceRun
    from seriesfeed.actions.bounces import process as process_bounces
    from seriesfeed.actions.delivery import DrainReport, drain_outbox


def __getattr__(name: str) -> Any:
    """The drain's and the bounce reader's names, imported on first use: they bring the
    SMTP client, the renderers and the DSN parser, which `status` or `backup` never need."""
    if name in ("BounceRun", "process_bounces"):
        from seriesfeed.actions import bounces

        return bounces.BounceRun if name == "BounceRun" else bounces.process
    if name in ("DrainReport", "drain_outbox"):
        from seriesfeed.actions import delivery

        return getattr(delivery, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BounceRun", "DrainReport", "RetryResult", "Store", "backup_store", "check_store",
    "drain_outbox", "list_digests", "list_outbox", "process_bounces",
    "restore_store", "retry_digest", "retry_outbox", "runner_lock", "show_digest", "verdict",
]


def _row_json(row: oq.OutboxRow, zone: tzinfo) -> dict[str, Any]:
    out = asdict(row)
    for key in ("next_at", "created_at", "sent_at", "bounced_at"):
        out[key] = local_time(out[key], zone)
    return out


def list_outbox(store: Store, config: Config, *, state: str | None = None,
                digest_id: int | None = None, email: str | None = None,
                limit: int | None = None, offset: int = 0,
                newest_first: bool = False) -> list[dict[str, Any]]:
    """Outbox rows, oldest first (``newest_first``: the console's order), a page at a time
    with ``limit`` and ``offset``."""
    if state is not None and state not in {s.value for s in OutboxState}:
        raise ValidationError(f"'{state}' is not an outbox state (one of "
                              f"{', '.join(s.value for s in OutboxState)})", field="--state")
    if digest_id is not None:
        check_stored_int(digest_id, "--digest", minimum=1)
    with store.read() as conn:
        rows = oq.list_outbox(conn, state=state, digest_id=digest_id,
                              email_key=sq.email_key(email) if email else None,
                              limit=limit, offset=offset, newest_first=newest_first)
    return [_row_json(r, config.zone) for r in rows]


@dataclass(frozen=True)
class RetryResult:
    queued: list[int]  # rows put back to queued, with their Message-IDs
    skipped: list[dict[str, Any]]  # {"id", "recipient", "why"}: failed rows left failed


def _retry(conn: Connection, ids: list[int] | None, digest_id: int | None) -> RetryResult:
    """The one retry path (`outbox retry`, `digests retry`, the console): rows named are
    all retried or none is; with ``ids`` None every failed row (of ``digest_id``) whose
    recipient may still get mail is, and the rest are reported as skipped."""
    if ids is not None:
        oq.retry_failed(conn, ids, digest_id=digest_id, now=now_utc(), check_only=True)
        blocked = outq.retry_blockers(conn, ids)
        if blocked:
            row_id = min(blocked)
            raise ValidationError(f"outbox row {row_id} is not retried: {blocked[row_id]}",
                                  field="ID")
        return RetryResult(oq.retry_failed(conn, ids, digest_id=digest_id, now=now_utc()), [])
    failed = oq.failed_ids(conn, digest_id)
    blocked = outq.retry_blockers(conn, failed)
    # another operator's retry may put some of them back first (PostgreSQL reads each
    # statement afresh): those are skipped, not an error
    queued = oq.retry_failed(conn, [i for i in failed if i not in blocked],
                             digest_id=digest_id, now=now_utc(), named=False)
    skipped = []
    for row_id in sorted(blocked):
        row = oq.get_outbox(conn, row_id)
        skipped.append({"id": row_id, "recipient": row.recipient if row else None,
                        "why": blocked[row_id]})
    return RetryResult(queued, skipped)


def retry_outbox(store: Store, ids: list[int] | None, *,
                 digest_id: int | None = None) -> RetryResult:
    """Failed rows back to queued (same Message-ID); one transaction: all or none. Never
    for a recipient who was erased, is suppressed, or is no longer subscribed: a row named
    for one is refused (nothing changes); ``--failed`` skips them and says so."""
    if ids is not None and not ids:
        raise ValidationError("name the rows to retry (IDs) or give --failed", field="ID")
    for row_id in ids or ():
        check_stored_int(row_id, "ID", minimum=1)
    if digest_id is not None:
        check_stored_int(digest_id, "--digest", minimum=1)
    with store.write() as conn:
        return _retry(conn, ids, digest_id)


def retry_digest(store: Store, digest_id: int) -> RetryResult:
    """`digests retry ID`: the digest's failed rows back to queued, by the same path and
    rules as `outbox retry --failed --digest ID`; the next drain sends them."""
    check_stored_int(digest_id, "DIGEST_ID", minimum=1)
    with store.write() as conn:
        if not oq.digest_summaries(conn, digest_id):
            raise NotFoundError(f"no digest {digest_id}")
        return _retry(conn, None, digest_id)


def _digest_json(d: oq.DigestSummary, zone: tzinfo) -> dict[str, Any]:
    out = asdict(d)
    for key in ("created_at", "first_sent_at", "last_sent_at"):
        out[key] = local_time(out[key], zone)
    return out


def list_digests(store: Store, config: Config) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [_digest_json(d, config.zone) for d in oq.digest_summaries(conn)]


def show_digest(store: Store, config: Config, digest_id: int) -> dict[str, Any]:
    """One digest's figures and the rows that were not sent (failed and pending), so "who did
    not get Tuesday's digest, and why?" is one command."""
    check_stored_int(digest_id, "DIGEST_ID", minimum=1)
    with store.read() as conn:
        found = oq.digest_summaries(conn, digest_id)
        if not found:
            raise NotFoundError(f"no digest {digest_id}")
        rows = oq.list_outbox(conn, digest_id=digest_id)
    out = _digest_json(found[0], config.zone)
    out["not_sent"] = [
        {"id": r.id, "recipient": r.recipient, "state": r.state, "attempts": r.attempts,
         "smtp_code": r.smtp_code, "error": r.last_error, "note": r.note,
         "next_at": local_time(r.next_at, config.zone), "why": _why(r, config.zone),
         "message_id": r.message_id, "subscriber_id": r.subscriber_id}
        for r in rows if r.state != OutboxState.SENT.value]
    return out


def _why(r: oq.OutboxRow, zone: tzinfo) -> str:
    """One line for the console: why this recipient has not got the digest (yet)."""
    # the relay's reply usually starts with its code already
    code = f"{r.smtp_code} " if r.smtp_code and \
        not (r.last_error or "").startswith(str(r.smtp_code)) else ""
    if r.state == OutboxState.FAILED.value:
        return f"failed: {code}{r.last_error or 'no reason recorded'}"
    if r.state == OutboxState.RETRY.value:
        return (f"waiting to retry at {local_time(r.next_at, zone)} after attempt "
                f"{r.attempts}: {code}{r.last_error or ''}").rstrip(": ")
    if r.state == OutboxState.SENDING.value:
        return "being sent now"
    return "queued: the next drain sends it"


# -- backups --------------------------------------------------------------------------------

def backup_store(store: Store, target: Path) -> int:
    return backup.backup(store, target)


def restore_store(store: Store, source: Path) -> str:
    """Restore a backup into the store, refused while a daemon (or a send) holds it; then
    bring the schema up to date. Returns the schema revision of the backup."""
    revision = backup.check_backup(source)
    runner = RunnerLock(store)
    try:
        runner.acquire()
    except LockError as exc:
        raise LockError(f"refusing to restore: {exc}; stop it first") from None
    try:
        sender = SenderLock(store)
        if sender.needed and not sender.try_acquire():
            raise LockError("refusing to restore: a `digest send` is draining this store; "
                            "wait for it to finish")
        try:
            backup.restore(store, source)
        finally:
            sender.release()
        store.migrate()
    finally:
        runner.release()
    return revision


# -- the store: check, migrate, the single-runner lock ------------------------------------

def check_store(config: Config) -> CheckReport:
    """What is wrong with the store, without changing it (no migration); the caller prints
    it, then :func:`verdict` turns problems into the one-line error."""
    store = Store(config.database.url, base_dir=config.base_dir)
    try:
        refuse_missing(store)
        return _check(store)
    finally:
        store.close()


def verdict(config: Config, report: CheckReport) -> None:
    """Raise the one-line error for a report with problems."""
    if not report.problems:
        return
    store = Store(config.database.url, base_dir=config.base_dir)
    try:
        where = store.describe()
    finally:
        store.close()
    more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
    raise StoreDamagedError(f"the store {where} is damaged: {report.problems[0]}{more}: "
                            "restore it from a backup (see the lines above)")


@contextmanager
def runner_lock(store: Store, *, sender_only: bool = False) -> Iterator[None]:
    """One daemon per SQLite store (a flock). On PostgreSQL any number of daemons run, one
    leading the schedule by lease (``actions.nodes``); each holds the advisory lock shared,
    which only keeps a restore out. A sender-only process shares the outbox without it, on
    PostgreSQL only: on SQLite the one daemon sends."""
    if sender_only:
        if store.dialect == "sqlite":
            raise ConfigError("--sender-only needs PostgreSQL in database.url: on SQLite "
                              "the one daemon sends", key="database.url")
        yield
        return
    with RunnerLock(store, shared=store.dialect == "postgresql"):
        yield

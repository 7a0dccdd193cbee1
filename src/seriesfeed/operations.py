"""The operator's verbs: outbox rows and digests on the command line, operator retries, and
the one status computation that `status`, /healthz and /metrics all report from."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import NotFoundError, ValidationError
from seriesfeed.models import OutboxState
from seriesfeed.store import Store
from seriesfeed.store import ops as oq
from seriesfeed.store import subscribers as sq

__all__ = [
    "backup_store", "health", "list_digests", "list_outbox", "local_time", "restore_store",
    "retry_outbox", "show_digest", "status_figures",
]


def local_time(value: datetime | None, zone: tzinfo) -> str | None:
    """One way to write a time everywhere (logs, status, JSON): the site's time zone, with
    its offset, to the second."""
    if value is None:
        return None
    return value.astimezone(zone).isoformat(timespec="seconds")


def _row_json(row: oq.OutboxRow, zone: tzinfo) -> dict[str, Any]:
    out = asdict(row)
    for key in ("next_at", "created_at", "sent_at", "bounced_at"):
        out[key] = local_time(out[key], zone)
    return out


def list_outbox(store: Store, config: Config, *, state: str | None = None,
                digest_id: int | None = None, email: str | None = None) -> list[dict[str, Any]]:
    if state is not None and state not in {s.value for s in OutboxState}:
        raise ValidationError(f"'{state}' is not an outbox state (one of "
                              f"{', '.join(s.value for s in OutboxState)})", field="--state")
    with store.read() as conn:
        rows = oq.list_outbox(conn, state=state, digest_id=digest_id,
                              email_key=sq.email_key(email) if email else None)
    return [_row_json(r, config.zone) for r in rows]


def retry_outbox(store: Store, ids: list[int] | None, *, digest_id: int | None = None) -> list[int]:
    """Failed rows back to queued (same Message-ID); one transaction: all or none."""
    if ids is not None and not ids:
        raise ValidationError("name the rows to retry (IDs) or give --failed", field="ID")
    with store.write() as conn:
        return oq.retry_failed(conn, ids, digest_id=digest_id, now=now_utc())


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
    with store.read() as conn:
        found = oq.digest_summaries(conn, digest_id)
        if not found:
            raise NotFoundError(f"no digest {digest_id}")
        rows = oq.list_outbox(conn, digest_id=digest_id)
    out = _digest_json(found[0], config.zone)
    out["not_sent"] = [
        {"id": r.id, "recipient": r.recipient, "state": r.state, "attempts": r.attempts,
         "smtp_code": r.smtp_code, "error": r.last_error, "note": r.note,
         "next_at": local_time(r.next_at, config.zone)}
        for r in rows if r.state != OutboxState.SENT.value]
    return out


# -- the one status computation: `status`, /healthz and /metrics report from it -------------

def status_figures(store: Store, config: Config) -> dict[str, Any]:
    """The figures beyond the headline counts: outbox rows by state and kind, message
    totals, digests per language and frequency, subscribers by status and language, each
    job's last success, and the oldest queued row."""
    zone = config.zone
    with store.read() as conn:
        by_kind = oq.outbox_by_state_kind(conn)
        totals = oq.outbox_totals(conn)
        recorded = oq.digests_by_language_frequency(conn)
        people = oq.subscribers_by_status_language(conn)
        successes = oq.last_successes(conn)
        oldest = oq.oldest_due(conn)
    return {
        "outbox_by_kind": [{"state": s, "kind": k, "count": n} for s, k, n in sorted(by_kind)],
        "messages": totals,
        "digests": [{"language": lang, "frequency": f, "count": n}
                    for lang, f, n in sorted(recorded)],
        "subscribers_by_language": [{"status": s, "language": lang, "count": n}
                                    for s, lang, n in sorted(people)],
        "last_success": {
            job: {"started_at": local_time(start, zone), "finished_at": local_time(end, zone),
                  "seconds": round((end - start).total_seconds(), 3) if end else None,
                  "timestamp": start.timestamp()}
            for job, (start, end) in sorted(successes.items())},
        "oldest_queued_at": local_time(oldest, zone),
    }


def health(report: dict[str, Any]) -> tuple[str, list[str]]:
    """``up``, or ``degraded`` with the reasons, from a status report (the store answered;
    when it does not, the caller says ``down``)."""
    reasons = []
    outbox = dict(report.get("outbox") or {})
    if outbox.get("retry") and report.get("last_error"):
        # not the error itself: it may name a recipient, and /healthz is public (the
        # metrics token adds it)
        reasons.append(f"{outbox['retry']} messages waiting to be retried after delivery "
                       "errors")
    for job in report.get("jobs", []):
        last = job.get("last") or {}
        if last and last.get("ok") is False:
            reasons.append(f"job {job['name']} failed at {last.get('started_at')}")
    return ("degraded" if reasons else "up"), reasons


# -- backups --------------------------------------------------------------------------------

def backup_store(store: Store, target: Path) -> int:
    from seriesfeed.store import backup

    return backup.backup(store, target)


def restore_store(store: Store, source: Path) -> str:
    """Restore a backup into the store, refused while a daemon (or a send) holds it; then
    bring the schema up to date. Returns the schema revision of the backup."""
    from seriesfeed.errors import LockError
    from seriesfeed.store import backup
    from seriesfeed.store.locks import RunnerLock, SenderLock

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

"""Queries for the daemon's job history and for `status`: what ran, when, and with what result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from seriesfeed.store.tables import job_runs, outbox, subscribers

__all__ = [
    "JobRun", "finish_run", "last_runs", "last_success", "outbox_counts", "outbox_last_error",
    "start_run", "subscriber_counts",
]


@dataclass(frozen=True)
class JobRun:
    job: str
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None
    summary: str | None

    def to_json(self) -> dict[str, object]:
        return {"job": self.job, "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "ok": self.ok, "summary": self.summary}


def start_run(conn: Connection, job: str, now: datetime) -> int:
    return int(conn.execute(
        insert(job_runs).values(job=job, started_at=now).returning(job_runs.c.id)
    ).scalar_one())


def finish_run(conn: Connection, run_id: int, now: datetime, ok: bool, summary: str) -> None:
    conn.execute(update(job_runs).where(job_runs.c.id == run_id)
                 .values(finished_at=now, ok=ok, summary=summary[:2000]))


def last_runs(conn: Connection) -> dict[str, JobRun]:
    """The newest run of every job."""
    newest = (select(job_runs.c.job, func.max(job_runs.c.id).label("id"))
              .group_by(job_runs.c.job).subquery())
    rows = conn.execute(select(job_runs).join(newest, newest.c.id == job_runs.c.id))
    return {r.job: JobRun(r.job, r.started_at, r.finished_at, r.ok, r.summary) for r in rows}


def last_success(conn: Connection, job: str) -> datetime | None:
    value = conn.execute(select(func.max(job_runs.c.started_at))
                         .where(job_runs.c.job == job, job_runs.c.ok.is_(True))).scalar()
    return value if isinstance(value, datetime) else None


def outbox_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
    return {state: int(n) for state, n in rows}


def outbox_last_error(conn: Connection) -> str | None:
    value = conn.execute(
        select(outbox.c.last_error).where(outbox.c.last_error.isnot(None),
                                          outbox.c.state.in_(("retry", "failed")))
        .order_by(outbox.c.id.desc()).limit(1)).scalar()
    return str(value) if value is not None else None


def subscriber_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(subscribers.c.status, func.count())
                        .group_by(subscribers.c.status))
    return {status: int(n) for status, n in rows}

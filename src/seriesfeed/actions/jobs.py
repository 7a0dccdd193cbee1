"""The daemon's jobs: which run, on what schedule (``plan``, the scheduled jobs the daemon
runs and ``seriesfeed status`` reports; the daemon adds its publish and store-watch jobs
itself, neither recorded), and the job-run records (when each last ran and how it ended)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from seriesfeed.config import Config, SourceConfig
from seriesfeed.models import Frequency
from seriesfeed.schedules import Trigger, make_trigger, next_fire
from seriesfeed.store import Store, ops
from seriesfeed.store import jobs as jq

__all__ = ["JobKind", "Planned", "finish_run", "first_start", "last_success", "next_digest",
           "plan", "start_run"]


class JobKind(enum.Enum):
    """What a scheduled job does: the daemon binds each kind to its verb."""

    OUTBOX = "outbox"  # drain the outbox (digests queued earlier, confirmations)
    FEEDS = "feeds"  # build the feeds and pages
    DIGEST = "digest"  # record and send one frequency's digests
    SOURCE = "source"  # poll one [sources.<name>]
    BOUNCES = "bounces"  # read the bounce Maildir
    CHECK = "check"  # the store's quick check (health tells the truth between requests)


@dataclass(frozen=True)
class Planned:
    """One scheduled job: a cron ``trigger`` or an ``interval`` in seconds; a digest job
    names its ``frequency``, a source job its ``source``."""

    name: str
    kind: JobKind
    trigger: Trigger | None = None
    interval: float | None = None
    catch_up: bool = False  # run at start if its latest slot passed without a success
    record: bool = True  # a job_runs row per run (not for the frequent or self-recording)
    every_node: bool = False  # runs on every node; else only on the leader (PostgreSQL)
    frequency: Frequency | None = None
    source: SourceConfig | None = None


def plan(config: Config, *, sender_only: bool = False) -> list[Planned]:
    """The scheduled jobs of a daemon on ``config``, in start order. A sender-only process
    drains the outbox and nothing else."""
    # the outbox pass runs every few seconds: not recorded in job_runs
    jobs = [Planned("outbox", JobKind.OUTBOX, interval=config.schedule.drain_seconds,
                    record=False, every_node=True)]
    # not recorded: a damaged store may not take the record; the log and /healthz say it
    jobs.append(Planned("store-check", JobKind.CHECK, interval=config.schedule.check_seconds,
                        record=False, every_node=True))
    if sender_only:
        return jobs
    jobs.append(Planned("feeds", JobKind.FEEDS, make_trigger(config.schedule.feeds, config,
                                                             "feeds"), catch_up=True))
    jobs += [Planned(f"digest-{f.value}", JobKind.DIGEST,
                     make_trigger(getattr(config.schedule, f.value), config, f.value),
                     catch_up=True, frequency=f) for f in Frequency]
    # not recorded in job_runs: the sources table is a source's record, and its errors are
    # logged once per change, not once per poll
    jobs += [Planned(f"source-{s.code}", JobKind.SOURCE,
                     make_trigger(s.schedule, config, f"sources.{s.code}.schedule"),
                     catch_up=True, record=False, source=s) for s in config.sources.values()]
    if config.mail.bounce_maildir:  # reports land in a Maildir: watch it, nobody has to run them
        jobs.append(Planned("bounces", JobKind.BOUNCES,
                            interval=config.schedule.bounces_seconds))
    return jobs


def next_digest(config: Config, frequency: Frequency, after: datetime) -> datetime | None:
    """When the daemon next records ``frequency``'s digest (its ``[schedule]`` slot at or
    after ``after``): the earliest a reader confirmed now can get a first mail."""
    return next_fire(make_trigger(getattr(config.schedule, frequency.value), config,
                                  frequency.value), after)


def start_run(store: Store, name: str, now: datetime) -> int:
    with store.write() as conn:
        return jq.start_run(conn, name, now)


def finish_run(store: Store, run_id: int, now: datetime, ok: bool, summary: str) -> None:
    with store.write() as conn:
        jq.finish_run(conn, run_id, now, ok, summary)


def last_success(store: Store, name: str) -> datetime | None:
    with store.read() as conn:
        return jq.last_success(conn, name)


def first_start(store: Store) -> bool:
    """No job has ever run on this store (a daemon's first start on a new store)."""
    with store.read() as conn:
        return not ops.has_rows(conn)

"""The daemon's run loop: the alarm clock, the web app and the outbox sender in one loop.

Whether a digest is due is decided by the store, not the scheduler: at start, a digest
whose latest slot passed without a successful run is run once (catch-up, never once per
missed slot); cron fires coalesce and are never dropped for lateness; and the digest
cursors make a second run in the same slot find nothing new.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seriesfeed import stopping
from seriesfeed.actions import jobs
from seriesfeed.actions.nodes import NodeLease, acting_under
from seriesfeed.actions.ops import Store
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import SeriesfeedError, StaleLeaderError
from seriesfeed.schedules import AlarmClock, Trigger, previous_fire_time

__all__ = ["Daemon", "Job", "JobFn"]

log = logging.getLogger("seriesfeed.daemon")

JobFn = Callable[[asyncio.Event], Any]  # returns a summary string, or an awaitable of one


async def _call(job: Job, stopping: asyncio.Event) -> str:
    result = job.run(stopping)
    if inspect.isawaitable(result):
        result = await result
    return str(result or "ok")


@dataclass
class Job:
    name: str
    run: JobFn
    trigger: Trigger | None = None
    interval: float | None = None
    catch_up: bool = False  # run at start if its latest slot passed without a success
    record: bool = True  # write a job_runs row (not for the frequent store watcher)
    every_node: bool = False  # runs on every node; else only on the leader, fenced


@dataclass
class Daemon:
    config: Config
    store: Store
    jobs: list[Job]
    serve: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    running: set[asyncio.Task[None]] = field(default_factory=set)
    active: set[str] = field(default_factory=set)  # names of the jobs running now
    alarm: AlarmClock | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    # several nodes on one PostgreSQL store: this node's lease on the lead (None: it leads
    # alone, under the SQLite file lock)
    lease: NodeLease | None = None

    def wake_at(self, job: Job, when: datetime | None) -> None:
        """Run ``job`` once at ``when`` (replacing an earlier wake-up; None: no wake-up).
        For work due at a moment rather than on a cron: scheduled publishing."""
        if self.alarm is not None:
            self.alarm.at(job.name, when, self.run_job, job)

    def next_wake(self, name: str) -> datetime | None:
        """When the alarm clock will next run the job named ``name``."""
        return self.alarm.next_run(name) if self.alarm is not None else None

    async def run_job(self, job: Job) -> None:
        """Run one job, recording its start and result; errors are logged, never fatal."""
        if self.stopping.is_set():
            return
        fence = None
        if self.lease is not None and not job.every_node:
            fence = self.lease.fence()
            if fence is None:  # another node leads the schedule (or none does yet)
                return
        if job.name in self.active:  # a fire while its catch-up (or a rebuild) still runs
            return
        self.active.add(job.name)
        try:
            # every store write of the job checks this lease: a node that was paused past
            # it and wakes here cannot act on it
            with acting_under(fence):
                await self._run_job(job)
        finally:
            self.active.discard(job.name)

    async def _run_job(self, job: Job) -> None:
        task = asyncio.current_task()
        if task is not None:  # tracked so that shutdown waits for work in flight
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        if not job.record:
            await self._guarded(job)
            return
        now = now_utc().astimezone(self.config.zone)
        try:  # in a thread: the loop must not wait for another process's write lock
            run_id = await asyncio.to_thread(self._start_run, job.name, now)
        except StaleLeaderError as exc:
            self._stale(job, exc)
            return
        except SeriesfeedError as exc:  # a full disk, say: log, try again at the next fire
            log.error("job %s not started: %s", job.name, exc)
            return
        ok, summary = await self._guarded(job)
        try:
            await asyncio.to_thread(self._finish_run, run_id, ok, summary)
        except StaleLeaderError as exc:  # the lead passed on while it ran
            self._stale(job, exc)
        except SeriesfeedError as exc:
            log.error("job %s result not recorded: %s", job.name, exc)

    def _start_run(self, name: str, now: datetime) -> int:
        return jobs.start_run(self.store, name, now)

    def _finish_run(self, run_id: int, ok: bool, summary: str) -> None:
        jobs.finish_run(self.store, run_id, now_utc().astimezone(self.config.zone), ok, summary)

    async def _guarded(self, job: Job) -> tuple[bool, str]:
        """Run the job's work; a failure is logged and returned, never raised."""
        try:
            summary = await _call(job, self.stopping)
        except asyncio.CancelledError:
            if not self.stopping.is_set():
                raise
            # cut short by the shutdown timeout: the job has handed back what it held; end
            # quietly (APScheduler would log a cancelled job as a crash with a traceback)
            log.warning("job %s: stopped by the shutdown before it finished", job.name)
            return False, "stopped by the shutdown before it finished"
        except StaleLeaderError as exc:
            self._stale(job, exc)
            return False, str(exc)
        except SeriesfeedError as exc:
            log.error("job %s failed: %s", job.name, exc)
            return False, str(exc)
        except Exception as exc:  # a bug: keep the daemon up, keep the traceback in the log
            log.exception("job %s crashed", job.name)
            return False, f"{type(exc).__name__}: {exc}"
        if job.record:  # the frequent unrecorded jobs (outbox, watch) would flood the log
            log.info("job %s: %s", job.name, summary)
        return True, summary

    def _stale(self, job: Job, exc: StaleLeaderError) -> None:
        log.warning("job %s refused by the store: %s", job.name, exc)
        if self.lease is not None:
            self.lease.step_down(f"the store refused job {job.name}'s write from epoch "
                                 f"{exc.epoch}")

    def lease_job(self) -> Job:
        """Beats this node's heart and takes or renews the lease, every third of it; a
        node that has just taken the lead runs the jobs whose slot passed while nobody
        led (once each: the store says what is due)."""
        lease = self.lease
        assert lease is not None

        async def tick(stopping: asyncio.Event) -> str:
            try:
                gained = await asyncio.to_thread(lease.tick)
            except SeriesfeedError as exc:
                log.warning("node %s could not renew its lease: %s", lease.node, exc)
                return "store error"
            if gained:
                await self._take_over("it took the lead")
            return "ok"

        return Job("lease", tick, interval=lease.seconds / 3, record=False, every_node=True)

    async def _take_over(self, why: str) -> None:
        now = now_utc().astimezone(self.config.zone)
        try:
            _, catch_up = await asyncio.to_thread(self._catch_up, now)
        except SeriesfeedError as exc:
            log.error("catch-up not decided: %s", exc)
            return
        for job in catch_up:
            log.info("job %s: %s; its slot passed without a success, running it now",
                     job.name, why)
            self.spawn(job)

    def spawn(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self.run_job(job), name=job.name)
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    def due_at_start(self, job: Job, now: datetime) -> bool:
        if job.trigger is None:
            return False
        slot = previous_fire_time(job.trigger, now)
        if slot is None:
            return False
        last = jobs.last_success(self.store, job.name)
        return last is None or last < slot

    def _catch_up(self, now: datetime) -> tuple[bool, list[Job]]:
        """Whether this is a new store's first start (not a catch-up), and the jobs whose
        latest slot passed without a success."""
        return self.first_start(), [j for j in self.jobs
                                    if j.catch_up and self.due_at_start(j, now)]

    def first_start(self) -> bool:
        """No job has ever run on this store (a daemon's first start on a new store)."""
        return jobs.first_start(self.store)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if stopping.requested():  # it came while the process started: stop at once
            self._on_signal(signal.SIGTERM)
        alarm = AlarmClock(self.config.zone)
        for job in self.jobs:
            if job.trigger is not None:
                alarm.on(job.name, job.trigger, self.run_job, job)
            elif job.interval is not None:
                alarm.every(job.name, job.interval, self.run_job, job)
        # decided before the alarm clock starts (and off the loop): a fire cannot start
        # beside its own catch-up run, and run_job never runs one job twice at once
        now = now_utc().astimezone(self.config.zone)
        if self.lease is not None:
            lease_job = self.lease_job()
            alarm.every(lease_job.name, lease_job.interval or 1.0, self.run_job, lease_job)
            try:  # before the catch-up: only the leader runs it
                await asyncio.to_thread(self.lease.tick)
            except SeriesfeedError as exc:
                log.warning("node %s could not take its lease: %s", self.lease.node, exc)
        if self.lease is None or self.lease.fence() is not None:
            first, catch_up = await asyncio.to_thread(self._catch_up, now)
        else:
            first, catch_up = False, []
        alarm.start()
        self.alarm = alarm
        server = loop.create_task(self.serve(self.stopping)) if self.serve else None
        for job in self.jobs:
            if job in catch_up:
                log.info("job %s: %s; running it now", job.name, "first start" if first
                         else "its slot passed while the daemon was down")
                self.spawn(job)
        for job in self.jobs:
            nxt = alarm.next_run(job.name)
            if nxt is not None:
                log.info("job %s: next run %s", job.name, nxt.isoformat(timespec="seconds"))
        self.started.set()
        await self.stopping.wait()
        log.info("stopping: no new work; waiting up to %ss for work in flight",
                 self.config.schedule.shutdown_timeout)
        alarm.stop()
        pending = [t for t in self.running if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.config.schedule.shutdown_timeout)
            for task in late:
                task.cancel()
            if late:  # let them hand back what they hold (a few store writes)
                await asyncio.wait(late, timeout=5)
        if server is not None:
            await server
        if self.lease is not None:
            try:  # the next node leads at its next tick, not a whole lease later
                await asyncio.to_thread(self.lease.close)
            except SeriesfeedError as exc:
                log.warning("node %s could not let go of its lease: %s", self.lease.node, exc)
        log.info("stopped")

    def _on_signal(self, sig: int) -> None:
        log.info("received %s", signal.Signals(sig).name)
        self.stopping.set()

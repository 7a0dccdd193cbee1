"""What the daemon runs: the jobs bound to the verbs in ``actions`` (the one-daemon lock is
``actions.ops.runner_lock``, taken by the CLI shell before it builds this).

The jobs call exactly what the CLI calls (``feeds build``, ``digest send``), so a scheduled
run and a manual one do the same thing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import assert_never

from seriesfeed import actions
from seriesfeed.actions import Store, sources
from seriesfeed.actions.jobs import JobKind, Planned
from seriesfeed.actions.nodes import NodeLease, leads_by_lease
from seriesfeed.actions.ops import drain_outbox, process_bounces
from seriesfeed.config import Config
from seriesfeed.scheduler import Daemon, Job, JobFn

__all__ = ["PUBLISH", "build_daemon", "startup_urls"]

log = logging.getLogger("seriesfeed.daemon")


def build_daemon(config: Config, store: Store, *, sender_only: bool = False,
                 serve_web: bool = True,
                 on_listening: Callable[[], None] | None = None) -> Daemon:
    """The daemon: each job of ``actions.job_plan`` bound to the verb it runs, then the
    publisher of held entries and the store watcher; ``on_listening`` is called once the
    web server's socket listens."""
    built_from: list[tuple[object, ...]] = []  # the store's fingerprint at the last build
    jobs = [Job(p.name, _run(config, store, p, built_from), trigger=p.trigger,
                interval=p.interval, catch_up=p.catch_up, record=p.record,
                every_node=p.every_node)
            for p in actions.job_plan(config, sender_only=sender_only)]
    daemon = Daemon(config, store, jobs)
    if not sender_only and leads_by_lease(store):
        # every node serves and sends; the lease picks the one that runs the schedule
        daemon.lease = NodeLease(store, config)
    if not sender_only:
        feeds_job = next(j for j in jobs if j.name == "feeds")
        publish_job = _publish_job(daemon, store, feeds_job)
        daemon.jobs.append(_watch_job(daemon, store, feeds_job, built_from, publish_job))
    if serve_web:
        from seriesfeed.web.embedded import serve_until

        async def serve(stop: asyncio.Event) -> None:
            await serve_until(config, store, stop, on_listening=on_listening)

        daemon.serve = serve
    return daemon


def _run(config: Config, store: Store, planned: Planned,
         built_from: list[tuple[object, ...]]) -> JobFn:
    """What a planned job calls: exactly what the matching command calls."""
    match planned.kind:
        case JobKind.OUTBOX:
            async def drain(stopping: asyncio.Event) -> str:
                # lock_wait=0: while a digest job drains, this periodic one has nothing to add
                report = await drain_outbox(store, config, stopping=stopping, lock_wait=0)
                if report.busy:
                    return "busy"  # not logged: the periodic jobs are not recorded
                return str(report) if report.sent or report.retried or report.failed \
                    else "idle"
            return drain
        case JobKind.FEEDS:
            out_dir = config.resolve(config.feeds.out_dir)

            async def feeds(stopping: asyncio.Event) -> str:
                # the fingerprint is taken before reading, so a change committed during the
                # build is seen by the next watch
                built_from[:] = [await asyncio.to_thread(actions.fingerprint, store)]
                return str(await asyncio.to_thread(actions.build_feeds, store, config, out_dir))
            return feeds
        case JobKind.DIGEST:
            frequency = planned.frequency
            assert frequency is not None  # None would send every frequency's digests

            async def digest(stopping: asyncio.Event) -> str:
                return await actions.send_digests(store, config, frequency=frequency,
                                                  stopping=stopping, scheduled=True)
            return digest
        case JobKind.SOURCE:
            source = planned.source
            assert source is not None

            async def poll(stopping: asyncio.Event) -> str:
                return str(await sources.poll_source(store, config, source, stopping=stopping))
            return poll
        case JobKind.BOUNCES:
            maildir = config.resolve(config.mail.bounce_maildir)

            async def bounces(stopping: asyncio.Event) -> str:
                if not (maildir / "new").is_dir():
                    return f"{maildir} is not a Maildir (yet)"
                return str(await asyncio.to_thread(process_bounces, store, config, maildir))
            return bounces
        case JobKind.CHECK:
            async def check(stopping: asyncio.Event) -> str:
                problems = await asyncio.to_thread(actions.check_health, config, store)
                return f"damaged: {problems[0]}" if problems else "ok"
            return check
    assert_never(planned.kind)


PUBLISH = "publish"


def _publish_job(daemon: Daemon, store: Store, feeds_job: Job) -> Job:
    """Publishes held entries whose time has come, then rebuilds the feeds at once."""

    async def publish(stopping: asyncio.Event) -> str:
        released = await asyncio.to_thread(actions.release_due, store)
        if released:
            log.info("published %s scheduled entries", released)
            await daemon.run_job(feeds_job)
        await _schedule_release(daemon, store, job)
        return f"{released} scheduled entries published"

    job = Job(PUBLISH, publish, record=False)
    return job


async def _schedule_release(daemon: Daemon, store: Store, publish_job: Job) -> None:
    when = await asyncio.to_thread(actions.next_release, store)
    daemon.wake_at(publish_job, when)


def _watch_job(daemon: Daemon, store: Store, feeds_job: Job,
               built_from: list[tuple[object, ...]], publish_job: Job | None = None) -> Job:
    started: list[bool] = []  # the build at start was tried

    async def watch(stopping: asyncio.Event) -> str:
        if publish_job is not None:
            # the next held entry's time (one indexed read): the daemon wakes then, not at
            # the next cron tick, whichever process stored the entry
            when = await asyncio.to_thread(actions.next_release, store)
            if when != daemon.next_wake(PUBLISH):
                daemon.wake_at(publish_job, when)
        if not built_from:
            if started:
                return "no build yet"  # the build at start failed: the next slot retries
            # a build at start: the fingerprint of the last build died with the previous
            # process, so a change made while it was down (or since this one started)
            # would wait for the next feeds slot; unchanged files are not rewritten
            started.append(True)
            await daemon.run_job(feeds_job)
            if built_from or feeds_job.name not in daemon.active:
                return "built at start"
            # the feeds job's own catch-up holds it: its fingerprint comes soon
            return "no build yet"
        current = await asyncio.to_thread(actions.fingerprint, store)
        if current != built_from[0]:
            await daemon.run_job(feeds_job)
        return "checked"

    # not recorded in job_runs (it runs every few seconds); a rebuild it triggers is
    # recorded, as a run of the feeds job
    return Job("watch", watch, interval=daemon.config.schedule.watch_seconds, record=False)


def startup_urls(config: Config, store: Store) -> list[str]:
    base = config.public_url
    lines = [f"seriesfeed: serving {base}/ (store {store.describe()})"]
    for s in actions.list_all_series(store):
        for lang in config.languages:
            lines.append(f"  {lang}: {base}/{lang}/{s.slug}/  feeds: {base}/feeds/{lang}/"
                         f"{s.slug}/atom.xml")
    for lang in config.languages:
        lines.append(f"  {lang} site feeds: {base}/feeds/{lang}/atom.xml "
                     f"{base}/feeds/{lang}/rss.xml {base}/feeds/{lang}/feed.json")
    admin = config.admin
    if admin.enabled:  # where the operator logs in, and whether anyone can yet
        where = f"http://{admin.listen}/admin/" if admin.listen else f"{base}/admin/"
        lines.append(f"  console: {where}" + ("" if admin.password_hash else
                     " (no [admin] password_hash yet: `seriesfeed admin hash-password`)"))
    return lines

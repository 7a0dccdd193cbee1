"""The one status verb: what `seriesfeed status` prints, what /healthz judges and what
/metrics exposes all come from ``status_report`` (one read transaction for the counts)."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from seriesfeed.actions.jobs import plan
from seriesfeed.actions.nodes import nodes_report
from seriesfeed.actions.relay import cause, relay_state
from seriesfeed.clock import local_time, now_utc
from seriesfeed.config import Config
from seriesfeed.errors import SeriesfeedError, StoreDamagedError
from seriesfeed.schedules import next_fire
from seriesfeed.store import Store
from seriesfeed.store import entries as eq
from seriesfeed.store import jobs as jq
from seriesfeed.store import ops as oq
from seriesfeed.store.check import quick_check

__all__ = ["Health", "check_health", "damaged", "health", "status_report"]

log = logging.getLogger("seriesfeed.store")

ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def status_report(config: Config, store: Store, *, figures: bool = True) -> dict[str, Any]:
    """What `status` prints, and what /healthz (``figures=False``: only the headline
    counts, it is polled often) and /metrics report."""
    now = now_utc().astimezone(config.zone)
    with store.read() as conn:
        last = jq.last_runs(conn)
        report: dict[str, Any] = {
            "store": store.describe(),
            "schema": None,
            "entries": eq.count_entries(conn),
            "subscribers": jq.subscriber_counts(conn),
            "outbox": jq.outbox_counts(conn),
            "last_error": jq.outbox_last_error(conn),
        }
    report["schema"] = store.schema_revision()
    relay = relay_state(store, config)  # one clock for every sender (actions.relay)
    report["relay"] = {
        "paused": relay.paused, "reason": relay.reason, "cause": cause(relay),
        "since": local_time(relay.since, config.zone),
        "next_try": local_time(relay.paused_until, config.zone)}
    # several daemons on PostgreSQL: who leads the schedule, and who is alive
    report.update(nodes_report(config, store))
    # one source of figures: /healthz and /metrics report what status reports
    if figures:
        report.update(_figures(store, config))
    report["jobs"] = []
    for job in plan(config):  # the jobs the daemon runs
        if not job.record:
            continue
        nxt = next_fire(job.trigger, now) if job.trigger else None
        report["jobs"].append({
            "name": job.name,
            "schedule": str(job.trigger) if job.trigger else f"every {job.interval}s",
            "next": nxt.isoformat(timespec="seconds") if nxt else None,
            "last": _local_run(last[job.name].to_json(), config) if job.name in last else None,
        })
    return report


def _local_run(run: dict[str, Any], config: Config) -> dict[str, Any]:
    """A job run's times in the site's zone, to the second, like every other time shown."""
    for key in ("started_at", "finished_at"):
        if run.get(key):
            run[key] = local_time(datetime.fromisoformat(run[key]), config.zone)
    return run


def check_health(config: Config, store: Store, *, max_age: float | None = None,
                 log_failure: bool = True) -> list[str]:
    """The store's quick check: what is wrong (empty: nothing). A result younger than
    ``max_age`` seconds is reused (/healthz is polled often; the check reads every page);
    a fresh check that fails is logged, so the log says it from the daemon's start (a
    command that raises the error itself passes ``log_failure=False``)."""
    if max_age is not None:
        cached = store.trouble.last_check()
        if cached is not None and cached[1] <= max_age:
            return cached[0]
    before = store.trouble.last_check()
    problems = quick_check(store)
    store.trouble.checked(problems)
    if problems:
        if log_failure:
            log.error("%s", damaged(store, problems))
    elif before is not None and before[0]:
        log.warning("the store %s passes its check again", store.describe())
    return problems


def damaged(store: Store, problems: list[str]) -> StoreDamagedError:
    """The one-line error for a store that failed its check."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return StoreDamagedError(f"the store {store.describe()} is damaged: {problems[0]}{more}: "
                             "restore it from a backup; `seriesfeed check` shows what is "
                             "wrong")


class Health:
    """/healthz's judgement: ``up``, ``degraded`` with the reasons, or ``down`` (503)."""

    def __init__(self, state: str, reasons: list[str], report: dict[str, Any] | None) -> None:
        self.state, self.reasons, self.report = state, reasons, report

    @property
    def down(self) -> bool:
        return self.state == "down"


def health(config: Config, store: Store) -> Health:
    """``up`` only when the store answered and nothing failed recently; ``degraded`` with
    the reasons (deliveries retrying, a job that failed, a failing source, a store error met
    by a request or job in the last minute); ``down`` when the store is unreachable or
    damaged. The reasons name no store path and no subscriber's address (it is public)."""
    def public(reason: str) -> str:
        # relays quote the recipient: '550 5.1.1 <ann@example.org>'
        return ADDRESS.sub("<address>", reason.replace(store.describe(), "the store"))

    try:
        # first: a damaged store answers the counts below through intact indexes
        problems = check_health(config, store, max_age=config.schedule.check_seconds)
    except SeriesfeedError as exc:
        return Health("down", [f"store: {public(str(exc))}"], None)
    if problems:
        return Health("down", [f"store: damaged: {public(p)}" for p in problems[:5]], None)
    # here, not at the top: the sources verbs bring the fetcher and importers, which a
    # `status` command never needs
    from seriesfeed.actions.sources import failing_sources

    try:
        report = status_report(config, store, figures=False)
        failing = failing_sources(store, config)
    except SeriesfeedError as exc:
        # the store is unreachable: nothing else can be judged
        return Health("down", [f"store: {public(str(exc))}"], None)
    state, reasons = _judge(report)
    recent = store.trouble.recent()
    if recent is not None:
        reasons.append(f"store: {public(recent[0])}")
    # a failing source is "degraded", never "down": what is stored is still served
    reasons += [f"source {name} failing: {public(error)}"
                for name, error in sorted(failing.items())]
    down = recent is not None and recent[1]
    return Health("down" if down else "degraded" if reasons else state, reasons, report)


def _figures(store: Store, config: Config) -> dict[str, Any]:
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


def _judge(report: dict[str, Any]) -> tuple[str, list[str]]:
    """``up``, or ``degraded`` with the reasons, from a status report (the store answered;
    when it does not, the caller says ``down``)."""
    reasons = []
    outbox = dict(report.get("outbox") or {})
    if outbox.get("retry") and report.get("last_error"):
        # not the error itself: it may name a recipient, and /healthz is public (the
        # metrics token adds it)
        reasons.append(f"{outbox['retry']} messages waiting to be retried after delivery "
                       "errors")
    relay = report.get("relay") or {}
    if relay.get("paused") and relay.get("cause") == "message":
        # not the error itself: it may name a recipient (/healthz is public)
        reasons.append(f"sending paused: messages cannot be built, a template or "
                       f"configuration error (next try at {relay.get('next_try')})")
    elif relay.get("paused"):
        # not the relay's reply: it may name the host or a recipient (/healthz is public)
        reasons.append(f"sending paused: the mail relay is not taking mail (next try at "
                       f"{relay.get('next_try')})")
    for job in report.get("jobs", []):
        last = job.get("last") or {}
        if last and last.get("ok") is False:
            reasons.append(f"job {job['name']} failed at {last.get('started_at')}")
    return ("degraded" if reasons else "up"), reasons

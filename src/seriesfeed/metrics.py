"""Prometheus metrics (the only module importing prometheus_client).

The store's figures (outbox rows, message totals, digests, subscribers, jobs) are read at
scrape time from the one status report (``actions.status_report``), never from queries of
their own. What only a process sees (SMTP transaction latency, source polls, feed requests
and 304s) is kept in this process's registry, observed through the hooks below.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from seriesfeed import __version__

if TYPE_CHECKING:  # the SMTP client is not loaded for a scrape or a command's status
    from seriesfeed.mailer import Transport

__all__ = [
    "CONTENT_TYPE", "FEED_NOT_MODIFIED", "FEED_REQUESTS", "LOCAL", "SMTP_SECONDS", "SOURCE_POLLS",
    "TimedTransport", "exposition", "record_feed_request", "record_source_poll", "timed",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LOCAL = CollectorRegistry(auto_describe=True)
SMTP_SECONDS = Histogram(
    "seriesfeed_smtp_transaction_seconds",
    "Time of one SMTP transaction (MAIL FROM to the reply after the dot), by outcome",
    ["outcome"], registry=LOCAL,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
SOURCE_POLLS = Counter("seriesfeed_source_polls_total", "Polls of [sources.*], by result",
                       ["source", "result"], registry=LOCAL)
FEED_REQUESTS = Counter("seriesfeed_feed_requests_total",
                        "Requests for feed documents (under /feeds/), by status code",
                        ["code"], registry=LOCAL)
FEED_NOT_MODIFIED = Counter("seriesfeed_feed_not_modified_total",
                            "Feed requests answered 304 Not Modified", registry=LOCAL)


def record_source_poll(source: str, result: str) -> None:
    """Hook for the sources poller: one poll that asked ``source`` ended with ``result``
    (``imported``, ``not-modified``, ``failed``, ``gone``, ``interrupted``)."""
    SOURCE_POLLS.labels(source=source, result=result).inc()


# a labelled child per status code, looked up once: labels() costs more than inc() and a
# conditional GET pays it on every request
_FEED_CODES: dict[int, Any] = {}


def record_feed_request(status: int) -> None:
    child = _FEED_CODES.get(status)
    if child is None:
        child = _FEED_CODES[status] = FEED_REQUESTS.labels(code=str(status))
    child.inc()
    if status == 304:
        FEED_NOT_MODIFIED.inc()


class TimedTransport:
    """A transport whose every send is observed in the SMTP latency histogram."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        started = time.monotonic()
        outcome = "error"
        try:
            reply = await self.inner.send(message, sender=sender, recipients=recipients)
            outcome = "ok"
            return reply
        finally:
            SMTP_SECONDS.labels(outcome=outcome).observe(time.monotonic() - started)

    async def aclose(self) -> None:
        await self.inner.aclose()


def timed(transport: Transport) -> Transport:
    return transport if isinstance(transport, TimedTransport) else TimedTransport(transport)


def _timestamp(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


class _StatusCollector(Collector):
    """The store's figures, from one status report."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report

    def collect(self) -> Iterable[Any]:
        r = self.report
        rows = GaugeMetricFamily("seriesfeed_outbox_rows", "Outbox rows by state and kind",
                                 labels=["state", "kind"])
        for item in r["outbox_by_kind"]:
            rows.add_metric([item["state"], item["kind"]], item["count"])
        yield rows
        help_text = {
            "sent": "Messages the relay accepted (rows kept in the store)",
            "failed": "Messages that failed for good (5xx, attempts used up, or bounced)",
            "retried": "Retries after a first attempt (4xx, timeouts, dropped connections)",
            "uncertain": "Messages whose connection dropped after the dot (maybe delivered)",
            "bounced": "Messages reported as hard bounces after the relay accepted them",
            "complaints": "Messages reported as spam by their recipient (ARF)",
        }
        for key, text in help_text.items():
            c = CounterMetricFamily(f"seriesfeed_messages_{key}", text)
            c.add_metric([], r["messages"][key])
            yield c
        oldest = GaugeMetricFamily(
            "seriesfeed_outbox_oldest_queued_timestamp_seconds",
            "When the oldest row still queued was recorded (0: none queued)")
        oldest.add_metric([], _timestamp(r["oldest_queued_at"]) or 0.0)
        yield oldest
        recorded = CounterMetricFamily("seriesfeed_digests_recorded",
                                       "Digests recorded, by language and frequency",
                                       labels=["language", "frequency"])
        for item in r["digests"]:
            recorded.add_metric([item["language"], item["frequency"]], item["count"])
        yield recorded
        subs = GaugeMetricFamily("seriesfeed_subscribers", "Subscribers by status and language",
                                 labels=["status", "language"])
        for item in r["subscribers_by_language"]:
            subs.add_metric([item["status"], item["language"]], item["count"])
        yield subs
        success = GaugeMetricFamily("seriesfeed_job_last_success_timestamp_seconds",
                                    "When each job last started a run that succeeded",
                                    labels=["job"])
        duration = GaugeMetricFamily("seriesfeed_job_last_duration_seconds",
                                     "How long each job's last successful run took",
                                     labels=["job"])
        for job, run in r["last_success"].items():
            success.add_metric([job], run["timestamp"])
            if run["seconds"] is not None:
                duration.add_metric([job], run["seconds"])
        yield success
        yield duration
        if "nodes" in r:  # several nodes on PostgreSQL
            count = GaugeMetricFamily("seriesfeed_nodes",
                                      "Daemons whose heartbeat was seen recently")
            count.add_metric([], len(r["nodes"]))
            yield count
            lead = GaugeMetricFamily("seriesfeed_leader",
                                     "1 for the node that leads the schedule, 0 for the others",
                                     labels=["node"])
            for node in r["nodes"]:
                lead.add_metric([node["node"]], 1.0 if node["leader"] else 0.0)
            yield lead
        info = InfoMetricFamily("seriesfeed_build", "The running seriesfeed")
        info.add_metric([], {"version": __version__, "python": platform.python_version(),
                             "schema": str(r.get("schema") or "")})
        yield info


def exposition(report: dict[str, Any]) -> bytes:
    """The text exposition: the store's figures from ``report``, then this process's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(report))
    return generate_latest(registry) + generate_latest(LOCAL)

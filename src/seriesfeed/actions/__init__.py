"""The verbs: one function per thing a user (or the daemon on a schedule) does, one module
per concern, each owning its transactions. Only the verbs and ``store/`` touch the store:
the shells (cli/, web/, the daemon) call these and format what they return, and rendering
(feeds, pages, messages) takes the plain data a verb read.

- ``entries``: import, add, link, remove, show, list
- ``releases``: publish the scheduled entries whose time has come
- ``feeds``: read the site once, plan and build feeds and pages, the rebuild fingerprint
- ``digests``: record and send digests, preview, dry run, test message
- ``delivery``: drain the outbox (digests and confirmations): claim, render, send, mark
- ``subscribers``: subscribe, confirm, unsubscribe, preferences, erasure, list
- ``subscriber_csv``: the subscriber CSV import and export
- ``subscriber_admin``: the operator's search, show, status change and lifted suppression
- ``audit``: the audit trail (who did what, from where) and its log
- ``charts``: the dashboard's chart data, grouped in the store by local day or week
- ``sources``: import a URL, poll sources, each source's poll history
- ``bounces``: VERP senders, and reading DSNs and complaints from a Maildir
- ``status``: the one status report behind `status`, /healthz and /metrics
- ``jobs``: the daemon's jobs and their schedules, and the job-run records
- ``ops``: outbox and digest records, retries (of rows or a digest), backups, store check,
  the lock
- ``opening``: open the store (refusing a missing one to a read-only command), migrate it
- ``console``: the operator's console: login, sessions, CSRF, lockout, the dashboard's read

Every name here is imported when first used (PEP 562), not with the package: a command
pays for the verbs it calls, not for all of them (the whole set imports SQLAlchemy, the
SMTP client, Jinja2, the feed and bounce libraries: most of a second of CPU per command).
Type checkers see the ordinary imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seriesfeed.actions import (
        audit,
        bounces,
        charts,
        console,
        delivery,
        digests,
        entries,
        feeds,
        jobs,
        ops,
        sources,
        status,
        subscriber_admin,
        subscriber_csv,
        subscribers,
        welcome,
    )
    from seriesfeed.actions.digests import (
        Preview,
        digest_dry_run,
        preview_digest,
        record_catch_ups,
        send_digests,
        send_test_message,
    )
    from seriesfeed.actions.entries import (
        ImportReport,
        SeriesInfo,
        StoredEntries,
        add_entry,
        export_entries,
        import_entries,
        import_settings,
        link_translations,
        list_all_series,
        list_entries,
        list_series_info,
        localized,
        new_entry,
        remove_entry,
        set_entry,
        set_series_text,
        show_entry,
        show_series,
        store_batch,
    )
    from seriesfeed.actions.feeds import LiveSite, build_feeds, fingerprint, plan_feeds, plan_site
    from seriesfeed.actions.jobs import plan as job_plan
    from seriesfeed.actions.opening import Store, migrate, open_store
    from seriesfeed.actions.ops import runner_lock
    from seriesfeed.actions.releases import next_release, release_due
    from seriesfeed.actions.status import Health, check_health, damaged, health, status_report
    from seriesfeed.importers import FORMATS

# name -> (module, attribute in it; None: the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "FORMATS": ("seriesfeed.importers", "FORMATS"),
    "Health": ("seriesfeed.actions.status", "Health"),
    "ImportReport": ("seriesfeed.actions.entries", "ImportReport"),
    "LiveSite": ("seriesfeed.actions.feeds", "LiveSite"),
    "Preview": ("seriesfeed.actions.digests", "Preview"),
    "SeriesInfo": ("seriesfeed.actions.entries", "SeriesInfo"),
    "Store": ("seriesfeed.actions.opening", "Store"),
    "StoredEntries": ("seriesfeed.actions.entries", "StoredEntries"),
    "add_entry": ("seriesfeed.actions.entries", "add_entry"),
    "audit": ("seriesfeed.actions.audit", None),
    "bounces": ("seriesfeed.actions.bounces", None),
    "build_feeds": ("seriesfeed.actions.feeds", "build_feeds"),
    "charts": ("seriesfeed.actions.charts", None),
    "check_health": ("seriesfeed.actions.status", "check_health"),
    "console": ("seriesfeed.actions.console", None),
    "damaged": ("seriesfeed.actions.status", "damaged"),
    "delivery": ("seriesfeed.actions.delivery", None),
    "digest_dry_run": ("seriesfeed.actions.digests", "digest_dry_run"),
    "digests": ("seriesfeed.actions.digests", None),
    "entries": ("seriesfeed.actions.entries", None),
    "export_entries": ("seriesfeed.actions.entries", "export_entries"),
    "feeds": ("seriesfeed.actions.feeds", None),
    "fingerprint": ("seriesfeed.actions.feeds", "fingerprint"),
    "health": ("seriesfeed.actions.status", "health"),
    "import_entries": ("seriesfeed.actions.entries", "import_entries"),
    "import_settings": ("seriesfeed.actions.entries", "import_settings"),
    "job_plan": ("seriesfeed.actions.jobs", "plan"),
    "jobs": ("seriesfeed.actions.jobs", None),
    "link_translations": ("seriesfeed.actions.entries", "link_translations"),
    "list_all_series": ("seriesfeed.actions.entries", "list_all_series"),
    "list_entries": ("seriesfeed.actions.entries", "list_entries"),
    "list_series_info": ("seriesfeed.actions.entries", "list_series_info"),
    "localized": ("seriesfeed.actions.entries", "localized"),
    "migrate": ("seriesfeed.actions.opening", "migrate"),
    "new_entry": ("seriesfeed.actions.entries", "new_entry"),
    "next_release": ("seriesfeed.actions.releases", "next_release"),
    "open_store": ("seriesfeed.actions.opening", "open_store"),
    "ops": ("seriesfeed.actions.ops", None),
    "plan_feeds": ("seriesfeed.actions.feeds", "plan_feeds"),
    "plan_site": ("seriesfeed.actions.feeds", "plan_site"),
    "preview_digest": ("seriesfeed.actions.digests", "preview_digest"),
    "record_catch_ups": ("seriesfeed.actions.digests", "record_catch_ups"),
    "release_due": ("seriesfeed.actions.releases", "release_due"),
    "remove_entry": ("seriesfeed.actions.entries", "remove_entry"),
    "runner_lock": ("seriesfeed.actions.ops", "runner_lock"),
    "send_digests": ("seriesfeed.actions.digests", "send_digests"),
    "send_test_message": ("seriesfeed.actions.digests", "send_test_message"),
    "set_entry": ("seriesfeed.actions.entries", "set_entry"),
    "set_series_text": ("seriesfeed.actions.entries", "set_series_text"),
    "show_entry": ("seriesfeed.actions.entries", "show_entry"),
    "show_series": ("seriesfeed.actions.entries", "show_series"),
    "sources": ("seriesfeed.actions.sources", None),
    "status": ("seriesfeed.actions.status", None),
    "status_report": ("seriesfeed.actions.status", "status_report"),
    "store_batch": ("seriesfeed.actions.entries", "store_batch"),
    "subscriber_admin": ("seriesfeed.actions.subscriber_admin", None),
    "subscriber_csv": ("seriesfeed.actions.subscriber_csv", None),
    "subscribers": ("seriesfeed.actions.subscribers", None),
    "welcome": ("seriesfeed.actions.welcome", None),
}


def __getattr__(name: str) -> Any:
    found = _LAZY.get(name)
    if found is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(found[0])
    value = module if found[1] is None else getattr(module, found[1])
    globals()[name] = value  # once: later uses are ordinary attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "FORMATS",
    "Health",
    "ImportReport",
    "LiveSite",
    "Preview",
    "SeriesInfo",
    "Store",
    "StoredEntries",
    "add_entry",
    "audit",
    "bounces",
    "build_feeds",
    "charts",
    "check_health",
    "console",
    "damaged",
    "delivery",
    "digest_dry_run",
    "digests",
    "entries",
    "export_entries",
    "feeds",
    "fingerprint",
    "health",
    "import_entries",
    "import_settings",
    "job_plan",
    "jobs",
    "link_translations",
    "list_all_series",
    "list_entries",
    "list_series_info",
    "localized",
    "migrate",
    "new_entry",
    "next_release",
    "open_store",
    "ops",
    "plan_feeds",
    "plan_site",
    "preview_digest",
    "record_catch_ups",
    "release_due",
    "remove_entry",
    "runner_lock",
    "send_digests",
    "send_test_message",
    "set_entry",
    "set_series_text",
    "show_entry",
    "show_series",
    "sources",
    "status",
    "status_report",
    "store_batch",
    "subscriber_admin",
    "subscriber_csv",
    "subscribers",
    "welcome",
]

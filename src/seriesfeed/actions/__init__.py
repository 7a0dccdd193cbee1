"""The verbs: one function per thing a user (or the daemon on a schedule) does, one module
per concern, each owning its transactions. Only the verbs and ``store/`` touch the store:
the shells (cli/, web/, the daemon) call these and format what they return, and rendering
(feeds, pages, messages) takes the plain data a verb read.

- ``entries``: import, add, link, remove, show, list, publish scheduled entries
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
  migrate, the lock
- ``console``: the operator's console: login, sessions, CSRF, lockout, the dashboard's read
"""

from __future__ import annotations

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
    next_release,
    release_due,
    remove_entry,
    set_entry,
    set_series_text,
    show_entry,
    show_series,
    store_batch,
)
from seriesfeed.actions.feeds import LiveSite, build_feeds, fingerprint, plan_feeds, plan_site
from seriesfeed.actions.jobs import plan as job_plan
from seriesfeed.actions.ops import Store, migrate, open_store, runner_lock
from seriesfeed.actions.status import Health, check_health, damaged, health, status_report

__all__ = [
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

"""The verbs: one function per thing a user (or the daemon on a schedule) does, one module
per concern, each owning its transactions. The shells (cli/, web/, the daemon) call these
and format what they return; they never import store/.

- ``entries``: import, add, link, remove, show, list, publish scheduled entries
- ``feeds``: read the site once, plan and build feeds and pages, the rebuild fingerprint
- ``digests``: record and send digests, preview, dry run, test message
- ``subscribers``: subscribe, confirm, unsubscribe, preferences, erasure, import/export
- ``sources``: import a URL, poll sources
- ``status``: the one status report behind `status`, /healthz and /metrics
- ``jobs``: the daemon's jobs and their schedules, and the job-run records
- ``ops``: outbox and digest records, retries, backups, bounces, store check, the lock
"""

from __future__ import annotations

# actions.sources is imported by name where it is used (``from seriesfeed.actions import
# sources``): the poller it fronts reads the scheduler's triggers, which records job runs here
from seriesfeed.actions import digests, entries, feeds, ops, status, subscribers
from seriesfeed.actions.digests import (
    Preview,
    digest_dry_run,
    preview_digest,
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
    set_series_text,
    show_entry,
    show_series,
    store_batch,
)
from seriesfeed.actions.feeds import build_feeds, fingerprint, plan_feeds, plan_site
from seriesfeed.actions.jobs import OUTBOX as OUTBOX_JOB
from seriesfeed.actions.jobs import plan as job_plan
from seriesfeed.actions.ops import Store, migrate, open_store, runner_lock
from seriesfeed.actions.status import Health, health, status_report

__all__ = [
    "OUTBOX_JOB",
    "Health",
    "ImportReport",
    "Preview",
    "SeriesInfo",
    "Store",
    "StoredEntries",
    "add_entry",
    "build_feeds",
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
    "release_due",
    "remove_entry",
    "runner_lock",
    "send_digests",
    "send_test_message",
    "set_series_text",
    "show_entry",
    "show_series",
    "status",
    "status_report",
    "store_batch",
    "subscribers",
]

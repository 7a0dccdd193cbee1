"""Feed verbs: read the site's data once, plan every feed and page, build them into a
folder (only files whose bytes changed), the fingerprint that says when to rebuild, and
the live site a server answers from (``LiveSite``: planned again only when the store
changed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from seriesfeed.actions.releases import release_due
from seriesfeed.config import Config
from seriesfeed.feeds import (
    HTML,
    FeedCache,
    FeedDocument,
    entry_digests,
    settings_key,
    translations_for,
)
from seriesfeed.feeds import plan_feeds as plan_feed_documents
from seriesfeed.models import SiteData
from seriesfeed.pages import build_pages as build_page_documents
from seriesfeed.publish import (
    PublishReport,
    etag_of,
    locked,
    publish,
    read_manifest,
    reader,
    still_written,
    sweep_temporary,
    write_if_changed,
)
from seriesfeed.store import Store
from seriesfeed.store import entries as q
from seriesfeed.store.watch import CommitWatch
from seriesfeed.websub import notify_hub

__all__ = ["HTML", "FeedCache", "FeedDocument", "LiveSite", "PublishReport", "build_feeds",
           "build_pages", "etag_of", "fingerprint", "plan_feeds", "plan_site", "site_data"]


def site_data(store: Store) -> SiteData:
    """Everything the feeds and pages show, in one read transaction."""
    with store.read() as conn:
        return q.site_data(conn)


def fingerprint(store: Store) -> tuple[object, ...]:
    """Cheap summary that changes whenever anything a feed or page shows changes."""
    with store.read() as conn:
        return q.fingerprint(conn)


def plan_feeds(config: Config, store: Store,
               cache: FeedCache | None = None) -> list[FeedDocument]:
    """Every feed document (no pages) the store gives, deterministically (``cache``: the
    pieces kept between builds; by default the process's own)."""
    return plan_feed_documents(config, site_data(store), cache)


def build_pages(config: Config, store: Store) -> list[FeedDocument]:
    """Every web page (series pages, language indexes) the store gives."""
    return build_page_documents(config, site_data(store))


def plan_site(store: Store, config: Config,
              on_disk: dict[str, str] | None = None,
              previous: Callable[[str], bytes | None] | None = None) -> list[FeedDocument]:
    """Every feed document and series page, as bytes, in a stable order; with ``on_disk``
    (a folder's record, ``publish.on_disk``) the documents it already holds are not made,
    and with ``previous`` (``publish.reader`` of that folder) article pages whose part
    numbers alone changed are spliced from their files instead of rendered."""
    # read once for both: it is the most expensive part of a build
    site = site_data(store)
    # and each entry's digest once for both (the pages and the archives name entries by it)
    digests = entry_digests(site, translations_for(site, config))
    return (plan_feed_documents(config, site, on_disk=on_disk, digests=digests)
            + build_page_documents(config, site, on_disk, digests, previous))


def build_feeds(store: Store, config: Config, out_dir: Path) -> PublishReport:
    """Write every feed and page under ``out_dir`` (only files whose bytes changed).

    When neither the store nor the settings changed since the last build into ``out_dir``
    (a stamp file records both, and the manifest too) and every file that build wrote is
    still as it wrote it (one ``lstat`` each), nothing is generated at all. Otherwise the
    documents whose inputs did not change since the last build into ``out_dir`` (by any
    process: its manifest records their keys) are not made again, so a build from a new
    process after one edit costs about what the edit touches.

    The stamp file is removed before anything is written and written again last: a
    folder without it was left by a build that did not finish (killed, a full disk), whose
    temporary files the next build sweeps. Builds into one folder take turns (a lock).

    The piece cache lives beside ``out_dir``, not in the store: what it holds is the bytes
    of the files in ``out_dir`` (the folder is the storage, the manifest the index), whose
    one owner is the build writing that folder; in the store it would copy every page
    into the database and be read back whole by every build."""
    release_due(store)
    with store.read() as conn:
        stamp = f"{q.fingerprint(conn)!r} {_settings_digest(config)}"
    stamp_file = out_dir / ".seriesfeed-build"
    with locked(out_dir):
        try:
            stamped: str | None = stamp_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            stamped = None
        manifest = read_manifest(out_dir)
        recorded = still_written(out_dir, manifest)
        # the folder as that build left it: every record's file unchanged (a hand edit,
        # a removed file, a damaged manifest all fall through to a build)
        if stamped == stamp == manifest.stamp and len(recorded) == len(manifest.files):
            return PublishReport(out_dir, skipped=True)
        if stamped is None:
            sweep_temporary(out_dir)
        stamp_file.unlink(missing_ok=True)
        keys = {path: str(record[0]) for path, record in recorded.items() if record[0]}
        report = publish(plan_site(store, config, keys, reader(out_dir)), out_dir, recorded,
                         stamp)
        write_if_changed(stamp_file, stamp.encode("utf-8"))
    if report.written:
        notify_hub(config, report.written)
    return report


def _settings_digest(config: Config) -> str:
    """What, besides the store, the built files depend on (templates and catalogues too)."""
    return settings_key(config)[:16]


class LiveSite:
    """The site's documents as the store has them now, for a server: planned again only
    when the store's fingerprint changed. On SQLite the fingerprint query itself is skipped
    while nothing at all was committed (``PRAGMA data_version`` on a connection kept for
    it). Each new plan has a higher version; a version and its documents are read together
    (one tuple), never from two plans."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store
        self.lock = threading.Lock()
        self.fingerprint: tuple[object, ...] | None = None
        self.plan: tuple[int, list[FeedDocument]] = (0, [])
        self._commits = CommitWatch(store)
        self._seen: tuple[int, int] | None = None

    def unchanged(self) -> bool:
        """True when nothing at all was committed since the current plan was made, asked
        without waiting (``CommitWatch.probe``): an answer for the event loop. False also
        when that cannot be told at once; ``current`` then decides."""
        seen = self._commits.probe()
        return seen is not None and seen == self._seen and self.fingerprint is not None

    def current(self) -> tuple[int, list[FeedDocument]]:
        # read before the fingerprint: a commit between the two is seen by the next call
        seen = self._commits.counter()
        if seen is not None and seen == self._seen and self.fingerprint is not None:
            return self.plan
        fp = fingerprint(self.store)
        if fp != self.fingerprint:
            with self.lock:
                if fp != self.fingerprint:
                    self.plan = (self.plan[0] + 1, plan_site(self.store, self.config))
                    self.fingerprint = fp
        self._seen = seen  # only once planned: a plan that failed is tried again
        return self.plan

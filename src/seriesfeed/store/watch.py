"""A cheap "has anything been committed since?" for a SQLite store, so that the web app need
not query the store on every conditional GET: ``PRAGMA data_version`` on a connection kept
for it changes whenever any other connection (of this process or another) commits.

Only a hint: where it cannot answer (PostgreSQL, an in-memory database, an error) it says
None and the caller asks the store itself. Its connection has no busy timeout, so it never
waits: a lock in the way is "cannot answer" too (a WAL reader seldom meets one), and
``probe`` is then safe on the event loop.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from seriesfeed.store import Store

__all__ = [
    "CommitWatch",
]


class CommitWatch:
    def __init__(self, store: Store) -> None:
        path = store.sqlite_path if store.dialect == "sqlite" else None
        self.path = path if path is not None and str(path) not in ("", ":memory:") else None
        self.lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def counter(self) -> tuple[int, int] | None:
        """Equal values: nothing was committed in between. The file's inode is part of it:
        a database file replaced by another (a restore) is a change too."""
        if self.path is None:
            return None
        with self.lock:
            return self._read()

    def probe(self) -> tuple[int, int] | None:
        """``counter`` for the event loop: None at once, rather than waiting, when another
        thread is reading it."""
        if self.path is None or not self.lock.acquire(blocking=False):
            return None
        try:
            return self._read()
        finally:
            self.lock.release()

    def _read(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            inode = os.stat(self.path).st_ino
            if self._conn is None:
                # timeout 0: SQLITE_BUSY at once instead of a wait (see the module's note)
                self._conn = sqlite3.connect(str(self.path), check_same_thread=False,
                                             isolation_level=None, timeout=0)
            row = self._conn.execute("PRAGMA data_version").fetchone()
            return inode, int(row[0])
        except (OSError, sqlite3.Error):
            self._close()
            return None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self.lock:
            self._close()

"""One daemon per store: a flock on a file beside a SQLite store, an advisory lock on PostgreSQL.

Both are released by the operating system or the database when the process dies, so a
SIGKILLed holder never leaves a stale lock (RELIABILITY invariant 5).
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

from sqlalchemy import Connection, text

from seriesfeed.errors import LockError, StoreError
from seriesfeed.store import Store

__all__ = ["PG_LOCK_KEY", "RunnerLock", "SenderLock"]

PG_LOCK_KEY = 0x5E81E5FEED  # arbitrary, fixed: "seriesfeed"


class RunnerLock:
    """Held for the life of the daemon; ``release`` (or process exit) frees it.

    ``shared``: on PostgreSQL several daemons run at once (one leads by lease), each holding
    the advisory lock shared, so that a restore (which takes it exclusive) is still refused
    while any of them runs. SQLite has one daemon: its lock is always exclusive."""

    def __init__(self, store: Store, *, shared: bool = False) -> None:
        self.store = store
        self.shared = shared
        self._fd: int | None = None
        self._conn: Connection | None = None

    def acquire(self) -> None:
        if self.store.dialect == "sqlite":
            self._acquire_file()
        else:
            self._acquire_pg()

    def _acquire_file(self) -> None:
        path = self.store.lock_path
        if path is None:
            return  # an in-memory database cannot be shared anyway
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LockError(f"another seriesfeed daemon (pid {holder}) is running on this "
                            f"store (lock file {path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _acquire_pg(self) -> None:
        conn = self.store.engine.connect()
        how = "_shared" if self.shared else ""
        got: Any = conn.execute(text(f"SELECT pg_try_advisory_lock{how}(:k)"),
                                {"k": PG_LOCK_KEY}).scalar()
        conn.commit()
        if not got:
            conn.close()
            raise LockError("another seriesfeed daemon is running on this store "
                            f"({self.store.describe()})")
        self._conn = conn

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                how = "_shared" if self.shared else ""
                self._conn.execute(text(f"SELECT pg_advisory_unlock{how}(:k)"),
                                   {"k": PG_LOCK_KEY})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> RunnerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SenderLock:
    """On SQLite, one process drains the outbox at a time (the daemon, or `digest send`).

    Held while draining; whoever holds it knows that rows left ``sending`` belong to a
    process that died, and can send them again at once instead of waiting for the lease.
    PostgreSQL needs no such lock: claims use FOR UPDATE SKIP LOCKED and leases."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._fd: int | None = None

    @property
    def exclusive(self) -> bool:
        return self._fd is not None

    @property
    def needed(self) -> bool:
        """False where there is nothing to lock (PostgreSQL, an in-memory database)."""
        return self.store.lock_path is not None and self.store.dialect == "sqlite"

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never blocks, so a caller can wait without a thread.

        Two drains in one process (the daemon's outbox job and a digest job) conflict here
        too: flock belongs to the open file, not to the process."""
        path = self.store.lock_path
        if path is None or not self.needed:
            return False
        fd = os.open(path.with_name(path.name.replace(".lock", ".sender.lock")),
                     os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

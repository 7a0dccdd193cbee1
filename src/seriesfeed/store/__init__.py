"""The store: one SQLAlchemy engine over SQLite (default) or PostgreSQL, with migrations.

Every write goes through :meth:`Store.write`, which on SQLite opens the transaction with
``BEGIN IMMEDIATE`` (a deferred BEGIN that reads then writes fails at once with
"database is locked" instead of waiting; RELIABILITY.md #8).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    IntegrityError,
    OperationalError,
)

from seriesfeed.errors import StoreDamagedError, StoreError, StoreTooNewError

__all__ = ["DAMAGED", "HEAD_REVISION", "Connection", "Store", "StoreTrouble", "normalize_url",
           "open_store"]

# Connection is re-exported so that verbs can name a transaction's handle in their signatures
# without importing SQLAlchemy (only store/ does)
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (tests/test_store.py holds it equal to Alembic's head):
# a store already there is opened without importing Alembic at all, which is half a
# second of every command's start.
HEAD_REVISION = "i24_entry_pins"
SQLITE_BUSY_TIMEOUT_S = 30.0
# what SQLite says when a file's pages are not what it wrote (or not a database at all)
# (and PostgreSQL's "invalid page in block" for a damaged heap page)
DAMAGED = ("malformed", "not a database", "corrupt", "disk image", "invalid page")


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)


def _is_damage(exc: DBAPIError) -> bool:
    reason = _reason(exc).lower()
    return any(word in reason for word in DAMAGED)


def normalize_url(url: str, base_dir: Path) -> str:
    """Resolve a relative SQLite path against ``base_dir``; pick the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database.url: cannot parse '{url}'") from exc
    if parsed.drivername == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:" and not Path(db).is_absolute():
            parsed = parsed.set(database=str(base_dir / db))
    elif parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


@dataclass
class StoreTrouble:
    """The newest store failure this process met (any caller: requests, jobs), so that
    ``/healthz`` can say what it could not read instead of "ok"."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    count: int = 0
    last_at: float | None = None  # time.monotonic()
    last_reason: str = ""
    damaged: bool = False

    def seen(self, reason: str, *, damaged: bool = False) -> None:
        with self.lock:
            self.count += 1
            self.last_at = time.monotonic()
            self.last_reason, self.damaged = reason, damaged

    # the newest quick check's findings (empty: whole) and when it ran: the store cannot
    # hold its own verdict, and every Store copy of this process shares this object
    check_problems: list[str] | None = None
    checked_at: float | None = None  # time.monotonic()

    def checked(self, problems: list[str]) -> None:
        with self.lock:
            self.check_problems, self.checked_at = list(problems), time.monotonic()

    def last_check(self) -> tuple[list[str], float] | None:
        """(problems, age in seconds) of the newest quick check, None before the first."""
        with self.lock:
            if self.check_problems is None or self.checked_at is None:
                return None
            return list(self.check_problems), time.monotonic() - self.checked_at

    def recent(self, within: float = 60.0) -> tuple[str, bool] | None:
        """(reason, damaged) of the newest failure within ``within`` seconds, else None."""
        with self.lock:
            if self.last_at is None or time.monotonic() - self.last_at > within:
                return None
            return self.last_reason, self.damaged


class Store:
    """Owns the engine. Pass connections from :meth:`read` / :meth:`write` to the queries."""

    def __init__(self, url: str, *, base_dir: Path | None = None,
                 busy_timeout: float | None = None,
                 trouble: StoreTrouble | None = None, make_folder: bool = True) -> None:
        """``busy_timeout``: how long a statement waits for another connection's lock
        before it fails (SQLite's busy timeout, PostgreSQL's lock_timeout); None is 30 s on
        SQLite and no limit on PostgreSQL. The web app uses a few seconds, so a visitor is
        answered 503 rather than held. ``make_folder=False``: a SQLite file's folder is
        not made (a read-only look must leave no trace where an unmounted volume was)."""
        self.url = normalize_url(url, base_dir or Path.cwd())
        self.busy_timeout = busy_timeout
        self.trouble = trouble or StoreTrouble()
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            self.sqlite_path: Path | None = Path(parsed.database or "")
            if make_folder and parsed.database and parsed.database != ":memory:":
                try:
                    self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create {self.sqlite_path.parent}: {exc}") from exc
            kwargs["connect_args"] = {"timeout": busy_timeout or SQLITE_BUSY_TIMEOUT_S}
        else:
            self.sqlite_path = None
            kwargs["pool_pre_ping"] = True
            kwargs["connect_args"] = {"connect_timeout": 10}
            if busy_timeout is not None:
                kwargs["connect_args"]["options"] = \
                    f"-c lock_timeout={max(1, int(busy_timeout * 1000))}"
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_events(self.engine, busy_timeout or SQLITE_BUSY_TIMEOUT_S)

    def with_busy_timeout(self, seconds: float) -> Store:
        """Another Store on the same database whose connections wait at most ``seconds``
        for a lock (its own engine: close it too)."""
        return Store(self.url, busy_timeout=seconds, trouble=self.trouble)

    @property
    def lock_path(self) -> Path | None:
        """The single-runner lock file beside a SQLite store (never the database file)."""
        if self.sqlite_path is None or not str(self.sqlite_path) or \
                str(self.sqlite_path) == ":memory:":
            return None
        return self.sqlite_path.with_name(self.sqlite_path.name + ".lock")

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except (OperationalError, DBAPIError) as exc:
            if _is_damage(exc):
                raise self._damaged(exc) from exc
            self.trouble.seen(_reason(exc))
            raise StoreError(f"cannot open the database {self.describe()}: "
                             f"{_reason(exc)}") from exc

    def _damaged(self, exc: DBAPIError) -> StoreDamagedError:
        self.trouble.seen(f"damaged: {_reason(exc)}", damaged=True)
        return StoreDamagedError(
            f"the store {self.describe()} is damaged ({_reason(exc)}): restore it from a "
            "backup; `seriesfeed check` shows what is wrong")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a (deferred, read) transaction."""
        with self._translated(), self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The database's operational failures (a full disk, a read-only file, a lock held
        past the busy timeout, a lost connection) as StoreError, so that callers that keep
        running (the daemon's jobs, the web app) handle them as the user-facing failures
        they are. Constraint violations (IntegrityError) pass through for their callers."""
        try:
            yield
        except IntegrityError:
            raise
        except StoreDamagedError as exc:
            # a row SQLAlchemy could not read (a date edited by hand: store/tables.py),
            # raised past the database's own errors; those from _connect are seen already.
            # One row: degraded with the reason, not down (every other page still works)
            if not isinstance(exc.__cause__, DBAPIError):
                self.trouble.seen(str(exc))
            raise
        except OperationalError as exc:
            if _is_damage(exc):
                raise self._damaged(exc) from exc
            self.trouble.seen(_reason(exc))
            raise StoreError(f"database {self.describe()}: {_reason(exc)}") from exc
        except DatabaseError as exc:
            # SQLite's "database disk image is malformed" is a DatabaseError, not an
            # OperationalError; so are other failures a user can only fix by hand
            if _is_damage(exc):
                raise self._damaged(exc) from exc
            self.trouble.seen(_reason(exc))
            raise StoreError(f"database {self.describe()}: {_reason(exc)}") from exc

    @contextmanager
    def write(self, *, durable: bool = False, erase: bool = False) -> Iterator[Connection]:
        """A write transaction: BEGIN IMMEDIATE on SQLite. ``durable`` makes SQLite fsync
        the commit (synchronous=FULL) for changes that must survive power loss, such as
        unsubscribes (RELIABILITY.md invariant 4). ``erase`` makes SQLite overwrite what
        the transaction deletes or replaces (secure_delete), for erasure requests."""
        with self._translated(), self._connect() as conn:
            if self.dialect == "sqlite":
                if durable:
                    _raw_pragma(conn, "synchronous=FULL")
                if erase:
                    _raw_pragma(conn, "secure_delete=ON")
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            from seriesfeed.store.nodes import FENCE, check_fence  # it imports this module

            fence = FENCE.get()
            try:
                with conn.begin():
                    if fence is not None:  # a scheduled job's write: its lease must hold
                        check_fence(conn, fence)
                    yield conn
            finally:
                if self.dialect == "sqlite" and durable:
                    _raw_pragma(conn, "synchronous=NORMAL")
                if self.dialect == "sqlite" and erase:
                    _raw_pragma(conn, "secure_delete=OFF")

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database and empty it (best effort:
        a reader still using old pages keeps them until it finishes)."""
        if self.dialect != "sqlite":
            return
        with self._translated(), self._connect() as conn:
            _raw_pragma(conn, "wal_checkpoint(TRUNCATE)")

    def at_head(self) -> bool:
        """Whether the store's schema is already the newest (``HEAD_REVISION``). Any
        doubt (no version table yet, a store that cannot be read) says no, and the
        Alembic path that follows reports what is wrong."""
        try:
            with self.engine.connect() as conn:
                return _revision(conn) == HEAD_REVISION
        except DBAPIError:
            return False

    def migrate(self) -> list[str]:
        """Bring the schema to the newest revision; return the revisions applied."""
        if self.at_head():
            return []
        from alembic import command
        from alembic.config import Config as AlembicConfig
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        script = ScriptDirectory.from_config(cfg)
        known = self.known_revisions()
        with self._translated(), self._connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            else:
                # two processes starting at once must not both create the tables
                conn.exec_driver_sql("SELECT pg_advisory_lock(734591)")
                conn.commit()
            try:
                before = MigrationContext.configure(conn).get_current_revision()
                conn.commit()
                if before is not None and before not in known:
                    raise self.too_new(before)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            except (OperationalError, DBAPIError) as exc:
                if _is_damage(exc):
                    raise self._damaged(exc) from exc
                raise StoreError(f"migrating {self.describe()} failed: {exc.orig}") from exc
            finally:
                if self.dialect != "sqlite":
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(734591)")
                    conn.commit()
        applied: list[str] = []
        for rev in script.walk_revisions(base="base", head="heads"):
            if rev.revision == before:
                break
            applied.append(rev.revision)
        return list(reversed(applied))

    def schema_revision(self) -> str | None:
        """The store's schema revision (None before the first migration), read with plain
        SQL from Alembic's version table, so a status report does not import Alembic."""
        with self._translated(), self._connect() as conn:
            return _revision(conn)

    def too_new(self, revision: str) -> StoreTooNewError:
        return StoreTooNewError(
            f"the store {self.describe()} has schema revision '{revision}', newer than this "
            f"seriesfeed knows (newest: {self.head_revision()}): upgrade seriesfeed (or use "
            "the seriesfeed that wrote it)")

    def known_revisions(self) -> set[str]:
        """Every schema revision this code's migrations know."""
        return {rev.revision for rev in _scripts().walk_revisions(base="base", head="heads")}

    def head_revision(self) -> str | None:
        """The newest schema revision this code knows."""
        head = _scripts().get_current_head()
        return str(head) if head is not None else None

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def _revision(conn: Connection) -> str | None:
    """Alembic's version table read with plain SQL: None before the first migration."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if rows else None


def _scripts() -> Any:
    """Alembic's view of the migrations folder (a ScriptDirectory)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def _raw_pragma(conn: Connection, pragma: str) -> None:
    # outside any transaction: SQLAlchemy would autobegin one around exec_driver_sql, and
    # SQLite refuses to change the safety level inside a transaction
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA {pragma}")


def _sqlite_events(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # let SQLAlchemy, not pysqlite, decide when transactions begin
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def open_store(url: str, base_dir: Path | None = None, *, migrate: bool = True) -> Store:
    store = Store(url, base_dir=base_dir)
    if migrate:
        store.migrate()
    return store

"""The store: one SQLAlchemy engine over SQLite (default) or PostgreSQL, with migrations.

Every write goes through :meth:`Store.write`, which on SQLite opens the transaction with
``BEGIN IMMEDIATE`` (a deferred BEGIN that reads then writes fails at once with
"database is locked" instead of waiting; RELIABILITY.md #8).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from seriesfeed.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0


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


class Store:
    """Owns the engine. Pass connections from :meth:`read` / :meth:`write` to the queries."""

    def __init__(self, url: str, *, base_dir: Path | None = None) -> None:
        self.url = normalize_url(url, base_dir or Path.cwd())
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            self.sqlite_path: Path | None = Path(parsed.database or "")
            if parsed.database and parsed.database != ":memory:":
                try:
                    self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create {self.sqlite_path.parent}: {exc}") from exc
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        else:
            self.sqlite_path = None
            kwargs["pool_pre_ping"] = True
            kwargs["connect_args"] = {"connect_timeout": 10}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_events(self.engine)

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
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(f"cannot open the database {self.describe()}: {reason}") from exc

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
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(f"database {self.describe()}: {reason}") from exc

    @contextmanager
    def write(self, *, durable: bool = False) -> Iterator[Connection]:
        """A write transaction: BEGIN IMMEDIATE on SQLite. ``durable`` makes SQLite fsync
        the commit (synchronous=FULL) for changes that must survive power loss, such as
        unsubscribes (RELIABILITY.md invariant 4)."""
        with self._translated(), self._connect() as conn:
            if self.dialect == "sqlite":
                if durable:
                    _raw_pragma(conn, "synchronous=FULL")
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            try:
                with conn.begin():
                    yield conn
            finally:
                if self.dialect == "sqlite" and durable:
                    _raw_pragma(conn, "synchronous=NORMAL")

    def migrate(self) -> list[str]:
        """Bring the schema to the newest revision; return the revisions applied."""
        from alembic import command
        from alembic.config import Config as AlembicConfig
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        script = ScriptDirectory.from_config(cfg)
        with self._connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            else:
                # two processes starting at once must not both create the tables
                conn.exec_driver_sql("SELECT pg_advisory_lock(734591)")
                conn.commit()
            try:
                before = MigrationContext.configure(conn).get_current_revision()
                conn.commit()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            except (OperationalError, DBAPIError) as exc:
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
        from alembic.runtime.migration import MigrationContext

        with self._connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def _raw_pragma(conn: Connection, pragma: str) -> None:
    # outside any transaction: SQLAlchemy would autobegin one around exec_driver_sql, and
    # SQLite refuses to change the safety level inside a transaction
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA {pragma}")


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # let SQLAlchemy, not pysqlite, decide when transactions begin
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
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

"""Backups of a SQLite store with SQLite's online backup API: a consistent copy while the
daemon runs (the copy is one snapshot of committed transactions), and restoring one."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from seriesfeed.errors import StoreDamagedError, StoreError, ValidationError
from seriesfeed.store import Store
from seriesfeed.store.check import sqlite_findings

__all__ = ["PG_DUMP_HINT", "backup", "check_backup", "restore"]

PG_DUMP_HINT = ("for PostgreSQL use pg_dump (pg_dump --format=custom --file=FILE DBNAME; "
                "restore with pg_restore --clean --dbname=DBNAME FILE)")


def _sqlite_path(store: Store) -> Path:
    if store.dialect != "sqlite":
        raise ValidationError(f"backup and restore copy SQLite stores; {PG_DUMP_HINT}",
                              field="database.url")
    if store.sqlite_path is None or str(store.sqlite_path) in ("", ":memory:"):
        raise ValidationError("an in-memory store has nothing to back up", field="database.url")
    return store.sqlite_path


def backup(store: Store, target: Path) -> int:
    """Copy the store to ``target`` (written beside, then renamed); returns its size."""
    source = _sqlite_path(store)
    if not source.exists():
        raise StoreError(f"no store at {source}")
    if target.resolve() == source.resolve():
        raise ValidationError("the backup cannot be the store itself", field="FILE")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(tmp)
            try:
                # pages=0: one step, so the copy is one snapshot even while others write
                src.backup(dst, pages=0)
                dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
                # the online backup copies pages as they are, damaged ones too: a copy is
                # called a backup only once it passes the check a restore makes
                problems = [str(r[0]) for r in dst.execute("PRAGMA integrity_check(5)")]
            finally:
                dst.close()
        finally:
            src.close()
        if problems != ["ok"]:
            raise StoreDamagedError(
                f"the store {store.describe()} is damaged: its copy fails SQLite's integrity "
                f"check ({(sqlite_findings(problems) or problems)[0]}): no backup written; "
                "restore the last good backup "
                "(`seriesfeed check` shows what is wrong)")
        os.replace(tmp, target)
    except (sqlite3.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"backup to {target} failed: {exc}") from exc
    except StoreDamagedError:
        tmp.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def check_backup(path: Path) -> str:
    """The schema revision of a backup file, or ValidationError if it is not a sound one."""
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", field="FILE")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ValidationError(f"{path} is not a seriesfeed SQLite backup ({exc})",
                              field="FILE") from exc
    if not ok or ok[0] != "ok":
        raise ValidationError(f"{path} fails SQLite's integrity check: {ok}", field="FILE")
    if not revision:
        raise ValidationError(f"{path} has no schema revision", field="FILE")
    if str(revision[0]) not in _known_revisions():
        raise ValidationError(f"{path} has schema {revision[0]}, which this version of "
                              "seriesfeed does not know (a backup from a newer version?)",
                              field="FILE")
    return str(revision[0])


def _known_revisions() -> set[str]:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from seriesfeed.store import MIGRATIONS

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}


def restore(store: Store, source: Path) -> None:
    """Replace the store's contents with ``source`` (the caller holds the runner lock)."""
    target = _sqlite_path(store)
    store.engine.dispose()  # no pooled connection keeps the old pages
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target, timeout=30)
            try:
                src.backup(dst, pages=0)
                dst.execute("PRAGMA journal_mode=WAL")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StoreError(f"restoring {source} into {target} failed: {exc}") from exc

"""The read-only commands never create a store, on PostgreSQL as on SQLite: an empty
database (a typo in the database name, a database dropped and made again) is reported as
missing, never given a schema and reported as an empty, healthy store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, PG_SKIP_REASON, CliResult, ConfigFactory

Run = Callable[..., CliResult]
READ_ONLY = [("status",), ("charts",), ("admin", "log"), ("subscribers", "list"),
             ("subscribers", "show", "ann@example.org"), ("sources", "list"),
             ("entries", "list"), ("digests", "list")]


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """A PostgreSQL database of this test's own, with no tables."""
    if PG_SKIP_REASON:
        pytest.skip(PG_SKIP_REASON)
    import psycopg

    name = f"seriesfeed_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_schema = 'public'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.postgres
@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_an_empty_postgresql_database_creates_nothing(
        make_config: ConfigFactory, run_cli: Run, empty_pg: str,
        command: tuple[str, ...]) -> None:
    path = make_config(database={"url": empty_pg})
    result = run_cli("--config", str(path), *command)
    lines = result.err.strip().splitlines()
    assert result.code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.err
    assert "no store" in lines[0] and "seriesfeed init" in lines[0], lines
    assert _tables(empty_pg) == 0
    # init creates it, and then the command reads it
    assert run_cli("--config", str(path), "init").code == 0
    assert _tables(empty_pg) > 0


def test_a_read_only_command_never_makes_the_folder_of_a_missing_sqlite_store(
        make_config: ConfigFactory, run_cli: Run, tmp_path: Path) -> None:
    # an unmounted volume: its mount point's folders must not appear on the root disk
    where = tmp_path / "mnt" / "data" / "store.sqlite3"
    path = make_config(database={"url": f"sqlite:///{where}"})
    for command in READ_ONLY:
        result = run_cli("--config", str(path), *command)
        assert result.code == 1 and "there is no store at" in result.err, (command, result.err)
    assert not (tmp_path / "mnt").exists()

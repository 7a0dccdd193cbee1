"""Shared fixtures: a config file per test, and the store on SQLite and PostgreSQL.

PostgreSQL: when 127.0.0.1:5432 answers, one uniquely named database is created for the
test session (from the ``test`` database's connection) and dropped at the end; each test
gets empty tables. When it does not answer, the PostgreSQL variants are skipped with the
reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from seriesfeed.config import Config, load_config
from seriesfeed.store import Store
from seriesfeed.store.tables import metadata

ROOT = Path(__file__).resolve().parent.parent
SEED_PAGE = ROOT / "examples" / "iso-crisis-series-page.txt"
EXAMPLE_JSON = ROOT / "examples" / "iso-crisis.json"
pytest_plugins = ["tests.harness.figures", "tests.smtp_server"]  # smtp_server: one fixture
PG_ADMIN_URL = os.environ.get("SERIESFEED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reason() -> str | None:
    """None when PostgreSQL answers, else why the PostgreSQL tests are skipped."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError as exc:
        return f"PostgreSQL does not answer on 127.0.0.1:5432 ({exc})"
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgresql://", "postgresql://", 1),
                             connect_timeout=3):
            pass
    except Exception as exc:
        return f"PostgreSQL on 127.0.0.1:5432 refused the connection ({exc})"
    return None


PG_SKIP_REASON = _pg_reason()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    if PG_SKIP_REASON:
        pytest.skip(PG_SKIP_REASON)
    import psycopg

    name = f"seriesfeed_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_migrated(pg_database_url: str) -> str:
    store = Store(pg_database_url)
    store.migrate()
    store.close()
    return pg_database_url


def _empty_pg(url: str) -> None:
    store = Store(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with store.write() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO content_version (id, version) VALUES (1, 0)"))
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with an empty, migrated schema: a SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    url: str = request.getfixturevalue("_pg_migrated")
    _empty_pg(url)
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.migrate()
    yield s
    s.close()


ConfigFactory = Callable[..., Path]


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """Write a config.toml in a fresh folder; keyword arguments replace whole sections
    (``database={"url": ...}``) or add ``extra`` TOML text."""

    def factory(extra: str = "", **sections: dict[str, Any]) -> Path:
        folder = tmp_path / f"site-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        base = (ROOT / "config.toml").read_text(encoding="utf-8")
        body = [base]
        for section, values in sections.items():
            lines = [f"[{section}]"]
            for key, value in values.items():
                lines.append(f"{key} = {_toml(value)}")
            body.append("\n".join(lines))
        text_ = "\n\n".join(body) + "\n" + extra
        # later tables of the same name are not allowed in TOML: drop the shipped ones
        for section in sections:
            text_ = _drop_section(text_, section)
        path = folder / "config.toml"
        path.write_text(text_, encoding="utf-8")
        return path

    return factory


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _drop_section(text_: str, section: str) -> str:
    """Remove the first ``[section]`` table (the shipped one) from TOML text."""
    lines = text_.splitlines()
    out: list[str] = []
    dropping = False
    dropped = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            if stripped == f"[{section}]" and not dropped:
                dropping, dropped = True, True
                continue
            dropping = False
        if not dropping:
            out.append(line)
    return "\n".join(out)


@pytest.fixture
def config_path(make_config: ConfigFactory, database_url: str) -> Path:
    """A config.toml whose store is the parametrised database (SQLite and PostgreSQL)."""
    return make_config(database={"url": database_url})


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path, env={})


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[:400]!r}, err={self.err[:400]!r})"


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``seriesfeed ARGS`` in this process through the real entry point."""

    from seriesfeed.cli import main

    def runner(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return runner


@pytest.fixture
def pg_url(_pg_migrated: str) -> str:
    """The session's PostgreSQL database, emptied (skipped with the reason without one)."""
    _empty_pg(_pg_migrated)
    return _pg_migrated


@pytest.fixture
def procs() -> Iterator[Any]:
    """Start processes with ``procs.start(args, ...)``; every one still running when the
    test ends, passed or failed, is killed with its process group and waited for."""
    from tests.harness.procs import Processes

    with Processes() as started:
        yield started


@pytest.fixture(autouse=True)
def _reap_what_the_test_started() -> Iterator[None]:
    """Every process a test starts (subprocess.Popen from tests/) is killed, waited for and
    its pipes closed when the test ends, passed or failed."""
    from tests.harness.procs import reaping_every_popen

    with reaping_every_popen():
        yield


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    """A 2048-bit RSA key made by openssl for DKIM tests: its PEM file and its public
    key in DER (what the DNS record carries)."""
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key, der

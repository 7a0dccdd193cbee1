"""Dates read back from the store: SQLite's one-step parse of the stored text gives exactly
the datetimes SQLAlchemy's parse followed by ``UTCDateTime.process_result_value`` gives,
for every text a column may hold; PostgreSQL keeps the general path."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.type_api import TypeDecorator

from seriesfeed.errors import StoreDamagedError
from seriesfeed.store import Store
from seriesfeed.store.tables import UTCDateTime
from tests.conftest import SEED_PAGE
from tests.harness.figures import tier


def _processors(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(what UTCDateTime reads with now, the general composition it replaces on SQLite)."""
    typ = UTCDateTime().dialect_impl(dialect)
    fast = typ.result_processor(dialect, None)
    general = TypeDecorator.result_processor(typ, dialect, None)
    assert fast is not None and general is not None
    return fast, general


def _outcome(process: Callable[[Any], Any], value: Any) -> tuple[str, object, object]:
    """A value and its offset and zone object, or the error's type: equal outcomes are
    the same datetime in every way a caller can tell."""
    try:
        found = process(value)
    except Exception as exc:  # both paths must refuse the same texts the same way
        # what is no date comes out as one StoreDamagedError, for what the parse found
        if isinstance(exc, StoreDamagedError) and exc.__cause__ is not None:
            return ("error", type(exc.__cause__), None)
        return ("error", type(exc), None)
    if found is None:
        return ("none", None, None)
    return (repr(found), found.utcoffset(), found.tzinfo)


_SQLITE = sqlite.dialect()
_write = sqlite.DATETIME().bind_processor(_SQLITE)  # the text SQLAlchemy stores
_naive = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59))
_offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m)))


@st.composite
def _stored_texts(draw: st.DrawFn) -> str:
    """What a DATETIME column may hold on SQLite: the form SQLAlchemy writes (with
    microseconds), the same without them or with milliseconds, a ``T``, a date alone, a
    trailing offset or ``Z``, and damage (within the stored form's shape, and after it)."""
    moment = draw(_naive)
    form = draw(st.sampled_from(["stored", "seconds", "millis", "T", "date", "minutes",
                                 "offset", "Z", "junk", "damaged"]))
    stored: str = _write(moment)
    if form == "stored":
        return stored
    if form == "damaged":  # the stored form's shape with a few characters changed
        chars = list(stored)
        for _ in range(draw(st.integers(1, 3))):
            chars[draw(st.integers(0, 25))] = draw(st.sampled_from("09+-Z:. T\x00٣a"))
        return "".join(chars)
    if form == "seconds":
        return stored[:19]
    if form == "millis":
        return moment.isoformat(" ", "milliseconds")
    if form == "T":
        return moment.isoformat()
    if form == "date":
        return moment.date().isoformat()
    if form == "minutes":
        return moment.isoformat(" ", "minutes")
    if form == "offset":
        return moment.replace(tzinfo=draw(_offsets)).isoformat(" ")
    if form == "Z":
        return stored[:10] + "T" + stored[11:19] + "Z"
    return moment.isoformat(" ") + draw(st.text(max_size=6))


@settings(max_examples=tier(500, 20_000), deadline=None)
@given(_stored_texts())
@example("2015-01-01 00:00:00.000000")
@example("2015-01-01 00:00:00")
@example("2015-01-01")
@example("2015-01-01 10")
@example("2015-01-01 10:00:00.1+0000")
@example("2000-01-01 00:00:000")
@example("2000-01-01 00:00:00.00000Z")
@example("2015-01-01 10:00:00+00:00")
@example("9999-12-31 23:59:59.999999")
@example("0001-01-01 00:00:00.000000")
@example("2015-01-01 10:00:00-05:30")
@example("not a date")
@example("")
def test_sqlite_reads_every_stored_text_as_the_general_path_does(stored: str) -> None:
    fast, general = _processors(_SQLITE)
    assert _outcome(fast, stored) == _outcome(general, stored)


def test_sqlite_reads_null_and_refuses_what_is_not_text_as_before() -> None:
    fast, general = _processors(_SQLITE)
    for value in (None, 20150101, b"2015-01-01 00:00:00", 1.5):
        assert _outcome(fast, value) == _outcome(general, value)
    assert fast(None) is None
    read = fast("2015-01-01 10:00:00.000001")
    assert read == datetime(2015, 1, 1, 10, 0, 0, 1, tzinfo=UTC) and read.tzinfo is UTC


@settings(max_examples=tier(200, 5_000), deadline=None)
@given(st.one_of(_naive, _naive.map(lambda d: d.replace(tzinfo=UTC)),
                 st.builds(lambda d, z: d.replace(tzinfo=z), _naive, _offsets)))
def test_postgresql_keeps_the_general_path(value: datetime) -> None:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    fast, general = _processors(dialect)
    assert _outcome(fast, value) == _outcome(general, value)


def test_a_store_reads_back_what_it_wrote_with_and_without_microseconds(
        database_url: str) -> None:
    """Through the driver on SQLite and PostgreSQL: each aware datetime written comes back
    the same instant, in UTC; on SQLite also a text written without microseconds."""
    table = Table("dates_probe", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", UTCDateTime))
    written = [datetime(2015, 1, 1, tzinfo=UTC),
               datetime(2015, 6, 30, 23, 59, 59, 999_999, tzinfo=UTC),
               datetime(2024, 3, 10, 2, 30, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
               None]
    store = Store(database_url)
    try:
        with store.write() as conn:
            table.create(conn)
            conn.execute(insert(table), [{"id": i, "at": v} for i, v in enumerate(written)])
            if conn.dialect.name == "sqlite":
                conn.execute(text("INSERT INTO dates_probe (id, at) VALUES "
                                  "(10, '2015-01-01 10:00:00'), (11, '2015-01-01')"))
        with store.read() as conn:
            found = dict(conn.execute(select(table.c.id, table.c.at)).all())
        for i, value in enumerate(written):
            assert found[i] == value
            assert found[i] is None or found[i].tzinfo is UTC
        if 10 in found:
            assert found[10] == datetime(2015, 1, 1, 10, tzinfo=UTC)
            assert found[11] == datetime(2015, 1, 1, tzinfo=UTC)
            assert found[10].tzinfo is found[11].tzinfo is UTC
    finally:
        with store.write() as conn:
            table.drop(conn, checkfirst=True)
        store.close()


@pytest.mark.parametrize("damage", ["'the 5th of May'", "42", "x'00ff'", "'2024-13-45 99:00:00'"],
                         ids=["words", "a number", "a blob", "no such day"])
def test_a_date_damaged_by_hand_is_one_error_line_naming_it(
        make_config: Callable[..., Path], run_cli: Callable[..., Any], damage: str) -> None:
    """A date column edited by hand into something that is no date: every reading command
    says what it found in one line and exits non-zero, never a traceback."""
    path = make_config(database={"url": "sqlite:///store.sqlite3"})
    assert run_cli("--config", path, "import", SEED_PAGE).code == 0
    with sqlite3.connect(path.parent / "store.sqlite3") as db:
        db.execute(f"UPDATE entries SET published = {damage} "
                   "WHERE seq = (SELECT min(seq) FROM entries)")
    for command in (["entries", "list"], ["feeds", "build", "--out", path.parent / "out"]):
        done = run_cli("--config", path, *command)
        assert done.code != 0, (command, done)
        assert "Traceback" not in done.err + done.out, (command, done)
        lines = done.err.strip().splitlines()
        assert len(lines) == 1 and "date" in lines[0], (command, done)
    assert not (path.parent / "out" / "feeds").exists()


def test_a_date_damaged_by_hand_met_by_a_request_makes_healthz_say_so(
        make_config: Callable[..., Path], run_cli: Callable[..., Any]) -> None:
    """README: /healthz is ``degraded`` after "a store error met by a request or job in
    the last minute". The damaged date's error is raised while SQLAlchemy reads a row, not
    by the database, so it came past the store's own bookkeeping: a feed request answered
    503 for it while /healthz kept saying ``up``."""
    from seriesfeed import actions
    from seriesfeed.config import load_config

    path = make_config(database={"url": "sqlite:///store.sqlite3"})
    assert run_cli("--config", path, "import", SEED_PAGE).code == 0
    with sqlite3.connect(path.parent / "store.sqlite3") as db:
        db.execute("UPDATE entries SET published = 'the 5th of May' "
                   "WHERE seq = (SELECT min(seq) FROM entries)")
    config = load_config(path, env={})
    store = Store(config.database.url, base_dir=path.parent)
    try:
        assert actions.health(config, store).state == "up"
        with pytest.raises(StoreDamagedError):
            actions.list_entries(store)
        found = actions.health(config, store)
        assert found.state == "degraded", (found.state, found.reasons)
        assert any("where a date belongs" in reason for reason in found.reasons), found.reasons
    finally:
        store.close()

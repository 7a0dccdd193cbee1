"""Invariant 18, catch-up is delivery: readers who start from part 1 get parts 1, 2, 3 on
three successive daily slots and then new parts, each part once (one Message-ID), across a
sender SIGKILLed at the named crash points and a recording killed halfway, on SQLite and
PostgreSQL. The fault server's fsynced log is the truth about what was delivered."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select

from seriesfeed import actions
from seriesfeed.actions import subscribers
from seriesfeed.actions.delivery import duplicate_bound
from seriesfeed.config import Config, load_config
from seriesfeed.models import Entry, Frequency
from seriesfeed.store import open_store
from seriesfeed.store.tables import catch_ups, outbox
from tests.conftest import SEED_PAGE
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer

T0 = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)  # days before the real clock's slot
LATE = [f"late{i}@example.org" for i in range(3)]
NEW = [f"new{i}@example.org" for i in range(2)]
# drains only: nobody is weekly, so this records nothing and sends what is queued
DRAIN = ("digest", "send", "--frequency", "weekly")


def _world(make_config: Callable[..., Path], port: int, database_url: str) -> Config:
    config = load_config(make_config(
        database={"url": database_url},
        smtp={"host": "127.0.0.1", "port": port, "security": "none", "connections": 2,
              "timeout": 10},
        security={"secret_key": "c" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        with time_machine.travel(T0, tick=False):
            actions.import_entries(store, config, SEED_PAGE)
            for address in LATE:
                subscribers.add_subscriber(store, config, address, frequency="daily",
                                           confirmed=True, start="first")
            for address in NEW:
                subscribers.add_subscriber(store, config, address, frequency="daily",
                                           confirmed=True, start="new")
    finally:
        store.close()
    return config


def _record_slot(config: Config, day: int) -> int:
    store = open_store(config.database.url, config.base_dir)
    try:
        with time_machine.travel(T0 + timedelta(days=day), tick=False):
            return actions.record_catch_ups(store, config, Frequency.DAILY,
                                            datetime.now(UTC)).queued
    finally:
        store.close()


def _state(config: Config) -> tuple[int, list[tuple[int, int]]]:
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.read() as conn:
            rows = int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
            cursors = [(int(s), int(p)) for s, p in conn.execute(
                select(catch_ups.c.subscriber_id, catch_ups.c.next_part)
                .order_by(catch_ups.c.subscriber_id))]
            return rows, cursors
    finally:
        store.close()


def _drain(config: Config) -> None:
    for _ in range(20):
        if kill.send(config, args=DRAIN) == 0 and \
                kill.outbox_states(config).keys() <= {"sent", "failed"}:
            return
        kill.expire_leases(config)
    raise AssertionError(f"not drained: {kill.outbox_states(config)}")


@pytest.mark.full
@pytest.mark.catalogue("F2")
def test_catch_up_parts_arrive_once_each_across_every_named_crash_point(
        make_config: Callable[..., Path], database_url: str,
        fault: Callable[..., FaultServer], figures: Callable[..., None]) -> None:
    server = fault()
    config = _world(make_config, server.port, database_url)
    # three daily slots, the sender killed at a different narrow window in each
    for day, point in enumerate(("after_claim_commit:1", "after_smtp_250:2",
                                 "before_mark_commit:1")):
        assert _record_slot(config, day) == len(LATE)
        assert _record_slot(config, day) == 0  # the slot again: nothing more
        assert kill.send(config, crash_at=point, args=DRAIN) == 137
        kill.expire_leases(config)
        _drain(config)
    # the fourth slot is the real clock's: its recording killed halfway leaves nothing
    before = _state(config)
    assert kill.send(config, crash_at="mid_catch_up:2",
                     args=("digest", "send", "--frequency", "daily")) == 137
    assert _state(config) == before
    _drain(config)
    assert kill.send(config, args=("digest", "send", "--frequency", "daily")) == 0
    # then a new part reaches everybody in the digest, once; no fifth part in this slot
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.add_entry(store, config, Entry(
            series="reflections-on-the-iso-crisis", language="en", title="What comes next",
            summary="A new part.", published=datetime.now(UTC) - timedelta(hours=1),
            url="https://socialistworker.org/2026/12/07/what-comes-next/"))
    finally:
        store.close()
    assert kill.send(config, args=("digest", "send", "--frequency", "daily")) == 0
    _drain(config)

    _check(server, config, figures, database_url)


def _check(server: FaultServer, config: Config, figures: Callable[..., None],
           database_url: str) -> None:
    deliveries = server.handler.deliveries()
    copies: Counter[str] = Counter()
    parts: dict[str, list[int]] = {a: [] for a in LATE}
    digests: Counter[str] = Counter()
    for d in deliveries:
        (rcpt,) = d.recipients
        copies[d.message_id] += 1
        found = re.match(r"<catchup\.\d+\.\d+\.(\d+)@", d.message_id)
        if found and copies[d.message_id] == 1:
            parts[rcpt].append(int(found.group(1)))
        elif d.message_id.startswith("<digest."):
            digests[rcpt] += 1
    for address in LATE:
        assert parts[address] == [1, 2, 3, 4], address  # none skipped, in order, once
    assert all(address not in parts for address in NEW)
    assert {a: digests[a] for a in LATE + NEW} == {a: 1 for a in LATE + NEW}
    duplicates = sum(n - 1 for n in copies.values())
    # a re-send after a crash between the relay's 250 and the mark is the same message
    # (same Message-ID), within the outbox's bound; only the after_smtp_250 day has one
    assert 1 <= duplicates <= duplicate_bound(config)
    figures(backend=database_url.split(":")[0], readers=len(LATE), parts_each=4,
            lost=0, duplicates_same_message_id=duplicates)


def _in_process(config: Config, day: int, entry: Entry | None = None) -> None:
    """One slot recorded and drained in this process, at T0 + ``day``."""
    store = open_store(config.database.url, config.base_dir)
    try:
        with time_machine.travel(T0 + timedelta(days=day), tick=False):
            if entry is not None:
                actions.add_entry(store, config, entry)
            asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                             scheduled=True))
    finally:
        store.close()


@pytest.mark.catalogue("F2")
def test_catch_up_parts_arrive_once_each_across_a_sigkilled_sender(
        make_config: Callable[..., Path], database_url: str,
        fault: Callable[..., FaultServer], figures: Callable[..., None]) -> None:
    server = fault()
    config = _world(make_config, server.port, database_url)
    _in_process(config, 0)
    # the second slot's sender dies between the relay's 250 and its mark
    assert _record_slot(config, 1) == len(LATE)
    assert kill.send(config, crash_at="after_smtp_250:2", args=DRAIN) == 137
    kill.expire_leases(config)
    _drain(config)
    _in_process(config, 2)
    _in_process(config, 3)
    _in_process(config, 3, Entry(
        series="reflections-on-the-iso-crisis", language="en", title="What comes next",
        summary="A new part.", published=T0 + timedelta(days=3),
        url="https://socialistworker.org/2026/11/05/what-comes-next/"))
    _check(server, config, figures, database_url)

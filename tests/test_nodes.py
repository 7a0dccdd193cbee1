"""Several daemons on one PostgreSQL store: the lease on the lead, the fence on an old
leader's writes, and what status, /healthz and /metrics say about the nodes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from starlette.testclient import TestClient

from seriesfeed import actions, metrics
from seriesfeed.actions.digests import record_digests
from seriesfeed.actions.nodes import NodeLease, acting_under
from seriesfeed.config import Config, load_config
from seriesfeed.errors import ConfigError, StaleLeaderError, StoreError
from seriesfeed.models import Frequency
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import digests, outbox, subscribers
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE

TOKEN = "t" * 24


@pytest.fixture
def world(make_config: Callable[..., Path], pg_url: str) -> Iterator[tuple[Config, Store]]:
    config = load_config(make_config(database={"url": pg_url}, nodes={"lease_seconds": 2},
                                     metrics={"enabled": True, "token": TOKEN},
                                     security={"secret_key": "n" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    for email in ("ann@example.org", "bea@example.org"):
        actions.subscribers.add_subscriber(store, config, email, language="en",
                                           frequency="daily", confirmed=True)
    actions.import_entries(store, config, SEED_PAGE)
    yield config, store
    store.close()


def _expire(store: Store) -> None:
    """The holder's lease runs out now (as if it had not renewed for a whole lease)."""
    with store.write() as conn:
        conn.execute(text("UPDATE leadership SET expires_at = clock_timestamp() "
                          "- interval '1 second'"))


def _count(store: Store, table: Any) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.postgres
def test_one_node_leads_and_another_takes_over_only_after_the_lease_runs_out(
        world: tuple[Config, Store], caplog: pytest.LogCaptureFixture) -> None:
    config, store = world
    a, b = NodeLease(store, config, "node-a"), NodeLease(store, config, "node-b")
    assert a.tick() is True
    first = a.fence()
    assert first is not None and first.node == "node-a"
    assert b.tick() is False and b.fence() is None  # a holds a live lease
    assert a.tick() is False  # a renewal, not a new lead: same epoch
    assert a.fence() == first
    _expire(store)
    with caplog.at_level(logging.WARNING, logger="seriesfeed.nodes"):
        assert b.tick() is True
        taken = b.fence()
        assert taken is not None and taken.epoch == first.epoch + 1
        assert a.tick() is False
    assert a.fence() is None
    text_ = caplog.text
    assert f"node node-b takes the lead (epoch {taken.epoch}): node node-a's lease" in text_
    assert "node node-a loses the lead" in text_ and "node node-b took the lead" in text_


@pytest.mark.postgres
def test_an_old_epochs_record_digests_is_refused_and_records_nothing(
        world: tuple[Config, Store]) -> None:
    """A leader paused past its lease wakes holding epoch N while another node leads at
    N+1: its recording transaction is refused whole (no digest, no rows, no cursor moved)."""
    config, store = world
    old, new = NodeLease(store, config, "old"), NodeLease(store, config, "new")
    old.tick()
    stale = old.fence()
    assert stale is not None
    _expire(store)
    assert new.tick() is True
    now = datetime.now(UTC)
    with acting_under(stale), pytest.raises(StaleLeaderError, match="no longer leads"):
        record_digests(store, config, Frequency.DAILY, now, scheduled=True)
    assert _count(store, digests) == 0 and _count(store, outbox) == 0
    with store.read() as conn:
        assert set(conn.execute(select(subscribers.c.last_seq)).scalars()) == {0}
    current = new.fence()
    assert current is not None
    with acting_under(current):
        recorded = record_digests(store, config, Frequency.DAILY, now, scheduled=True)
    assert [d.recipients for d in recorded] == [2]
    assert _count(store, outbox) == 2


@pytest.mark.postgres
def test_a_takeover_waits_for_the_old_epochs_write_in_flight_but_a_renewal_does_not(
        world: tuple[Config, Store]) -> None:
    """The old leader's write that passed its check commits before the new epoch begins:
    a takeover cannot slip in between the check and the commit. The leader's own renewal
    is not held up by its long job."""
    config, store = world
    old, new = NodeLease(store, config, "old"), NodeLease(store, config, "new")
    old.tick()
    fence = old.fence()
    with acting_under(fence), store.write() as conn:  # a scheduled job's write, open
        conn.execute(text("UPDATE subscribers SET last_seq = 1"))
        started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(old.tick).result(timeout=10) is False  # renewed
            assert time.monotonic() - started < 1.0
            _expire_in(pool, store)
            with pytest.raises(StoreError):  # waits its lock timeout, then gives up
                pool.submit(new.tick).result(timeout=10)
            assert new.fence() is None
    assert new.tick() is True  # once the old epoch's write committed
    with store.read() as conn:
        assert set(conn.execute(select(subscribers.c.last_seq)).scalars()) == {1}


def _expire_in(pool: ThreadPoolExecutor, store: Store) -> None:
    pool.submit(_expire, store).result(timeout=10)


@pytest.mark.postgres
def test_writes_outside_a_scheduled_job_are_not_fenced(world: tuple[Config, Store]) -> None:
    """Web requests and the outbox drain run on every node: no fence, whoever leads."""
    config, store = world
    other = NodeLease(store, config, "other")
    other.tick()
    actions.subscribers.add_subscriber(store, config, "cai@example.org", language="en",
                                       frequency="daily", confirmed=True)
    assert _count(store, subscribers) == 3


@pytest.mark.postgres
def test_status_healthz_and_metrics_name_the_nodes_and_the_leader(
        world: tuple[Config, Store], run_cli: Any) -> None:
    config, store = world
    a, b = NodeLease(store, config, "node-a"), NodeLease(store, config, "node-b")
    a.tick()
    b.tick()
    assert config.path is not None
    shown = run_cli("--config", str(config.path), "status", "--json")
    assert shown.code == 0, shown.err
    report = json.loads(shown.out)
    assert report["leader"]["node"] == "node-a" and report["leader"]["epoch"] >= 1
    assert {n["node"]: n["leader"] for n in report["nodes"]} == {"node-a": True,
                                                                 "node-b": False}
    plain = run_cli("--config", str(config.path), "status")
    assert "leader: node-a (epoch" in plain.out
    exposed = metrics.exposition(actions.status_report(config, store)).decode()
    assert 'seriesfeed_leader{node="node-a"} 1.0' in exposed
    assert 'seriesfeed_leader{node="node-b"} 0.0' in exposed
    assert "seriesfeed_nodes 2.0" in exposed
    client = TestClient(create_app(config, store))
    assert set(client.get("/healthz").json()) == {"status", "reasons"}  # public: no hosts
    full = client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert full["leader"]["node"] == "node-a"
    assert [n["node"] for n in full["nodes"]] == ["node-a", "node-b"]
    a.close()  # a clean stop: no leader until the next tick, and a leaves the list
    report = actions.status_report(config, store, figures=False)
    assert report["leader"] is None and [n["node"] for n in report["nodes"]] == ["node-b"]
    assert b.tick() is True  # at once, not a lease later


@pytest.mark.parametrize("value", [0.5, 0, 7200])
def test_lease_seconds_out_of_range_is_refused_naming_the_key(
        make_config: Callable[..., Path], value: float) -> None:
    with pytest.raises(ConfigError, match=r"nodes\.lease_seconds"):
        load_config(make_config(nodes={"lease_seconds": value}), env={})


def test_lease_seconds_defaults_to_15(make_config: Callable[..., Path]) -> None:
    assert load_config(make_config(), env={}).nodes.lease_seconds == 15


@pytest.mark.postgres
def test_nodes_share_the_runner_lock_so_a_restore_is_still_refused_while_one_runs(
        pg_url: str) -> None:
    from seriesfeed.errors import LockError
    from seriesfeed.store.locks import RunnerLock

    store = Store(pg_url)
    first, second = RunnerLock(store, shared=True), RunnerLock(store, shared=True)
    try:
        first.acquire()
        second.acquire()  # a second node starts beside the first
        with pytest.raises(LockError, match="another seriesfeed daemon"):
            RunnerLock(store).acquire()  # what restore takes
    finally:
        first.release()
        second.release()
        store.close()
    again = RunnerLock(Store(pg_url))
    again.acquire()  # every node gone: a restore may proceed
    again.release()
    again.store.close()

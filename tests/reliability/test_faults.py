"""Fault tests F1, F2, F4-F8, F11, F13 of ../shared/RELIABILITY.md against the scripted fault
SMTP server; its fsynced log decides what was delivered."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from seriesfeed import actions
from seriesfeed.actions.delivery import drain_outbox, duplicate_bound
from seriesfeed.config import Config
from seriesfeed.models import Frequency
from seriesfeed.store import open_store
from seriesfeed.store.tables import outbox, subscribers
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer, Rule
from tests.harness.figures import tier

FAST_RETRY = {"mail": {"retry_seconds": 0.05, "max_attempts": 8}}


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'faults.sqlite3'}"


def _drain_in_process(config: Config, deadline_s: float = 120) -> dict[str, int]:
    """Record the digest, then drain until no row is waiting for a retry."""
    store = open_store(config.database.url, config.base_dir)
    try:
        asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                         scheduled=False))
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            states = kill.outbox_states(config)
            if states.keys() <= {"sent", "failed"}:
                return states
            time.sleep(0.1)
            asyncio.run(drain_outbox(store, config))
        raise AssertionError(f"not drained: {kill.outbox_states(config)}")
    finally:
        store.close()


def _row_states(config: Config) -> dict[str, tuple[str, int, bool]]:
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.read() as conn:
            rows = conn.execute(select(subscribers.c.email, outbox.c.state, outbox.c.attempts,
                                       outbox.c.uncertain)
                                .join(subscribers, subscribers.c.id == outbox.c.subscriber_id))
            return {str(e): (str(s), int(a), bool(u)) for e, s, a, u in rows}
    finally:
        store.close()


# (domain, rule, expected final state)
MATRIX: list[tuple[str, Rule | None, str]] = [
    ("ok.test", None, "sent"),
    ("r450.test", Rule("rcpt", "450 4.2.1 mailbox busy", times=2), "sent"),
    ("r451.test", Rule("rcpt", "451 4.3.0 local error", times=1), "sent"),
    ("r452.test", Rule("rcpt", "452 4.5.3 too many recipients", times=1), "sent"),
    ("r421.test", Rule("rcpt", "421 4.3.2 shutting down", times=1), "sent"),
    ("d451.test", Rule("data", "451 4.3.0 try later", times=1), "sent"),
    ("r550.test", Rule("rcpt", "550 5.1.1 no such user"), "failed"),
    ("d552.test", Rule("data", "552 5.3.4 message too big"), "failed"),
    ("d554.test", Rule("data", "554 5.7.1 rejected"), "failed"),
]


@pytest.mark.catalogue("F5")
def test_reply_matrix_ends_every_row_in_its_state(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None]) -> None:
    n = 1000
    rules = {d: [r] for d, r, _ in MATRIX if r is not None}
    server = fault(rules=rules, greeting_failures=3)
    addresses = [f"u{i}@{MATRIX[i % len(MATRIX)][0]}" for i in range(n)]
    config = kill.world(make_config, server.port, n, _sqlite_url(tmp_path), extra=FAST_RETRY,
                        addresses=addresses, connections=4)
    started = time.monotonic()
    _drain_in_process(config)
    rows = _row_states(config)
    expected = {a: MATRIX[i % len(MATRIX)][2] for i, a in enumerate(addresses)}
    wrong = {a: rows[a] for a in addresses if rows[a][0] != expected[a]}
    assert not wrong, list(wrong.items())[:5]
    handler = server.handler
    hard = [a for a in addresses if expected[a] == "failed"]
    tries = {a: handler.attempts[("rcpt", a)] + handler.attempts[("data", a)] for a in hard}
    assert all(t == 1 for t in tries.values()), "a 5xx was retried"
    delivered = kill.account(handler.deliveries(),
                             {a for a in addresses if expected[a] == "sent"})
    assert delivered.lost == 0 and delivered.duplicates == 0
    assert handler.events["greeting_421"] == 3
    store = open_store(config.database.url, config.base_dir)
    with store.read() as conn:
        bounced = conn.execute(select(func.count()).select_from(subscribers)
                               .where(subscribers.c.status == "bounced")).scalar_one()
        suppressed_rows = conn.execute(select(subscribers.c.hard_bounces)
                                       .where(subscribers.c.email == hard[0])).scalar_one()
    store.close()
    assert suppressed_rows == 1 and bounced == 0  # one hard failure; bounce_limit is 3
    figures(recipients=n, sent=len(addresses) - len(hard), failed=len(hard),
            **{"5xx tries": max(tries.values()), "lost": delivered.lost,
               "duplicates": delivered.duplicates, "seconds": round(time.monotonic() - started, 1)})


@pytest.mark.catalogue("F6")
def test_drops_after_dot_and_mid_data_lose_nothing(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None]) -> None:
    n = 600
    rules = {"after.test": [Rule("drop_after_dot", times=1)],
             "mid.test": [Rule("drop_mid_data", times=1)]}
    server = fault(rules=rules)
    domains = ["ok.test", "after.test", "mid.test"]
    addresses = [f"u{i}@{domains[i % 3]}" for i in range(n)]
    config = kill.world(make_config, server.port, n, _sqlite_url(tmp_path), extra=FAST_RETRY,
                        addresses=addresses, connections=4)
    _drain_in_process(config)
    rows = _row_states(config)
    assert {s for s, _, _ in rows.values()} == {"sent"}
    got = kill.account(server.handler.deliveries(), set(addresses))
    per_domain_dups = {d: 0 for d in domains}
    seen: set[str] = set()
    for d in server.handler.deliveries():
        for r in d.recipients:
            if r in seen:
                per_domain_dups[r.rsplit("@", 1)[1]] += 1
            seen.add(r)
    uncertain = sum(1 for _, _, u in rows.values() if u)
    assert got.lost == 0
    assert got.ids_consistent
    assert per_domain_dups == {"ok.test": 0, "after.test": n // 3, "mid.test": 0}
    assert uncertain == 2 * n // 3  # both kinds of drop are uncertain to the client
    figures(recipients=n, lost=got.lost, uncertain=uncertain, duplicates=got.duplicates,
            **{"duplicates from after-dot drops": per_domain_dups["after.test"],
               "duplicates share Message-ID": got.ids_consistent})


def _integrity(config: Config) -> str:
    db = sqlite3.connect(config.database.url.removeprefix("sqlite:///"))
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


@pytest.mark.catalogue("F1")
def test_sigkill_at_random_points_loses_nothing(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None]) -> None:
    runs, n = tier(2, 20), 5000
    rng = random.Random(20261124)
    worst, total_dups, killed = 0, 0, 0
    for run in range(runs):
        server = fault(keep_messages=False)
        config = kill.world(make_config, server.port, n,
                            f"sqlite:///{tmp_path / f'f1-{run}.sqlite3'}")
        if kill.send(config, kill_after=rng.uniform(0.8, 4.0)) != 0:
            killed += 1
        kill.drain(config)
        got = kill.account(server.handler.deliveries(), kill.recipients(n))
        assert got.lost == 0, f"run {run}: {got}"
        assert got.duplicates <= duplicate_bound(config), f"run {run}: {got}"
        assert got.ids_consistent
        assert _integrity(config) == "ok"
        assert kill.outbox_states(config) == {"sent": n}
        worst = max(worst, got.duplicates)
        total_dups += got.duplicates
        server.stop()
    assert killed >= runs // 2, "the kill offsets missed the sends"
    figures(runs=runs, recipients=n, killed=killed, lost=0, duplicates=total_dups,
            **{"max duplicates in one crash": worst,
               "bound (in flight + unmarked groups)": duplicate_bound(config),
               "integrity_check": "ok"})


CRASH_POINTS = [  # (point, hits for 600 recipients in batches of 200)
    ("mid_record", 1), ("after_record_commit", 1), ("after_claim_commit", 3),
    ("after_smtp_250", 600), ("before_mark_commit", 3), ("after_mark_commit", 3)]


# The fast tier crashes once at each point (each point's own assertions), the hits taken
# in turn first, middle, last; the full tier at every point's first, middle and last hit.
FAST_CRASHES = {("mid_record", 1), ("after_record_commit", 1), ("after_claim_commit", 2),
                ("after_smtp_250", 600), ("before_mark_commit", 1), ("after_mark_commit", 2)}


@pytest.mark.catalogue("F2")
@pytest.mark.parametrize(("point", "nth"), [
    pytest.param(p, k, marks=() if (p, k) in FAST_CRASHES else pytest.mark.full)
    for p, k in sorted({(p, k) for p, hits in CRASH_POINTS
                        for k in (1, (hits + 1) // 2, hits)})])
def test_named_crash_points_lose_nothing(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], point: str, nth: int) -> None:
    n = 600
    server = fault()
    config = kill.world(make_config, server.port, n, _sqlite_url(tmp_path))
    assert kill.send(config, crash_at=f"{point}:{nth}") == 137
    if point == "mid_record":  # recording is all or nothing
        assert server.handler.deliveries() == []
        assert kill.outbox_states(config) == {}
    kill.expire_leases(config)
    kill.drain(config)
    got = kill.account(server.handler.deliveries(), kill.recipients(n))
    assert got.lost == 0 and got.ids_consistent
    assert got.duplicates <= duplicate_bound(config)
    if point in ("after_smtp_250", "before_mark_commit"):
        assert got.duplicates >= 1  # the unmarked group was sent again, same Message-IDs
    elif point != "after_mark_commit":  # there, sends still in flight may go out twice
        assert got.duplicates == 0
    assert _integrity(config) == "ok"
    figures(point=f"{point}:{nth}", lost=got.lost, duplicates=got.duplicates)

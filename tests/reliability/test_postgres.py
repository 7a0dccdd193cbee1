"""F3 of ../shared/RELIABILITY.md on PostgreSQL (127.0.0.1:5432; skipped with the reason
when it does not answer): SIGKILL at random, two senders sharing the outbox, and the sender's
database connection terminated mid-send."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from seriesfeed.actions.delivery import duplicate_bound
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer
from tests.harness.figures import tier
from tests.harness.procs import Processes

pytestmark = pytest.mark.postgres


@pytest.mark.catalogue("F3")
def test_sigkill_at_random_on_postgresql(pg_url: str, make_config: Callable[..., Path],
                                         fault: Callable[..., FaultServer],
                                         figures: Callable[..., None]) -> None:
    from tests.conftest import _empty_pg

    runs, n = tier(1, 10), 3000
    rng = random.Random(5432)
    worst = total = 0
    for _ in range(runs):
        _empty_pg(pg_url)
        smtp = fault(keep_messages=False)
        config = kill.world(make_config, smtp.port, n, pg_url)
        kill.send(config, kill_after=rng.uniform(0.8, 3.0))
        kill.expire_leases(config)
        kill.drain(config)
        got = kill.account(smtp.handler.deliveries(), kill.recipients(n))
        assert got.lost == 0 and got.ids_consistent, got
        assert got.duplicates <= duplicate_bound(config), got
        worst, total = max(worst, got.duplicates), total + got.duplicates
        smtp.stop()
    figures(part="SIGKILL", runs=runs, recipients=n, lost=0, duplicates=total,
            **{"max in one crash": worst})


@pytest.mark.catalogue("F3")
def test_two_senders_share_the_outbox_without_double_claims(
        pg_url: str, make_config: Callable[..., Path], fault: Callable[..., FaultServer],
        figures: Callable[..., None], procs: Processes) -> None:
    n = tier(2000, 10_000)
    smtp = fault(keep_messages=False, fsync=False, tarpit=0.002)
    config = kill.world(make_config, smtp.port, n, pg_url)
    assert config.path is not None
    senders = [procs.start([sys.executable, "-m", "seriesfeed", "--config",
                            str(config.path), "digest", "send", "--frequency", "daily"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in senders]
    assert all(p.returncode == 0 for p in senders), [o[1][-2000:] for o in outs]
    got = kill.account(smtp.handler.deliveries(), kill.recipients(n))
    assert got.lost == 0 and got.duplicates == 0
    sent = [int(o[0].split(" sent")[0].rsplit(" ", 1)[-1]) for o in outs]
    assert sum(sent) == n and all(s > 0 for s in sent), outs
    figures(part="two senders", recipients=n, **{"sent by each": "/".join(map(str, sent)),
                                                "double claims": 0, "lost": 0})


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
@pytest.mark.catalogue("F3")
def test_terminated_backend_mid_send(pg_url: str, make_config: Callable[..., Path],
                                     fault: Callable[..., FaultServer],
                                     figures: Callable[..., None], procs: Processes) -> None:
    n = 3000
    smtp = fault(keep_messages=False, fsync=False, tarpit=0.002)
    config = kill.world(make_config, smtp.port, n, pg_url)
    assert config.path is not None
    proc = procs.start([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                        "digest", "send", "--frequency", "daily"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env={**os.environ})
    deadline = time.monotonic() + 60
    while len(smtp.handler.deliveries()) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchone()
    terminated_at = time.monotonic()
    before = len(smtp.handler.deliveries())
    resumed = None
    while proc.poll() is None and time.monotonic() < terminated_at + 60:
        if resumed is None and len(smtp.handler.deliveries()) > before + 10:
            resumed = time.monotonic() - terminated_at
        time.sleep(0.02)
    _, err = proc.communicate(timeout=60)
    if proc.returncode != 0:  # the store error ended this run: a restart finishes the work
        assert "Traceback" not in err, err[-3000:]
        kill.expire_leases(config)
    kill.drain(config)
    got = kill.account(smtp.handler.deliveries(), kill.recipients(n))
    assert got.lost == 0 and got.ids_consistent and got.duplicates <= duplicate_bound(config)
    assert killed is not None and killed[0] >= 1
    if resumed is None:
        resumed = -1.0
    assert 0 <= resumed < 5, (resumed, proc.returncode, err[-2000:])
    figures(part="pg_terminate_backend", recipients=n, **{
        "backends terminated": killed[0], "sending resumed after s": round(resumed, 2),
        "exit code": proc.returncode, "lost": got.lost, "duplicates": got.duplicates})

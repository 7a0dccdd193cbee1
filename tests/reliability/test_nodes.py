"""Several full daemons on one PostgreSQL store (RELIABILITY invariant 17): every node
serves and sends, one leads the schedule; a killed leader is replaced within a lease, and a
leader frozen past its lease wakes to find it fenced out: it fires nothing and steps down."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from seriesfeed.actions.nodes import nodes_report
from seriesfeed.config import Config, load_config
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import digests, job_runs
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer
from tests.harness.procs import Processes, seriesfeed_args
from tests.smtp_server import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.serial, pytest.mark.catalogue("F20")]

LEASE = 2.0
SLOT = 3  # seconds between the daily digest's slots (a fast schedule)
TOKEN = "m" * 24
RECIPIENTS = 5


def _sections(port: int) -> dict[str, Any]:
    return {
        "web": {"host": "127.0.0.1", "port": port, "base_url": "https://feeds.example.org"},
        "schedule": {"feeds": "0 */6 * * *", "daily": f"*/{SLOT} * * * * *",
                     "weekly": "0 7 * * mon", "drain_seconds": 0.5, "watch_seconds": 1,
                     "shutdown_timeout": 5},
        "nodes": {"lease_seconds": LEASE},
        "metrics": {"enabled": True, "token": TOKEN},
    }


def _nodes(make_config: Callable[..., Path], smtp: FaultServer, url: str,
           count: int) -> list[tuple[Config, int]]:
    """``count`` configs on one store, each with its own web port (and folder)."""
    ports = [free_port() for _ in range(count)]
    first = kill.world(make_config, smtp.port, RECIPIENTS, url, extra=_sections(ports[0]))
    out = [(first, ports[0])]
    for port in ports[1:]:
        out.append((load_config(make_config(
            database={"url": url}, security={"secret_key": "c" * 32},
            smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none",
                  "connections": 4, "timeout": 10}, **_sections(port)), env={}), port))
    return out


def _start(procs: Processes, config: Config, log: Path) -> subprocess.Popen[Any]:
    with log.open("w") as sink:  # a file: read at any moment, never a full pipe
        return procs.start(seriesfeed_args(config.path, "run"), stdout=subprocess.DEVNULL,
                           stderr=sink, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _get(port: int, path: str, token: bool = False) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=3) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _report(config: Config, store: Store) -> dict[str, Any]:
    return nodes_report(config, store)


def _digest_runs(store: Store) -> list[tuple[datetime, bool | None]]:
    with store.read() as conn:
        return [(r.started_at, r.ok) for r in conn.execute(
            select(job_runs.c.started_at, job_runs.c.ok)
            .where(job_runs.c.job == "digest-daily").order_by(job_runs.c.started_at))]


def _slot(moment: datetime) -> int:
    return int(moment.timestamp()) // SLOT


def _fired_once_per_slot(store: Store) -> Counter[int]:
    """Successful digest runs per slot: never two (a catch-up runs in its own slot's
    place, so it counts for the slot it started in)."""
    per_slot = Counter(_slot(started) for started, ok in _digest_runs(store) if ok)
    assert max(per_slot.values(), default=0) <= 1, per_slot
    return per_slot


def _one_digest_per_period(store: Store) -> int:
    with store.read() as conn:
        rows = conn.execute(select(digests.c.language, digests.c.frequency,
                                   digests.c.period, func.count())
                            .group_by(digests.c.language, digests.c.frequency,
                                      digests.c.period)).all()
    assert rows and all(r[3] == 1 for r in rows), rows
    return len(rows)


def _ledger(store: Store) -> tuple[Counter[int], int]:
    """The store's account of the run (at most one run per slot, one digest per period),
    then the store closed, whatever the account says."""
    try:
        return _fired_once_per_slot(store), _one_digest_per_period(store)
    finally:
        store.close()


def _each_once(smtp: FaultServer) -> kill.Accounting:
    """The relay's account: every recipient's digests delivered, none twice."""
    got = kill.account(smtp.handler.deliveries(), kill.recipients(RECIPIENTS))
    assert got.lost == 0 and got.duplicates == 0
    return got


def _all_up(config: Config, store: Store, ports: list[int], count: int) -> dict[str, Any]:
    _wait(lambda: all(_get(p, "/healthz")[0] == 200 for p in ports), 45, "every node's web")
    _wait(lambda: (r := _report(config, store))["leader"] is not None
          and len(r["nodes"]) == count, 20, f"{count} nodes and a leader")
    return _report(config, store)


def test_a_killed_leader_is_replaced_within_the_lease_and_the_next_slot_fires_once(
        make_config: Callable[..., Path], fault: Callable[..., FaultServer], pg_url: str,
        tmp_path: Path, figures: Callable[..., None]) -> None:
    smtp = fault()
    world = _nodes(make_config, smtp, pg_url, 3)
    config = world[0][0]
    store = open_store(config.database.url, config.base_dir)
    try:
        with Processes() as procs:
            by_pid = {}
            for i, (node_config, _port) in enumerate(world):
                proc = _start(procs, node_config, tmp_path / f"node{i}.log")
                by_pid[proc.pid] = proc
            before = _all_up(config, store, [p for _, p in world], 3)
            assert sum(n["leader"] for n in before["nodes"]) == 1
            for _, port in world:  # every node serves the pages, feeds and health
                assert _get(port, "/feeds/en/atom.xml")[0] == 200
                assert _get(port, "/en/reflections-on-the-iso-crisis/")[0] == 200
                health = json.loads(_get(port, "/healthz", token=True)[1])
                assert health["leader"]["node"] == before["leader"]["node"]
                status, body = _get(port, "/metrics", token=True)
                assert status == 200 and b"seriesfeed_nodes 3.0" in body
            _wait(lambda: len(smtp.handler.deliveries()) >= RECIPIENTS, 30,
                  "the day's digest delivered")
            leader = before["leader"]
            pid = next(n["pid"] for n in before["nodes"] if n["leader"])
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            by_pid[pid].wait(timeout=10)
            took = _wait(lambda: (r := _report(config, store))["leader"] is not None
                         and r["leader"]["node"] != leader["node"], LEASE + 5,
                         "another node to lead")
            after = _report(config, store)
            assert after["leader"]["epoch"] == leader["epoch"] + 1
            taken = datetime.fromisoformat(after["leader"]["since"])
            # the next slot after the takeover fires, on the new leader
            _wait(lambda: any(ok and started >= taken for started, ok in _digest_runs(store)),
                  2 * SLOT + 5, "a digest slot fired by the new leader")
            failover = time.monotonic() - killed_at
            # a clean stop ends the lease as the node exits: the last node leads at its
            # next tick, not a whole lease later
            new_pid = next(n["pid"] for n in after["nodes"] if n["leader"])
            by_pid[new_pid].send_signal(signal.SIGTERM)
            assert by_pid[new_pid].wait(timeout=15) == 0
            stopped_at = time.monotonic()
            handed = _wait(lambda: (r := _report(config, store))["leader"] is not None
                           and r["leader"]["epoch"] == after["leader"]["epoch"] + 1,
                           LEASE, "the last node to lead after a clean stop")
            assert time.monotonic() - stopped_at < LEASE
            # it left the list as it stopped (the SIGKILLed one stays until its heartbeat
            # is two leases old)
            assert new_pid not in [n["pid"] for n in _report(config, store)["nodes"]]
    finally:
        per_slot, periods = _ledger(store)
    got = _each_once(smtp)
    figures(nodes=3, lease_s=LEASE, **{"new leader within s": round(took, 2),
                                       "kill to next slot fired s": round(failover, 2),
                                       "SIGTERM to next leader s": round(handed, 2),
                                       "slots fired": len(per_slot), "most runs in one slot": 1,
                                       "digests per period": 1, "periods": periods,
                                       "duplicates": got.duplicates})


def test_a_leader_frozen_past_its_lease_wakes_fires_nothing_and_steps_down(
        make_config: Callable[..., Path], fault: Callable[..., FaultServer], pg_url: str,
        tmp_path: Path, figures: Callable[..., None]) -> None:
    smtp = fault()
    world = _nodes(make_config, smtp, pg_url, 2)
    config = world[0][0]
    store = open_store(config.database.url, config.base_dir)
    logs = [tmp_path / f"node{i}.log" for i in range(len(world))]
    frozen: subprocess.Popen[Any] | None = None
    try:
        with Processes() as procs:
            started = {}
            for i, (node_config, _port) in enumerate(world):
                proc = _start(procs, node_config, logs[i])
                started[proc.pid] = (proc, logs[i])
            before = _all_up(config, store, [p for _, p in world], 2)
            _wait(lambda: len(smtp.handler.deliveries()) >= RECIPIENTS, 30,
                  "the day's digest delivered")
            pid = next(n["pid"] for n in before["nodes"] if n["leader"])
            frozen, frozen_log = started[pid]
            os.kill(pid, signal.SIGSTOP)
            try:
                _wait(lambda: (r := _report(config, store))["leader"] is not None
                      and r["leader"]["node"] != before["leader"]["node"], LEASE + 5,
                      "another node to lead")
                taken = datetime.fromisoformat(_report(config, store)["leader"]["since"])
                _wait(lambda: any(ok and s >= taken for s, ok in _digest_runs(store)),
                      2 * SLOT + 5, "the new leader to fire a slot")
                time.sleep(SLOT)  # at least one slot the frozen leader's clock missed
                woke_at = frozen_log.stat().st_size
            finally:
                os.kill(pid, signal.SIGCONT)
            # the woken node sees its lease gone within a tick, and fires nothing
            _wait(lambda: "loses the lead" in frozen_log.read_text()[woke_at:], LEASE + 5,
                  "the woken node to step down")
            time.sleep(2 * SLOT)  # slots it would fire if it still believed it led
            after_wake = frozen_log.read_text()[woke_at:]
            # a job it had begun before the freeze may finish its work (what it recorded,
            # it recorded under its lease, and what it sends any node may send), but the
            # store refuses its result; it begins no run of its own after waking
            finished = re.findall(r"job ([\w-]+): ", after_wake)
            refused = re.findall(r"job ([\w-]+) refused by the store", after_wake)
            assert Counter(finished) <= Counter(refused), after_wake
            assert all(n == 1 for n in Counter(finished).values()), after_wake
            assert "takes the lead" not in after_wake, after_wake
            assert frozen.poll() is None  # still up: it serves and sends, it does not lead
            final = _report(config, store)
            assert final["leader"]["epoch"] == before["leader"]["epoch"] + 1
            assert final["leader"]["node"] != before["leader"]["node"]
    finally:
        per_slot, periods = _ledger(store)
    _each_once(smtp)
    reason = next(line for line in after_wake.splitlines() if "loses the lead" in line)
    figures(nodes=2, lease_s=LEASE, **{"slots fired": len(per_slot),
                                       "most runs in one slot": 1, "periods": periods,
                                       "runs begun by the woken node": 0,
                                       "runs in flight at the freeze": len(finished),
                                       "step-down reason": reason.split(": ", 1)[-1][:80]})


@pytest.mark.full  # a soak: ./dev test --full
def test_rounds_of_kills_and_freezes_never_fire_a_slot_twice(
        make_config: Callable[..., Path], fault: Callable[..., FaultServer], pg_url: str,
        tmp_path: Path, figures: Callable[..., None]) -> None:
    """Six rounds on three nodes: the leader SIGKILLed (and started again) or frozen past
    its lease and woken; after each, a leader at a higher epoch fires; over all of it, no
    slot runs twice and no message is sent twice."""
    smtp = fault()
    world = _nodes(make_config, smtp, pg_url, 3)
    config = world[0][0]
    store = open_store(config.database.url, config.base_dir)
    failovers: list[float] = []
    try:
        with Processes() as procs:
            running: dict[int, tuple[subprocess.Popen[Any], int]] = {}
            for i, (node_config, _port) in enumerate(world):
                proc = _start(procs, node_config, tmp_path / f"node{i}-0.log")
                running[proc.pid] = (proc, i)
            report = _all_up(config, store, [p for _, p in world], 3)
            for round_ in range(6):
                epoch = report["leader"]["epoch"]
                pid = next(n["pid"] for n in report["nodes"] if n["leader"])
                proc, index = running.pop(pid)
                began = time.monotonic()
                os.kill(pid, signal.SIGKILL if round_ % 2 == 0 else signal.SIGSTOP)
                _wait(lambda e=epoch: (r := _report(config, store))["leader"] is not None
                      and r["leader"]["epoch"] > e, LEASE + 5, "a new leader")
                failovers.append(time.monotonic() - began)
                if round_ % 2 == 0:
                    proc.wait(timeout=10)
                    proc = _start(procs, world[index][0],
                                  tmp_path / f"node{index}-{round_ + 1}.log")
                else:
                    time.sleep(SLOT)
                    os.kill(pid, signal.SIGCONT)
                running[proc.pid] = (proc, index)
                _wait(lambda: len(_report(config, store)["nodes"]) >= 3, 45, "three nodes")
                time.sleep(SLOT)
                report = _report(config, store)
    finally:
        per_slot, periods = _ledger(store)
    got = _each_once(smtp)
    figures(nodes=3, rounds=6, lease_s=LEASE, **{
        "slowest failover s": round(max(failovers), 2), "slots fired": len(per_slot),
        "most runs in one slot": 1, "periods": periods, "duplicates": got.duplicates})

"""The kill harness: a world of N confirmed subscribers, ``seriesfeed digest send`` (or the
daemon) run as a subprocess, SIGKILLed at seeded offsets or at named crash points, then run
again until drained; lost and duplicate accounting from the fault server's log."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from seriesfeed import actions
from seriesfeed.config import Config, load_config
from seriesfeed.store import open_store
from seriesfeed.store.tables import outbox, subscribers
from tests.conftest import SEED_PAGE
from tests.harness.fault_smtp import Delivery
from tests.harness.procs import seriesfeed_args, spawned


def world(make_config: Callable[..., Path], port: int, n: int, database_url: str, *,
          connections: int = 4, language: str = "en", extra: dict[str, Any] | None = None,
          addresses: list[str] | None = None) -> Config:
    """A store with the seed series and ``n`` confirmed daily subscribers r{i}@example.org
    (or the given ``addresses``)."""
    emails = addresses or [f"r{i}@example.org" for i in range(n)]
    config = load_config(make_config(
        database={"url": database_url},
        smtp={"host": "127.0.0.1", "port": port, "security": "none",
              "connections": connections, "timeout": 10},
        security={"secret_key": "c" * 32}, **(extra or {})), env={})
    store = open_store(config.database.url, config.base_dir)
    now = datetime.now(UTC)
    try:
        with store.write() as conn:
            for start in range(0, len(emails), 10_000):
                conn.execute(insert(subscribers), [
                    {"email": e, "email_key": e.lower(), "language": language,
                     "frequency": "daily", "status": "confirmed", "created_at": now,
                     "confirmed_at": now, "last_seq": 0, "hard_bounces": 0}
                    for e in emails[start:start + 10_000]])
        actions.import_entries(store, config, SEED_PAGE)
    finally:
        store.close()
    return config


def send(config: Config, *, crash_at: str | None = None, kill_after: float | None = None,
         args: tuple[str, ...] = ("digest", "send", "--frequency", "daily"),
         timeout: float = 300) -> int:
    """Run one ``seriesfeed`` process; SIGKILL it after ``kill_after`` seconds if it is
    still running. Returns its exit code (-9 when killed)."""
    env = {k: v for k, v in os.environ.items() if k != "SERIESFEED_TEST_CRASH_AT"}
    if crash_at:
        env["SERIESFEED_TEST_CRASH_AT"] = crash_at
    assert config.path is not None
    with spawned(seriesfeed_args(config.path, *args), env=env, stdout=subprocess.DEVNULL,
                 stderr=subprocess.PIPE) as proc:  # reaped even when the wait times out
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=timeout)
    assert proc.returncode in (0, -9, 137), err.decode()[-3000:]
    return int(proc.returncode)


def expire_leases(config: Config) -> None:
    """Let the leases of rows claimed by a dead process lapse, as time would."""
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.write() as conn:
            conn.execute(outbox.update().where(outbox.c.state == "sending")
                         .values(lease_until=datetime(2000, 1, 1, tzinfo=UTC)))
    finally:
        store.close()


def drain(config: Config, deadline_s: float = 300) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if send(config) == 0 and outbox_states(config).keys() <= {"sent", "failed"}:
            return
        expire_leases(config)
    raise AssertionError(f"outbox not drained in {deadline_s} s: {outbox_states(config)}")


def outbox_states(config: Config) -> dict[str, int]:
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.read() as conn:
            from sqlalchemy import func
            rows = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
            return {str(s): int(c) for s, c in rows}
    finally:
        store.close()


@dataclass
class Accounting:
    expected: int
    delivered: int
    lost: int
    duplicates: int
    max_copies: int
    ids_consistent: bool

    def figure(self) -> dict[str, object]:
        return {"expected": self.expected, "lost": self.lost, "duplicates": self.duplicates,
                "max copies": self.max_copies,
                "duplicates share Message-ID": self.ids_consistent}


def account(deliveries: list[Delivery], expected: set[str]) -> Accounting:
    per: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}
    for d in deliveries:
        for rcpt in d.recipients:
            per[rcpt] += 1
            ids.setdefault(rcpt, set()).add(d.message_id)
    return Accounting(expected=len(expected), delivered=len(per),
                      lost=len(expected - set(per)),
                      duplicates=sum(c - 1 for c in per.values()),
                      max_copies=max(per.values(), default=0),
                      ids_consistent=all(len(v) == 1 for v in ids.values()))


def recipients(n: int) -> set[str]:
    return {f"r{i}@example.org" for i in range(n)}


def send_measured(config: Config,
                  args: tuple[str, ...] = ("digest", "send", "--frequency", "daily")
                  ) -> tuple[float, int]:
    """Run one ``seriesfeed`` process to the end; its wall time and peak RSS in KiB."""
    assert config.path is not None
    started = time.monotonic()
    with spawned(seriesfeed_args(config.path, *args), stdout=subprocess.DEVNULL,
                 stderr=subprocess.PIPE) as proc:
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err.decode()[-3000:]
    return time.monotonic() - started, int(usage.ru_maxrss)

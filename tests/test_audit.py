"""The audit trail: `actions.audit.record` / `log` and `seriesfeed admin log`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from seriesfeed.actions import audit
from seriesfeed.store import Store
from tests.conftest import CliResult


def test_record_and_log_newest_first_with_filters_and_bounds(store: Store) -> None:
    first = audit.record(store, account="admin", session="s1", address="192.0.2.7",
                         action="login", target=None, detail=None, ok=True)
    audit.record(store, account="admin", session="s1", address="192.0.2.7",
                 action="outbox.retry", target="outbox 12", detail={"ids": [12]}, ok=True)
    audit.record(store, account="admin", session=None, address="x" * 300,
                 action="login", target=None, detail={"why": "wrong password"}, ok=False)
    found = audit.log(store, limit=10)
    assert [e.action for e in found] == ["login", "outbox.retry", "login"]
    assert found[0].ok is False and found[0].detail == {"why": "wrong password"}
    assert found[0].address == "x" * 64  # cut to the column, never refused
    assert found[1].detail == {"ids": [12]} and found[1].target == "outbox 12"
    assert found[2].id == first and found[2].session == "s1"
    assert [e.action for e in audit.log(store, limit=1, offset=1)] == ["outbox.retry"]
    assert [e.ok for e in audit.log(store, limit=10, action="login")] == [False, True]
    assert audit.count(store) == 3 and audit.count(store, action="login") == 2
    assert found[0].at.tzinfo is not None


def test_admin_log_command(make_config: Callable[..., Path], tmp_path: Path,
                           run_cli: Callable[..., CliResult]) -> None:
    path = make_config(database={"url": f"sqlite:///{tmp_path / 's.sqlite3'}"})
    assert run_cli("--config", path, "init").code == 0
    store = Store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    try:
        for n in range(3):
            audit.record(store, account="admin", session="abc", address="198.51.100.1",
                         action="subscribers.erase", target=f"s{n}", detail={"n": n}, ok=True)
    finally:
        store.close()
    out = run_cli("--config", path, "admin", "log", "--json", "--limit", "2")
    assert out.code == 0, out
    rows = json.loads(out.out)
    assert [r["target"] for r in rows] == ["s2", "s1"]
    assert set(rows[0]) == {"id", "at", "account", "session", "address", "action", "target",
                            "detail", "ok"}
    assert rows[0]["detail"] == {"n": 2} and rows[0]["at"].endswith(("-05:00", "-04:00"))
    text = run_cli("--config", path, "admin", "log")
    assert text.code == 0 and text.out.splitlines()[-1] == "3 rows"
    assert "admin (198.51.100.1)  subscribers.erase  s0  ok  n=0" in text.out
    assert run_cli("--config", path, "admin", "log", "--limit", "0").code == 2
    # read-only: a store that is not there is an error, never a new empty one
    gone = make_config(database={"url": f"sqlite:///{tmp_path / 'gone.sqlite3'}"})
    missing = run_cli("--config", gone, "admin", "log")
    assert missing.code == 1 and "there is no store" in missing.err
    assert not (tmp_path / "gone.sqlite3").exists()

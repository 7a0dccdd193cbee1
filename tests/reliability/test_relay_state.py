"""The relay's state is one thing (RELIABILITY invariant 15): one pause clock in the store,
shared by every sender process, probed with one message at its own pace; when the relay
answers again everything due goes out in the next drain. And an error building one
row's message is that row's unless it comes back for different recipients (invariant 10).
The fault server's fsynced log decides what was delivered."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from seriesfeed import actions, messages
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.config import Config
from seriesfeed.models import Frequency
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import outbox
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer


def _rows(store: Store) -> dict[str, dict[str, Any]]:
    with store.read() as conn:
        return {str(r.recipient): dict(r._mapping) for r in conn.execute(
            select(outbox.c.recipient, outbox.c.state, outbox.c.attempts, outbox.c.next_at,
                   outbox.c.last_error))}


def _delivered(server: FaultServer) -> set[str]:
    return {r for d in server.handler.deliveries() for r in d.recipients}


def _cli(config: Config, *args: str) -> tuple[int, str, str]:
    assert config.path is not None
    proc = subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                           *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    return proc.returncode, proc.stdout, proc.stderr


def _run_out_the_pause(store: Store) -> None:
    """The pause clock reaches its end now (instead of waiting for it)."""
    from seriesfeed.store.tables import relay_state

    with store.write() as conn:
        conn.execute(update(relay_state).values(paused_until=datetime(2000, 1, 1, tzinfo=UTC)))


@pytest.mark.catalogue("F4")
@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
def test_after_a_421_outage_everything_due_goes_within_retry_seconds_of_recovery(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer], figures: Callable[..., None]) -> None:
    """Found from outside: 40 s of 421 at the greeting left 32 of 60 rows waiting until an
    hour after the relay recovered (each drain doubled the wait of the rows it tried)."""
    retry, cadence, outage = 0.5, 0.1, 3.0
    server = fault(greeting_failures=10 ** 9)
    config = kill.world(make_config, server.port, 60, f"sqlite:///{tmp_path / 'o.sqlite3'}",
                        extra={"mail": {"retry_seconds": retry, "max_attempts": 8}})
    store = open_store(config.database.url, config.base_dir)

    async def run() -> tuple[float, float, int]:
        summary = await actions.send_digests(store, config, frequency=Frequency.DAILY,
                                             scheduled=False)
        assert "paused" in summary, summary
        started = time.monotonic()
        recovered = done = 0.0
        drains = 0
        while time.monotonic() - started < outage + 20:
            if not recovered and time.monotonic() - started >= outage:
                server.handler.greeting_failures = 0
                recovered = time.monotonic()
            await drain_outbox(store, config)  # what the daemon does every drain_seconds
            drains += 1
            if recovered and len(_delivered(server)) == 60:
                done = time.monotonic()
                break
            await asyncio.sleep(cadence)
        return recovered, done, drains

    try:
        recovered, done, drains = asyncio.run(run())
        rows = _rows(store)
    finally:
        store.close()
    assert done, f"{len(_delivered(server))} of 60 delivered 20 s after the relay recovered"
    late = done - recovered
    # the bound: one pause (retry_seconds) plus one drain, with room for a loaded machine
    assert late <= retry + cadence + 2.0, late
    assert {r["state"] for r in rows.values()} == {"sent"}
    assert all(r["attempts"] == 1 for r in rows.values())  # the outage counted for nobody
    greetings = server.handler.events["greeting_421"]
    # probed at its own pace: about one connection per retry interval, not one per row
    assert greetings <= outage / retry + 6, greetings
    figures(**{"outage (s)": outage, "retry_seconds": retry,
               "delivered after recovery (s)": round(late, 2), "421 greetings": greetings,
               "drains": drains})


@pytest.mark.parametrize("backend", [
    "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_paused_relay_is_one_clock_shared_by_every_process_and_probed_once(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer], backend: str,
        request: pytest.FixtureRequest) -> None:
    server = fault(greeting_failures=10 ** 9)
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else \
        f"sqlite:///{tmp_path / 's.sqlite3'}"
    config = kill.world(make_config, server.port, 30, url,
                        extra={"mail": {"retry_seconds": 600, "max_attempts": 8}})
    store = open_store(config.database.url, config.base_dir)
    try:
        summary = asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                                   scheduled=False))
        assert "paused" in summary, summary
        rows = _rows(store)
        # no row carries a wait of its own, and no attempt was counted
        assert {r["state"] for r in rows.values()} <= {"retry", "queued"}
        assert all(r["attempts"] == 0 for r in rows.values())
        assert all(r["next_at"] is None or r["next_at"] <= datetime.now(UTC)
                   for r in rows.values())
        connections = server.handler.connections

        # another process sees the pause: it does not knock on the relay at all
        code, out, err = _cli(config, "digest", "send", "--frequency", "daily")
        assert code == 0 and "Traceback" not in err, err
        assert "paused" in out, out
        assert server.handler.connections == connections
        code, out, err = _cli(config, "status", "--json")
        assert code == 0, err
        relay = json.loads(out)["relay"]
        assert relay["paused"] is True and "421" in relay["reason"], relay

        # the pause runs out, the relay is still down: one probe, one connection
        _run_out_the_pause(store)
        report = asyncio.run(drain_outbox(store, config))
        assert report.paused and report.sent == 0, report
        assert server.handler.connections == connections + 1
        assert _delivered(server) == set()

        # the pause runs out again and the relay is back: everything goes in that drain
        server.handler.greeting_failures = 0
        _run_out_the_pause(store)
        report = asyncio.run(drain_outbox(store, config))
        assert report.sent == 30 and not report.paused, report
        assert _delivered(server) == kill.recipients(30)
        assert {r["state"] for r in _rows(store).values()} == {"sent"}
        code, out, err = _cli(config, "status", "--json")
        assert json.loads(out)["relay"]["paused"] is False
    finally:
        store.close()


@pytest.mark.parametrize("bad", [1, 10], ids=["one-row", "ten-rows"])
def test_an_error_building_a_message_is_that_rows_unless_it_repeats_for_others(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        monkeypatch: pytest.MonkeyPatch, bad: int) -> None:
    server = fault()
    config = kill.world(make_config, server.port, 40, f"sqlite:///{tmp_path / 'b.sqlite3'}",
                        extra={"mail": {"retry_seconds": 600, "max_attempts": 8}})
    broken = {f"r{i}@example.org" for i in range(bad)}
    real = messages.digest_message

    def digest_message(config: Config, key: bytes, to: messages.Recipient,
                       rendered: messages.Rendered, *args: Any, **kwargs: Any) -> bytes:
        if to.email in broken:  # any type: not a ValidationError, not a delivery error
            raise KeyError(f"no header for {to.email}")
        return real(config, key, to, rendered, *args, **kwargs)

    monkeypatch.setattr(messages, "digest_message", digest_message)
    store = open_store(config.database.url, config.base_dir)
    try:
        summary = asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                                   scheduled=False))
        rows = _rows(store)
    finally:
        store.close()
    if bad == 1:
        # one row's error: the other 39 go out, nothing pauses, the row retries (counted)
        assert "paused" not in summary, summary
        assert _delivered(server) == kill.recipients(40) - broken
        row = rows["r0@example.org"]
        assert row["state"] == "retry" and row["attempts"] == 1
        assert "KeyError" in str(row["last_error"])
    else:
        # the same error for different recipients: the template's or the configuration's;
        # the send pauses and nobody's attempt is counted
        assert "paused" in summary and "KeyError" in summary, summary
        for address in broken & set(rows):
            assert rows[address]["attempts"] == 0 and rows[address]["state"] in (
                "retry", "queued"), rows[address]


@pytest.mark.parametrize(("down", "lost"), [
    ("421", "invalid-address"), ("530", "invalid-address"), ("421", "stopped")])
def test_a_probe_that_never_reaches_the_relay_leaves_the_pause_as_it_was(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        monkeypatch: pytest.MonkeyPatch, down: str, lost: str) -> None:
    """Only the relay's answer ends a pause: a probe row whose address fails validation, or
    a drain stopped before the probe went out, says nothing about the relay, so the pause
    keeps its clock, its start and its count of refusals (and the relay sees one probe)."""
    from seriesfeed.actions.relay import relay_state as read_relay
    from seriesfeed.errors import ValidationError
    from seriesfeed.store.tables import relay_state

    server = fault(greeting_failures=10 ** 9) if down == "421" else \
        fault(mail_reply="530 5.7.0 Authentication required")
    config = kill.world(make_config, server.port, 20, f"sqlite:///{tmp_path / 'p.sqlite3'}",
                        extra={"mail": {"retry_seconds": 60, "max_attempts": 8}})
    store = open_store(config.database.url, config.base_dir)
    stopping = asyncio.Event()
    try:
        summary = asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                                   scheduled=False))
        assert "paused" in summary, summary
        with store.write() as conn:  # a long outage: refused probes grew the pause
            conn.execute(update(relay_state).values(refusals=7))
        before = read_relay(store, config)
        _run_out_the_pause(store)
        connections = server.handler.connections
        if lost == "invalid-address":
            real, calls = messages.digest_message, []

            def digest_message(*args: Any, **kwargs: Any) -> bytes:
                calls.append(1)
                if len(calls) == 1:  # the probe's own address is refused before sending
                    raise ValidationError("not a valid address")
                return real(*args, **kwargs)

            monkeypatch.setattr(messages, "digest_message", digest_message)
        else:
            from seriesfeed.actions import delivery

            real_render = delivery.render_digest

            def render_digest(*args: Any, **kwargs: Any) -> messages.Rendered | None:
                stopping.set()  # SIGTERM while the probe's digest is being rendered
                return real_render(*args, **kwargs)

            monkeypatch.setattr(delivery, "render_digest", render_digest)
        asyncio.run(drain_outbox(store, config, stopping=stopping))
        after = read_relay(store, config)
    finally:
        store.close()
    assert after.paused, after
    assert after.since == before.since, (before, after)
    assert _delivered(server) == set()
    if lost == "stopped":
        assert server.handler.connections == connections  # nothing reached the relay
        assert after.refusals == before.refusals
    else:
        # the next row is the probe: one connection, refused the same way
        assert server.handler.connections == connections + 1
        if down == "530":
            assert after.refusals == before.refusals + 1
            assert after.paused_until is not None and after.paused_until - datetime.now(
                UTC) > timedelta(minutes=50), after  # still the hour, not retry_seconds


def test_a_repeated_build_error_pauses_as_a_message_problem_not_a_relay_problem(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The same error building the message for several recipients pauses sending, but the
    relay did nothing wrong: the log, `status --json` and /healthz name the message (a
    template or the configuration), never the relay."""
    from seriesfeed.actions.status import health

    server = fault()
    config = kill.world(make_config, server.port, 20, f"sqlite:///{tmp_path / 'm.sqlite3'}",
                        extra={"mail": {"retry_seconds": 600, "max_attempts": 8}})

    def digest_message(*args: Any, **kwargs: Any) -> bytes:
        raise KeyError("footer")  # a template that needs a key the configuration lacks

    monkeypatch.setattr(messages, "digest_message", digest_message)
    store = open_store(config.database.url, config.base_dir)
    try:
        with caplog.at_level("INFO", logger="seriesfeed"):
            summary = asyncio.run(actions.send_digests(store, config,
                                                       frequency=Frequency.DAILY,
                                                       scheduled=False))
        judged = health(config, store)
    finally:
        store.close()
    assert "paused" in summary and "KeyError" in summary, summary
    assert "relay" not in summary, summary
    paused = [r.getMessage() for r in caplog.records if "sending paused" in r.getMessage()]
    assert len(paused) == 1 and "the relay refuses" not in paused[0], paused
    assert "building the message" in paused[0], paused
    code, out, err = _cli(config, "status", "--json")
    assert code == 0, err
    relay = json.loads(out)["relay"]
    assert relay["paused"] is True and relay["cause"] == "message", relay
    assert "relay" not in relay["reason"], relay
    assert judged.state == "degraded", judged.reasons
    assert not any("not taking mail" in r for r in judged.reasons), judged.reasons
    assert any("cannot be built" in r for r in judged.reasons), judged.reasons
    assert _delivered(server) == set()

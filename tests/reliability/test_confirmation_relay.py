"""Confirmation mail against a relay that refuses everyone, and one down for over a day
(RELIABILITY invariants 11 and S7)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from seriesfeed import actions
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.actions.subscribers import ConfirmationMail
from seriesfeed.clock import now_utc
from seriesfeed.config import load_config
from seriesfeed.store import open_store
from seriesfeed.store.tables import outbox, relay_state, subscribers
from tests.harness.fault_smtp import FaultServer, Rule
from tests.smtp_server import free_port


def _config(make_config: Callable[..., Path], tmp_path: Path, port: int):  # type: ignore[no-untyped-def]
    return load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'confirm.sqlite3'}"},
        smtp={"host": "127.0.0.1", "port": port, "security": "none", "connections": 2,
              "timeout": 5},
        security={"secret_key": "c" * 32}), env={})


def test_a_relay_refusing_everyone_costs_no_bounce_and_a_new_ask_after_the_fix_sends(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer], caplog: pytest.LogCaptureFixture) -> None:
    """Each subscribe drains its own confirmation, so a relay refusing everyone with a
    policy 5xx (5.7.1 relay access denied) is seen one row at a time: the 5xx is tried
    once (invariant 3), counts against nobody (invariant 11), the operator is told in the
    log, and the day's slot is given back, so asking again once the relay is fixed sends
    the mail (it used to say one had been sent, and send nothing for 24 h)."""
    server = fault(rules={"example.org": [
        Rule("rcpt", "554 5.7.1 <x@example.org>: Relay access denied")]})
    config = _config(make_config, tmp_path, server.port)
    store = open_store(config.database.url, config.base_dir)
    try:
        for i in range(3):  # three people subscribe, one after the other (one drain each)
            sub = actions.subscribers.add_subscriber(store, config, f"p{i}@example.org",
                                                     source="form:/en/").subscriber
            assert sub is not None
            actions.subscribers.send_confirmation(store, config, sub)
        with store.read() as conn:
            states = Counter(s for (s,) in conn.execute(select(outbox.c.state)))
            bounces = conn.execute(select(subscribers.c.hard_bounces)).scalars().all()
        assert states == {"failed": 3} and sum(bounces) == 0
        assert sum("failed for good, not counted against the subscriber" in r.message
                   for r in caplog.records) == 3
        server.handler.rules.clear()  # the operator fixes the relay
        again = actions.subscribers.add_subscriber(store, config, "p1@example.org",
                                                   source="form:/en/").subscriber
        assert again is not None
        assert actions.subscribers.send_confirmation(store, config, again) is \
            ConfirmationMail.SENT
    finally:
        store.close()
    assert [r for d in server.handler.deliveries() for r in d.recipients] == ["p1@example.org"]


def test_a_waiting_confirmation_does_not_go_out_beside_the_next_days_one(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    port = free_port()  # the relay is down: nothing listens yet
    config = _config(make_config, tmp_path, port)
    store = open_store(config.database.url, config.base_dir)
    try:
        sub = actions.subscribers.add_subscriber(store, config, "carol@example.org",
                                                 source="form:/en/").subscriber
        assert sub is not None and sub.id is not None
        assert actions.subscribers.send_confirmation(store, config, sub) is \
            ConfirmationMail.QUEUED
        # a day and an hour later the relay is still down and she asks again
        with store.write() as conn:
            (sent_at,) = conn.execute(select(subscribers.c.confirm_sent_at)
                                      .where(subscribers.c.id == sub.id)).one()
            conn.execute(update(subscribers).where(subscribers.c.id == sub.id)
                         .values(confirm_sent_at=sent_at - timedelta(hours=25)))
        assert actions.subscribers.send_confirmation(store, config, sub) is \
            ConfirmationMail.QUEUED
        server = fault(port=port)  # the relay is back
        again = actions.subscribers.add_subscriber(store, config, "carol@example.org",
                                                   source="form:/en/").subscriber
        assert again is not None
        # the relay's pause is one clock for every sender (invariant 15): her ask does not
        # knock on a paused relay; the waiting copy goes when the pause runs out
        assert actions.subscribers.send_confirmation(store, config, again) is \
            ConfirmationMail.QUEUED
        with store.write() as conn:
            conn.execute(update(relay_state).values(paused_until=now_utc()))
        asyncio.run(drain_outbox(store, config))
    finally:
        store.close()
    copies = Counter(r for d in server.handler.deliveries() for r in d.recipients)
    assert copies["carol@example.org"] == 1, server.handler.deliveries()


def test_a_copy_in_flight_keeps_the_date_its_link_is_bound_to(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    """A new day's ask renews the date a waiting confirmation's link is bound to, but not
    while a copy is in flight with the old date: that copy would arrive with a dead link."""
    config = _config(make_config, tmp_path, free_port())  # nothing listens: nothing sends
    store = open_store(config.database.url, config.base_dir)
    try:
        sub = actions.subscribers.add_subscriber(store, config, "dan@example.org",
                                                 source="form:/en/").subscriber
        assert sub is not None and sub.id is not None
        start = now_utc() - timedelta(hours=25)
        assert actions.subscribers.queue_confirmation(store, config, sub, start)
        with store.write() as conn:  # another sender holds it right now
            conn.execute(update(outbox).values(state="sending"))
        later = now_utc()
        assert not actions.subscribers.queue_confirmation(store, config, sub, later)
        with store.read() as conn:
            bound = conn.execute(select(subscribers.c.confirm_sent_at)).scalar_one()
            rows = conn.execute(select(outbox.c.id)).all()
        assert bound == start and len(rows) == 1
        with store.write() as conn:  # the attempt failed: it waits to retry
            conn.execute(update(outbox).values(state="retry"))
        assert actions.subscribers.queue_confirmation(store, config, sub, later)
        with store.read() as conn:
            bound = conn.execute(select(subscribers.c.confirm_sent_at)).scalar_one()
            rows = conn.execute(select(outbox.c.id)).all()
        assert bound == later and len(rows) == 1  # renewed, and still one row
    finally:
        store.close()

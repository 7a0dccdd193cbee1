"""/metrics and /healthz: what an operator's monitoring scrapes, parsed as Prometheus does."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from seriesfeed import actions
from seriesfeed.actions import subscribers
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.actions.digests import record_digests
from seriesfeed.config import Config, load_config
from seriesfeed.errors import ConfigError
from seriesfeed.models import Frequency
from seriesfeed.store import open_store
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE
from tests.harness.fault_smtp import FaultServer

TOKEN = "metrics-token-0123456789"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _config(make_config: Callable[..., Path], database_url: str, port: int,
            **metrics: object) -> Config:
    return load_config(make_config(
        database={"url": database_url},
        smtp={"host": "127.0.0.1", "port": port, "security": "none", "connections": 1},
        web={"host": "127.0.0.1", "port": 8080, "base_url": "https://feeds.example.org"},
        security={"secret_key": "m" * 32},
        metrics={"enabled": True, "token": TOKEN, **metrics}), env={})


def test_metrics_show_the_outbox_moving_during_a_send(
        make_config: Callable[..., Path], database_url: str, tmp_path: Path) -> None:
    smtp = FaultServer.start(tmp_path / "smtp.log", tarpit=0.15)  # each message takes a while
    config = _config(make_config, database_url, smtp.port)
    store = open_store(config.database.url, config.base_dir)
    try:
        n = 12
        for i in range(n):
            subscribers.add_subscriber(store, config, f"reader{i}@example.org",
                                         frequency="daily", confirmed=True)
        actions.import_entries(store, config, SEED_PAGE)
        client = TestClient(create_app(config, store))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        before = _samples(client.get("/metrics", headers=auth).text)
        histogram_before = before.get(("seriesfeed_smtp_transaction_seconds_count",
                                       (("outcome", "ok"),)), 0.0)

        done = threading.Event()

        record_digests(store, config, Frequency.DAILY, datetime.now(UTC), scheduled=False)

        def send() -> None:  # small batches: marks are committed per batch
            asyncio.run(drain_outbox(store, config, batch=2))
            done.set()

        thread = threading.Thread(target=send)
        thread.start()
        seen: list[tuple[float, float]] = []  # (queued + sending, sent) per scrape
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            reply = client.get("/metrics", headers=auth)
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/plain")
            s = _samples(reply.text)
            waiting = sum(v for (name, labels), v in s.items() if name == "seriesfeed_outbox_rows"
                          and dict(labels)["state"] in ("queued", "sending"))
            sent = s.get(("seriesfeed_outbox_rows", (("kind", "digest"), ("state", "sent"))),
                         0.0)
            seen.append((waiting, sent))
            time.sleep(0.1)
        thread.join(timeout=60)
        after = _samples(client.get("/metrics", headers=auth).text)
    finally:
        store.close()
        smtp.stop()
    # mid-send, some rows were still waiting while others had been sent
    assert any(w > 0 and 0 < s < n for w, s in seen), seen
    assert after[("seriesfeed_outbox_rows", (("kind", "digest"), ("state", "sent")))] == n
    assert after[("seriesfeed_messages_sent_total", ())] == n
    assert after[("seriesfeed_messages_failed_total", ())] == 0
    assert after[("seriesfeed_digests_recorded_total",
                  (("frequency", "daily"), ("language", "en")))] == 1
    assert after[("seriesfeed_subscribers", (("language", "en"), ("status", "confirmed")))] == n
    assert after[("seriesfeed_smtp_transaction_seconds_count", (("outcome", "ok"),))] \
        - histogram_before == n
    assert ("seriesfeed_build_info", ()) not in after  # info carries labels
    assert any(name == "seriesfeed_build_info" for name, _ in after)


def test_metrics_are_off_by_default_and_healthz_says_why_without_counts(
        make_config: Callable[..., Path], database_url: str) -> None:
    config = load_config(make_config(database={"url": database_url}), env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        client = TestClient(create_app(config, store))
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 404
        # a failed job degrades health, with the reason; no subscriber counts are shown
        from seriesfeed.store import jobs as jq

        with store.write() as conn:
            run = jq.start_run(conn, "feeds", datetime.now(UTC))
            jq.finish_run(conn, run, datetime.now(UTC), False, "disk full")
        subscribers.add_subscriber(store, config, "ann@example.org", confirmed=True)
        body = client.get("/healthz").json()
        assert body["status"] == "degraded" and "job feeds failed" in body["reasons"][0]
        assert set(body) == {"status", "reasons"}
    finally:
        store.close()


def test_healthz_shows_counts_only_with_the_metrics_token(
        make_config: Callable[..., Path], database_url: str) -> None:
    config = _config(make_config, database_url, 1)
    store = open_store(config.database.url, config.base_dir)
    try:
        subscribers.add_subscriber(store, config, "ann@example.org", confirmed=True)
        client = TestClient(create_app(config, store))
        assert set(client.get("/healthz").json()) == {"status", "reasons"}
        assert set(client.get("/healthz", headers={"Authorization": "Bearer nope"}).json()) \
            == {"status", "reasons"}
        full = client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert full["status"] == "up" and full["subscribers"] == {"confirmed": 1}
    finally:
        store.close()


def test_feed_requests_and_304s_are_counted(make_config: Callable[..., Path],
                                            database_url: str) -> None:
    config = _config(make_config, database_url, 1)
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.import_entries(store, config, SEED_PAGE)
        client = TestClient(create_app(config, store))
        auth = {"Authorization": f"Bearer {TOKEN}"}

        def counts() -> tuple[float, float, float]:
            s = _samples(client.get("/metrics", headers=auth).text)
            return (s.get(("seriesfeed_feed_requests_total", (("code", "200"),)), 0.0),
                    s.get(("seriesfeed_feed_requests_total", (("code", "304"),)), 0.0),
                    s.get(("seriesfeed_feed_not_modified_total", ()), 0.0))

        ok0, nm0, total0 = counts()
        first = client.get("/feeds/en/atom.xml")
        client.get("/feeds/en/atom.xml", headers={"If-None-Match": first.headers["etag"]})
        ok1, nm1, total1 = counts()
        assert (ok1 - ok0, nm1 - nm0, total1 - total0) == (1, 1, 1)
    finally:
        store.close()


@pytest.mark.parametrize("metrics", [{"enabled": True}, {"enabled": True, "token": "short"},
                                     {"listen": "nohost"}])
def test_metrics_settings_are_checked(make_config: Callable[..., Path],
                                      metrics: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="metrics"):
        load_config(make_config(metrics=metrics), env={})


def test_metrics_are_also_served_on_the_listen_address_and_only_there_metrics(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    from tests.harness.web import LiveServer
    from tests.smtp_server import free_port
    from tests.test_proxy import daemon_web

    side = free_port()
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'l.sqlite3'}"},
        web={"host": "127.0.0.1", "port": free_port(), "base_url": "https://feeds.example.org"},
        metrics={"enabled": True, "token": TOKEN, "listen": f"127.0.0.1:{side}"}), env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        with daemon_web(config, store) as web:
            private = LiveServer(side)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            got = private.request("GET", "/metrics", headers=auth)
            assert got.status == 200 and "seriesfeed_outbox_oldest_queued" in got.body
            assert private.request("GET", "/metrics").status == 401
            assert private.request("GET", "/healthz").status == 404
            assert web.request("GET", "/metrics", headers=auth).status == 200
    finally:
        store.close()


def test_public_healthz_reasons_never_name_a_recipient(
        make_config: Callable[..., Path], database_url: str) -> None:
    config = _config(make_config, database_url, 1)
    store = open_store(config.database.url, config.base_dir)
    try:
        subscribers.add_subscriber(store, config, "ann@example.org", confirmed=True)
        actions.import_entries(store, config, SEED_PAGE)
        record_digests(store, config, Frequency.WEEKLY, datetime.now(UTC), scheduled=False)
        from seriesfeed.store.tables import outbox

        with store.write() as conn:
            conn.execute(outbox.update().values(
                state="retry", next_at=datetime.now(UTC),
                last_error="451 4.7.1 <ann@example.org>: greylisted"))
        client = TestClient(create_app(config, store))
        public = client.get("/healthz").json()
        assert public["status"] == "degraded" and "retried" in public["reasons"][0]
        assert "@" not in json.dumps(public)
        full = client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert "ann@example.org" in full["last_delivery_error"]
    finally:
        store.close()

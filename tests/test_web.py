"""/healthz: what an operator's monitor polls."""

from __future__ import annotations

from starlette.testclient import TestClient

from seriesfeed.actions import subscribers
from seriesfeed.config import Config
from seriesfeed.store import Store
from seriesfeed.web import create_app
from tests.smtp_server import free_port


def test_healthz_reports_ok_with_the_essentials(store: Store, config: Config) -> None:
    subscribers.add_subscriber(store, config, "ann@example.org", confirmed=True)
    reply = TestClient(create_app(config, store)).get("/healthz")
    assert reply.status_code == 200
    body = reply.json()
    # issue 16: up/degraded/down and why; no counts without the metrics token
    assert body == {"status": "up", "reasons": []}


def test_healthz_answers_503_when_the_store_is_unreachable(config: Config) -> None:
    # nothing listens on this port: every query fails to connect
    gone = Store(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    try:
        reply = TestClient(create_app(config, gone)).get("/healthz")
    finally:
        gone.close()
    assert reply.status_code == 503
    assert reply.json()["status"] == "down" and reply.json()["reasons"][0].startswith("store")

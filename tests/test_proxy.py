"""Behind a proxy: X-Forwarded-For is believed only from [web] forwarded_allow_ips, so each
visitor behind the proxy has its own rate-limit bucket and nobody else can forge one."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from seriesfeed.config import Config, load_config
from seriesfeed.errors import ConfigError
from seriesfeed.store import Store, open_store
from seriesfeed.web.embedded import serve_until
from tests.harness.web import LiveServer
from tests.smtp_server import free_port


@contextmanager
def daemon_web(config: Config, store: Store) -> Iterator[LiveServer]:
    """The daemon's own web server (embedded uvicorn with its proxy settings)."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete,
                              args=(serve_until(config, store, stop),), daemon=True)
    thread.start()
    server = LiveServer(config.web.port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            server.request("GET", "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
        loop.close()


def _post(server: LiveServer, source: str, forwarded: str | None, n: int) -> int:
    headers = {"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"} if forwarded else {}
    return server.request("POST", "/subscribe", source=source, headers=headers, form={
        "email": f"p{n}-{source}-{forwarded}@example.org".replace(",", ""), "language": "en",
        "frequency": "daily"}).status


def test_clients_behind_the_proxy_get_their_own_limits_and_a_forger_does_not(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'p.sqlite3'}"},
        web={"host": "127.0.0.1", "port": free_port(), "base_url": "https://feeds.example.org",
             "forwarded_allow_ips": "127.0.0.1"},
        security={"secret_key": "p" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        with daemon_web(config, store) as server:
            # nginx on 127.0.0.1 forwards two visitors: each gets the per-client 5 a minute
            first = [_post(server, "127.0.0.1", "203.0.113.7", i) for i in range(6)]
            second = [_post(server, "127.0.0.1", "203.0.113.8", i) for i in range(6)]
            # a client that is not the proxy forges a new X-Forwarded-For each time: its
            # own address is what counts, so it is limited like anyone else
            forger = [_post(server, "127.0.0.77", f"198.51.100.{i}", i) for i in range(6)]
    finally:
        store.close()
    assert first == [200] * 5 + [429], first
    assert second == [200] * 5 + [429], second
    assert forger == [200] * 5 + [429], forger


def test_forwarded_allow_ips_is_checked(make_config: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError, match=r"web\.forwarded_allow_ips"):
        load_config(make_config(web={"forwarded_allow_ips": "127.0.0.1, nginx"}), env={})
    ok = load_config(make_config(web={"forwarded_allow_ips": "10.0.0.0/8, ::1"}), env={})
    assert ok.web.forwarded_allow_ips == "10.0.0.0/8, ::1"

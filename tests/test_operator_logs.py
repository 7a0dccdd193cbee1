"""Logs an operator can follow: one line per subscribe-flow event, addresses masked, one
time zone (the site's, with its offset, to the second) in logs, status and JSON."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from seriesfeed import tokens
from seriesfeed.actions import subscribers
from seriesfeed.config import load_config
from seriesfeed.daemon import build_daemon
from seriesfeed.logs import mask_address, setup_logging
from seriesfeed.store import open_store
from tests.conftest import CliResult
from tests.smtp_server import SmtpServer

LOCAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")  # no fraction


def test_masking_keeps_the_first_letter_and_the_domain() -> None:
    assert mask_address("lucia@example.org") == "l***@example.org"
    assert mask_address("nobody") == "***"


def test_every_subscribe_flow_event_logs_one_masked_line(
        make_config: Callable[..., Path], database_url: str, smtp_server: SmtpServer,
        caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        security={"secret_key": "l" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    key = tokens.ensure_secret_key(config)
    try:
        with caplog.at_level(logging.INFO, logger="seriesfeed.subscribers"):
            added = subscribers.add_subscriber(store, config, "lucia@example.org",
                                                 source="form", resubscribe=False)
            sub = added.subscriber
            assert sub is not None and sub.id is not None
            subscribers.send_confirmation(store, config, sub)
            link = smtp_server.recorder.wait_for(1)[0].message.get_body(("plain",))
            assert link is not None
            token = re.search(r"/confirm/(\S+)", link.get_content()).group(1)  # type: ignore[union-attr]
            subscribers.confirm(store, config, token)
            prefs = tokens.make_token(key, tokens.Purpose.PREFERENCES, sub.id)
            subscribers.update_preferences(store, config, prefs, language="es",
                                             frequency="daily")
            subscribers.unsubscribe(store, config, tokens.make_token(
                key, tokens.Purpose.UNSUBSCRIBE, sub.id))
        lines = [r.getMessage() for r in caplog.records if r.name == "seriesfeed.subscribers"]
    finally:
        store.close()
    assert len(lines) == 5, lines
    who = f"subscriber {sub.id} (l***@example.org)"
    assert lines[0] == f"subscribe (form): {who} added, pending"
    assert lines[1] == f"confirmation mail to {who}: sent"
    assert lines[2] == f"confirmed: {who}"
    assert lines[3].startswith(f"preferences of {who} changed: es, daily")
    assert lines[4] == f"unsubscribed: {who}"
    assert not any("lucia" in line for line in lines)


@pytest.mark.parametrize("fmt", ["json", "human"])
def test_log_lines_are_stamped_in_the_site_zone_to_the_second(
        fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(fmt, zone=ZoneInfo("America/New_York"))
    try:
        logging.getLogger("seriesfeed.daemon").info("hello")
    finally:
        setup_logging("human")
    line = capsys.readouterr().err.strip()
    stamp = json.loads(line)["time"] if fmt == "json" else line.split(" ", 1)[0]
    assert LOCAL.match(stamp) and stamp.endswith(("-05:00", "-04:00")), line


def test_status_and_json_listings_use_the_site_zone_to_the_second(
        make_config: Callable[..., Path], database_url: str,
        run_cli: Callable[..., CliResult]) -> None:
    site = make_config(database={"url": database_url})
    assert run_cli("--config", site, "subscribers", "add", "ann@example.org",
                   "--confirmed").code == 0
    listed = json.loads(run_cli("--config", site, "subscribers", "list", "--json").out)
    assert LOCAL.match(listed[0]["created_at"]) and LOCAL.match(listed[0]["confirmed_at"])
    config = load_config(site, env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        from datetime import UTC, datetime

        from seriesfeed.store import jobs as jq

        with store.write() as conn:
            run = jq.start_run(conn, "feeds", datetime.now(UTC))
            jq.finish_run(conn, run, datetime.now(UTC), True, "ok")
    finally:
        store.close()
    report = json.loads(run_cli("--config", site, "status", "--json").out)
    feeds = next(j for j in report["jobs"] if j["name"] == "feeds")
    for stamp in (feeds["next"], feeds["last"]["started_at"], feeds["last"]["finished_at"],
                  report["last_success"]["feeds"]["started_at"]):
        assert LOCAL.match(stamp) and stamp.endswith(("-05:00", "-04:00")), stamp


def test_a_new_stores_first_start_says_first_start(
        make_config: Callable[..., Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'new.sqlite3'}"},
        schedule={"feeds": "* * * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
                  "drain_seconds": 30, "watch_seconds": 30, "shutdown_timeout": 5}), env={})
    store = open_store(config.database.url, config.base_dir)

    async def briefly() -> None:
        daemon = build_daemon(config, store, serve_web=False)
        loop = asyncio.get_running_loop()
        loop.call_later(1.5, daemon.stopping.set)
        await daemon.run()

    try:
        for _ in range(2):
            with caplog.at_level(logging.INFO, logger="seriesfeed"):
                caplog.clear()
                asyncio.run(briefly())
                lines = [r.getMessage() for r in caplog.records]
            if _ == 0:
                first = lines
    finally:
        store.close()
    catch_up = [line for line in first if "running it now" in line]
    assert catch_up and all("first start" in line for line in catch_up), first
    assert not any("slot passed while the daemon was down" in line for line in first)
    assert not any("first start" in line for line in lines)  # the second start is not

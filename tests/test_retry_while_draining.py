"""`digests retry ID` run by two operators at once, in processes of their own, while the
daemon drains the outbox: each failed row is sent once more, with the Message-ID stored
for it, and nothing else is sent again; on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from seriesfeed import actions
from seriesfeed.actions import subscribers
from seriesfeed.config import load_config
from seriesfeed.store import open_store
from tests.conftest import SEED_PAGE
from tests.harness.procs import Processes, seriesfeed_args
from tests.smtp_server import SmtpServer
from tests.test_daemon import _free_port, _get, _wait


def test_two_retries_while_the_daemon_drains_send_each_failed_row_once(
        make_config: Callable[..., Path], database_url: str, smtp_server: SmtpServer,
        procs: Processes) -> None:
    web_port = _free_port()
    path = make_config(
        database={"url": database_url},  # a SQLite file, and PostgreSQL when it answers
        web={"host": "127.0.0.1", "port": web_port, "base_url": ""},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none",
              "connections": 2},
        schedule={"feeds": "0 */6 * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
                  "drain_seconds": 0.3, "watch_seconds": 0.3, "shutdown_timeout": 5})
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        good = [f"reader{n}@ok.example.org" for n in range(30)]
        bad = [f"reader{n}@hard.example.net" for n in range(6)]
        for email in good + bad:
            subscribers.add_subscriber(store, config, email, frequency="daily",
                                       confirmed=True)
        actions.import_entries(store, config, SEED_PAGE)
        smtp_server.recorder.rcpt_replies["hard.example.net"] = "550 5.1.1 no such user"
        asyncio.run(actions.send_digests(store, config, scheduled=False))
        digest = actions.ops.list_digests(store, config)[0]["id"]
        failed = {r["recipient"]: r["message_id"]
                  for r in actions.ops.show_digest(store, config, digest)["not_sent"]}
        assert sorted(failed) == sorted(bad)
        assert len(smtp_server.recorder.messages) == len(good)
    finally:
        store.close()
    smtp_server.recorder.rcpt_replies.clear()  # the mailboxes work again

    daemon = procs.start(seriesfeed_args(path, "run"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait(lambda: _get(f"http://127.0.0.1:{web_port}/healthz")[0] == 200
          or daemon.poll() is not None, 30, "the daemon to answer /healthz")
    assert daemon.poll() is None
    operators = [procs.start(seriesfeed_args(path, "digests", "retry", str(digest)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in operators]
    assert [p.returncode for p in operators] == [0, 0], outs
    _wait(lambda: len(smtp_server.recorder.messages) >= len(good) + len(bad), 30,
          "the retried rows to be sent")
    time.sleep(2)  # several drains pass: nothing more goes out
    again = smtp_server.recorder.messages[len(good):]
    per = Counter(r for m in again for r in m.recipients)
    assert per == Counter(bad), per
    assert {m.recipients[0]: m.message["Message-ID"] for m in again} == failed
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0

"""`seriesfeed run` as a real process: serves, builds feeds, rebuilds after a change, refuses a
second instance, and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SEED_PAGE, CliResult
from tests.smtp_server import SmtpServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture
def daemon_config(make_config: Callable[..., Path], database_url: str) -> Path:
    port = _free_port()
    return make_config(database={"url": database_url},
                       web={"host": "127.0.0.1", "port": port, "base_url": ""},
                       schedule={"feeds": "0 */6 * * *", "daily": "0 7 * * *",
                                 "weekly": "0 7 * * mon", "drain_seconds": 1,
                                 "watch_seconds": 0.3, "shutdown_timeout": 5})


def _start(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # its own process group: the reaper under every test kills what it started too
    return subprocess.Popen([sys.executable, "-m", "seriesfeed", "--config", str(config), "run"],
                            start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


@pytest.fixture
def running(daemon_config: Path, run_cli: Callable[..., CliResult]
            ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    assert run_cli("--config", daemon_config, "import", SEED_PAGE).code == 0
    text = daemon_config.read_text(encoding="utf-8")
    port = int(text.split("[web]")[1].split("port = ")[1].split()[0])
    base = f"http://127.0.0.1:{port}"
    proc = _start(daemon_config)
    try:
        _wait(lambda: _get(base + "/healthz")[0] == 200 or proc.poll() is not None, 30,
              "the daemon to answer /healthz")
        assert proc.poll() is None, proc.communicate()
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
        print(err[-3000:])  # shown by pytest when the test fails


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
def test_daemon_serves_builds_rebuilds_refuses_a_second_and_stops_on_sigterm(
        running: tuple[subprocess.Popen[str], str], daemon_config: Path,
        run_cli: Callable[..., CliResult]) -> None:
    proc, base = running
    status, body = _get(base + "/feeds/en/atom.xml")
    assert status == 200 and body.count(b"<entry xml:lang=") == 18
    health = json.loads(_get(base + "/healthz")[1])
    assert health["status"] == "up"
    out = daemon_config.parent / "var" / "public" / "feeds" / "en" / "atom.xml"
    _wait(out.is_file, 20, "the feeds to be built at start")
    assert out.read_bytes().count(b"<entry xml:lang=") == 18

    added = run_cli("--config", daemon_config, "entries", "add", "--series",
                    "reflections-on-the-iso-crisis", "--title", "Fresh from the press",
                    "--published", "2019-05-01")
    assert added.code == 0, added
    _wait(lambda: b"Fresh from the press" in out.read_bytes(), 20,
          "the rebuild after a change to the store")
    assert b"Fresh from the press" in _get(base + "/feeds/en/atom.xml")[1]

    if "postgresql" in daemon_config.read_text(encoding="utf-8"):
        # PostgreSQL: a second daemon joins as a node (its own port), serves, and does
        # not lead (README "Running several nodes"; tests/reliability/test_nodes.py)
        other = _free_port()
        second = _start(daemon_config, env={"SERIESFEED_WEB_PORT": str(other)})
        try:
            _wait(lambda: _get(f"http://127.0.0.1:{other}/healthz")[0] == 200, 30,
                  "the second node to answer")
            shown = json.loads(run_cli("--config", daemon_config, "status", "--json").out)
            assert len(shown["nodes"]) == 2
            assert shown["leader"]["node"] == shown["nodes"][0]["node"]  # the first leads
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
        finally:
            if second.poll() is None:
                second.kill()
            second.communicate(timeout=10)
    else:
        second = _start(daemon_config)
        try:
            _, err = second.communicate(timeout=20)
        finally:
            if second.poll() is None:
                second.kill()
        assert second.returncode == 1
        assert "another seriesfeed daemon" in err

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert time.monotonic() - started < 10

    report = run_cli("--config", daemon_config, "status", "--json")
    assert report.code == 0
    jobs = {j["name"]: j for j in json.loads(report.out)["jobs"]}
    assert jobs["feeds"]["last"]["ok"] is True
    assert jobs["feeds"]["next"] is not None


def test_config_error_at_start_is_one_line_and_exit_2(make_config: Callable[..., Path]) -> None:
    bad = make_config(schedule={"daily": "every morning"})
    proc = subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(bad), "run"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: ") and "schedule.daily" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_sender_only_on_sqlite_is_refused_in_one_line_naming_the_database(
        make_config: Callable[..., Path]) -> None:
    """On SQLite the one daemon sends: a second, sender-only process would be a second
    sender, so it is refused before anything starts (and nothing is sent)."""
    config = make_config()
    proc = subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config), "run",
                           "--sender-only"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith("Error: ") and "database.url" in proc.stderr
    assert "--sender-only needs PostgreSQL in database.url" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_daemon_sends_one_digest_survives_an_smtp_outage_and_resumes(
        make_config: Callable[..., Path], tmp_path: Path,
        run_cli: Callable[..., CliResult]) -> None:
    """The relay is down when the digest falls due: the daemon keeps running, reports
    "degraded", and delivers exactly once when the relay comes back."""
    from aiosmtpd.controller import Controller

    from tests.smtp_server import Recorder

    smtp_port, web_port = _free_port(), _free_port()
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=smtp_port)
    config = make_config(
        database={"url": f"sqlite:///{tmp_path / 'd.sqlite3'}"},
        web={"host": "127.0.0.1", "port": web_port, "base_url": ""},
        smtp={"host": "127.0.0.1", "port": smtp_port, "security": "none", "timeout": 3},
        mail={"from": "Digest <digest@example.org>", "maildir": "var/maildir",
              "bounce_limit": 3, "max_attempts": 50, "retry_seconds": 0.5},
        schedule={"feeds": "0 */6 * * *", "daily": "*/2 * * * * *", "weekly": "0 7 * * mon",
                  "drain_seconds": 0.5, "watch_seconds": 1, "shutdown_timeout": 5})
    assert run_cli("--config", config, "subscribers", "add", "ann@example.org", "--frequency",
                   "daily", "--confirmed").code == 0
    assert run_cli("--config", config, "import", SEED_PAGE).code == 0
    proc = _start(config)  # the relay is not listening yet
    try:
        def degraded() -> bool:
            status, body = _get(f"http://127.0.0.1:{web_port}/healthz")
            return status == 200 and json.loads(body)["status"] == "degraded"

        _wait(lambda: degraded() or proc.poll() is not None, 30, "/healthz to say degraded")
        assert proc.poll() is None  # still running
        report = run_cli("--config", config, "status", "--json")
        assert json.loads(report.out)["last_error"]

        controller.start()
        _wait(lambda: len(recorder.messages) >= 1, 30, "delivery after the relay is back")
        time.sleep(4)  # two more slots pass: nothing new, nothing more sent
        assert len(recorder.messages) == 1
        assert recorder.messages[0].recipients == ["ann@example.org"]
        assert recorder.messages[0].message["Subject"].endswith("18 new articles")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
        controller.stop(no_assert=True)


def test_catch_up_after_downtime_sends_once_and_not_again_after_a_restart(
        make_config: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., CliResult],
        smtp_server: SmtpServer) -> None:
    """The daily slot passed while no daemon ran: the first start sends it once; a second
    start (same slot) sends nothing."""
    config = make_config(
        database={"url": f"sqlite:///{tmp_path / 'c.sqlite3'}"},
        web={"host": "127.0.0.1", "port": _free_port(), "base_url": ""},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        schedule={"feeds": "0 */6 * * *", "daily": "0 7 * * *", "weekly": "0 7 * * mon",
                  "drain_seconds": 0.5, "watch_seconds": 1, "shutdown_timeout": 5})
    for email, freq in (("ann@example.org", "daily"), ("bob@example.org", "daily")):
        assert run_cli("--config", config, "subscribers", "add", email, "--frequency", freq,
                       "--confirmed").code == 0
    assert run_cli("--config", config, "import", SEED_PAGE).code == 0
    for round_ in range(2):
        proc = _start(config)
        try:
            if round_ == 0:
                _wait(lambda p=proc: len(smtp_server.recorder.messages) >= 2  # type: ignore[misc]
                      or p.poll() is not None, 30, "the caught-up digest")
            time.sleep(3)
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
        assert sorted(r for m in smtp_server.recorder.messages for r in m.recipients) == \
            ["ann@example.org", "bob@example.org"]

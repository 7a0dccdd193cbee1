"""The daemon's and ``serve``'s edges, over real HTTP and real signals: a ``--port`` given on
the command line reaches every self link; "serving on" means a client is answered."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SEED_PAGE, CliResult
from tests.harness.procs import Processes, catches, seriesfeed_args
from tests.smtp_server import free_port

SLUG = "reflections-on-the-iso-crisis"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {}, exc.read().decode("utf-8", "replace")
    except OSError:
        return 0, {}, ""


def _until_up(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _get(url)[0] == 0:
        assert proc.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not answer"
        time.sleep(0.1)


@pytest.mark.parametrize("base_url", ["", "https://feeds.example.org"])
def test_serve_port_reaches_every_self_link_unless_base_url_is_set(
        make_config: Callable[..., Path], tmp_path: Path, procs: Processes,
        run_cli: Callable[..., CliResult], base_url: str) -> None:
    configured, given = free_port(), free_port()
    path = make_config(database={"url": f"sqlite:///{tmp_path / 'p.db'}"},
                       web={"host": "127.0.0.1", "port": configured, "base_url": base_url},
                       websub={"hub": "https://hub.example.org/"})
    assert run_cli("--config", path, "import", SEED_PAGE).code == 0
    proc = procs.start(seriesfeed_args(path, "serve", "--port", str(given)),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    here = f"http://127.0.0.1:{given}"
    _until_up(f"{here}/healthz", proc)
    status, headers, atom = _get(f"{here}/feeds/en/{SLUG}/atom.xml")
    page_status, _, page = _get(f"{here}/en/{SLUG}/")
    assert status == 200 and page_status == 200
    expected = base_url or here
    self_links = re.findall(r'<link[^>]*rel="self"[^>]*>', atom)
    assert self_links and all(expected in link for link in self_links), self_links
    assert f"<{expected}/feeds/en/{SLUG}/atom.xml>; rel=\"self\"" in headers["link"]
    assert f'href="{expected}/feeds/en/{SLUG}/atom.xml"' in page
    for text in (atom, page, headers.get("link", "")):
        assert f":{configured}" not in text  # the config's port, not the one served on


def _world(make_config: Callable[..., Path], tmp_path: Path,
           run_cli: Callable[..., CliResult]) -> Path:
    path = make_config(database={"url": f"sqlite:///{tmp_path / 'd.db'}"},
                       web={"host": "127.0.0.1", "port": free_port(), "base_url": ""},
                       schedule={"feeds": "0 */6 * * *", "daily": "0 7 * * *",
                                 "weekly": "0 7 * * mon", "drain_seconds": 1,
                                 "watch_seconds": 0.3, "shutdown_timeout": 5})
    assert run_cli("--config", path, "import", SEED_PAGE).code == 0
    return path


SPAWN_OFFSETS = (0.3, 0.5, 1.0, 2.0)


@pytest.mark.serial  # its offsets are times: run alone (./dev test)
@pytest.mark.parametrize("command", ["run", pytest.param("serve", marks=pytest.mark.full)])
def test_sigterm_at_any_moment_of_the_start_stops_cleanly(
        make_config: Callable[..., Path], tmp_path: Path, procs: Processes,
        run_cli: Callable[..., CliResult], figures: Callable[..., None], command: str) -> None:
    """Before: a SIGTERM in the first seconds (imports, migrations, binding) killed the
    daemon with the signal (exit -15) instead of stopping it. Offsets from the spawn, and
    from the moment the process's first line has run (its SIGTERM handler shows in /proc):
    before that the interpreter itself is starting and no Python code can catch a signal
    (a bare ``python -c`` whose first line ignores SIGTERM dies of one sent at +0.12 s on
    this loaded machine)."""
    path = _world(make_config, tmp_path, run_cli)
    codes, first_line = {}, []
    for anchor, offset in [("first line", 0.0), ("first line", 0.05), *(
            ("spawn", o) for o in SPAWN_OFFSETS)]:
        proc = procs.start(seriesfeed_args(path, command), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env=ENV)
        spawned = time.monotonic()
        if anchor == "first line":
            while not catches(proc.pid, signal.SIGTERM):
                assert proc.poll() is None and time.monotonic() - spawned < 30, "no handler"
                time.sleep(0.002)
            first_line.append(time.monotonic() - spawned)
        time.sleep(offset)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        codes[f"+{offset} s after {anchor}"] = proc.returncode
        assert proc.returncode == 0, (anchor, offset, proc.returncode, err[-2000:])
        assert "Traceback" not in err, err[-3000:]
    figures(part=command, **{f"exit at {k}": c for k, c in codes.items()},
            **{"spawn to first line, s (max)": round(max(first_line), 3)})


@pytest.mark.parametrize(("command", "line"), [("run", "seriesfeed: serving"),
                                               ("serve", "serving on")])
def test_a_client_connecting_right_after_serving_on_is_answered(
        make_config: Callable[..., Path], tmp_path: Path, procs: Processes,
        run_cli: Callable[..., CliResult], command: str, line: str) -> None:
    path = _world(make_config, tmp_path, run_cli)
    port = int(path.read_text(encoding="utf-8").split("[web]")[1].split("port = ")[1].split()[0])
    proc = procs.start(seriesfeed_args(path, command), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stderr is not None
    seen: list[str] = []
    for text in proc.stderr:  # the server exits (EOF) if it never says it
        seen.append(text)
        if line in text:
            break
    assert any(line in s for s in seen), seen
    status, _, _ = _get(f"http://127.0.0.1:{port}/healthz")  # at once: no retry
    assert status == 200, (status, seen)


def _add(run_cli: Callable[..., CliResult], path: Path, title: str) -> None:
    result = run_cli("--config", path, "entries", "add", "--series", SLUG, "--title", title,
                     "--published", "2019-05-01", "--byline", "Ann Writer")
    assert result.code == 0, result


def _published(out: Path, title: str) -> bool:
    feed = out / "feeds" / "en" / SLUG / "atom.xml"
    return feed.exists() and title in feed.read_text(encoding="utf-8")


def test_a_change_made_while_the_daemon_was_down_is_published_at_its_restart(
        make_config: Callable[..., Path], tmp_path: Path, procs: Processes,
        run_cli: Callable[..., CliResult]) -> None:
    """The feeds slot (every 6 h) has had its build, so the restart has no catch-up: the
    watch used to answer "no build yet" until the next slot, and the files in out_dir kept
    the old feed for hours."""
    path = _world(make_config, tmp_path, run_cli)
    out = path.parent / "var" / "public"
    first = procs.start(seriesfeed_args(path, "run"), stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while not _published(out, "Reflections"):  # the first start builds (catch-up)
        assert first.poll() is None and time.monotonic() < deadline, "no first build"
        time.sleep(0.2)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    _add(run_cli, path, "Written while the daemon was down")
    second = procs.start(seriesfeed_args(path, "run"), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 30
    while not _published(out, "Written while the daemon was down"):
        assert second.poll() is None, second.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the change made while down was not published"
        time.sleep(0.2)
    _add(run_cli, path, "Written right after the restart")
    deadline = time.monotonic() + 30
    while not _published(out, "Written right after the restart"):
        assert second.poll() is None and time.monotonic() < deadline, "not published"
        time.sleep(0.2)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0


def test_serve_on_port_0_is_refused_rather_than_linking_to_port_0(
        make_config: Callable[..., Path], tmp_path: Path, procs: Processes) -> None:
    """Port 0 listens on a port the kernel picks while every self link, page link and
    confirmation mail says ``:0``; it is a usage error, in the command and in the config."""
    from seriesfeed.config import load_config
    from seriesfeed.errors import ConfigError

    path = make_config(database={"url": f"sqlite:///{tmp_path / 'z.db'}"},
                       web={"host": "127.0.0.1", "port": free_port(), "base_url": ""})
    proc = procs.start(seriesfeed_args(path, "serve", "--port", "0"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        out, err = "", "still serving"
    assert proc.returncode == 2, (out, err)
    assert "--port" in err and "Traceback" not in err, err
    with pytest.raises(ConfigError) as caught:
        load_config(make_config(web={"host": "127.0.0.1", "port": 0}), env={})
    assert caught.value.key == "web.port"

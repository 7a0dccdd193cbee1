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
from tests.harness.procs import Processes, seriesfeed_args
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

"""S14 (issue 11, item 10): the web server's header and body deadlines, with real sockets
against ``seriesfeed serve``. Fifty clients that trickle their request headers a byte at a
time (which kept fifty connections open forever) are all closed within
``[web] header_timeout`` plus a margin; a form body that trickles gets 408 within
``[web] body_timeout``; a body nobody reads does not keep its connection either; and the
site keeps answering everyone else meanwhile."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seriesfeed import actions
from seriesfeed.config import Config, load_config
from seriesfeed.store import open_store
from tests.conftest import SEED_PAGE
from tests.harness.web import LiveServer, wait_until_healthy
from tests.smtp_server import free_port

HEADER_TIMEOUT, BODY_TIMEOUT, MARGIN = 2.0, 2.0, 1.5
SLUG = "reflections-on-the-iso-crisis"


@pytest.fixture
def served(make_config: Callable[..., Path], tmp_path: Path
           ) -> Iterator[tuple[Config, LiveServer]]:
    port = free_port()
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'slow.sqlite3'}"},
        web={"host": "127.0.0.1", "port": port, "base_url": "https://feeds.example.org",
             "header_timeout": HEADER_TIMEOUT, "body_timeout": BODY_TIMEOUT},
        security={"secret_key": "t" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    store.close()
    assert config.path is not None
    proc = subprocess.Popen([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                             "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    client = LiveServer(port)
    wait_until_healthy(client, proc, "serve")
    try:
        yield config, client
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    # clients that give up or are cut off are not the server's bugs: no traceback logged
    assert "Traceback" not in err, err[-3000:]


def _trickle(socks: list[socket.socket], payload: bytes, give_up: float
             ) -> tuple[list[float], list[bytes]]:
    """Send ``payload`` one byte per 0.25 s on every socket until the server closes it (or
    ``give_up`` seconds pass). Returns when each was closed (inf if never) and what came."""
    started = time.monotonic()
    closed = [float("inf")] * len(socks)
    received = [b""] * len(socks)
    sent = 0
    while time.monotonic() - started < give_up and any(c == float("inf") for c in closed):
        for i, s in enumerate(socks):
            if closed[i] != float("inf"):
                continue
            try:
                if sent < len(payload):
                    s.send(payload[sent:sent + 1])
            except OSError:  # reset or broken pipe: the server closed it
                closed[i] = time.monotonic() - started
        sent += 1
        deadline = time.monotonic() + 0.25
        while (wait := deadline - time.monotonic()) > 0:
            open_ = [s for i, s in enumerate(socks) if closed[i] == float("inf")]
            if not open_:
                break
            readable, _, _ = select.select(open_, [], [], wait)
            for s in readable:
                i = socks.index(s)
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if data:
                    received[i] += data
                else:
                    closed[i] = time.monotonic() - started
    return closed, received


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
@pytest.mark.catalogue("S14")
def test_slow_headers_and_bodies_are_cut_off(served: tuple[Config, LiveServer],
                                             figures: Callable[..., None]) -> None:
    config, client = served
    assert config.web.header_timeout == HEADER_TIMEOUT
    request = (b"GET /healthz HTTP/1.1\r\nHost: feeds.example.org\r\n"
               + b"".join(b"X-Slow-%d: %s\r\n" % (i, b"a" * 20) for i in range(40)) + b"\r\n")
    slow = [socket.create_connection(("127.0.0.1", client.port), timeout=5) for _ in range(50)]
    idle = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    try:
        # meanwhile the site answers everyone else
        normal = client.request("GET", f"/en/{SLUG}/")
        closed, received = _trickle(slow, request, give_up=HEADER_TIMEOUT + 8)
        after = client.request("GET", "/healthz")
        idle.settimeout(MARGIN)
        try:
            idle_got: bytes | None = idle.recv(100)  # b"": closed by the server
        except TimeoutError:
            idle_got = None
    finally:
        for s in [*slow, idle]:
            s.close()
    worst = max(closed)
    assert normal.status == 200 and normal.seconds < 1.0
    assert after.status == 200
    assert worst <= HEADER_TIMEOUT + MARGIN, sorted(closed)[-5:]
    assert all(r.startswith(b"HTTP/1.1 408") for r in received), received[0][:200]
    assert idle_got == b""  # an idle connection is closed without a word

    # a form body that trickles in: 408 from the handler at body_timeout
    body_sock = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    unread = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    try:
        body_sock.sendall(b"POST /subscribe HTTP/1.1\r\nHost: feeds.example.org\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\n"
                          b"Content-Length: 400\r\n\r\n")
        # a body nobody reads (healthz answers at once), still arriving
        unread.sendall(b"GET /healthz HTTP/1.1\r\nHost: feeds.example.org\r\n"
                       b"Content-Length: 400\r\n\r\n")
        body_closed, body_got = _trickle([body_sock, unread], b"email=slow%40example.org"
                                         + b"&x=" + b"a" * 300, give_up=BODY_TIMEOUT + 8)
    finally:
        body_sock.close()
        unread.close()
    # a client that gives up halfway through its form
    quitter = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    quitter.sendall(b"POST /subscribe HTTP/1.1\r\nHost: feeds.example.org\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 400\r\n\r\nemail=quit")
    time.sleep(0.3)
    quitter.close()
    assert client.request("GET", "/healthz").status == 200
    assert body_got[0].startswith(b"HTTP/1.1 408"), body_got[0][:300]
    assert body_closed[0] <= BODY_TIMEOUT + MARGIN, body_closed
    assert body_got[1].startswith(b"HTTP/1.1 200")
    assert body_closed[1] <= BODY_TIMEOUT + 1 + MARGIN, body_closed
    figures(**{"slow-header clients": 50, "all closed within s": round(worst, 2),
               "header_timeout s": HEADER_TIMEOUT, "slow form body": "408",
               "slow body answered within s": round(body_closed[0], 2),
               "unread slow body closed within s": round(body_closed[1], 2)})

"""The web app on a real uvicorn server in a thread, and a client that can speak from any
loopback address (127.0.0.2 ... 127.0.0.201), so per-client limits see real peers."""

from __future__ import annotations

import http.client
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette

from tests.smtp_server import free_port


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str
    seconds: float
    # every Set-Cookie header (``headers`` keeps only the last of a repeated header)
    set_cookies: list[str] = field(default_factory=list)


@dataclass
class LiveServer:
    port: int

    def request(self, method: str, path: str, *, form: dict[str, str] | None = None,
                body: bytes | None = None, headers: dict[str, str] | None = None,
                source: str = "127.0.0.1", timeout: float = 10) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0))
        hdrs = {"Host": "feeds.example.org", **(headers or {})}
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     data.decode("utf-8", "replace"), time.perf_counter() - started,
                     [v for k, v in response.getheaders() if k.lower() == "set-cookie"])


def wait_until_healthy(client: LiveServer, proc: subprocess.Popen[str], what: str,
                       timeout: float = 30) -> None:
    """Poll /healthz until the server in ``proc`` answers 200 (fail if it exits first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.request("GET", "/healthz", timeout=2).status == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.2)


@contextmanager
def live(app: Starlette, port: int | None = None) -> Iterator[LiveServer]:
    """The app served on 127.0.0.1 until the block ends (``port``: one the app's own
    base_url already names; else a free one)."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield LiveServer(port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)

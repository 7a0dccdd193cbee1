"""A publisher's web server on 127.0.0.1 for the source tests: the standard library's
ThreadingHTTPServer with scripted routes, conditional GET (ETag / Last-Modified), gzip,
redirects, error statuses with Retry-After, a body far over the cap, and a route that
never answers. Every request's path and headers are recorded."""

from __future__ import annotations

import gzip
import hashlib
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/atom+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True  # send ETag/Last-Modified and answer 304 to a match
    last_modified: str = "Tue, 02 Apr 2019 12:00:00 GMT"
    hang: bool = False  # accept, read the request, never answer
    endless: int = 0  # stream this many bytes of junk (no Content-Length)
    gzip: bool = False  # gzip the body when the client accepts it


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-response (a 404 read no further, a cap reached) is the
    client's business: socketserver would print its traceback to stderr, and the CLI tests
    capture stderr in this process, so a hang-up timed just so failed an unrelated
    assertion on the CLI's error line. Hang-ups are recorded instead; anything else still
    prints."""

    hangups = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            self.hangups += 1
            return
        super().handle_error(request, client_address)


class SourceServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()  # ends hanging requests at shutdown
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                route = server.routes.get(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if route is None:
                    server.seen.append(Seen(self.path, headers, 404))
                    self._send(404, b"not found", "text/plain", {})
                    return
                if route.hang:
                    server.seen.append(Seen(self.path, headers, 0))
                    server.release.wait(60)
                    return
                etag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
                extra = dict(route.headers)
                if route.conditional and route.status == 200:
                    extra.setdefault("ETag", etag)
                    extra.setdefault("Last-Modified", route.last_modified)
                    if headers.get("if-none-match") == etag or (
                            "if-none-match" not in headers and
                            headers.get("if-modified-since") == route.last_modified):
                        server.seen.append(Seen(self.path, headers, 304))
                        self._send(304, b"", None, {"ETag": etag})
                        return
                server.seen.append(Seen(self.path, headers, route.status))
                if route.endless:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b"<x>" + b"a" * 65536 + b"</x>"
                    sent = 0
                    try:
                        while sent < route.endless:
                            self.wfile.write(chunk)
                            sent += len(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                body = route.body
                if route.gzip and "gzip" in headers.get("accept-encoding", ""):
                    body = gzip.compress(body)
                    extra["Content-Encoding"] = "gzip"
                self._send(route.status, body, route.content_type, extra)

            def do_POST(self) -> None:  # a WebSub hub: record the ping, accept it
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["body"] = self.rfile.read(length).decode("utf-8", "replace")
                server.seen.append(Seen(self.path, headers, 202))
                self._send(202, b"", None, {})

            def _send(self, status: int, body: bytes, content_type: str | None,
                      headers: dict[str, str]) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for key, value in headers.items():
                    self.send_header(key, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def source_server() -> Iterator[SourceServer]:
    server = SourceServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.stop()
        time.sleep(0)

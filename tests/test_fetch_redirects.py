"""A redirect from a source to a loopback, private or link-local address is refused unless
the configured URL is itself such an address or the host is on the source's
``allow_private`` list. The configured URLs here look public (``feeds.example``), so the
real client talks to a server on a unix socket instead: no request leaves the machine,
and the redirect targets are refused before anything connects to them."""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from seriesfeed.config import load_config
from seriesfeed.errors import FetchError
from seriesfeed.fetch import fetch
from tests.conftest import ConfigFactory

ADDRESSES = {"feeds.example": ["93.184.216.34"], "intranet.example": ["10.1.2.3"],
             "mixed.example": ["93.184.216.35", "192.168.1.7"]}


async def resolve(host: str) -> list[str]:
    return ADDRESSES[host]


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def unix_server(tmp_path: Path) -> Iterator[tuple[str, list[str], dict[str, str]]]:
    """Answers /start with a redirect to the Location in ``routes['/start']``, anything
    else with a small feed; records every path it is asked for."""
    seen: list[str] = []
    routes: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def address_string(self) -> str:
            return "unix"

        def do_GET(self) -> None:
            seen.append(f"{self.headers.get('Host')}{self.path}")
            if self.path in routes:
                self.send_response(302)
                self.send_header("Location", routes[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"<feed xmlns='http://www.w3.org/2005/Atom'/>"
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    path = str(tmp_path / "http.sock")
    server = _UnixHTTPServer(path, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield path, seen, routes
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get(sock: str, url: str, allow: tuple[str, ...] = ()) -> str:
    fetched = asyncio.run(fetch(url, site_url="https://reader.example", max_bytes=10_000,
                                allow_private=allow, resolve=resolve, uds=sock))
    return fetched.url


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:8080/secret", "http://[::1]/secret", "http://10.0.0.5/secret",
    "http://169.254.169.254/latest/meta-data/", "http://intranet.example/secret",
    "http://mixed.example/secret", "http://0.0.0.0/secret",
    "http://100.64.0.1/secret",  # shared address space (carrier NAT): not public either
])
def test_a_redirect_from_a_public_url_to_an_internal_address_is_refused(
        unix_server: tuple[str, list[str], dict[str, str]], target: str) -> None:
    sock, seen, routes = unix_server
    routes["/start"] = target
    with pytest.raises(FetchError) as caught:
        get(sock, "http://feeds.example/start")
    message = str(caught.value)
    assert "http://feeds.example/start" in message and target in message, message
    assert seen == ["feeds.example/start"]  # the internal address was never asked


def test_a_redirect_to_an_allowed_internal_host_or_network_is_followed(
        unix_server: tuple[str, list[str], dict[str, str]]) -> None:
    sock, seen, routes = unix_server
    routes["/start"] = "http://intranet.example/feed"
    assert get(sock, "http://feeds.example/start", ("intranet.example",)) == \
        "http://intranet.example/feed"
    assert get(sock, "http://feeds.example/start", ("10.0.0.0/8",)) == \
        "http://intranet.example/feed"
    assert seen[-1] == "intranet.example/feed"


def test_a_configured_internal_url_may_redirect_to_internal_addresses(
        unix_server: tuple[str, list[str], dict[str, str]]) -> None:
    sock, _seen, routes = unix_server
    routes["/start"] = "http://10.9.9.9/feed"
    assert get(sock, "http://intranet.example/start") == "http://10.9.9.9/feed"


def test_a_redirect_between_public_hosts_is_followed(
        unix_server: tuple[str, list[str], dict[str, str]]) -> None:
    sock, _seen, routes = unix_server
    routes["/start"] = "http://feeds.example/moved"
    assert get(sock, "http://feeds.example/start") == "http://feeds.example/moved"


def test_allow_private_is_a_source_setting_checked_at_load(
        make_config: ConfigFactory) -> None:
    path = make_config('\n[sources.intra]\nurl = "https://feeds.example/x"\n'
                       'allow_private = ["intranet.example", "10.0.0.0/8"]\n')
    config = load_config(path, env={})
    assert config.sources["intra"].allow_private == ["intranet.example", "10.0.0.0/8"]
    bad = make_config('\n[sources.intra]\nurl = "https://feeds.example/x"\n'
                      'allow_private = ["10.0.0.0/33"]\n')
    with pytest.raises(Exception, match="allow_private"):
        load_config(bad, env={})


def test_a_url_learned_from_a_move_is_checked_before_its_first_request(
        unix_server: tuple[str, list[str], dict[str, str]]) -> None:
    """A source once moved (301) to a name that now resolves internally: the URL polled is
    the learned one, but only the configured URL may open the way to internal addresses,
    and the very first request is checked."""
    sock, seen, _routes = unix_server
    with pytest.raises(FetchError) as caught:
        asyncio.run(fetch("http://intranet.example/feed", site_url="https://reader.example",
                          max_bytes=10_000, resolve=resolve, uds=sock,
                          configured_url="http://feeds.example/feed"))
    assert "intranet.example" in str(caught.value) and "10.1.2.3" in str(caught.value)
    assert seen == []  # nothing was asked of it
    # listed in allow_private, it is polled
    fetched = asyncio.run(fetch("http://intranet.example/feed", site_url="https://r.example",
                                max_bytes=10_000, resolve=resolve, uds=sock,
                                configured_url="http://feeds.example/feed",
                                allow_private=("intranet.example",)))
    assert fetched.status == 200 and seen == ["intranet.example/feed"]


def test_the_connected_address_is_checked_whatever_the_earlier_lookup_said() -> None:
    """DNS may change between the check and the connection (rebinding): the name looked
    public when checked, the connection reached this machine. The peer's address is judged
    once connected, before a request is written (every byte stays on 127.0.0.1)."""
    from tests.harness.http_source import Route, source_server

    async def public(host: str) -> list[str]:
        return ["93.184.216.34"]  # what the check was told; the system resolver says 127.0.0.1

    with source_server() as server:
        server.routes["/feed"] = Route(b"<feed xmlns='http://www.w3.org/2005/Atom'/>")
        url = f"http://localhost:{server.port}/feed"
        with pytest.raises(FetchError) as caught:
            asyncio.run(fetch(url, site_url="https://reader.example", max_bytes=10_000,
                              resolve=public, configured_url="http://feeds.example/feed"))
        assert "127.0.0.1" in str(caught.value), caught.value
        assert server.seen == []  # refused before the request was written
        # listed in the source's allow_private, the same host is polled
        fetched = asyncio.run(fetch(url, site_url="https://reader.example", max_bytes=10_000,
                                    resolve=public, allow_private=("localhost",)))
        assert fetched.status == 200 and len(server.seen) == 1


@pytest.mark.parametrize("target", [
    # Alibaba Cloud's metadata service, in the shared address space (RFC 6598) that
    # Python calls neither private nor reserved; the same space holds CGNAT and VPN hosts
    "http://100.100.100.200/latest/meta-data/", "http://100.64.0.1/secret",
    # IETF protocol assignments (RFC 6890), home of a cloud's metadata address
    "http://192.0.0.192/latest/", "http://224.0.0.1/secret",
])
def test_a_redirect_to_a_metadata_or_shared_address_is_refused(
        unix_server: tuple[str, list[str], dict[str, str]], target: str) -> None:
    sock, seen, routes = unix_server
    routes["/start"] = target
    with pytest.raises(FetchError, match="refused a redirect"):
        get(sock, "http://feeds.example/start")
    assert seen == ["feeds.example/start"]

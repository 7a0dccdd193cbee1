"""HTTP GET of a publisher's document as a good citizen; the only module that imports httpx2.

One GET at a time per call: conditional (``If-None-Match`` / ``If-Modified-Since`` from the
last good response), gzip accepted, a ``User-Agent`` naming seriesfeed and the site, connect
and read timeouts plus an overall deadline, at most ``MAX_REDIRECTS`` redirects followed by
hand (so that a permanent one, 301/308, is reported and remembered), and the body read as a
stream under a byte cap (a decompressed gzip body counts, so a gzip bomb stops at the cap).
Foreign errors become :class:`FetchError` here, at the boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from seriesfeed import __version__
from seriesfeed.clock import now_utc
from seriesfeed.errors import FetchError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "MAX_REDIRECTS",
    "PERMANENT",
    "READ_TIMEOUT_S",
    "TEMPORARY",
    "TOTAL_TIMEOUT_S",
    "Fetched",
    "fetch",
    "retry_after_seconds",
    "user_agent",
]

if TYPE_CHECKING:
    import httpx2

MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
TOTAL_TIMEOUT_S = 120.0  # a server trickling one byte a second still ends
PERMANENT = (301, 308)
TEMPORARY = (302, 303, 307)


@dataclass(frozen=True)
class Fetched:
    """What a GET gave: a body (200), or nothing new (304)."""

    url: str  # the URL the document came from, after redirects
    status: int
    body: bytes
    content_type: str  # media type only, lower case ("" when the server sent none)
    etag: str | None
    last_modified: str | None
    moved_to: str | None = None  # the new URL of a permanent redirect (301/308)
    charset: str | None = None  # from the Content-Type, lower case

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def user_agent(site_url: str) -> str:
    return f"seriesfeed/{__version__} (+{site_url})"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"'{url}' is not an http(s) URL", url=url)


Resolver = Callable[[str], Awaitable[list[str]]]


async def _addresses(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []  # unknown: the request itself then fails with the resolver's error
    return [str(info[4][0]) for info in found]


# RFC 6890's protocol assignments: Python 3.11 calls most of it global, yet a cloud's
# metadata service answers there (192.0.0.192)
_PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")


def _internal_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # anything not globally routable: loopback, private, link-local (a cloud's metadata
    # address), unspecified, reserved and the shared space 100.64.0.0/10 (100.100.100.200);
    # multicast and 192.0.0.0/24 count as global to Python but are no place for a feed
    return (not address.is_global or address.is_multicast
            or address in _PROTOCOL_ASSIGNMENTS)


@dataclass
class _Guard:
    """No request may reach this machine or its network (a cloud's metadata address, an
    admin port) unless the operator said so: the configured URL is itself internal, or the
    host is in the source's ``allow_private``. A publisher's server, or whoever took over a
    name it once moved to, must not make the poller fetch internal documents and store
    them as entries. Every hop is checked before it is asked (the first too: the URL polled
    may be one learned from a 301), and every connection once made (DNS may have changed
    since the check)."""

    origin: str
    allow: tuple[str, ...]
    resolve: Resolver
    open: bool = False  # the configured URL is internal itself: its redirects may be
    current: str = ""  # the URL being asked now

    async def internal(self, url: str) -> str | None:
        """An internal address ``url``'s host is or resolves to (None: none)."""
        host = (urlsplit(url).hostname or "").lower()
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = [ipaddress.ip_address(a.split("%")[0])
                         for a in await self.resolve(host)]
        return next((str(a) for a in addresses if _internal_address(a)), None)

    def allowed(self, url: str, address: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        for entry in self.allow:
            if entry.lower() == host:
                return True
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(address) in ipaddress.ip_network(entry, strict=False):
                    return True
        return False

    def _refuse(self, target: str, address: str) -> FetchError:
        what = f"a redirect to {target}" if target != self.origin else target
        return FetchError(f"refused {what}, an internal address ({address}); list its host "
                          "in the source's allow_private to poll it", url=self.origin)

    async def check(self, target: str) -> None:
        self.current = target
        if self.open:
            return
        address = await self.internal(target)
        if address is not None and not self.allowed(target, address):
            raise self._refuse(target, address)

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: a TCP connection was just made, no request written yet."""
        if self.open or name != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        if stream is None:
            return
        peer = stream.get_extra_info("server_addr")
        if not peer:  # a unix socket: no address to judge
            return
        try:
            address = ipaddress.ip_address(str(peer[0]).split("%")[0])
        except ValueError:
            return
        if _internal_address(address) and not self.allowed(self.current, str(address)):
            await stream.aclose()
            raise self._refuse(self.current, str(address))


async def fetch(url: str, *, site_url: str, max_bytes: int, etag: str | None = None,
                last_modified: str | None = None, now: datetime | None = None,
                connect_timeout: float = CONNECT_TIMEOUT_S,
                read_timeout: float = READ_TIMEOUT_S,
                total_timeout: float = TOTAL_TIMEOUT_S,
                allow_private: Sequence[str] = (), resolve: Resolver | None = None,
                uds: str | None = None, configured_url: str | None = None) -> Fetched:
    """GET ``url``; raise FetchError for anything but a 200 or a 304.

    ``configured_url``: the URL the operator configured (``url`` may be one learned from a
    301); only when it is internal itself may ``url`` and its redirects be (default:
    ``url``). ``allow_private``: host names or networks (``10.0.0.0/8``) that may be asked
    although they are internal. ``resolve`` (how a host name becomes addresses) and ``uds``
    (a unix socket every request goes to) let tests put a public-looking URL on this
    machine."""
    import httpx2  # here, not at the top: every CLI command would pay for its import

    _check_url(url)
    guard = _Guard(url, tuple(allow_private), resolve or _addresses)
    guard.open = await guard.internal(configured_url or url) is not None
    await guard.check(url)
    headers = {"User-Agent": user_agent(site_url), "Accept-Encoding": "gzip",
               "Accept": "application/atom+xml, application/rss+xml, application/feed+json, "
                         "application/json, application/xml;q=0.9, text/xml;q=0.9, "
                         "text/html;q=0.8, text/csv;q=0.8, text/plain;q=0.7, */*;q=0.1"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = httpx2.Timeout(read_timeout, connect=connect_timeout)
    transport = httpx2.AsyncHTTPTransport(uds=uds) if uds else None
    try:
        async with asyncio.timeout(total_timeout), httpx2.AsyncClient(
                timeout=timeout, follow_redirects=False, trust_env=False,
                transport=transport) as client:
            return await _follow(client, url, headers, max_bytes, now or now_utc(), guard)
    except TimeoutError as exc:
        raise FetchError(f"no complete answer within {total_timeout:.0f} s", url=url,
                         transient=True) from exc
    except httpx2.TimeoutException as exc:
        raise FetchError(f"timed out ({type(exc).__name__})", url=url,
                         transient=True) from exc
    except httpx2.DecodingError as exc:
        raise FetchError(f"the body could not be decoded: {exc}", url=url) from exc
    except httpx2.HTTPError as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}", url=url, transient=True) from exc


async def _follow(client: httpx2.AsyncClient, url: str, headers: dict[str, str],
                  max_bytes: int, now: datetime, guard: _Guard) -> Fetched:
    moved_to: str | None = None
    permanent_so_far = True
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        if hop:
            await guard.check(current)
        async with client.stream("GET", current, headers=headers,
                                 extensions={"trace": guard.trace}) as response:
            status = response.status_code
            if status in PERMANENT + TEMPORARY:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {status} without a Location", url=current,
                                     status=status)
                target = urljoin(current, location)
                _check_url(target)
                # remembered only while every hop so far was permanent
                permanent_so_far = permanent_so_far and status in PERMANENT
                if permanent_so_far:
                    moved_to = target
                current = target
                continue
            if status == 304:
                return Fetched(current, 304, b"", "", response.headers.get("etag"),
                               response.headers.get("last-modified"), moved_to)
            if status != 200:
                retry = retry_after_seconds(response.headers.get("retry-after"), now)
                raise FetchError(f"HTTP {status} {response.reason_phrase}".rstrip(),
                                 url=current, status=status, retry_after=retry,
                                 transient=status in (408, 429) or status >= 500)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes and \
                    not response.headers.get("content-encoding"):
                raise FetchError(f"the document has {declared} bytes, more than the limit "
                                 f"of {max_bytes}", url=current, status=status)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"the document is larger than the limit of {max_bytes} "
                                     "bytes", url=current, status=status)
            content_type = response.headers.get("content-type", "")
            media = content_type.split(";")[0].strip().lower()
            charset = next((p.split("=", 1)[1].strip().strip('"').lower()
                            for p in content_type.split(";")[1:]
                            if p.strip().lower().startswith("charset=")), None)
            return Fetched(current, 200, bytes(body), media, response.headers.get("etag"),
                           response.headers.get("last-modified"), moved_to, charset)
    raise FetchError(f"more than {MAX_REDIRECTS} redirects", url=url)

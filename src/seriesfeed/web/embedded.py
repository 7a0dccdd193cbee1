"""Run the web app inside the daemon's own event loop (uvicorn without its signal handlers:
the daemon owns SIGTERM/SIGINT and tells the server when to stop).

uvicorn has a keep-alive timeout but none for a request still arriving: a client that
trickles its headers (or a body nobody reads) held its connection forever, and fifty of them
held fifty. ``_TimedH11`` closes a connection whose request headers are not complete within
``[web] header_timeout`` seconds (answering 408 when some bytes came), and one whose body is
still arriving ``[web] body_timeout`` (+1) seconds after its headers; the form handlers
answer 408 themselves at ``body_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from seriesfeed.actions import Store
from seriesfeed.config import Config
from seriesfeed.errors import SeriesfeedError
from seriesfeed.web import create_app, create_console_app

__all__ = ["REQUEST_TIMEOUT", "serve_forever", "serve_until", "timed_protocol", "trusted_proxies"]

log = logging.getLogger("seriesfeed.web")


REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n")


class _TimedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers and one for the body."""

    header_timeout: float = 10.0
    body_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _partial = False  # bytes of the next request have arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._partial = True
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._partial = False
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header()
        self._cancel_body()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm or cancel the deadlines for the state the client is in."""
        state = self.conn.their_state
        if state is h11.IDLE:
            self._cancel_body()
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(self.header_timeout,
                                                          self._header_late)
        elif state is h11.SEND_BODY:
            self._cancel_header()
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(self.body_timeout + 1,
                                                        self._body_late)
        else:
            self._cancel_header()
            self._cancel_body()
            self._partial = False

    def _cancel_header(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _header_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being written (pipelining): not idle
        if self._partial:  # a request was on its way: say why it ends
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _body_late(self) -> None:
        self._body_timer = None
        if not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
            self.transport.close()  # the handler, if it still waits, sees a disconnect


def timed_protocol(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's ``http=`` with these deadlines."""
    return type("TimedH11", (_TimedH11,), {"header_timeout": header_timeout,
                                           "body_timeout": body_timeout})


class _Server(uvicorn.Server):
    on_listening: Callable[[], None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon handles signals

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_listening is not None:
            # only now: a client that reads "serving on" and connects is answered
            self.on_listening()


async def serve_until(config: Config, store: Store, stop: asyncio.Event,
                      host: str | None = None, port: int | None = None,
                      on_listening: Callable[[], None] | None = None) -> None:
    """Serve until ``stop`` is set, then finish open requests and return; ``on_listening``
    is called once the socket listens (not before: see "serving on")."""
    app = create_app(config, store)
    server = _Server(uvicorn.Config(
        app, host=host or config.web.host, port=port or config.web.port,
        log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5,
        limit_concurrency=1000, timeout_keep_alive=5,
        http=timed_protocol(config.web.header_timeout, config.web.body_timeout),
        proxy_headers=bool(trusted_proxies(config)),
        forwarded_allow_ips=trusted_proxies(config) or None))
    server.on_listening = on_listening
    where = f"{server.config.host}:{server.config.port}"
    sides = _side_listeners(config, store)
    if sides:
        try:
            await _with_listeners(stop, server, where, sides)
        finally:
            app.state.store.close()
        return

    async def guarded() -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind
            raise SeriesfeedError(f"the web server could not listen on {where}") from exc
        if not server.started and not stop.is_set():
            raise SeriesfeedError(f"the web server could not listen on {where}")

    task = asyncio.get_running_loop().create_task(guarded())
    stopper = asyncio.get_running_loop().create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            stopper.cancel()
            task.result()  # re-raises the SeriesfeedError above
            return
        server.should_exit = True
        await task
    finally:
        app.state.store.close()  # the web's own engine (create_app)


def trusted_proxies(config: Config) -> list[str]:
    """uvicorn's proxy headers: X-Forwarded-For and -Proto are believed only from the peers
    in ``[web] forwarded_allow_ips`` (default 127.0.0.1, a proxy on the same host), so each
    client behind the proxy gets its own rate-limit bucket and nobody else can forge one."""
    return [p.strip() for p in config.web.forwarded_allow_ips.split(",") if p.strip()]


def _side_listeners(config: Config, store: Store) -> list[tuple[ASGIApp, str]]:
    """The apps served on their own addresses: /metrics alone on ``[metrics] listen``, and
    the console alone on ``[admin] listen`` (then it is not on the public port at all)."""
    from seriesfeed.web.ops import metrics_app

    sides: list[tuple[ASGIApp, str]] = []
    if config.metrics.enabled and config.metrics.listen:
        sides.append((metrics_app(config, store), config.metrics.listen))
    if config.admin.enabled and config.admin.listen:
        sides.append((create_console_app(config, store), config.admin.listen))
    return sides


async def _with_listeners(stop: asyncio.Event, main: uvicorn.Server, where: str,
                          sides: list[tuple[ASGIApp, str]]) -> None:
    """The main server and the side ones, started and stopped together."""
    servers = [(main, where)]
    for app, listen in sides:
        host, _, port = listen.rpartition(":")
        servers.append((_Server(uvicorn.Config(
            app, host=host.strip("[]"), port=int(port), log_level="warning",
            access_log=False, lifespan="off", timeout_graceful_shutdown=2,
            proxy_headers=main.config.proxy_headers,
            forwarded_allow_ips=main.config.forwarded_allow_ips)), listen))

    async def guarded(server: uvicorn.Server, at: str) -> None:
        try:
            await server.serve()
        except SystemExit as exc:
            raise SeriesfeedError(f"the web server could not listen on {at}") from exc
        if not server.started and not stop.is_set():
            raise SeriesfeedError(f"the web server could not listen on {at}")

    loop = asyncio.get_running_loop()
    tasks = {loop.create_task(guarded(server, at)) for server, at in servers}
    stopper = loop.create_task(stop.wait())
    await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for server, _ in servers:
        server.should_exit = True
    stopper.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def serve_forever(config: Config, store: Store, host: str | None = None,
                        port: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    import signal

    from seriesfeed import stopping

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stopping.requested():  # it came while the process started: stop at once
        stop.set()

    def listening() -> None:
        log.warning("serving on http://%s:%s/", host or config.web.host,
                    port or config.web.port)

    await serve_until(config, store, stop, host, port, on_listening=listening)

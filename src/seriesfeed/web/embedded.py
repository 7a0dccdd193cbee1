"""Run the web app inside the daemon's own event loop (uvicorn without its signal handlers:
the daemon owns SIGTERM/SIGINT and tells the server when to stop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn

from seriesfeed.config import Config
from seriesfeed.errors import SeriesfeedError
from seriesfeed.store import Store
from seriesfeed.web import create_app

log = logging.getLogger("seriesfeed.web")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon handles signals


async def serve_until(config: Config, store: Store, stop: asyncio.Event,
                      host: str | None = None, port: int | None = None) -> None:
    """Serve until ``stop`` is set, then finish open requests and return."""
    server = _Server(uvicorn.Config(
        create_app(config, store), host=host or config.web.host, port=port or config.web.port,
        log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5,
        limit_concurrency=1000, timeout_keep_alive=5, proxy_headers=bool(trusted_proxies(config)),
        forwarded_allow_ips=trusted_proxies(config) or None))
    where = f"{server.config.host}:{server.config.port}"
    if config.metrics.enabled and config.metrics.listen:
        await _with_metrics_listener(config, store, stop, server, where)
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
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        stopper.cancel()
        task.result()  # re-raises the SeriesfeedError above
        return
    server.should_exit = True
    await task


def trusted_proxies(config: Config) -> list[str]:
    """uvicorn's proxy headers: X-Forwarded-For and -Proto are believed only from the peers
    in ``[web] forwarded_allow_ips`` (default 127.0.0.1, a proxy on the same host), so each
    client behind the proxy gets its own rate-limit bucket and nobody else can forge one."""
    return [p.strip() for p in config.web.forwarded_allow_ips.split(",") if p.strip()]


async def _with_metrics_listener(config: Config, store: Store, stop: asyncio.Event,
                                 main: uvicorn.Server, where: str) -> None:
    """The main server and a /metrics-only one on ``[metrics] listen``, stopped together."""
    from seriesfeed.web.ops import metrics_app

    host, _, port = config.metrics.listen.rpartition(":")
    side = _Server(uvicorn.Config(metrics_app(config, store), host=host.strip("[]"),
                                  port=int(port), log_level="warning", access_log=False,
                                  lifespan="off", timeout_graceful_shutdown=2))

    async def guarded(server: uvicorn.Server, at: str) -> None:
        try:
            await server.serve()
        except SystemExit as exc:
            raise SeriesfeedError(f"the web server could not listen on {at}") from exc
        if not server.started and not stop.is_set():
            raise SeriesfeedError(f"the web server could not listen on {at}")

    loop = asyncio.get_running_loop()
    tasks = {loop.create_task(guarded(main, where)),
             loop.create_task(guarded(side, config.metrics.listen))}
    stopper = loop.create_task(stop.wait())
    await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
    main.should_exit = side.should_exit = True
    stopper.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def serve_forever(config: Config, store: Store, host: str | None = None,
                        port: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.warning("serving on http://%s:%s/", host or config.web.host, port or config.web.port)
    await serve_until(config, store, stop, host, port)

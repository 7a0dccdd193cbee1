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
    app = create_app(config, store)
    server = _Server(uvicorn.Config(
        app, host=host or config.web.host, port=port or config.web.port,
        log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5,
        limit_concurrency=1000, timeout_keep_alive=5))
    where = f"{server.config.host}:{server.config.port}"

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
